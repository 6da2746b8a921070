#!/bin/bash
# test_startup.sh: tools/nginfer-serve failing the right way, fast, and
# cleanly: a missing or corrupt model (exit non-zero within 5 s with a line
# naming the file, nothing started), workers that crash as soon as they
# start (multiwatch gives up: the script stops nginx and exits 1), a run
# dir already in use, a port already taken.
# Run by tests/run.sh (e2e suite) or alone: BUILD=build bash tests/e2e/test_startup.sh

. "$(dirname "$0")/lib.sh"
e2e_bound 120 "$0" "$@"

model=$E2E_ROOT/models/default.onnx
port=$(free_port 300) || { fail startup/port "no free port"; exit 1; }
# shellcheck disable=SC2034
base=http://127.0.0.1:$port # for req and serve_start

# nothing_started RUN_DIR PORT: no socket file, nobody listening on it or
# on PORT, no nginx running from RUN_DIR (checks only; nothing is signalled).
nothing_started() {
    local l port=$2
    [ ! -e "$1/worker.sock" ] || { why="$1/worker.sock exists"; return 1; }
    l=$(ss -xlpH 2>/dev/null | grep -F "$1/worker.sock")
    [ -z "$l" ] || { why="still listening on $1/worker.sock: $l"; return 1; }
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then why="port $port is open"; return 1; fi
    l=$(pgrep -af -- "-p $1/" | grep -v pgrep)
    [ -z "$l" ] || { why="still running: $l"; return 1; }
}

# fails_fast NAME WANT ARGS...: nginfer-serve ARGS exits non-zero within 5 s
# and its output has the fixed string WANT.
fails_fast() {
    local name=$1 want=$2 rc out t0 ms
    shift 2
    out=$e2e_tmp/$name.out
    t0=$(date +%s%N)
    timeout -k 1 5 "$E2E_SERVE" "$@" >"$out" 2>&1 </dev/null
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        why="still running after 5 s: $(tail -2 "$out" | tr '\n' ' ')"
        return 1
    fi
    [ $rc -ne 0 ] || { why="exit status 0: $(tail -2 "$out" | tr '\n' ' ')"; return 1; }
    grep -qF -- "$want" "$out" || { why="no line naming '$want' (exit $rc): $(tail -3 "$out" | tr '\n' ' ')"; return 1; }
    note "$name: exit $rc in $ms ms: $(grep -F -- "$want" "$out" | head -1)"
}

# --- bad models ----------------------------------------------------------------------

run_dir=$e2e_tmp/run
t startup/missing-model fails_fast missing-model /nonexistent.onnx \
    -c "$E2E_CONFIG" -b "$E2E_BIN" -m /nonexistent.onnx -p "$port" -r "$run_dir"
t startup/missing-model-nothing-started nothing_started "$run_dir" "$port"

head -c 4096 /dev/urandom >"$e2e_tmp/corrupt.onnx"
t startup/corrupt-model fails_fast corrupt-model "$e2e_tmp/corrupt.onnx" \
    -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$e2e_tmp/corrupt.onnx" -p "$port" -r "$run_dir"
t startup/corrupt-model-nothing-started nothing_started "$run_dir" "$port"

: >"$e2e_tmp/empty.onnx"
t startup/empty-model fails_fast empty-model "$e2e_tmp/empty.onnx" \
    -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$e2e_tmp/empty.onnx" -p "$port" -r "$run_dir"

# --- workers that die at once: multiwatch gives up, the script exits 1 ------------------
# A stand-in bin dir whose nginfer-worker passes --check and --get to the
# real one but exits 1 when started to serve.
crash_bin=$e2e_tmp/crashbin
mkdir -p "$crash_bin"
cat >"$crash_bin/nginfer-worker" <<EOF
#!/bin/sh
for a in "\$@"; do
    case \$a in --check|--get) exec "$E2E_BIN/nginfer-worker" "\$@" ;; esac
done
echo "crashing worker \$\$" >&2
exit 1
EOF
chmod 0755 "$crash_bin/nginfer-worker"
crash_loop() {
    local rc out=$e2e_tmp/crash.out
    timeout -k 1 20 "$E2E_SERVE" -c "$E2E_CONFIG" -b "$crash_bin" -m "$model" -p "$port" -w 2 \
        -r "$run_dir" >"$out" 2>&1 </dev/null
    rc=$?
    [ $rc -ne 124 ] && [ $rc -ne 137 ] || { why="still running after 20 s: $(tail -2 "$out" | tr '\n' ' ')"; return 1; }
    [ $rc -eq 1 ] || { why="exit status $rc, want 1: $(tail -2 "$out" | tr '\n' ' ')"; return 1; }
    grep -q 'multiwatch' "$out" || { why="no line saying multiwatch exited: $(tail -2 "$out" | tr '\n' ' ')"; return 1; }
    nothing_started "$run_dir" "$port" || return 1
    note "crash loop: $(grep -c '^crashing worker' "$out") worker starts, then: $(tail -1 "$out")"
}
t startup/workers-crash-loop crash_loop

# --- one server per run dir; a taken port ------------------------------------------------

if serve_start first -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$model" -p "$port" -w 1 -r "$run_dir"; then
    pass startup/first-server
    port2=$(free_port 600)
    t startup/run-dir-in-use fails_fast run-dir-in-use "in use" \
        -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$model" -p "$port2" -w 1 -r "$run_dir"
    # The first server must not have been disturbed.
    req GET /ping
    t startup/first-server-still-up expect 200
    t startup/port-in-use fails_fast port-in-use "port $port is in use" \
        -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$model" -p "$port" -w 1 -r "$e2e_tmp/run2"
    [ ! -e "$e2e_tmp/run2/worker.sock" ] && pass startup/port-in-use-cleaned ||
        fail startup/port-in-use-cleaned "$e2e_tmp/run2/worker.sock left behind"
    req GET /ping
    t startup/first-server-still-up-2 expect 200
    t startup/first-server-stop serve_stop_check "$serve_pid" "$run_dir"
else
    fail startup/first-server "$why"
    tail_log
fi

# A port bound but not listening: the early connect test passes, nginx's
# bind fails; the script must notice nginx exiting, stop the workers, exit 1.
port3=$(free_port 900)
"$E2E_PY" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); time.sleep(30)' "$port3" &
holder=$!
sleep 0.3
t startup/nginx-cannot-bind fails_fast nginx-cannot-bind "nginx exited" \
    -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$model" -p "$port3" -w 1 -r "$e2e_tmp/run3"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
t startup/nginx-cannot-bind-cleaned nothing_started "$e2e_tmp/run3" "$port3"

echo "# e2e startup: $e2e_passed passed, $e2e_failed failed"
[ "$e2e_failed" -eq 0 ]

#!/bin/bash
# test_startup.sh: tools/nginfer-serve failing the right way, fast, and
# cleanly: a missing, corrupt, empty or unreadable model or a bad config
# (exit non-zero within 5 s with one line naming the file, nothing left
# running), workers that crash as soon as they start (multiwatch gives up:
# the script stops nginx and exits 1), a run dir already in use, a port
# already taken. And the cold-start order: nginx accepts connections while
# the workers still load the model, a request sent then waits in the
# FastCGI backlog and gets its 200, and a model that fails only after
# nginx is up never gets a /ping 200 (the script stops the pool first).
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
# (15 s for a sanitizer build: ASan's start-up and exit cost is per process)
# and its output has the fixed string WANT (on exactly one line: the workers
# report their start-up error to the script, which prints the first once).
fails_fast() {
    local name=$1 want=$2 rc out t0 ms
    shift 2
    out=$e2e_tmp/$name.out
    local limit=5
    e2e_asan && limit=15
    t0=$(date +%s%N)
    timeout -k 5 "$limit" "$E2E_SERVE" "$@" >"$out" 2>&1 </dev/null
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        why="still running after $limit s: $(tail -2 "$out" | tr '\n' ' ')"
        return 1
    fi
    [ $rc -ne 0 ] || { why="exit status 0: $(tail -2 "$out" | tr '\n' ' ')"; return 1; }
    grep -qF -- "$want" "$out" || { why="no line naming '$want' (exit $rc): $(tail -3 "$out" | tr '\n' ' ')"; return 1; }
    [ "$(grep -cF -- "$want" "$out")" -eq 1 ] ||
        { why="$(grep -cF -- "$want" "$out") lines naming '$want', want 1: $(tr '\n' ' ' <"$out" | head -c 600)"; return 1; }
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
t startup/empty-model fails_fast empty-model "$e2e_tmp/empty.onnx: file is empty" \
    -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$e2e_tmp/empty.onnx" -p "$port" -r "$run_dir"

# Unreadable for the workers (as root they run as nginfer; mode 000 keeps
# them out either way): their error, not a respawn loop.
cp "$model" "$e2e_tmp/noread.onnx"
chmod 000 "$e2e_tmp/noread.onnx"
t startup/unreadable-model fails_fast unreadable-model "$e2e_tmp/noread.onnx: cannot open: Permission denied" \
    -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$e2e_tmp/noread.onnx" -p "$port" -w 2 -r "$run_dir"
t startup/unreadable-model-nothing-started nothing_started "$run_dir" "$port"

# A config the worker cannot parse: its line names the file and the line.
printf 'workers = 2;\nmodel = ;\n' >"$e2e_tmp/bad.cfg"
t startup/bad-config fails_fast bad-config "$e2e_tmp/bad.cfg:2: syntax error" \
    -c "$e2e_tmp/bad.cfg" -b "$E2E_BIN" -m "$model" -p "$port" -w 2 -r "$run_dir"
t startup/bad-config-nothing-started nothing_started "$run_dir" "$port"

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

# --- the run dir: checked and made by the worker program (--run-dir) -------------------
# writable by others: refused, left as it is; made with its parents when
# missing, 0755; as root, a parent others cannot pass through: refused
# before anything is made.
mkdir -p "$e2e_tmp/shared-run" && chmod 0777 "$e2e_tmp/shared-run"
t startup/run-dir-writable-by-others fails_fast run-dir-writable "writable by others (mode 777)" \
    -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$model" -p "$port3" -w 1 -r "$e2e_tmp/shared-run"
made_run_dir() {
    local d=$e2e_tmp/new/a/run
    # a corrupt model: the start fails after the run dir is made
    timeout -k 5 15 "$E2E_SERVE" -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$e2e_tmp/corrupt.onnx" -p "$port3" -w 1 \
        -r "$d" >"$e2e_tmp/run-dir-made.out" 2>&1 </dev/null
    [ -d "$d" ] || { why="$d not made"; return 1; }
    [ "$(stat -c %a "$d")" = 755 ] || { why="$d has mode $(stat -c %a "$d"), want 755"; return 1; }
    [ "$(stat -c %a "$e2e_tmp/shared-run")" = 777 ] || { why="the refused run dir was changed"; return 1; }
}
t startup/run-dir-made-0755 made_run_dir
if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$e2e_tmp/private" && chmod 0700 "$e2e_tmp/private"
    t startup/run-dir-parent-not-traversable fails_fast run-dir-parent "nobody cannot traverse $e2e_tmp/private (mode 700)" \
        -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$model" -p "$port3" -w 1 -r "$e2e_tmp/private/run"
    [ ! -e "$e2e_tmp/private/run" ] && pass startup/run-dir-parent-nothing-made ||
        fail startup/run-dir-parent-nothing-made "$e2e_tmp/private/run was made"
else
    skip startup/run-dir-parent-not-traversable "not root"
fi

# --- cold-start order: nginx first, requests wait for the model ------------------------
# A stand-in worker that takes 3 s to "load" (sleeps, then execs the real
# one; with SLOW_MODEL set, on that model instead).
slow_bin=$e2e_tmp/slowbin
mkdir -p "$slow_bin"
cat >"$slow_bin/nginfer-worker" <<EOF
#!/bin/sh
for a in "\$@"; do
    case \$a in --check|--get) exec "$E2E_BIN/nginfer-worker" "\$@" ;; esac
done
sleep 3
[ -z "\${SLOW_MODEL:-}" ] || exec "$E2E_BIN/nginfer-worker" "\$@" -m "\$SLOW_MODEL"
exec "$E2E_BIN/nginfer-worker" "\$@"
EOF
chmod 0755 "$slow_bin/nginfer-worker"
row='{"instances":[[0.038076,0.05068,0.061696,0.021872,-0.044223,-0.034821,-0.043401,-0.0025923,0.019907,-0.017646]]}'

# bg_start NAME ARGS...: nginfer-serve in the background (recorded for the
# cleanup), without waiting for anything; t0_ms is its start.
bg_start() {
    local name=$1
    shift
    serve_log=$e2e_tmp/$name.log
    t0_ms=$(date +%s%3N)
    "$E2E_SERVE" "$@" >"$serve_log" 2>&1 </dev/null &
    serve_pid=$!
    e2e_procs[$serve_pid]=''
}
# wait_accept SECONDS: until a TCP connect to the port succeeds (10 ms
# polls); sets accept_ms (since t0_ms).
wait_accept() {
    local n=$(($1 * 100))
    while [ $n -gt 0 ]; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            accept_ms=$(($(date +%s%3N) - t0_ms))
            return 0
        fi
        is_live "$serve_pid" || { why="nginfer-serve exited: $(tail -3 "$serve_log" | tr '\n' ' ')"; return 1; }
        sleep 0.01
        n=$((n - 1))
    done
    why="port $port not accepting within $1 s"
    return 1
}

early_request() {
    local ready_before out code ms
    bg_start early -c "$E2E_CONFIG" -b "$slow_bin" -m "$model" -p "$port" -w 2 -r "$run_dir"
    wait_accept 10 || return 1
    ready_before=$(grep -c '"event":"ready"' "$serve_log")
    out=$(curl -s --noproxy '*' -o "$e2e_tmp/early.body" -w '%{http_code}' --max-time 20 \
        -H 'Content-Type: application/json' --data-binary "$row" "$base/invocations")
    code=$out
    ms=$(($(date +%s%3N) - t0_ms))
    [ "$ready_before" -eq 0 ] ||
        { why="a worker was ready before nginx accepted (accept at $accept_ms ms): nothing shows nginx starts first"; return 1; }
    [ "$code" = 200 ] || { why="POST sent at accept ($accept_ms ms) got HTTP $code: $(head -c 200 "$e2e_tmp/early.body")"; return 1; }
    grep -q '"predictions"' "$e2e_tmp/early.body" || { why="no predictions: $(head -c 200 "$e2e_tmp/early.body")"; return 1; }
    grep -q "^nginfer: serving $model on http://127.0.0.1:$port with 2 workers" "$serve_log" ||
        { why="no 'nginfer: serving' line once a worker was ready: $(tail -3 "$serve_log" | tr '\n' ' ')"; return 1; }
    note "accepting connections $accept_ms ms after start while the workers loaded (3 s); a POST sent then got 200 at $ms ms"
}
if t startup/accepts-before-load-request-waits early_request; then
    t startup/early-server-stop serve_stop_check "$serve_pid" "$run_dir"
else
    tail_log
    serve_kill "$serve_pid"
fi

# A model that fails only after nginx is up (its workers "load" 3 s, then
# the model is corrupt): /ping, asked from the moment nginx accepts, waits
# and never answers 200; the script exits 1 with the worker's one line and
# leaves nothing behind.
late_error() {
    local rc code codes=$e2e_tmp/late.codes
    : >"$codes"
    SLOW_MODEL=$e2e_tmp/corrupt.onnx bg_start late -c "$E2E_CONFIG" -b "$slow_bin" -m "$model" -p "$port" -w 2 -r "$run_dir"
    wait_accept 10 || return 1
    while is_live "$serve_pid"; do
        code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 10 "$base/ping" 2>/dev/null)
        echo "$code" >>"$codes"
        sleep 0.05
    done
    wait "$serve_pid"
    rc=$?
    unset "e2e_procs[$serve_pid]"
    [ "$rc" -ne 0 ] || { why="exit status 0"; return 1; }
    ! grep -qx 200 "$codes" || { why="/ping answered 200 with a corrupt model: $(sort "$codes" | uniq -c | tr -s ' ' | tr '\n' ',')"; return 1; }
    [ "$(grep -cF "$e2e_tmp/corrupt.onnx: not a valid ONNX model" "$serve_log")" -eq 1 ] ||
        { why="want one line naming $e2e_tmp/corrupt.onnx: $(tr '\n' ' ' <"$serve_log" | head -c 600)"; return 1; }
    nothing_started "$run_dir" "$port" || return 1
    note "late model error: exit $rc after $(($(date +%s%3N) - t0_ms)) ms; /ping meanwhile: $(sort "$codes" | uniq -c | tr -s ' ' | tr '\n' ',')"
}
t startup/late-model-error-no-ping-200 late_error || tail_log

echo "# e2e startup: $e2e_passed passed, $e2e_failed failed"
[ "$e2e_failed" -eq 0 ]

#!/bin/bash
# test_soak.sh: load, overload and memory, through the real stack (nginx +
# spawn-fcgi + multiwatch + nginfer-workers on models/default.onnx):
#   soak: wrk at 2x workers connections on /invocations for SOAK_SECONDS
#     (default 20; `make soak` runs 600), batches of 1 to 40 rows as JSON
#     and CSV at random (more shapes than the 16 cached plans): only 200s,
#     no socket error, each worker's RSS at the end within 2 MB of its
#     value 5 s in, nginx's and the workers' open non-socket fds the same before and
#     after, no worker restarted
#   overload at 20x workers connections: only 200 or 429 (never 502/503/
#     504); with the default limits (no 429 expected) /ping p99 under
#     200 ms meanwhile; with NGINFER_MAX_INFLIGHT=4 429s (JSON, with
#     Retry-After), /ping never limited (p99 under 500 ms: wrk's instant
#     retries of 429s compete for the CPUs); NGINFER_RATE_LIMIT=10 per
#     address
#   valgrind: one worker under valgrind --leak-check=full behind nginx
#     serves 1,000 mixed good and bad requests; SIGTERM; 0 errors and 0
#     bytes definitely lost (SKIP without valgrind)
# Needs wrk (SKIP without it). With an ASan build (make SANITIZE=1, the
# sanitizer suite of tests/run.sh) the RSS bound and valgrind are SKIPs.
# Run by tests/run.sh (e2e suite) or alone:
#   BUILD=build [SOAK_SECONDS=600] bash tests/e2e/test_soak.sh

. "$(dirname "$0")/lib.sh"
soak_secs=${SOAK_SECONDS:-20}
case $soak_secs in '' | *[!0-9]*) echo "FAIL soak/args: SOAK_SECONDS='$soak_secs' is not a number"; exit 1 ;; esac
[ "$soak_secs" -ge 10 ] || soak_secs=10
e2e_bound $((soak_secs + 200)) "$0" "$@"

model=$E2E_ROOT/models/default.onnx
port=$(free_port 400) || { fail soak/port "no free port"; exit 1; }
# shellcheck disable=SC2034
base=http://127.0.0.1:$port # read by lib.sh
workers=2
wrk_bin=$(command -v wrk)
vg_bin=$(command -v valgrind)
if [ -z "$wrk_bin" ]; then
    skip soak "wrk not installed (apt-get install wrk)"
fi

e2e_bodies <<'EOF'
w("r100k.csv", "0.04,0.05,0.06,0.02,-0.04,-0.03,-0.04,0,0.02,-0.02\n" * 100000)
EOF

# wrk script (lib.sh): E2E_WRK_MODE=mixed POSTs 1 to 40 rows as JSON or CSV
# at random, E2E_WRK_BODY=FILE that file, neither a GET; counts statuses.
wrk_count_script "$e2e_tmp/count.lua"
# wrk_run OUT THREADS CONNS SECONDS PATH [MODE-OR-BODY]: wrk in the
# background (sets wrk_pid); its "E2E ..." line ends up in OUT.
wrk_run() {
    local mode='' bodyf=''
    case ${6:-} in mixed) mode=mixed ;; '') ;; *) bodyf=$6 ;; esac
    E2E_WRK_MODE=$mode E2E_WRK_BODY=$bodyf "$wrk_bin" -t "$2" -c "$3" -d "${4}s" --timeout 5s \
        -s "$e2e_tmp/count.lua" "$base$5" >"$1" 2>&1 &
    wrk_pid=$!
}
# wrk_statuses_in OUT "200 429": every status in the set, no socket error.
wrk_statuses_in() {
    local line s
    line=$(grep '^E2E ' "$1") || { why="no result from wrk: $(tail -3 "$1" | tr '\n' ' ')"; return 1; }
    for s in $(wrk_field "$1" statuses | tr ',' ' '); do
        case " $2 " in *" ${s%%:*} "*) ;; *) why="status ${s%%:*} (want only $2): $line"; return 1 ;; esac
    done
    [ "$(wrk_field "$1" connect)$(wrk_field "$1" read)$(wrk_field "$1" write)$(wrk_field "$1" timeout)" = 0000 ] ||
        { why="socket errors: $line"; return 1; }
}

with_env_start() { # NAME VAR=VALUE... : serve_start with those variables set
    local name=$1 kv saved=()
    shift
    for kv in "$@"; do saved+=("${kv%%=*}"); export "${kv?}"; done
    run_dir=$e2e_tmp/run-$name
    serve_start "$name" -c "$E2E_CONFIG" -b "${serve_bin:-$E2E_BIN}" -m "$model" -p "$port" -w "$workers" -r "$run_dir"
    local rc=$?
    for kv in "${saved[@]}"; do unset "$kv"; done
    return $rc
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
# nfds PID: open descriptors other than sockets. Sockets are left out: with
# upstream keepalive (the default) nginx and the workers hold a varying
# number of kept connections, up to the keepalive count; a leak of files,
# pipes or epoll descriptors still shows.
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -not -lname 'socket:*' 2>/dev/null | wc -l; }
# fd_snapshot: "pid:count ..." for nginx, its workers, multiwatch and ours.
fd_snapshot() {
    local p out=''
    for p in "$nginx_pid" $(pgrep -P "$nginx_pid") "$mw_pid" $(pgrep -P "$mw_pid"); do out="$out $p:$(nfds "$p")"; done
    echo "${out# }"
}

if [ -n "$wrk_bin" ]; then
# =========================================================================================
# Soak, then overload with the default limits (same server).
# =========================================================================================
if ! with_env_start soak; then
    fail soak/start "$why"
    tail_log 15
    exit 1
fi
pass soak/start

soak() {
    local out=$e2e_tmp/soak.wrk kids0 fds0 fds1 t0 p r5 r1 drift worst=0 now last_note=0
    declare -A rss5=()
    kids0=$(pgrep -P "$mw_pid" | sort -n | tr '\n' ' ')
    fds0=$(fd_snapshot)
    wrk_run "$out" 2 $((2 * workers)) "$soak_secs" /invocations mixed
    t0=$SECONDS
    sleep 5
    for p in $kids0; do rss5[$p]=$(rss_kb "$p"); done
    # Long runs print the workers' RSS once a minute.
    while is_live "$wrk_pid"; do
        sleep 1
        now=$((SECONDS - t0))
        if [ "$soak_secs" -gt 60 ] && [ $((now - last_note)) -ge 60 ]; then
            last_note=$now
            note "soak ${now} s: worker RSS (kB) $(for p in $kids0; do printf '%s:%s ' "$p" "$(rss_kb "$p")"; done)"
        fi
    done
    wait "$wrk_pid"
    sleep 0.5
    wrk_statuses_in "$out" 200 || return 1
    [ "$(pgrep -P "$mw_pid" | sort -n | tr '\n' ' ')" = "$kids0" ] ||
        { why="workers changed: $kids0-> $(pgrep -P "$mw_pid" | sort -n | tr '\n' ' ')"; return 1; }
    local rss_line=''
    for p in $kids0; do
        r5=${rss5[$p]} r1=$(rss_kb "$p")
        drift=$((r1 - r5))
        rss_line="$rss_line $p: ${r5} -> ${r1} kB (${drift#-}$([ "$drift" -lt 0 ] && echo ' less' || echo ' more'))"
        [ "${drift#-}" -gt "$worst" ] && worst=${drift#-}
    done
    # ASan's quarantine keeps freed memory for a while: no RSS bound there.
    # With the heap on transparent huge pages (nginfer-serve's
    # GLIBC_TUNABLES) RSS moves in 2 MB steps: a heap that grows once into
    # its next huge page is one step, not a leak; allow one.
    local lim=2048 huge=0
    for p in $kids0; do
        [ "$(awk '/^AnonHugePages:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)" -gt 0 ] 2>/dev/null && huge=1
    done
    [ "$huge" -eq 0 ] || lim=4096
    e2e_asan || [ "$worst" -le "$lim" ] ||
        { why="worker RSS moved more than $((lim / 1024)) MB between 5 s and the end:$rss_line"; return 1; }
    fds1=$(fd_snapshot)
    [ "$fds1" = "$fds0" ] || { why="open fds before the load: $fds0; after: $fds1"; return 1; }
    note "soak ${soak_secs} s, wrk -c $((2 * workers)), 1-40 rows JSON/CSV: $(wrk_field "$out" requests) requests," \
        "statuses $(wrk_field "$out" statuses), 0 socket errors, p50 $(wrk_field "$out" p50_ms) ms, p99 $(wrk_field "$out" p99_ms) ms"
    note "soak worker RSS 5 s in -> end:$rss_line (bound $((lim / 1024)) MB$([ "$huge" -eq 1 ] && echo ", heap on huge pages"))"
    note "soak open non-socket fds (pid:count, nginx master, nginx workers, multiwatch, workers) before = after: $fds1"
}
t soak/wrk-2x-workers soak || tail_log
e2e_asan && skip soak/rss-drift "an ASan build: its quarantine of freed memory grows the RSS (statuses and fds still checked)"

# overload NAME CONNS WANT [P99_MS]: wrk with CONNS connections on
# /invocations (1 to 40 rows, JSON and CSV, as in the soak) for 8 s and
# one more connection polling /ping;
# statuses must be in WANT; /ping only 200s with p99 under P99_MS (200).
overload() {
    local name=$1 conns=$2 want=$3 lim=${4:-200} out=$e2e_tmp/$1.wrk pout=$e2e_tmp/$1.ping ppid p99
    wrk_run "$pout" 1 1 8 /ping
    ppid=$wrk_pid
    wrk_run "$out" 2 "$conns" 8 /invocations mixed
    wait "$wrk_pid" "$ppid"
    wrk_statuses_in "$out" "$want" || return 1
    wrk_statuses_in "$pout" 200 || { why="/ping: $why"; return 1; }
    p99=$(wrk_field "$pout" p99_ms)
    awk -v p="$p99" -v l="$lim" 'BEGIN { exit !(p < l) }' || { why="/ping p99 $p99 ms (want < $lim) during: $(grep '^E2E' "$out")"; return 1; }
    note "overload $name, $conns connections: $(wrk_field "$out" requests) requests, statuses $(wrk_field "$out" statuses)," \
        "p99 $(wrk_field "$out" p99_ms) ms; /ping meanwhile: $(wrk_field "$pout" requests) requests, p50 $(wrk_field "$pout" p50_ms) ms, p99 $p99 ms, max $(wrk_field "$pout" max_ms) ms"
}
t soak/overload-20x-workers-defaults overload defaults $((20 * workers)) "200 429" || tail_log
t soak/stop serve_stop_check "$serve_pid" "$run_dir"

# =========================================================================================
# NGINFER_MAX_INFLIGHT=4: the cap answers 429, /ping passes.
# =========================================================================================
# Four 100,000-row requests uploaded slowly hold the 4 slots; a fifth gets a
# JSON 429 with Retry-After at once; /ping still gets its 200.
cap_full() {
    local i pids=() out st hdr
    for i in 1 2 3 4; do
        # uploaded at 2 MB/s: in flight for ~2.5 s whatever the worker's
        # speed (nginx counts a request from its headers on; a 100,000-row
        # request alone now takes ~0.16 s, less than the wait below)
        curl -s --noproxy '*' -o /dev/null -w '%{http_code}\n' --max-time 20 --limit-rate 2M -H 'Content-Type: text/csv' \
            --data-binary "@$e2e_tmp/r100k.csv" "$base/invocations" >"$e2e_tmp/cap.$i" 2>/dev/null &
        pids+=($!)
    done
    sleep 0.3
    req POST /invocations -H 'Content-Type: application/json' --data-binary "@$e2e_tmp/r64.json" -D "$e2e_tmp/cap.hdr"
    st=$code
    cp "$body" "$e2e_tmp/cap.body"
    hdr=$(grep -i '^retry-after:' "$e2e_tmp/cap.hdr" | tr -d '\r')
    req GET /ping
    local ping=$code
    wait "${pids[@]}"
    out=$(cat "$e2e_tmp"/cap.[1-4] | tr '\n' ' ')
    [ "$out" = "200 200 200 200 " ] || { why="the 4 big requests: $out"; return 1; }
    code=$st body=$e2e_tmp/cap.body
    expect_error 429 'd["error"]["code"] == "too_many_requests"' || return 1
    [ -n "$hdr" ] || { why="429 without Retry-After"; return 1; }
    [ "$ping" = 200 ] || { why="/ping got $ping with the cap full"; return 1; }
    note "in-flight cap 4 full: a fifth request got 429 ($hdr), /ping 200"
}
if with_env_start cap NGINFER_MAX_INFLIGHT=4; then
    pass soak/start-cap
    t soak/cap-full-429-json cap_full || tail_log
    # wrk answers each 429 with a new request at once (about 20,000/s, on
    # the same 2 CPUs as nginx and the workers; a real client would wait
    # Retry-After): /ping competes for CPU, not for a place in the queue,
    # hence the looser bound here.
    t soak/overload-20x-workers-cap-4 overload cap-4 $((20 * workers)) "200 429" 500 || tail_log
    if grep -q '429:' "$e2e_tmp/cap-4.wrk"; then pass soak/overload-cap-4-saw-429; else
        fail soak/overload-cap-4-saw-429 "no 429 with the cap at 4: $(grep '^E2E' "$e2e_tmp/cap-4.wrk")"; fi
    t soak/stop-cap serve_stop_check "$serve_pid" "$run_dir"
else
    fail soak/start-cap "$why"
fi

# =========================================================================================
# NGINFER_RATE_LIMIT=10: requests per second per address; /ping not limited.
# =========================================================================================
rate_limit() {
    local urls=() i got pings
    # One curl, one connection, 40 requests back to back.
    for i in $(seq 40); do urls+=(-o /dev/null "$base/models"); done
    got=$(curl -s --noproxy '*' -w '%{http_code}\n' --max-time 10 "${urls[@]}" | sort | uniq -c | tr -s ' ' | tr '\n' ',')
    urls=()
    for i in $(seq 40); do urls+=(-o /dev/null "$base/ping"); done
    pings=$(curl -s --noproxy '*' -w '%{http_code}\n' --max-time 10 "${urls[@]}" | sort | uniq -c | tr -s ' ' | tr '\n' ',')
    case $got in *" 200,"*" 429,"*) ;; *) why="40 quick GET /models: $got (want some 200 and some 429)"; return 1 ;; esac
    [ "$pings" = " 40 200," ] || { why="40 quick GET /ping: $pings (want all 200)"; return 1; }
    note "rate limit 10 r/s: 40 quick GET /models:$got 40 GET /ping:$pings"
}
if with_env_start rate NGINFER_RATE_LIMIT=10; then
    pass soak/start-rate
    t soak/rate-limit-per-address rate_limit || tail_log
    t soak/stop-rate serve_stop_check "$serve_pid" "$run_dir"
else
    fail soak/start-rate "$why"
fi
fi # wrk

# =========================================================================================
# valgrind: one worker, 1,000 mixed requests, SIGTERM, the report.
# =========================================================================================
vg_dir=$e2e_tmp/vg
mkdir -p "$vg_dir" "$e2e_tmp/vgbin"
# The workers may run as another user (root starts them as nginfer): the
# log directory is writable by all (it is in our private scratch dir).
chmod 1777 "$vg_dir"
# OpenBLAS starts a thread pool when the library loads and never joins it:
# 320 bytes of one thread's TLS are "possibly lost" at exit. Only definite
# leaks count as errors.
cat >"$e2e_tmp/vgbin/nginfer-worker" <<EOF
#!/bin/sh
for a in "\$@"; do
    case \$a in --check|--get) exec "$E2E_BIN/nginfer-worker" "\$@" ;; esac
done
exec valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \\
    --log-file="$vg_dir/vg.%p.log" "$E2E_BIN/nginfer-worker" "\$@"
EOF
chmod 0755 "$e2e_tmp/vgbin/nginfer-worker"
cat >"$e2e_tmp/mix.py" <<'EOF'
# mix.py PORT N: N requests over one keep-alive connection, cycling through
# good and bad ones; prints "statuses ... unexpected ..." (unexpected: {} is
# the pass).
import http.client, json, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
row = [0.038076, 0.05068, 0.061696, 0.021872, -0.044223, -0.034821, -0.043401, -0.0025923, 0.019907, -0.017646]
rs = ",".join(map(repr, row))
J = {"Content-Type": "application/json"}
C = {"Content-Type": "text/csv"}
cases = [
    ("POST", "/invocations", J, json.dumps({"instances": [row]}), 200),
    ("POST", "/invocations", J, json.dumps({"instances": [row] * 64}), 200),
    ("POST", "/invocations", C, (rs + "\n") * 7, 200),
    ("POST", "/invocations", {"Content-Type": "application/jsonlines"}, ("[" + rs + "]\n") * 3, 200),
    ("POST", "/invocations", dict(J, Accept="text/csv"), json.dumps({"instances": [row] * 3}), 200),
    ("POST", "/invocations", J, json.dumps({"instances": [[None] * 10]}), 200),
    ("GET", "/ping", {}, None, 200),
    ("GET", "/models", {}, None, 200),
    ("POST", "/invocations", J, '{"instances": [[' + rs, 400),
    ("POST", "/invocations", J, "[" * 5000 + "]" * 5000, 400),
    ("POST", "/invocations", J, json.dumps({"instances": [row[:9]]}), 422),
    ("POST", "/invocations", J, '{"instances": []}', 422),
    ("POST", "/invocations", C, rs + "\n1,2,x\n", 400),
    ("POST", "/invocations", C, "", 400),
    ("POST", "/invocations", {"Content-Type": "application/xml"}, "<x/>", 415),
    ("POST", "/invocations", dict(J, Accept="image/png"), json.dumps({"instances": [row]}), 406),
    ("DELETE", "/invocations", {}, None, 405),
    ("GET", "/nope", {}, None, 404),
    ("POST", "/invocations", J, b'{"instances": [[1, "\xff"]]}', 400),
    ("POST", "/invocations", J, json.dumps({"inputs": {"nope": [row]}}), 422),
]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
counts, bad = {}, {}
for i in range(n):
    m, p, h, b, want = cases[i % len(cases)]
    c.request(m, p, body=b, headers=h)
    r = c.getresponse()
    r.read()
    counts[r.status] = counts.get(r.status, 0) + 1
    if r.status != want:
        k = "%s %s want %d got %d" % (m, p, want, r.status)
        bad[k] = bad.get(k, 0) + 1
print("statuses", ",".join("%d:%d" % kv for kv in sorted(counts.items())), "unexpected", json.dumps(bad))
EOF

valgrind_run() {
    local out
    # Model load and warm-up under valgrind take seconds: wait up to 60 s.
    for _ in $(seq 600); do
        req GET /ping
        [ "$code" = 200 ] && break
        is_live "$serve_pid" || { why="nginfer-serve exited: $(tail -3 "$serve_log" | tr '\n' ' ')"; return 1; }
        sleep 0.1
    done
    [ "$code" = 200 ] || { why="/ping not 200 within 60 s under valgrind"; return 1; }
    procs_refresh "$serve_pid"
    mw_pid=$(pgrep -P "$serve_pid" -x multiwatch)
    out=$("$E2E_PY" "$e2e_tmp/mix.py" "$port" 1000) || { why="client: $out"; return 1; }
    case $out in *'unexpected {}') ;; *) why="$out"; return 1 ;; esac
    vg_requests=$out
}
# SIGTERM: the worker finishes, valgrind writes its report (seconds), all
# exit; 60 s at most.
valgrind_stop() {
    local t0 rc left
    procs_refresh "$serve_pid"
    t0=$(date +%s%3N)
    kill -TERM "$serve_pid"
    wait_exit "$serve_pid" 60 || { why="nginfer-serve still running 60 s after SIGTERM"; return 1; }
    vg_stop_ms=$(($(date +%s%3N) - t0))
    wait "$serve_pid"
    rc=$?
    left=$(leftovers "$serve_pid")
    kill_sessions "$serve_pid"
    unset "e2e_procs[$serve_pid]"
    [ "$rc" -eq 0 ] || { why="exit status $rc after SIGTERM"; return 1; }
    [ -z "$left" ] || { why="left running: $left"; return 1; }
}
valgrind_report() {
    local vlog
    local logs
    logs=$(find "$vg_dir" -name 'vg.*.log')
    [ -n "$logs" ] || { why="no valgrind log in $vg_dir"; return 1; }
    [ "$(echo "$logs" | wc -l)" -eq 1 ] || { why="more than one worker ran under valgrind (a crash?): $(echo "$logs" | tr '\n' ' ')"; return 1; }
    vlog=$logs
    grep -q 'ERROR SUMMARY: 0 errors' "$vlog" ||
        { why="$(grep -m1 'ERROR SUMMARY' "$vlog"); first: $(grep -m1 -A6 '^==[0-9]*== [A-Z][a-z]' "$vlog" | tr '\n' ' ' | head -c 600)"; return 1; }
    if grep -q 'definitely lost:' "$vlog"; then
        grep -q 'definitely lost: 0 bytes in 0 blocks' "$vlog" || { why="$(grep 'definitely lost' "$vlog")"; return 1; }
    else
        grep -q 'All heap blocks were freed' "$vlog" || { why="no leak summary in $vlog (killed before exit?)"; return 1; }
    fi
    note "valgrind: 1,000 requests ($vg_requests); after SIGTERM (stopped in $vg_stop_ms ms): $(grep -o 'ERROR SUMMARY: [0-9]* errors' "$vlog"), $(grep -o 'definitely lost: [^=]*' "$vlog" | head -1), $(grep -o 'possibly lost: [^=]*' "$vlog" | head -1)"
}
if [ -z "$vg_bin" ]; then
    skip valgrind "valgrind not installed (apt-get install valgrind)"
elif e2e_asan; then
    skip valgrind "an ASan build: valgrind cannot run it (ASan and LSan check this run's workers instead)"
else
    run_dir=$e2e_tmp/run-vg
    NGINFER_STOP_TIMEOUT=60 "$E2E_SERVE" -c "$E2E_CONFIG" -b "$e2e_tmp/vgbin" -m "$model" -p "$port" -w 1 -r "$run_dir" \
        >"$e2e_tmp/vg.log" 2>&1 </dev/null &
    serve_pid=$!
    serve_log=$e2e_tmp/vg.log
    # shellcheck disable=SC2034,SC2004 # lib.sh's record of what to stop at exit
    e2e_procs[$serve_pid]=''
    if t valgrind/1000-mixed-requests valgrind_run; then
        t valgrind/sigterm valgrind_stop && t valgrind/no-errors-no-leaks valgrind_report
    else
        tail_log
    fi
fi

echo "# e2e soak: $e2e_passed passed, $e2e_failed failed"
[ "$e2e_failed" -eq 0 ]

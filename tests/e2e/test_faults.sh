#!/bin/bash
# test_faults.sh: the service under faults, through the real stack (nginx +
# spawn-fcgi + multiwatch + nginfer-workers on models/default.onnx):
#   more slow requests at once than workers (8 on 2) all answered in
#     bounded time: no upstream keepalive stall (nginx/nginfer.conf.in)
#   a worker SIGKILLed every second for 20 s under wrk load at 2x workers:
#     0 failed requests (nginx resends over the doubled server line), the
#     respawn time (kill -> replacement's "ready" line) as a "# " line
#   a request slower than fastcgi_read_timeout (NGINFER_READ_TIMEOUT=60ms,
#     100,000 CSV rows): a JSON 504 on time, not resent to a second worker,
#     while other clients keep getting 200s
#   the pool dying while serving (workers SIGKILLed as fast as multiwatch
#     forks them): multiwatch gives up, nginfer-serve exits non-zero and
#     /ping never answers 200 meanwhile (instant crashes at start-up are
#     test_startup.sh's workers-crash-loop)
#   SIGTERM under load: requests in flight complete (200), exit 0 in 30 s
# Needs wrk for the kill test (SKIP without it).
# Run by tests/run.sh (e2e suite) or alone: BUILD=build bash tests/e2e/test_faults.sh

. "$(dirname "$0")/lib.sh"
e2e_bound 200 "$0" "$@"

model=$E2E_ROOT/models/default.onnx
port=$(free_port 200) || { fail faults/port "no free port"; exit 1; }
# shellcheck disable=SC2034
base=http://127.0.0.1:$port # read by lib.sh
workers=2
wrk_bin=$(command -v wrk)

e2e_bodies <<'EOF'
# 100,000 rows (max_rows) in 5.1 MB (under max_body_bytes): 0.5-2 s of work.
w("r100k.csv", "0.04,0.05,0.06,0.02,-0.04,-0.03,-0.04,0,0.02,-0.02\n" * 100000)
EOF

# wrk script (lib.sh): POSTs $E2E_WRK_BODY, counts statuses.
wrk_count_script "$e2e_tmp/count.lua"
# wrk_run OUT CONNS SECONDS PATH [BODY]: wrk in the background (sets
# wrk_pid); the "E2E ..." line ends up in OUT.
wrk_run() {
    E2E_WRK_BODY=${5:-} "$wrk_bin" -t 2 -c "$2" -d "${3}s" --timeout 5s -s "$e2e_tmp/count.lua" "$base$4" >"$1" 2>&1 &
    wrk_pid=$!
}
# wrk_clean OUT: exactly STATUS answers only and no socket errors.
wrk_only() { # OUT STATUS
    local line
    line=$(grep '^E2E ' "$1") || { why="no result from wrk: $(tail -3 "$1" | tr '\n' ' ')"; return 1; }
    case $(wrk_field "$1" statuses) in
    "$2":*) ;;
    *) why="statuses $(wrk_field "$1" statuses), want only $2: $line"; return 1 ;;
    esac
    [ "$(wrk_field "$1" statuses | tr ',' '\n' | grep -c .)" -eq 1 ] || { why="statuses $(wrk_field "$1" statuses), want only $2"; return 1; }
    [ "$(wrk_field "$1" connect)$(wrk_field "$1" read)$(wrk_field "$1" write)$(wrk_field "$1" timeout)" = 0000 ] ||
        { why="socket errors: $line"; return 1; }
}

# serve_start runs in this shell (it records pids), so environment for one
# server goes through `export` and back.
with_env_start() { # NAME VAR=VALUE... : serve_start with those variables set
    local name=$1 kv saved=()
    shift
    for kv in "$@"; do saved+=("${kv%%=*}"); export "${kv?}"; done
    run_dir=$e2e_tmp/run-$name
    serve_start "$name" -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$model" -p "$port" -w "$workers" -r "$run_dir"
    local rc=$?
    for kv in "${saved[@]}"; do unset "$kv"; done
    return $rc
}

# =========================================================================================
# Server 1: defaults. Keepalive stall, kill every second, SIGTERM under load.
# =========================================================================================
if ! with_env_start main; then
    fail faults/start "$why"
    tail_log 15
    exit 1
fi
pass faults/start

# --- 4x workers slow requests at once --------------------------------------------------
# With upstream keepalive a libfcgi worker sits on its idle kept connection
# and the connections beyond the worker count wait for the read timeout;
# without it, 8 requests on 2 workers queue and all finish in about 4x the
# time of one.
many_at_once() {
    local i out=$e2e_tmp/conc one max
    one=$(curl -s --noproxy '*' -o /dev/null -w '%{time_total}' --max-time 10 "${json[@]}" \
        --data-binary "@$e2e_tmp/r5000.json" "$base/invocations")
    rm -f "$out".*
    for i in $(seq $((4 * workers))); do
        curl -s --noproxy '*' -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 10 "${json[@]}" \
            --data-binary "@$e2e_tmp/r5000.json" "$base/invocations" >"$out.$i" 2>/dev/null &
    done
    # shellcheck disable=SC2046
    wait $(jobs -p | grep -vx "$serve_pid")
    if [ "$(cat "$out".* | grep -c '^200 ')" -ne $((4 * workers)) ]; then
        why="not all 200 within 10 s: $(cat "$out".* | tr '\n' ' ')"
        return 1
    fi
    max=$(cat "$out".* | awk '{ if ($2 > m) m = $2 } END { print m }')
    note "$((4 * workers)) requests of 5000 rows at once on $workers workers: slowest ${max} s (one alone: ${one} s)"
}
json=(-H 'Content-Type: application/json')
t faults/slow-requests-4x-workers many_at_once

# --- SIGKILL a worker every second under load ----------------------------------------------
# wrk at 2x workers connections on /invocations (64 rows) for 20 s; every
# second the oldest worker gets SIGKILL. Every answer must be a 200 and no
# socket may fail. Respawn time: from the kill to the replacement's "ready"
# log line (fork, exec, model load, warm-up).
kill_storm() {
    local out=$e2e_tmp/kill.wrk kills=$e2e_tmp/kills victim n=0 t0 k now
    : >"$kills"
    wrk_run "$out" $((2 * workers)) 20 /invocations "$e2e_tmp/r64.json"
    # One kill on each whole second from 1 s to 18 s into the run.
    t0=$(date +%s%3N)
    for k in $(seq 18); do
        now=$(date +%s%3N)
        [ $((t0 + k * 1000)) -le "$now" ] || sleep "$(printf '0.%03d' $((t0 + k * 1000 - now)))"
        is_live "$wrk_pid" || break
        victim=$(ps --ppid "$mw_pid" -o pid= --sort=start_time | head -1 | tr -d ' ')
        if [ -n "$victim" ]; then
            echo "$(date +%s%3N) $victim" >>"$kills"
            kill -KILL "$victim" 2>/dev/null && n=$((n + 1))
        fi
    done
    wait "$wrk_pid"
    procs_refresh "$serve_pid"
    wrk_only "$out" 200 || return 1
    [ "$n" -ge 15 ] || { why="only $n kills"; return 1; }
    [ "$(pgrep -P "$mw_pid" | wc -l)" -eq "$workers" ] || { why="$(pgrep -P "$mw_pid" | wc -l) workers at the end"; return 1; }
    # Replacement k is the k-th worker to log "ready" after the first kill.
    local resp
    for _ in $(seq 20); do
        resp=$("$E2E_PY" - "$kills" "$serve_log" <<'EOF'
import json, sys, datetime, statistics
kills = [(int(a) / 1000.0, int(b)) for a, b in (l.split() for l in open(sys.argv[1]) if l.strip())]
ready = []
for l in open(sys.argv[2]):
    if '"event":"ready"' not in l:
        continue
    try:
        d = json.loads(l)
    except ValueError:
        continue
    t = datetime.datetime.strptime(d["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    if t >= kills[0][0] - 0.002:
        ready.append((t, d["pid"]))
ready.sort()
if len(ready) < len(kills):
    print("FAIL %d kills but %d workers logged ready after the first; kills (s, victim): %s; ready (s, pid): %s" % (
        len(kills), len(ready), [(round(k - kills[0][0], 3), v) for k, v in kills],
        [(round(r - kills[0][0], 3), p) for r, p in ready]))
else:
    ms = [(r[0] - k[0]) * 1000 for k, r in zip(kills, ready)]
    print("median %.0f ms, max %.0f ms over %d kills" % (statistics.median(ms), max(ms), len(ms)))
EOF
        )
        case $resp in FAIL*) sleep 0.1 ;; *) break ;; esac
    done
    case $resp in FAIL*) why=${resp#FAIL }; return 1 ;; esac
    note "worker SIGKILLed every second for 20 s under wrk (-c $((2 * workers)), 64 rows): $(wrk_field "$out" requests) requests," \
        "statuses $(wrk_field "$out" statuses), 0 socket errors; respawn (kill -> ready): $resp"
}
if [ -n "$wrk_bin" ]; then
    t faults/sigkill-every-second-under-load kill_storm || tail_log
else
    skip faults/sigkill-every-second-under-load "wrk not installed (apt-get install wrk)"
fi
req GET /ping
t faults/ping-after-kills expect 200

# --- SIGTERM under load ---------------------------------------------------------------------
# 2x workers clients, each POSTing 100,000 CSV rows back to back (0.5-2 s of
# work each), one connection per request. SIGTERM once every worker holds a request (at most 5 s in):
# nginx stops accepting, lets the requests in flight finish, then the
# workers stop. Every answer a client got must be
# a 200; after the signal a client may only be refused (or reset before
# nginx took the connection); every 200 a worker logged reached its client;
# exit 0 within 30 s.
# busy_workers: how many workers hold an accepted connection (a socket
# besides fd 0, the listening socket spawn-fcgi handed them).
busy_workers() {
    local pid n=0
    for pid in $(pgrep -P "$mw_pid"); do
        [ "$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 -lname 'socket:*' 2>/dev/null | wc -l)" -ge 2 ] && n=$((n + 1))
    done
    echo "$n"
}
sigterm_under_load() {
    local c pids=() t_term rc ms left bad n200 logged inflight l0
    l0=$(wc -l <"$serve_log")
    for c in $(seq $((2 * workers))); do
        (
            end=$((SECONDS + 40))
            while [ $SECONDS -lt $end ]; do
                t0=$(date +%s%3N)
                out=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 20 \
                    -H 'Content-Type: text/csv' --data-binary "@$e2e_tmp/r100k.csv" "$base/invocations")
                rc=$?
                echo "$t0 $(date +%s%3N) $rc $out"
                case $out in 200) ;; *) break ;; esac
            done >"$e2e_tmp/term.$c"
        ) &
        pids+=($!)
    done
    sleep 1
    for _ in $(seq 100); do
        [ "$(busy_workers)" -ge "$workers" ] && break
        sleep 0.04
    done
    procs_refresh "$serve_pid"
    t_term=$(date +%s%3N)
    kill -TERM "$serve_pid"
    wait_exit "$serve_pid" 30
    ms=$(($(date +%s%3N) - t_term))
    wait "${pids[@]}"
    if is_live "$serve_pid"; then
        why="still running 30 s after SIGTERM"
        return 1
    fi
    wait "$serve_pid"
    rc=$?
    left=$(leftovers "$serve_pid")
    kill_sessions "$serve_pid"
    unset "e2e_procs[$serve_pid]"
    [ "$rc" -eq 0 ] || { why="exit status $rc after SIGTERM"; return 1; }
    [ -z "$left" ] || { why="left running: $left"; return 1; }
    # Columns: start end curl-exit http-code.
    bad=$(cat "$e2e_tmp"/term.* | awk -v T="$t_term" '
        $4 == 200 { next }
        $4 != "000" { print "HTTP " $4; next }
        $2 < T { print "curl exit " $3 " before the signal"; next }
        $3 != 7 && $3 != 52 && $3 != 56 { print "curl exit " $3 }')
    [ -z "$bad" ] || { why="$(echo "$bad" | sort | uniq -c | tr '\n' ' ')"; return 1; }
    n200=$(cat "$e2e_tmp"/term.* | awk '$4 == 200' | wc -l)
    logged=$(tail -n +"$((l0 + 1))" "$serve_log" | grep '"route":"/invocations"' | grep -c '"status":200')
    inflight=$(cat "$e2e_tmp"/term.* | awk -v T="$t_term" '$4 == 200 && $1 < T && $2 > T' | wc -l)
    [ "$n200" -eq "$logged" ] || { why="clients got $n200 answers, workers logged $logged"; return 1; }
    [ "$inflight" -ge "$workers" ] || { why="$inflight requests in flight at SIGTERM, want at least one per worker"; return 1; }
    note "SIGTERM under load: exit 0 after $ms ms; $inflight requests in flight at the signal, all 200;" \
        "after it: $(cat "$e2e_tmp"/term.* | awk '$4 != 200 { print "curl exit " $3 }' | sort | uniq -c | tr -s ' ' | tr '\n' ',')"
}
t faults/sigterm-under-load sigterm_under_load || tail_log

# =========================================================================================
# Server 2: NGINFER_READ_TIMEOUT=60ms. A request slower than it.
# =========================================================================================
# 100,000 CSV rows take the worker 0.15-2 s (157 ms measured on a quiet
# 2-core VM with the heap on huge pages; 0.5 s before): nginx gives up at
# 60 ms with a
# JSON 504 and does not resend it (next_upstream_timeout = read timeout);
# a second client meanwhile gets 200s from the other worker.
read_timeout() {
    local slow other n big
    curl -s --noproxy '*' -o "$e2e_tmp/slow.body" -w '%{http_code} %{time_total}' --max-time 10 \
        -H 'Content-Type: text/csv' --data-binary "@$e2e_tmp/r100k.csv" "$base/invocations" >"$e2e_tmp/slow.out" 2>/dev/null &
    slow=$!
    sleep 0.1
    : >"$e2e_tmp/other.out"
    for _ in $(seq 10); do
        curl -s --noproxy '*' -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 5 "${json[@]}" \
            --data-binary "@$e2e_tmp/one.json" "$base/invocations" >>"$e2e_tmp/other.out" 2>/dev/null
        sleep 0.05
    done
    wait "$slow"
    read -r n big <"$e2e_tmp/slow.out"
    # shellcheck disable=SC2034 # code and body are read by expect_error
    code=$n body=$e2e_tmp/slow.body
    expect_error 504 'd["error"]["code"] == "timeout"' || return 1
    awk -v s="$big" 'BEGIN { exit !(s < 1.5) }' || { why="504 after $big s, want about 0.06 s plus the upload"; return 1; }
    [ "$(grep -c '^200 ' "$e2e_tmp/other.out")" -eq 10 ] ||
        { why="other client: $(tr '\n' ' ' <"$e2e_tmp/other.out")"; return 1; }
    other=$(awk '{ if ($2 > m) m = $2 } END { print m }' "$e2e_tmp/other.out")
    # The worker finishes the big request anyway (its answer is dropped):
    # exactly one worker logs it.
    for _ in $(seq 40); do
        grep -q '"rows":100000' "$serve_log" && break
        sleep 0.1
    done
    sleep 0.5
    n=$(grep -c '"rows":100000' "$serve_log")
    [ "$n" -eq 1 ] || { why="$n workers ran the 100,000-row request (want 1: not resent)"; return 1; }
    note "read timeout 60ms: 100,000 rows got a JSON 504 after $big s; meanwhile 10 requests on another connection, all 200, slowest $other s; the worker finished it and logged: $(grep '"rows":100000' "$serve_log" | grep -o '"latency_us":[0-9]*')"
}
if with_env_start timeout NGINFER_READ_TIMEOUT=60ms; then
    pass faults/start-read-timeout
    t faults/read-timeout-504 read_timeout || tail_log
    req GET /ping
    t faults/ping-after-timeout expect 200
    t faults/stop-read-timeout serve_stop_check "$serve_pid" "$run_dir"
else
    fail faults/start-read-timeout "$why"
fi

# =========================================================================================
# Server 3: the pool dies while serving.
# =========================================================================================
# Every worker multiwatch forks is SIGKILLed at once (before it has loaded
# the model) until multiwatch gives up on every slot (4 failed starts in a
# row each) and exits; nginfer-serve must notice, stop nginx and exit
# non-zero. /ping, polled throughout, must never answer 200 once
# multiwatch is gone.
pool_death() {
    local pinger kills=0 t0 rc ms left codes=$e2e_tmp/pool.codes p
    : >"$codes"
    # The workers that are up first, then the poller: from here on no worker
    # lives long enough to load the model.
    for p in $(pgrep -P "$mw_pid"); do
        kill -KILL "$p" 2>/dev/null && kills=$((kills + 1))
    done
    (
        while :; do
            curl -s --noproxy '*' -o /dev/null -w '%{http_code}\n' --max-time 1 "$base/ping" >>"$codes" 2>/dev/null
            sleep 0.05
        done
    ) &
    pinger=$!
    t0=$SECONDS
    while is_live "$mw_pid" && [ $((SECONDS - t0)) -lt 15 ]; do
        for p in $(pgrep -P "$mw_pid"); do
            kill -KILL "$p" 2>/dev/null && kills=$((kills + 1))
        done
        sleep 0.01
    done
    is_live "$mw_pid" && { kill "$pinger"; why="multiwatch still running after $kills kills in 15 s"; return 1; }
    # A worker that slipped through and loaded the model answers 200 while
    # it lives, rightly; from the moment the pool is gone, nothing may.
    echo gone >>"$codes"
    t0=$(date +%s%3N)
    wait_exit "$serve_pid" 10
    ms=$(($(date +%s%3N) - t0))
    kill "$pinger" 2>/dev/null
    wait "$pinger" 2>/dev/null
    is_live "$serve_pid" && { why="nginfer-serve still running 10 s after multiwatch exited"; return 1; }
    wait "$serve_pid"
    rc=$?
    left=$(leftovers "$serve_pid")
    kill_sessions "$serve_pid"
    unset "e2e_procs[$serve_pid]"
    [ "$rc" -ne 0 ] || { why="exit status 0 (want non-zero)"; return 1; }
    [ -z "$left" ] || { why="left running: $left"; return 1; }
    if sed '1,/^gone$/d' "$codes" | grep -qx 200; then
        why="/ping answered 200 $(sed '1,/^gone$/d' "$codes" | grep -cx 200) times after the pool was gone"
        return 1
    fi
    [ ! -e "$run_dir/worker.sock" ] || { why="$run_dir/worker.sock left behind"; return 1; }
    note "pool death: $kills SIGKILLs until multiwatch gave up; nginfer-serve exited $rc $ms ms later" \
        "($(grep -o 'multiwatch (exit [^)]*)' "$serve_log" | head -1)); /ping meanwhile: $(sort "$codes" | uniq -c | tr -s ' ' | tr '\n' ',')"
}
if with_env_start pool; then
    pass faults/start-pool
    t faults/pool-death-exits-nonzero pool_death || tail_log
else
    fail faults/start-pool "$why"
fi

echo "# e2e faults: $e2e_passed passed, $e2e_failed failed"
[ "$e2e_failed" -eq 0 ]

#!/bin/bash
# test_keepalive.sh: nginx -> worker connections kept open (upstream
# keepalive + fastcgi_keep_conn on) never stall a request, through the real
# stack (nginx + spawn-fcgi + multiwatch + 2 nginfer-workers on
# models/default.onnx, NGINFER_UPSTREAM_KEEPALIVE=64):
#   the rendered nginx.conf keeps connections, and after a burst the
#     workers hold idle kept connections (the case that used to stall);
#   bursts of 2x, 4x and 8x workers slow requests (5000 rows) at once, each
#     after the kept connections went idle: all 200, none waits for a read
#     timeout (issue 7's probe: with libfcgi's own loop and keepalive 8 on 2
#     workers, requests beyond the worker count waited > 8 s);
#   a long request (400,000 rows) on one worker while 8 clients send
#     1-row requests: none waits behind the long one (the busy worker sheds
#     its kept connections; nginx resends on another) and each runs exactly
#     once (access log);
#   a worker SIGKILLed every second under wrk load (16x workers
#     connections, so each worker holds many kept connections when it
#     dies): 0 failed requests;
#   SIGTERM: exit 0 with connections held, nothing left behind.
# Needs wrk for the kill case (SKIP without it).
# Run by tests/run.sh (e2e suite) or alone: BUILD=build bash tests/e2e/test_keepalive.sh

. "$(dirname "$0")/lib.sh"
e2e_bound 150 "$0" "$@"

model=$E2E_ROOT/models/default.onnx
port=$(free_port 300) || { fail keepalive/port "no free port"; exit 1; }
# shellcheck disable=SC2034
base=http://127.0.0.1:$port # read by lib.sh
workers=2
keep=64
wrk_bin=$(command -v wrk)
json=(-H 'Content-Type: application/json')

e2e_bodies <<'EOF'
w("r400k.csv", "0.04,0.05,0.06,0.02,-0.04,-0.03,-0.04,0,0.02,-0.02\n" * 400000)
EOF

# The test's config: the default one with room for a long request (400,000
# rows, 20 MB of CSV).
config=$e2e_tmp/nginfer.cfg
sed -e 's/^max_rows *=.*/max_rows = 400000;/' -e 's/^max_body_bytes *=.*/max_body_bytes = 33554432;/' \
    -e "s|^model *=.*|model = \"$model\";|" "$E2E_CONFIG" >"$config"
run_dir=$e2e_tmp/run
export NGINFER_UPSTREAM_KEEPALIVE=$keep
if ! serve_start ka -c "$config" -b "$E2E_BIN" -m "$model" -p "$port" -w "$workers" -r "$run_dir"; then
    fail keepalive/start "$why"
    tail_log 15
    exit 1
fi
unset NGINFER_UPSTREAM_KEEPALIVE
pass keepalive/start

# held: connections the workers hold on their socket now (server ends of
# the unix socket: local address = the socket path; the listener is not
# listed without -l).
held() { ss -xH 2>/dev/null | awk -v s="$run_dir/worker.sock" '$5 == s' | wc -l; }

# --- keepalive is on, and idle kept connections exist -----------------------------------
kept_conns() {
    grep -q "^ *keepalive $keep;" "$run_dir/nginx.conf" || { why="no 'keepalive $keep;' in nginx.conf"; return 1; }
    grep -q '^ *fastcgi_keep_conn on;' "$run_dir/nginx.conf" || { why="no 'fastcgi_keep_conn on;' in nginx.conf"; return 1; }
    local i n
    for i in $(seq $((4 * workers))); do
        curl -s --noproxy '*' -o /dev/null --max-time 10 "${json[@]}" --data-binary "@$e2e_tmp/r5000.json" \
            "$base/invocations" &
    done
    # shellcheck disable=SC2046
    wait $(jobs -p | grep -vx "$serve_pid")
    sleep 0.3
    n=$(held)
    if [ "$n" -lt 2 ] || [ "$n" -gt $((4 * workers)) ]; then
        why="$n connections held by the workers while idle, want 2 to $((4 * workers))"
        return 1
    fi
    note "after $((4 * workers)) slow requests at once: $n idle connections kept (keepalive $keep)"
}
t keepalive/kept-connections kept_conns

# --- bursts of slow requests onto idle kept connections ---------------------------------------
# Each burst starts after the connections nginx keeps went idle, so every
# worker holds at least one: libfcgi's loop would block on those and leave
# the burst's extra connections in the backlog until nginx's 60 s read
# timeout. Bound: all 200 within 10 s each.
bursts() {
    local n i out=$e2e_tmp/burst one max all=''
    one=$(curl -s --noproxy '*' -o /dev/null -w '%{time_total}' --max-time 10 "${json[@]}" \
        --data-binary "@$e2e_tmp/r5000.json" "$base/invocations")
    for n in $((2 * workers)) $((4 * workers)) $((8 * workers)); do
        sleep 0.5
        [ "$(held)" -ge 1 ] || { why="no idle kept connection before the burst of $n"; return 1; }
        rm -f "$out".*
        for i in $(seq "$n"); do
            curl -s --noproxy '*' -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 10 "${json[@]}" \
                --data-binary "@$e2e_tmp/r5000.json" "$base/invocations" >"$out.$i" 2>/dev/null &
        done
        # shellcheck disable=SC2046
        wait $(jobs -p | grep -vx "$serve_pid")
        if [ "$(cat "$out".* | grep -c '^200 ')" -ne "$n" ]; then
            why="burst of $n: not all 200 within 10 s: $(cat "$out".* | tr '\n' ' ')"
            return 1
        fi
        max=$(cat "$out".* | awk '{ if ($2 > m) m = $2 } END { print m }')
        all="$all $n at once: slowest $max s;"
    done
    note "5000-row requests on $workers workers, keepalive $keep (one alone: $one s):$all"
}
t keepalive/bursts-no-stall bursts

# --- a long request does not hold up short ones ---------------------------------------------------
# 400,000 rows keep one worker busy for a second or more. Meanwhile 8
# clients send 1-row requests: nginx sends some on kept connections of the
# busy worker (each worker holds some after the warm-up bursts); its
# watchdog shuts them after 20 ms and nginx resends those requests to the
# other worker. No short request may wait anywhere near the long one, and
# the access log must show each request run exactly once. (Without the
# watchdog the short requests that land on the busy worker wait for the
# whole long request.)
long_vs_short() {
    local long_out=$e2e_tmp/long.out n0 n1 l0 l1 long_code long_t stats sent max bad i
    for _ in 1 2; do
        for i in $(seq $((4 * workers))); do
            curl -s --noproxy '*' -o /dev/null --max-time 10 "${json[@]}" --data-binary "@$e2e_tmp/r5000.json" \
                "$base/invocations" &
        done
        # shellcheck disable=SC2046
        wait $(jobs -p | grep -vx "$serve_pid")
    done
    n0=$(grep -c '"rows":1,' "$serve_log")
    l0=$(grep -c '"rows":400000,' "$serve_log")
    curl -s --noproxy '*' -o /dev/null -w '%{http_code} %{time_total}' --max-time 30 \
        -H 'Content-Type: text/csv' --data-binary "@$e2e_tmp/r400k.csv" "$base/invocations" >"$long_out" 2>/dev/null &
    local long_pid=$!
    sleep 0.3 # the upload is done and the worker is running it
    # 8 threads, 1-row requests back to back for 0.6 s: "sent bad max_s"
    stats=$("$E2E_PY" - "$port" "$e2e_tmp/one.json" <<'PY'
import http.client, sys, threading, time
port, body = int(sys.argv[1]), open(sys.argv[2], "rb").read()
lock, res = threading.Lock(), {"sent": 0, "bad": 0, "max": 0.0}
end = time.monotonic() + 0.6
def client():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            c.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            r = c.getresponse(); r.read(); ok = r.status == 200
        except Exception:
            ok = False
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        dt = time.monotonic() - t0
        with lock:
            res["sent"] += 1; res["bad"] += not ok; res["max"] = max(res["max"], dt)
ts = [threading.Thread(target=client) for _ in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print(res["sent"], res["bad"], "%.3f" % res["max"])
PY
)
    wait "$long_pid"
    read -r sent bad max <<<"$stats"
    read -r long_code long_t <"$long_out"
    [ "$long_code" = 200 ] || { why="the 400,000-row request: HTTP $long_code"; return 1; }
    if [ -z "$sent" ] || [ "$sent" -eq 0 ] || [ "$bad" -ne 0 ]; then
        why="short requests: '$stats' (sent, not 200, slowest s)"
        return 1
    fi
    sleep 0.3
    n1=$(grep -c '"rows":1,' "$serve_log")
    l1=$(grep -c '"rows":400000,' "$serve_log")
    [ $((n1 - n0)) -eq "$sent" ] || { why="$sent short requests ran $((n1 - n0)) times (access log)"; return 1; }
    [ $((l1 - l0)) -eq 1 ] || { why="the long request ran $((l1 - l0)) times (access log)"; return 1; }
    if awk -v l="$long_t" 'BEGIN { exit !(l < 0.6) }'; then
        note "the 400,000-row request took only $long_t s: too short to show waiting behind it ($sent 1-row requests, slowest $max s)"
        return 0
    fi
    awk -v s="$max" -v l="$long_t" 'BEGIN { exit !(s < (l - 0.3) / 2) }' ||
        { why="slowest 1-row request $max s while the 400,000-row one took $long_t s: one waited behind it"; return 1; }
    note "400,000 rows took $long_t s; meanwhile $sent 1-row requests from 8 clients, slowest $max s, each run once"
}
t keepalive/long-request-no-head-of-line long_vs_short || tail_log

# --- SIGKILL a worker every second under load, connections kept ----------------------------------
kill_storm() {
    local out=$e2e_tmp/kill.wrk victim n=0 line
    wrk_count_script "$e2e_tmp/count.lua"
    E2E_WRK_BODY=$e2e_tmp/r64.json "$wrk_bin" -t 2 -c $((16 * workers)) -d 10s --timeout 5s \
        -s "$e2e_tmp/count.lua" "$base/invocations" >"$out" 2>&1 &
    local wrk_pid=$!
    for _ in $(seq 8); do
        sleep 1
        victim=$(pgrep -P "$mw_pid" | head -1)
        [ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null && n=$((n + 1))
    done
    wait "$wrk_pid"
    line=$(grep '^E2E ' "$out") || { why="no result from wrk: $(tail -3 "$out" | tr '\n' ' ')"; return 1; }
    case $(wrk_field "$out" statuses) in
    200:*) ;;
    *) why="statuses $(wrk_field "$out" statuses), want only 200: $line"; return 1 ;;
    esac
    [ "$(wrk_field "$out" statuses | tr ',' '\n' | grep -c .)" -eq 1 ] || { why="not only 200s: $line"; return 1; }
    [ "$(wrk_field "$out" connect)$(wrk_field "$out" read)$(wrk_field "$out" write)$(wrk_field "$out" timeout)" = 0000 ] ||
        { why="socket errors: $line"; return 1; }
    [ "$n" -ge 6 ] || { why="only $n workers killed"; return 1; }
    note "keepalive $keep, $n workers SIGKILLed in 10 s of wrk (-c $((16 * workers)), 64 rows): $(wrk_field "$out" requests) requests, all 200"
}
if [ -n "$wrk_bin" ]; then
    t keepalive/sigkill-under-load kill_storm || tail_log
else
    skip keepalive/sigkill-under-load "wrk not installed"
fi

# --- after all that: still serving, and a clean stop with connections held -----------------------
req POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/one.json"
t keepalive/serving-after expect 200 'len(preds(d)) == 1'
t keepalive/stop serve_stop_check "$serve_pid" "$run_dir"

echo "# test_keepalive: $e2e_passed passed, $e2e_failed failed"
[ "$e2e_failed" -eq 0 ]

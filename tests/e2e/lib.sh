# lib.sh: helpers shared by tests/e2e/test_*.sh (sourced, not run).
#
# Result lines as tests/run.sh counts them ("PASS name", "FAIL name: why",
# "SKIP name: why"; notes start with "# "), a free loopback port, starting
# and stopping tools/nginfer-serve with a record of every process it
# started, curl wrappers and JSON checks (python3 standard library only).
# Everything is bounded: curl --max-time, polling loops with a deadline,
# and each test_*.sh re-executes itself under timeout(1).
# Callers set base (http://127.0.0.1:PORT); req sets code and ctype.
# shellcheck disable=SC2034,SC2154

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_BIN=${BUILD:-build}
case $E2E_BIN in /*) ;; *) E2E_BIN=$E2E_ROOT/$E2E_BIN ;; esac
E2E_CONFIG=${E2E_CONFIG:-$E2E_ROOT/conf/nginfer.cfg}
E2E_SERVE=$E2E_ROOT/tools/nginfer-serve
E2E_PY=/usr/bin/python3
E2E_CURL_TIME=${E2E_CURL_TIME:-5}

e2e_passed=0 e2e_failed=0
pass() { echo "PASS $1"; e2e_passed=$((e2e_passed + 1)); }
fail() { echo "FAIL $1: $2"; e2e_failed=$((e2e_failed + 1)); }
skip() { echo "SKIP $1: $2"; }
note() { echo "# $*"; }

# t NAME CMD...: runs CMD; PASS if it succeeds, else FAIL with $why (which
# the check helpers below set).
t() {
    local name=$1
    shift
    why=''
    if "$@"; then
        pass "$name"
    else
        fail "$name" "${why:-${*}}"
        return 1
    fi
}

# Re-runs the calling script under timeout(1) once, so no test file can hang
# the suite; the EXIT trap (e2e_cleanup) still stops the servers on TERM.
e2e_bound() { # seconds, "$0", "$@"
    local secs=$1
    shift
    if [ -z "${E2E_BOUNDED:-}" ]; then
        # exec skips the EXIT trap: drop this shell's scratch dir first.
        trap - EXIT
        rm -rf "$e2e_tmp"
        E2E_BOUNDED=1 exec timeout -k 10 "$secs" bash "$@"
    fi
}

# Scratch directory, traversable by nobody (the server's run dir is in it
# and nginx's workers run as nobody when we are root).
e2e_tmp=$(mktemp -d "${TMPDIR:-/tmp}/nginfer-e2e.XXXXXX") || exit 1
chmod 0755 "$e2e_tmp"

# Servers started by serve_start: serve pid -> everything it started.
declare -A e2e_procs=()
e2e_cleanup() {
    local pid
    for pid in "${!e2e_procs[@]}"; do
        kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${!e2e_procs[@]}"; do
        wait_exit "$pid" 5 || kill -KILL "$pid" 2>/dev/null
        procs_refresh "$pid"
        kill_sessions "$pid"
    done
    if [ -n "${E2E_KEEP:-}" ]; then note "kept $e2e_tmp"; else rm -rf "$e2e_tmp"; fi
}
trap e2e_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# free_port: prints a loopback TCP port nobody listens on, starting at
# 18080 + pid % 1000 so parallel runs do not collide.
free_port() {
    local p=$((18080 + $$ % 1000 + ${1:-0})) i
    for i in $(seq 50); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
            [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then
            echo "$p"
            return 0
        fi
        p=$((p + 7))
    done
    return 1
}

# is_live PID: running and not a zombie (a reparented zombie may linger
# where nothing reaps it).
is_live() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    case $st in Z*) return 1 ;; esac
    return 0
}

# wait_exit PID SECONDS: waits for our child PID to exit (polling).
wait_exit() {
    local pid=$1 n=$(($2 * 20))
    while [ $n -gt 0 ]; do
        is_live "$pid" || return 0
        sleep 0.05
        n=$((n - 1))
    done
    ! is_live "$pid"
}

# descendants PID: every process below PID (by parent pid).
descendants() {
    local kid
    for kid in $(pgrep -P "$1"); do
        echo "$kid"
        descendants "$kid"
    done
}

# procs_refresh SERVE_PID: adds the current descendants of the server to its
# record (workers respawned by multiwatch appear later than the first look).
procs_refresh() {
    local all
    all="${e2e_procs[$1]:-} $(descendants "$1" | tr '\n' ' ')"
    e2e_procs[$1]=$(echo "$all" | tr ' ' '\n' | sed '/^$/d' | sort -un | tr '\n' ' ')
}

# session_procs SERVE_PID: live processes in the sessions of the recorded
# processes (nginfer-serve starts nginx and spawn-fcgi with setsid, so
# everything below them is in a session named by a pid we recorded; a pid
# reused by a stranger is not).
session_procs() {
    local pid sid sids=" ${e2e_procs[$1]:-} "
    while read -r pid sid; do
        case $sids in *" $sid "*) is_live "$pid" && echo "$pid" ;; esac
    done < <(ps -e -o pid=,sid=)
}

# kill_sessions SERVE_PID: SIGKILL to what session_procs finds.
kill_sessions() {
    local left
    left=$(session_procs "$1" | tr '\n' ' ')
    # shellcheck disable=SC2086
    [ -z "$left" ] || kill -KILL $left 2>/dev/null
}

# leftovers SERVE_PID: "pid(name) ..." of the recorded processes still alive
# and of anything in their sessions.
leftovers() {
    local pid out=''
    for pid in $(echo "${e2e_procs[$1]:-} $(session_procs "$1")" | tr ' ' '\n' | sed '/^$/d' | sort -un); do
        is_live "$pid" && out="$out $pid($(ps -o comm= -p "$pid"))"
    done
    echo "${out# }"
}

# serve_start NAME ARGS...: starts tools/nginfer-serve ARGS in the
# background, output in $e2e_tmp/NAME.log; sets serve_pid, mw_pid,
# nginx_pid. Returns 0 once GET /ping answers 200 (10 s at most).
serve_start() {
    local name=$1 code
    shift
    serve_log=$e2e_tmp/$name.log
    "$E2E_SERVE" "$@" >"$serve_log" 2>&1 </dev/null &
    serve_pid=$!
    e2e_procs[$serve_pid]=''
    mw_pid='' nginx_pid=''
    for _ in $(seq 100); do
        if ! is_live "$serve_pid"; then
            why="nginfer-serve exited at start: $(tail -3 "$serve_log" | tr '\n' ' ')"
            return 1
        fi
        code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 1 "$base/ping" 2>/dev/null)
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    procs_refresh "$serve_pid"
    mw_pid=$(pgrep -P "$serve_pid" -x multiwatch)
    nginx_pid=$(pgrep -P "$serve_pid" -x nginx)
    if [ "$code" != 200 ]; then
        why="GET /ping not 200 within 10 s (last: $code): $(tail -3 "$serve_log" | tr '\n' ' ')"
        serve_kill "$serve_pid"
        return 1
    fi
    [ -n "$mw_pid" ] && [ -n "$nginx_pid" ] || { why="no multiwatch or nginx child of nginfer-serve ($serve_pid)"; return 1; }
    return 0
}

# serve_kill SERVE_PID: stops a server that failed a check (TERM, then KILL
# whatever it started), so the next case starts clean.
serve_kill() {
    procs_refresh "$1"
    kill -TERM "$1" 2>/dev/null
    wait_exit "$1" 5 || kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    kill_sessions "$1"
    unset "e2e_procs[$1]"
}

# serve_stop_check SERVE_PID RUN_DIR: SIGTERM to the serve script; checks it
# exits 0 within 5 s, leaves no process and removes socket and pid file.
serve_stop_check() {
    local pid=$1 run_dir=$2 rc left t0 ms
    procs_refresh "$pid"
    t0=$(date +%s%N)
    kill -TERM "$pid"
    if ! wait_exit "$pid" 5; then
        why="nginfer-serve still running 5 s after SIGTERM"
        return 1
    fi
    ms=$((($(date +%s%N) - t0) / 1000000))
    wait "$pid"
    rc=$?
    left=$(leftovers "$pid")
    # Stopped (or failed to): take what is left down now and forget this
    # server.
    kill_sessions "$pid"
    unset "e2e_procs[$pid]"
    [ "$rc" -eq 0 ] || { why="exit status $rc after SIGTERM (want 0)"; return 1; }
    [ -z "$left" ] || { why="processes left after stop: $left"; return 1; }
    [ ! -e "$run_dir/worker.sock" ] || { why="$run_dir/worker.sock still there"; return 1; }
    [ ! -e "$run_dir/nginx.pid" ] || { why="$run_dir/nginx.pid still there"; return 1; }
    note "stopped in $ms ms"
    return 0
}

# req METHOD PATH [CURL ARGS...]: one request to $base; sets code and ctype,
# the body is in $body (a file). curl's own failure leaves code 000.
body=$e2e_tmp/body
req() {
    local m=$1 p=$2 out
    shift 2
    out=$(curl -s --noproxy '*' -o "$body" -w '%{http_code} %{content_type}' --max-time "$E2E_CURL_TIME" \
        -X "$m" "$@" "$base$p" 2>/dev/null)
    code=${out%% *}
    ctype=${out#* }
    [ -n "$code" ] || code=000
}

# JSON checks. py EXPR: evaluates a Python expression over d (the parsed
# $body) with the helpers below; 0 if true, else sets why.
e2e_py_prelude='
import json, math, re, sys
raw = open(sys.argv[1], "rb").read()
def num(x): return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
def preds(d):
    p = d["predictions"]
    return [x[0] if isinstance(x, list) and len(x) == 1 else x for x in p]
def in_range(p, lo, hi): return len(p) > 0 and all(num(x) and lo <= x <= hi for x in p)
def is_error(d):
    e = d.get("error") if isinstance(d, dict) else None
    return isinstance(e, dict) and isinstance(e.get("code"), str) and e["code"] != "" \
        and isinstance(e.get("message"), str) and e["message"] != ""
def msg(d): return d["error"]["message"]
def find_key(d, k):
    if isinstance(d, dict):
        if k in d: return d[k]
        vs = d.values()
    elif isinstance(d, list): vs = d
    else: return None
    for v in vs:
        r = find_key(v, k)
        if r is not None: return r
    return None
try:
    d = json.loads(raw)
except Exception as e:
    print("body is not JSON (%s): %.200r" % (e, raw)); sys.exit(1)
try:
    ok = eval(sys.argv[2])
except Exception as e:
    print("%s fails: %r on %.300s" % (sys.argv[2], e, raw.decode("utf-8", "replace"))); sys.exit(1)
if not ok:
    print("%s is false on %.300s" % (sys.argv[2], raw.decode("utf-8", "replace"))); sys.exit(1)
'
py() {
    why=$("$E2E_PY" -c "$e2e_py_prelude" "$body" "$1" 2>&1) && return 0
    why="HTTP $code: $why"
    return 1
}

# expect STATUS [PY-EXPR]: the last answer had STATUS (and EXPR holds).
expect() {
    if [ "$code" != "$1" ]; then
        why="HTTP $code, want $1: $(head -c 300 "$body" 2>/dev/null | tr '\n' ' ')"
        return 1
    fi
    [ $# -lt 2 ] || py "$2"
}

# expect_error STATUS [PY-EXPR]: a JSON error answer with STATUS.
expect_error() {
    expect "$1" "is_error(d)${2:+ and ($2)}"
}

# tail_log: the last lines of the server log as notes (after a failure).
tail_log() {
    [ -n "${serve_log:-}" ] && [ -f "$serve_log" ] && tail -n "${1:-8}" "$serve_log" | sed 's/^/#   /'
}

# e2e_asan: the binaries in $E2E_BIN are a sanitizer build (make
# SANITIZE=1). Their RSS includes ASan's quarantine of freed memory and
# shadow, and valgrind cannot run them: tests skip those checks, saying so.
e2e_asan() { grep -aq __asan_init "$E2E_BIN/nginfer-worker" 2>/dev/null; }

# wrk_count_script FILE: writes the wrk Lua script that counts statuses.
# Environment read by wrk: E2E_WRK_MODE=mixed POSTs a batch of 1 to 40 rows
# of models/default.onnx's 10 features, JSON or CSV, at random;
# E2E_WRK_BODY=FILE POSTs that file (Content-Type $E2E_WRK_CTYPE, default
# application/json); neither: GET. done() prints one line:
# "E2E requests=N statuses=200:N,... connect=N read=N write=N timeout=N
# p50_ms= p99_ms= max_ms=" (read it with wrk_field).
wrk_count_script() {
    cat >"$1" <<'EOF'
local mode, path = os.getenv("E2E_WRK_MODE"), os.getenv("E2E_WRK_BODY")
local row = "0.038076,0.05068,0.061696,0.021872,-0.044223,-0.034821,-0.043401,-0.0025923,0.019907,-0.017646"
local bodies = {}
if mode == "mixed" then
  for n = 1, 40 do
    local j, c = {}, {}
    for i = 1, n do j[i] = "[" .. row .. "]"; c[i] = row end
    bodies[#bodies + 1] = {"application/json", '{"instances": [' .. table.concat(j, ",") .. "]}"}
    bodies[#bodies + 1] = {"text/csv", table.concat(c, "\n") .. "\n"}
  end
elseif path and path ~= "" then
  local f = assert(io.open(path, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = os.getenv("E2E_WRK_CTYPE") or "application/json"
end
if #bodies > 0 then
  function init(args) math.randomseed(thread_id or 1) end
  function request()
    local b = bodies[math.random(#bodies)]
    return wrk.format("POST", nil, {["Content-Type"] = b[1]}, b[2])
  end
end
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end
statuses = {}
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local all, keys, parts = {}, {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do all[k] = (all[k] or 0) + v end
  end
  for k in pairs(all) do table.insert(keys, k) end
  table.sort(keys)
  for _, k in ipairs(keys) do table.insert(parts, k .. ":" .. all[k]) end
  local e = summary.errors
  io.write(string.format("E2E requests=%d statuses=%s connect=%d read=%d write=%d timeout=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    summary.requests, table.concat(parts, ","), e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
EOF
}

# wrk_field OUT NAME: a field of the "E2E ..." line wrk_count_script's
# script wrote to OUT.
wrk_field() { sed -n "s/^E2E .*\b$2=\([^ ]*\).*/\1/p" "$1"; }

# e2e_bodies: writes the request bodies most tests post into $e2e_tmp, on
# models/default.onnx's 10 features: one.json (1 row), r64.json, r5000.json,
# r20000.json ({"instances": ...}), features.json ({"features": row}),
# then runs the Python on its standard input with `rows` (4 diabetes rows),
# `d` (the directory) and `w(name, text)` defined, for a test's own bodies.
e2e_bodies() {
    { cat <<'PY'
import json, os, sys
d = sys.argv[1]
rows = [
    [0.038076, 0.05068, 0.061696, 0.021872, -0.044223, -0.034821, -0.043401, -0.0025923, 0.019907, -0.017646],
    [-0.001882, -0.044642, -0.051474, -0.026328, -0.0084487, -0.019163, 0.074412, -0.039493, -0.068332, -0.092204],
    [0.085299, 0.05068, 0.044451, -0.0056704, -0.045599, -0.034194, -0.032356, -0.0025923, 0.0028613, -0.02593],
    [-0.089063, -0.044642, -0.011595, -0.036656, 0.012191, 0.024991, -0.036038, 0.034309, 0.022688, -0.0093619],
]
def w(name, s):
    with open(os.path.join(d, name), "w") as f: f.write(s)
w("one.json", json.dumps({"instances": [rows[0]]}))
for n in (64, 5000, 20000):
    w("r%d.json" % n, json.dumps({"instances": [rows[i % 4] for i in range(n)]}))
w("features.json", json.dumps({"features": rows[0]}))
PY
      cat; } | "$E2E_PY" - "$e2e_tmp"
}

# e2e_podman NAME: sets pm (podman, with runc when installed) and ulim
# (--ulimit flags runc can set where the hard limits are low, as
# docker/docker.mk does); if podman cannot run here, prints SKIP NAME with
# the reason and returns 1.
e2e_podman() {
    pm=(podman)
    command -v runc >/dev/null 2>&1 && pm+=(--runtime runc)
    if ! "${pm[@]}" info >"$e2e_tmp/podman-info.log" 2>&1; then
        skip "$1" "podman is not usable here: $(tail -2 "$e2e_tmp/podman-info.log" | tr '\n' ' ')"
        return 1
    fi
    local n p
    n=$(awk '/^Max open files/ { print $5 }' /proc/self/limits)
    p=$(awk '/^Max processes/ { print $4 }' /proc/self/limits)
    case $n in unlimited) n=1048576 ;; esac
    case $p in unlimited) p=32768 ;; esac
    [ "$n" -le 1048576 ] || n=1048576
    [ "$p" -le 32768 ] || p=32768
    ulim=(--ulimit "nofile=$n:$n" --ulimit "nproc=$p:$p")
}

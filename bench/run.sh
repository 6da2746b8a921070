#!/usr/bin/env bash
# bench/run.sh: nginfer against its peers, in one run, on this machine.
# Called by `make bench` (BUILD=build bench/run.sh, after `make all` and
# `tools/deps.sh bench`). Writes bench/results/latest.{md,json} and PNG
# plots; everything else (npm packages, pickles, generated models, inputs,
# logs, raw figures) goes to bench/work (git-ignored, reused between runs).
#
# Peers, all answering POST /invocations with the same JSON bodies:
#   nginfer       tools/nginfer-serve (nginx -> FastCGI unix socket -> 2
#                 workers under spawn-fcgi + multiwatch), default config
#   fixed         bench/fcgi_fixed.c served by the same tools/nginfer-serve
#                 (same template, spawn-fcgi, multiwatch, 2 workers): reads
#                 the body, answers a constant; the architecture's limit
#   flask         Flask + gunicorn (2 sync workers), pickled scikit-learn
#   flask_nginx   the same behind bench/nginx-peers.conf.in
#   ort           node + onnxruntime-node, 2 cluster workers, 1 thread each
#   ort_nginx     the same behind bench/nginx-peers.conf.in
# Phases: prepare (cached), in-process core timings, HTTP load with wrk
# (RSS per worker after load and after the traffic), cold starts (rounds
# over all servers and models until BENCH_COLD_RUNS rounds are done or the
# time budget is spent), report.
#
# Everything is bounded: the whole run re-executes itself under timeout(1)
# (BENCH_LIMIT seconds, default 840: `make bench` then fits in 15 minutes
# when make and deps.sh have nothing to do), each wrk run under its own timeout,
# each wait has a deadline. Only loopback and unix sockets. Processes are
# stopped by the pids this script started (and their recorded children).
#
# Knobs (environment): BENCH_DURATION seconds per load point (4),
# BENCH_WARMUP seconds of unrecorded load per server and body (1),
# BENCH_CONNS ("1 8 64"), BENCH_COLD_RUNS (5), BENCH_CORE_SECONDS (1),
# BENCH_MODELS (all of: rf100 rf500 mlp cnn bert), BENCH_LIMIT (840: the
# whole run in seconds), BENCH_COLD_MIN (150: a model's load points are
# skipped, with a warning, if they would leave the cold-start rounds less).

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

LIMIT=${BENCH_LIMIT:-840}
if [ -z "${BENCH_BOUNDED:-}" ]; then
    BENCH_BOUNDED=1 exec timeout -k 20 "$LIMIT" bash "$0" "$@"
fi

BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
W=$ROOT/bench/work
RES=$ROOT/bench/results
RAW=$W/raw
LOGS=$W/logs
PY=/usr/bin/python3
DUR=${BENCH_DURATION:-4}
WARM=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-"1 8 64"}
COLD_RUNS=${BENCH_COLD_RUNS:-5}
CORE_T=${BENCH_CORE_SECONDS:-1}
MODELS=${BENCH_MODELS:-"rf100 rf500 mlp cnn bert"}
WORKERS=2
# Stopping a server should not cost the run 10 s per server if a worker is
# slow to leave; this is nginfer-serve's own knob (grace period on stop).
export NGINFER_STOP_TIMEOUT=${NGINFER_STOP_TIMEOUT:-3}

T_START=$(date +%s)
say() { printf '[bench %4ds] %s\n' $(($(date +%s) - T_START)) "$*"; }
die() { say "error: $*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------

export PATH=$PATH:/usr/sbin:/sbin
for t in wrk node npm gunicorn nginx spawn-fcgi multiwatch gnuplot gcc curl; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found (tools/deps.sh bench installs it)"
done
[ -x "$PY" ] || die "$PY not found"
[ -x "$BUILD/nginfer-worker" ] || die "$BUILD/nginfer-worker not built (make)"
[ -f "$BUILD/libnfcore.a" ] || die "$BUILD/libnfcore.a not built (make)"

mkdir -p "$W" "$RES" "$LOGS" "$W/bin" || die "cannot create $W"
# Serve a snapshot of the worker and link core_bench against a snapshot of
# the library, so a rebuild of $BUILD during the run cannot change (or
# remove) what is being measured.
cp "$BUILD/nginfer-worker" "$W/bin/nginfer-worker.tmp" && mv "$W/bin/nginfer-worker.tmp" "$W/bin/nginfer-worker" &&
    cp "$BUILD/libnfcore.a" "$W/bin/libnfcore.a" || die "cannot copy the build to $W/bin"
BUILD_SRC=$BUILD
BUILD=$W/bin
rm -rf "$RAW"
mkdir -p "$RAW/answers"
rm -f "$LOGS"/*.log

# --- process bookkeeping -----------------------------------------------------

# pid -> its descendants seen so far (refreshed before stopping)
declare -A PROCS=() PNAME=()
RUNBASE=''

descendants() {
    local kid
    for kid in $(pgrep -P "$1" 2>/dev/null); do
        echo "$kid"
        descendants "$kid"
    done
}
is_live() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    case $st in Z*) return 1 ;; esac
    return 0
}
refresh() { PROCS[$1]="${PROCS[$1]:-} $(descendants "$1" | tr '\n' ' ')"; }

# start NAME CMD...: runs CMD in the background, output to logs/NAME.log;
# sets LAST_PID.
start() {
    local name=$1
    shift
    "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
    LAST_PID=$!
    PROCS[$LAST_PID]=''
    PNAME[$LAST_PID]=$name
}

# stop PID: SIGTERM, up to 20 s to exit, then SIGKILL to it and whatever
# of its recorded descendants is left.
stop() {
    local pid=$1 n=200 p t0 left=''
    [ -n "$pid" ] || return 0
    refresh "$pid"
    t0=$(date +%s)
    kill -TERM "$pid" 2>/dev/null
    while [ $n -gt 0 ] && is_live "$pid"; do
        sleep 0.1
        n=$((n - 1))
    done
    is_live "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    for p in ${PROCS[$pid]}; do
        is_live "$p" && { kill -KILL "$p" 2>/dev/null; left="$left $p"; }
    done
    [ $(($(date +%s) - t0)) -le 5 ] && [ -z "$left" ] ||
        say "warning: ${PNAME[$pid]:-$pid} (pid $pid) took $(($(date +%s) - t0)) s to stop${left:+; killed what it left:$left}"
    unset "PROCS[$pid]" "PNAME[$pid]"
    return 0
}

cleanup() {
    local pid
    for pid in "${!PROCS[@]}"; do stop "$pid"; done
    [ -n "$RUNBASE" ] && rm -rf "$RUNBASE"
}
trap cleanup EXIT
trap 'say "stopped by a signal"; exit 143' TERM
trap 'exit 130' INT

# --- ports -------------------------------------------------------------------

port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}
NEXT_PORT=$((21000 + $$ % 3000 * 3))
new_port() {
    for _ in $(seq 200); do
        NEXT_PORT=$((NEXT_PORT + 1))
        port_busy "$NEXT_PORT" || { echo "$NEXT_PORT"; return 0; }
    done
    die "no free loopback port"
}
P_NF=$(new_port); NEXT_PORT=$P_NF
P_FX=$(new_port); NEXT_PORT=$P_FX
P_FL=$(new_port); NEXT_PORT=$P_FL
P_FLN=$(new_port); NEXT_PORT=$P_FLN
P_ORT=$(new_port); NEXT_PORT=$P_ORT
P_ORTN=$(new_port); NEXT_PORT=$P_ORTN
P_CS=$(new_port); NEXT_PORT=$P_CS

wait_port_free() {
    local n=100
    while port_busy "$1" && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
}

# Scratch for the run dirs (nginx.conf, sockets): bench/work/run when
# "nobody" can traverse every directory above it (nginx's workers run as
# nobody when we are root and must reach the sockets), else under /tmp.
traversable() {
    local d=$1 perm
    while [ "$d" != / ]; do
        d=$(dirname "$d")
        perm=$(stat -Lc %a "$d") || return 1
        [ $((8#$perm & 1)) -eq 1 ] || return 1
    done
}
if traversable "$W/run"; then
    rm -rf "$W/run"
    mkdir -p "$W/run" && RUNBASE=$W/run
else
    RUNBASE=$(mktemp -d /tmp/nginfer-bench.XXXXXX) || die "mktemp failed"
fi
chmod 0755 "$RUNBASE"

# --- 1. prepare ----------------------------------------------------------------

say "prepare: onnxruntime-node, pickles, the 500-tree forest, inputs (cached in bench/work)"
if [ ! -f "$W/node_modules/onnxruntime-node/package.json" ]; then
    (cd "$W" && { [ -f package.json ] || npm init -y >/dev/null; } &&
        timeout 600 npm install --ignore-scripts --no-audit --no-fund onnxruntime-node >"$LOGS/npm.log" 2>&1) ||
        die "npm install --ignore-scripts onnxruntime-node failed (see $LOGS/npm.log)"
fi
export NODE_PATH=$W/node_modules
timeout 600 "$PY" bench/prep.py "$W" "$W/node_modules" || die "bench/prep.py failed"
MAN=$W/manifest.json

# manifest -> shell: ONNX[model] PKL[model] SPEC1/SPEC64[model] BODY[workload]
declare -A ONNX=() PKL=() SPEC1=() SPEC64=() BODY=()
eval "$("$PY" - "$MAN" <<'EOF'
import json, shlex, sys
d = json.load(open(sys.argv[1]))
for k, m in d["models"].items():
    print("ONNX[%s]=%s" % (k, shlex.quote(m["onnx"])))
    if "pickle" in m:
        print("PKL[%s]=%s" % (k, shlex.quote(m["pickle"])))
    print("SPEC1[%s]=%s" % (k, shlex.quote(m["specs"]["1"])))
    print("SPEC64[%s]=%s" % (k, shlex.quote(m["specs"]["64"])))
for k, w in d["workloads"].items():
    print("BODY[%s]=%s" % (k, shlex.quote(w["body"])))
EOF
)" || die "cannot read $MAN"

AVAIL=''
for m in $MODELS; do [ -n "${ONNX[$m]:-}" ] && AVAIL="$AVAIL $m"; done
AVAIL=${AVAIL# }
has() { case " $AVAIL " in *" $1 "*) return 0 ;; esac; return 1; }
say "models: $AVAIL"

# builds
CORE_BENCH=$W/core_bench
FIXED=$W/fcgi_fixed
if [ ! -x "$CORE_BENCH" ] || [ bench/core_bench.c -nt "$CORE_BENCH" ] || ! cmp -s "$BUILD/libnfcore.a" "$W/core_bench.lib"; then
    cp "$BUILD/libnfcore.a" "$W/core_bench.lib"
    gcc -O2 -Icore -o "$CORE_BENCH" bench/core_bench.c "$BUILD/libnfcore.a" -lprotobuf-c -lopenblas -lm -pthread ||
        die "building core_bench failed"
fi
if [ ! -x "$FIXED" ] || [ bench/fcgi_fixed.c -nt "$FIXED" ] || [ fcgi/conn.h -nt "$FIXED" ]; then
    gcc -O2 -o "$FIXED" bench/fcgi_fixed.c -pthread -lfcgi || die "building fcgi_fixed failed"
fi
# tools/nginfer-serve -b FIXED_BIN serves fcgi_fixed: its "nginfer-worker"
# hands config queries (--get) to the real worker, answers a model check
# (--check) without loading anything, and execs fcgi_fixed to serve (so the
# fixed server's cold start is the serving machinery alone; fcgi_fixed
# sends no "ready" line on NGINFER_READY_FD, which only delays the script's
# banner, not serving).
FIXED_BIN=$W/fixed-bin
mkdir -p "$FIXED_BIN"
cat >"$FIXED_BIN/nginfer-worker" <<EOF
#!/bin/sh
# written by bench/run.sh: tools/nginfer-serve -b $FIXED_BIN serves bench/fcgi_fixed.c
for a in "\$@"; do
    case \$a in
    --get) exec "$BUILD/nginfer-worker" "\$@" ;;
    --check) exit 0 ;;
    esac
done
exec "$FIXED"
EOF
chmod +x "$FIXED_BIN/nginfer-worker"

# --- meta ----------------------------------------------------------------------

{
    echo "{"
    echo "\"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
    echo "\"build\": \"$BUILD_SRC (served from a copy in bench/work/bin)\","
    echo "\"git\": \"$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- core fcgi tools nginx conf 2>/dev/null || echo '+dirty')\","
    echo "\"cpus\": $(nproc),"
    echo "\"cpu_model\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//;s/"//g')\","
    echo "\"loadavg_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
    echo "\"nginx\": \"$(nginx -v 2>&1 | sed 's/.*: //')\","
    echo "\"node\": \"$(node --version)\","
    echo "\"onnxruntime_node\": \"$(node -p "require('$W/node_modules/onnxruntime-node/package.json').version")\","
    echo "\"sklearn\": \"$("$PY" -c 'import sklearn; print(sklearn.__version__)')\","
    echo "\"flask\": \"$("$PY" -c 'import flask; print(flask.__version__)' 2>/dev/null)\","
    echo "\"gunicorn\": \"$(gunicorn --version 2>&1 | grep -o '[0-9][0-9.]*' | head -1)\","
    echo "\"wrk\": \"$(wrk -v 2>&1 | head -1 | awk '{print $2}')\","
    echo "\"duration_s\": $DUR, \"warmup_s\": $WARM, \"conns\": [$(echo "$CONNS" | sed 's/ \+/, /g')],"
    echo "\"cold_runs\": $COLD_RUNS, \"core_seconds\": $CORE_T, \"workers\": $WORKERS, \"limit_s\": $LIMIT"
    echo "}"
} >"$RAW/meta.json"

# seconds left before the run must be writing its report
time_left() { echo $((T_START + LIMIT - 25 - $(date +%s))); }

# --- 2. in-process core figures ------------------------------------------------

say "core: nf_model_run vs ONNX Runtime session.run, median per call, batch 1 and 64"
: >"$RAW/core.jsonl"
if [ -n "${ONNX[identity]:-}" ]; then
    timeout 120 node bench/ort_core.js -t "$CORE_T" identity "${ONNX[identity]}" "${SPEC1[identity]}" "${SPEC64[identity]}" \
        >>"$RAW/core.jsonl" 2>>"$LOGS/core.log" || say "warning: ORT identity floor failed (see $LOGS/core.log)"
fi
for m in $AVAIL; do
    timeout 180 "$CORE_BENCH" -t "$CORE_T" "$m" "${ONNX[$m]}" "${SPEC1[$m]}" "${SPEC64[$m]}" \
        >>"$RAW/core.jsonl" 2>>"$LOGS/core.log" || say "warning: core_bench $m failed (see $LOGS/core.log)"
    timeout 180 node bench/ort_core.js -t "$CORE_T" "$m" "${ONNX[$m]}" "${SPEC1[$m]}" "${SPEC64[$m]}" \
        >>"$RAW/core.jsonl" 2>>"$LOGS/core.log" || say "warning: ort_core $m failed (see $LOGS/core.log)"
done

# --- servers -----------------------------------------------------------------

# start_nginfer NAME MODEL PORT [BIN_DIR]: sets LAST_PID
start_nginfer() {
    local name=$1 model=$2 port=$3 bin=${4:-$BUILD}
    wait_port_free "$port"
    rm -rf "${RUNBASE:?}/$name"
    start "$name" "$ROOT/tools/nginfer-serve" -m "$model" -p "$port" -w "$WORKERS" -r "$RUNBASE/$name" -b "$bin"
}
start_flask() { # NAME PICKLE PORT
    wait_port_free "$3"
    start "$1" env BENCH_PICKLE="$2" gunicorn -w "$WORKERS" -k sync -b "127.0.0.1:$3" \
        --chdir "$ROOT/bench" --log-level warning flask_app:app
}
start_ort() { # NAME MODEL PORT
    wait_port_free "$3"
    start "$1" node "$ROOT/bench/ort_server.js" "$2" "$3" "$WORKERS"
}
PEER_NGINX='' PEER_NGINX_PIDS=''
start_peer_nginx() {
    local d=$RUNBASE/peers user_line=''
    mkdir -p "$d"
    [ "$(id -u)" -eq 0 ] && user_line='user nobody nogroup;'
    sed -e "s|@USER_LINE@|$user_line|" -e "s|@RUN_DIR@|$d|g" \
        -e "s|@FLASK_LISTEN@|127.0.0.1:$P_FLN|" -e "s|@FLASK_UPSTREAM@|127.0.0.1:$P_FL|" \
        -e "s|@ORT_LISTEN@|127.0.0.1:$P_ORTN|" -e "s|@ORT_UPSTREAM@|127.0.0.1:$P_ORT|" \
        bench/nginx-peers.conf.in >"$d/nginx.conf" || die "cannot write $d/nginx.conf"
    nginx -p "$d/" -c "$d/nginx.conf" -e stderr -g 'daemon off;' -t -q 2>>"$LOGS/peer-nginx.log" ||
        die "peer nginx config test failed (see $LOGS/peer-nginx.log)"
    start peer-nginx nginx -p "$d/" -c "$d/nginx.conf" -e stderr -g 'daemon off;'
    PEER_NGINX=$LAST_PID
    sleep 0.5
    PEER_NGINX_PIDS="$PEER_NGINX $(descendants "$PEER_NGINX" | tr '\n' ' ')"
}

# post_code URL BODY [OUT]: prints the HTTP status of one POST
post_code() {
    curl -s --noproxy '*' -m 5 -o "${3:-/dev/null}" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' --data-binary @"$2" "$1" 2>/dev/null
}
# wait_ready URL BODY SECONDS PID: 0 once a POST answers 200 (wall clock)
wait_ready() {
    local end=$(($(date +%s) + $3))
    while [ "$(date +%s)" -lt "$end" ]; do
        is_live "$4" || return 1
        [ "$(post_code "$1" "$2")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# worker pids of a server (not the supervisors: nginx, multiwatch, the
# gunicorn arbiter, the node cluster primary)
worker_pids() { # KIND PID
    local mw
    case $1 in
    nginfer | fixed)
        for mw in $(pgrep -P "$2" -x multiwatch); do pgrep -P "$mw"; done ;;
    *) pgrep -P "$2" ;;
    esac
}
# rss KIND PID MODEL WHEN: appends one line to rss.jsonl
rss() {
    local kind=$1 pid=$2 model=$3 when=$4 p kb sum=0 n=0 list=''
    for p in $(worker_pids "$kind" "$pid"); do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        [ -n "$kb" ] || continue
        sum=$((sum + kb)) n=$((n + 1)) list="$list${list:+,}$kb"
    done
    echo "{\"server\":\"$kind\",\"model\":\"$model\",\"when\":\"$when\",\"workers\":$n,\"rss_kb\":[$list],\"rss_kb_per_worker\":$([ $n -gt 0 ] && echo $((sum / n)) || echo null)}" >>"$RAW/rss.jsonl"
}

# Processes whose CPU time counts for a variant (server processes, plus
# the peer nginx for the *_nginx variants): VPIDS[variant].
declare -A VPIDS=()
set_vpids() { # VARIANT SERVER_PID [extra pids]
    local v=$1 pid=$2
    shift 2
    VPIDS[$v]="$pid $(descendants "$pid" | tr '\n' ' ') $*"
}
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # PIDS: utime + stime of those still alive
    local p sum=0 st
    for p in "$@"; do
        st=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
        sum=$((sum + ${st% *} + ${st#* }))
    done
    echo "$sum"
}

url_of() { # VARIANT
    case $1 in
    nginfer) echo "http://127.0.0.1:$P_NF/invocations" ;;
    fixed) echo "http://127.0.0.1:$P_FX/invocations" ;;
    flask) echo "http://127.0.0.1:$P_FL/invocations" ;;
    flask_nginx) echo "http://127.0.0.1:$P_FLN/invocations" ;;
    ort) echo "http://127.0.0.1:$P_ORT/invocations" ;;
    ort_nginx) echo "http://127.0.0.1:$P_ORTN/invocations" ;;
    esac
}

# wrk_point VARIANT WORKLOAD CONNS SECONDS [record]
wrk_point() {
    local v=$1 wl=$2 c=$3 secs=$4 rec=${5:-} t=2 out=$RAW/wrk.tmp c0 c1
    [ "$c" -lt 2 ] && t=1 # wrk needs at least one connection per thread
    rm -f "$out"
    echo "--- $v $wl c=$c ${secs}s" >>"$LOGS/wrk.log"
    # shellcheck disable=SC2086
    c0=$(cpu_ticks ${VPIDS[$v]:-})
    BENCH_BODY=${BODY[$wl]} BENCH_OUT=$out \
        timeout $((secs + 20)) wrk -t"$t" -c"$c" -d"${secs}s" --timeout 5s -s bench/post.lua "$(url_of "$v")" \
        >>"$LOGS/wrk.log" 2>&1
    # shellcheck disable=SC2086
    c1=$(cpu_ticks ${VPIDS[$v]:-})
    [ -n "$rec" ] || return 0
    if [ -s "$out" ]; then
        echo "{\"variant\":\"$v\",\"workload\":\"$wl\",\"conns\":$c,\"threads\":$t,\"seconds\":$secs,\"server_cpu_s\":$(awk -v a="$c0" -v b="$c1" -v h="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/h}'),\"wrk\":$(cat "$out")}" >>"$RAW/http.jsonl"
    else
        echo "{\"variant\":\"$v\",\"workload\":\"$wl\",\"conns\":$c,\"threads\":$t,\"seconds\":$secs,\"wrk\":null}" >>"$RAW/http.jsonl"
        say "warning: wrk gave no figures for $v $wl c=$c"
    fi
}

# load WORKLOAD VARIANT...: one answer kept per variant (sanity), a warm-up
# per variant, then each connection count for each variant in turn (the
# variants interleaved, so drift in the machine's load hits all alike).
load() {
    local wl=$1 v c code
    shift
    for v in "$@"; do
        code=$(post_code "$(url_of "$v")" "${BODY[$wl]}" "$RAW/answers/${v}_$wl.json")
        echo "{\"variant\":\"$v\",\"workload\":\"$wl\",\"status\":${code:-0}}" >>"$RAW/sanity.jsonl"
        [ "$code" = 200 ] || say "warning: $v answers ${code:-nothing} to $wl; measured anyway (errors are counted)"
    done
    for v in "$@"; do wrk_point "$v" "$wl" 8 "$WARM"; done
    for c in $CONNS; do
        for v in "$@"; do wrk_point "$v" "$wl" "$c" "$DUR" record; done
    done
    say "  $wl done ($# servers x $(echo $CONNS | wc -w) points)"
}
NPOINTS=$(echo $CONNS | wc -w)
load_secs() { echo $(($1 * (NPOINTS * DUR + WARM + 2))); } # variants -> seconds

# --- 3. HTTP load ----------------------------------------------------------------

say "load: wrk, ${DUR}s per point at $CONNS connections"
: >"$RAW/http.jsonl"
: >"$RAW/rss.jsonl"
: >"$RAW/sanity.jsonl"
# the cold-start phase gets what is left, but at least this much
COLD_MIN=${BENCH_COLD_MIN:-150}
start_peer_nginx

# The fixed-answer server lives through both forest groups.
FX_PID=''
if has rf100 || has rf500; then
    start_nginfer fixed "${ONNX[rf100]:-${ONNX[rf500]}}" "$P_FX" "$FIXED_BIN"
    FX_PID=$LAST_PID
    wait_ready "$(url_of fixed)" "${BODY[rf100_1]:-${BODY[rf500_1]}}" 30 "$FX_PID" || say "warning: fixed-answer server not ready"
    rss fixed "$FX_PID" fixed load
    set_vpids fixed "$FX_PID"
fi

forest_group() { # MODELKEY WORKLOAD...
    local m=$1 nf fl ort wl need
    shift
    need=$(($(load_secs 6) * $# + 30))
    if [ "$(time_left)" -lt $((need + COLD_MIN)) ]; then
        say "warning: skipping the $m load points: about ${need}s needed, $(time_left)s left"
        return 0
    fi
    start_nginfer "nginfer-$m" "${ONNX[$m]}" "$P_NF"; nf=$LAST_PID
    start_flask "flask-$m" "${PKL[$m]}" "$P_FL"; fl=$LAST_PID
    start_ort "ort-$m" "${ONNX[$m]}" "$P_ORT"; ort=$LAST_PID
    wait_ready "$(url_of nginfer)" "${BODY[$1]}" 60 "$nf" || say "warning: nginfer ($m) not ready after 60 s"
    wait_ready "$(url_of flask)" "${BODY[$1]}" 60 "$fl" || say "warning: flask ($m) not ready after 60 s"
    wait_ready "$(url_of ort)" "${BODY[$1]}" 60 "$ort" || say "warning: ort ($m) not ready after 60 s"
    rss nginfer "$nf" "$m" load
    rss flask "$fl" "$m" load
    rss ort "$ort" "$m" load
    set_vpids nginfer "$nf"
    set_vpids flask "$fl"
    set_vpids flask_nginx "$fl" "$PEER_NGINX_PIDS"
    set_vpids ort "$ort"
    set_vpids ort_nginx "$ort" "$PEER_NGINX_PIDS"
    for wl in "$@"; do
        load "$wl" nginfer fixed flask flask_nginx ort ort_nginx
    done
    rss nginfer "$nf" "$m" traffic
    rss flask "$fl" "$m" traffic
    rss ort "$ort" "$m" traffic
    stop "$nf"; stop "$fl"; stop "$ort"
}
dnn_group() { # MODELKEY WORKLOAD
    local m=$1 wl=$2 nf ort need
    need=$(($(load_secs 3) + 20))
    if [ "$(time_left)" -lt $((need + COLD_MIN)) ]; then
        say "warning: skipping the $m load points: about ${need}s needed, $(time_left)s left"
        return 0
    fi
    start_nginfer "nginfer-$m" "${ONNX[$m]}" "$P_NF"; nf=$LAST_PID
    start_ort "ort-$m" "${ONNX[$m]}" "$P_ORT"; ort=$LAST_PID
    wait_ready "$(url_of nginfer)" "${BODY[$wl]}" 60 "$nf" || say "warning: nginfer ($m) not ready after 60 s"
    wait_ready "$(url_of ort)" "${BODY[$wl]}" 60 "$ort" || say "warning: ort ($m) not ready after 60 s"
    rss nginfer "$nf" "$m" load
    rss ort "$ort" "$m" load
    set_vpids nginfer "$nf"
    set_vpids ort "$ort"
    set_vpids ort_nginx "$ort" "$PEER_NGINX_PIDS"
    load "$wl" nginfer ort ort_nginx
    rss nginfer "$nf" "$m" traffic
    rss ort "$ort" "$m" traffic
    stop "$nf"; stop "$ort"
}

has rf100 && forest_group rf100 rf100_1 rf100_64
has rf500 && forest_group rf500 rf500_1
if [ -n "$FX_PID" ]; then
    rss fixed "$FX_PID" fixed traffic
    stop "$FX_PID"
fi
for m in mlp cnn bert; do
    has "$m" && dnn_group "$m" "${m}_1"
done
stop "$PEER_NGINX"

# --- 4. cold start ---------------------------------------------------------------

# Rounds over every (server, model) pair, one start each per round, until
# COLD_RUNS rounds are done or the time budget is spent: every pair gets as
# many runs as the others (the report says how many). A pair whose start
# failed (no 200 within the limit) is not tried again.
say "cold start: start -> first 200 on POST /invocations, up to $COLD_RUNS runs each, $(time_left)s left"
: >"$RAW/cold.jsonl"
cold_one() { # SERVER MODEL LIMIT: one start, one line in cold.jsonl; 1 if it failed
    local s=$1 m=$2 lim=$3 wl=${2}_1 log line
    log=$LOGS/cold-$s-$m.log
    if [ "$s" = ort_session ]; then
        line=$(timeout "$lim" node bench/ort_core.js --session "${ONNX[$m]}" 2>>"$log") || return 1
        echo "{\"server\":\"$s\",\"model\":\"$m\",\"result\":$line}" >>"$RAW/cold.jsonl"
        return 0
    fi
    local cmd=()
    rm -rf "${RUNBASE:?}/cold"
    case $s in
    nginfer) cmd=("$ROOT/tools/nginfer-serve" -m "${ONNX[$m]}" -p "$P_CS" -w "$WORKERS" -r "$RUNBASE/cold" -b "$BUILD") ;;
    fixed) cmd=("$ROOT/tools/nginfer-serve" -m "${ONNX[$m]}" -p "$P_CS" -w "$WORKERS" -r "$RUNBASE/cold" -b "$FIXED_BIN") ;;
    flask) cmd=(env BENCH_PICKLE="${PKL[$m]}" gunicorn -w "$WORKERS" -k sync -b "127.0.0.1:$P_CS"
        --chdir "$ROOT/bench" --log-level warning flask_app:app) ;;
    ort) cmd=(node "$ROOT/bench/ort_server.js" "${ONNX[$m]}" "$P_CS" "$WORKERS") ;;
    esac
    : >"$log.run"
    line=$(timeout $((lim + 40)) "$PY" bench/coldstart.py --name "$s" --url "http://127.0.0.1:$P_CS/invocations" \
        --body "${BODY[$wl]}" --runs 1 --limit "$lim" --log "$log.run" -- "${cmd[@]}")
    tail -n 100 "$log.run" >>"$log"
    rm -f "$log.run"
    [ -n "$line" ] || return 1
    echo "{\"server\":\"$s\",\"model\":\"$m\",\"result\":$line}" >>"$RAW/cold.jsonl"
    case $line in *'"failed_runs": 0'*) return 0 ;; esac
    return 1
}
pairs=()
for m in $AVAIL; do pairs+=("nginfer $m"); done
for m in rf100 rf500; do has "$m" && [ -n "${PKL[$m]:-}" ] && pairs+=("flask $m"); done
for m in $AVAIL; do pairs+=("ort $m" "ort_session $m"); done
has rf100 && pairs+=("fixed rf100")
declare -A COLD_LAST=() COLD_FAILED=()
for round in $(seq "$COLD_RUNS"); do
    for pr in "${pairs[@]}"; do
        [ -n "${COLD_FAILED[$pr]:-}" ] && continue
        est=${COLD_LAST[$pr]:-10}
        left=$(time_left)
        if [ "$left" -lt $((est * 2 + 5)) ]; then
            echo "{\"server\":\"${pr% *}\",\"model\":\"${pr#* }\",\"skipped_round\":$round}" >>"$RAW/cold.jsonl"
            continue
        fi
        lim=30
        [ "$left" -lt 40 ] && lim=$((left - 5))
        t0=$(date +%s)
        cold_one $pr "$lim" || { COLD_FAILED[$pr]=1; say "warning: cold start $pr: no 200 (see $LOGS/cold-${pr// /-}.log)"; }
        COLD_LAST[$pr]=$(($(date +%s) - t0 + 1))
    done
    say "  cold start round $round done"
done

# --- 4b. deploy targets: Lambda runtime, container ------------------------------
# The figures the end-to-end tests measure, taken here so that they land in
# the same report: tests/e2e/test_lambda.sh (nginfer-lambda against the
# Runtime API stand-in, tests/lambda/runtime_api.py: init = process start
# to its first /next, then per invocation over 900 events) and, when podman
# works and the time is left, tests/e2e/test_container.sh (the image as
# SageMaker starts it: `podman run ... serve` to the first 200; 1-2 min
# with the image layers cached, 6-7 the first time).
: >"$RAW/deploy.jsonl"
deploy_note() { # NAME LOG: the test's "# ..." note lines as one JSON line
    "$PY" - "$1" "$2" >>"$RAW/deploy.jsonl" <<'PY'
import json, re, sys
name, log = sys.argv[1], sys.argv[2]
lines = open(log, errors="replace").read().splitlines()
notes = [l[2:] for l in lines if l.startswith("# ")]
out = {"test": name, "passed": sum(l.startswith("PASS ") for l in lines),
       "failed": sum(l.startswith("FAIL ") for l in lines), "notes": notes}
for n in notes:
    m = re.match(r"lambda: init ([0-9.]+) ms, ([0-9.]+) us per invocation", n)
    if m:
        out["lambda_init_ms"], out["lambda_invoke_us"] = float(m.group(1)), float(m.group(2))
    m = re.match(r"container: start to first 200 ([0-9]+) ms \(from podman run; ([0-9]+) ms from the container's start", n)
    if m:
        out["container_first_200_ms"], out["container_first_200_from_start_ms"] = int(m.group(1)), int(m.group(2))
print(json.dumps(out))
PY
}
if [ "$(time_left)" -gt 40 ] && [ -x "$BUILD_SRC/nginfer-lambda" ]; then
    say "deploy: Lambda runtime (tests/e2e/test_lambda.sh)"
    timeout 120 env BUILD="$BUILD_SRC" bash tests/e2e/test_lambda.sh >"$LOGS/deploy-lambda.log" 2>&1
    deploy_note lambda "$LOGS/deploy-lambda.log"
fi
if [ "$(time_left)" -gt 200 ] && command -v podman >/dev/null 2>&1; then
    say "deploy: container (tests/e2e/test_container.sh), $(time_left)s left"
    timeout $(($(time_left) - 15)) env BUILD="$BUILD_SRC" NGINFER_TEST_CONTAINER=1 bash tests/e2e/test_container.sh \
        >"$LOGS/deploy-container.log" 2>&1
    deploy_note container "$LOGS/deploy-container.log"
else
    echo '{"test": "container", "skipped": "podman missing or under 200 s of the time budget left"}' >>"$RAW/deploy.jsonl"
fi

# --- 5. report -------------------------------------------------------------------

# keep the logs short: the last 2000 lines of each
for f in "$LOGS"/*.log; do
    [ -f "$f" ] && [ "$(wc -l <"$f")" -gt 2000 ] && { tail -n 2000 "$f" >"$f.t" && mv "$f.t" "$f"; }
done
echo "{\"seconds\": $(($(date +%s) - T_START)), \"loadavg_end\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >"$RAW/end.json"
say "report"
"$PY" bench/report.py "$W" "$RES" || die "bench/report.py failed"
say "done in $(($(date +%s) - T_START)) s: bench/results/latest.md"

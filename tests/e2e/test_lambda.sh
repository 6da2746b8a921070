#!/bin/bash
# test_lambda.sh: nginfer-lambda against a Runtime API stand-in
# (tests/lambda/runtime_api.py) on 127.0.0.1 and a free port: direct
# invocations, API Gateway REST (1.0), HTTP API (2.0) and Function URL
# events, errors to /response (HTTP 4xx) or /error, chunked events and
# dropped connections, init failures to /runtime/init/error, SIGTERM, 1,000
# invocations without memory growth (VmRSS after 100 vs after 1,000), the
# init and per-invocation times, and `make lambda-zip` (sizes, contents, and
# the packaged bootstrap answering an event).
# Run by tests/run.sh (e2e suite) or alone: BUILD=build bash tests/e2e/test_lambda.sh
# LAMBDA_VALGRIND=1 runs the runtime under valgrind (fewer invocations; no
# RSS check) and fails on any valgrind error or definite leak.
# shellcheck disable=SC2034,SC2154 # lib.sh's variables (code, body, e2e_*)

. "$(dirname "$0")/lib.sh"
e2e_bound 480 "$0" "$@"

LAMBDA=$E2E_BIN/nginfer-lambda
RAPI=$E2E_ROOT/tests/lambda/runtime_api.py
EVTOOL=$E2E_ROOT/tests/lambda/events.py
EV=$E2E_ROOT/tests/lambda/events
MODEL=$E2E_ROOT/models/default.onnx
VG=${LAMBDA_VALGRIND:-}
WAIT=20
[ -n "$VG" ] && WAIT=120

if [ ! -x "$LAMBDA" ]; then
    fail lambda/build "$LAMBDA missing (run make)"
    exit 1
fi

# ---- helpers -------------------------------------------------------------------------

now_ns() { date +%s%N; }

# api_start NAME [runtime_api.py ARGS]: a Runtime API stand-in in $e2e_tmp/NAME;
# sets api_dir, api_pid, api_port. Events are appended to $api_dir/events.
api_start() {
    local name=$1
    shift
    api_dir=$e2e_tmp/$name
    mkdir -p "$api_dir/out"
    : >"$api_dir/events"
    "$E2E_PY" "$RAPI" --events "$api_dir/events" --out "$api_dir/out" --port-file "$api_dir/port" "$@" \
        >"$api_dir/api.log" 2>&1 </dev/null &
    api_pid=$!
    e2e_procs[$api_pid]=''
    for _ in $(seq 100); do
        [ -s "$api_dir/port" ] && break
        is_live "$api_pid" || break
        sleep 0.05
    done
    api_port=$(cat "$api_dir/port" 2>/dev/null)
    [ -n "$api_port" ] || { why="runtime_api.py did not start: $(tail -3 "$api_dir/api.log" | tr '\n' ' ')"; return 1; }
}

# rt_start [VAR=value ...]: nginfer-lambda against the current stand-in, with
# NGINFER_MODEL and LAMBDA_TASK_ROOT unset unless given; sets rt_pid, rt_t0
# (start, ns) and rt_log.
rt_start() {
    local vg=()
    [ -n "$VG" ] && vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
        --show-leak-kinds=definite --log-file="$api_dir/valgrind.log")
    rt_log=$api_dir/runtime.log
    rt_t0=$(now_ns)
    env -u NGINFER_MODEL -u LAMBDA_TASK_ROOT -u LD_LIBRARY_PATH AWS_LAMBDA_RUNTIME_API="127.0.0.1:$api_port" "$@" \
        "${vg[@]}" "${rt_bin:-$LAMBDA}" >"$rt_log" 2>&1 </dev/null &
    rt_pid=$!
    e2e_procs[$rt_pid]=''
}

# rt_stop: SIGTERM, then the exit status in rt_rc (124 = still running after 10 s).
rt_stop() {
    kill -TERM "$rt_pid" 2>/dev/null
    if wait_exit "$rt_pid" 10; then
        wait "$rt_pid"
        rt_rc=$?
    else
        kill -KILL "$rt_pid" 2>/dev/null
        rt_rc=124
    fi
    unset "e2e_procs[$rt_pid]"
}

# vg_check NAME: under LAMBDA_VALGRIND, the last run's valgrind log is empty
# (no invalid access, no definite leak); a no-op otherwise.
vg_check() {
    [ -n "$VG" ] || return 0
    vgok() {
        [ ! -s "$api_dir/valgrind.log" ] || { why="valgrind: $(head -c 800 "$api_dir/valgrind.log" | tr '\n' ' ')"; return 1; }
    }
    t "lambda/valgrind-$1" vgok
}

api_stop() {
    kill -TERM "$api_pid" 2>/dev/null
    wait_exit "$api_pid" 5 || kill -KILL "$api_pid" 2>/dev/null
    wait "$api_pid" 2>/dev/null
    unset "e2e_procs[$api_pid]"
}

n_answers() { find "$api_dir/out" -name '*.response' -o -name '*.error' | wc -l; }

# wait_answers N: until N events are answered (or the runtime exits, or WAIT s).
wait_answers() {
    local n=$(($1))
    for _ in $(seq $((WAIT * 20))); do
        [ "$(n_answers)" -ge "$n" ] && return 0
        is_live "$rt_pid" || break
        sleep 0.05
    done
    why="$(n_answers) of $n events answered; runtime log: $(tail -3 "$rt_log" | tr '\n' ' ')"
    return 1
}

enqueue() { "$E2E_PY" "$EVTOOL" "$@" >>"$api_dir/events"; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# answer ID KIND PY-EXPR: $api_dir/out/ID.KIND (KIND response or error)
# exists and EXPR holds on it (d = the parsed body, lib.sh's py helpers).
answer() {
    local id=$1 kind=$2 other
    body=$api_dir/out/$id.$kind
    [ "$kind" = response ] && other=error || other=response
    if [ ! -f "$body" ]; then
        why="no $kind for $id$([ -f "$api_dir/out/$id.$other" ] && echo "; $other: $(head -c 300 "$api_dir/out/$id.$other")")"
        return 1
    fi
    code=$kind
    py "$3"
}

# Expressions over an HTTP event's answer.
http_ok='d["statusCode"] == 200 and d["headers"]["Content-Type"] == "application/json" and isinstance(d["body"], str) and d["isBase64Encoded"] is False'
body_preds='in_range(json.loads(d["body"])["predictions"], 25, 346)'

# ---- 1. events of every kind, chunked /next answers, dropped connections -----------------

if api_start fn --chunked-every 3 --drop-every 4; then
    rt_start NGINFER_MODEL="$MODEL"
    enqueue one d-features="$EV/direct_features.json" d-instances="$EV/direct_instances.json" \
        v1="$EV/apigw_v1.json" v2="$EV/http_v2.json" v2-stage="$EV/http_v2_stage.json" \
        furl-b64="$EV/function_url_b64.json" v1-bad-json="$EV/apigw_v1_bad_json.json" \
        d-wrong-count="$EV/direct_wrong_count.json" v1-ping="$EV/apigw_v1_ping.json" \
        v1-csv="$EV/apigw_v1_multivalue_csv.json" v2-models="$EV/http_v2_models.json" \
        v2-404="$EV/http_v2_not_found.json" furl-bad-b64="$EV/function_url_bad_base64.json"
    printf 'd-not-json\t{"features": [1, 2,\n' >>"$api_dir/events"
    enqueue big d-big 3000
    enqueue one d-features-again="$EV/direct_features.json"
    n_events=$(wc -l <"$api_dir/events")
    if t lambda/all-events-answered wait_answers "$n_events"; then
        t lambda/direct-features answer d-features response \
            'set(d) == {"prediction", "model_version"} and num(d["prediction"]) and 25 <= d["prediction"] <= 346 and isinstance(d["model_version"], str)'
        t lambda/direct-instances answer d-instances response \
            'len(d["predictions"]) == 3 and in_range(d["predictions"], 25, 346) and "model_version" in d'
        t lambda/apigw-v1 answer v1 response "$http_ok and len(json.loads(d['body'])['predictions']) == 2 and $body_preds"
        t lambda/http-api-v2 answer v2 response "$http_ok and len(json.loads(d['body'])['predictions']) == 2 and $body_preds"
        t lambda/http-api-v2-named-stage answer v2-stage response "$http_ok and len(json.loads(d['body'])['predictions']) == 1 and $body_preds"
        t lambda/function-url-base64 answer furl-b64 response "$http_ok and len(json.loads(d['body'])['predictions']) == 2 and $body_preds"
        t lambda/http-bad-json-400 answer v1-bad-json response \
            'd["statusCode"] == 400 and d["headers"]["Content-Type"] == "application/json" and is_error(json.loads(d["body"])) and json.loads(d["body"])["error"]["code"] == "bad_request"'
        t lambda/direct-wrong-count-error answer d-wrong-count error \
            'd["errorType"] == "InvalidInput" and "expected 10" in d["errorMessage"] and d["stackTrace"] == [] and open(sys.argv[1][:-len(".error")] + ".error-type").read() == "InvalidInput"'
        t lambda/direct-not-json-error answer d-not-json error \
            'd["errorType"] == "InvalidInput" and "not JSON" in d["errorMessage"]'
        t lambda/http-ping answer v1-ping response 'd["statusCode"] == 200 and json.loads(d["body"]) == {"status": "ok"}'
        t lambda/http-multivalue-csv answer v1-csv response \
            'd["statusCode"] == 200 and d["headers"]["Content-Type"] == "text/csv" and len(d["body"].split()) == 2 and all(25 <= float(x) <= 346 for x in d["body"].split())'
        t lambda/http-models answer v2-models response \
            "$http_ok and json.loads(d['body'])['inputs'][0]['shape'] == [-1, 10]"
        t lambda/http-not-found-404 answer v2-404 response \
            'd["statusCode"] == 404 and json.loads(d["body"])["error"]["code"] == "not_found"'
        t lambda/function-url-bad-base64-400 answer furl-bad-b64 response \
            'd["statusCode"] == 400 and "base64" in json.loads(d["body"])["error"]["message"]'
        t lambda/big-event answer d-big response 'len(d["predictions"]) == 3000 and in_range(d["predictions"], 25, 346)'
        t lambda/still-answering answer d-features-again response '25 <= d["prediction"] <= 346'
        body=$e2e_tmp/stats
        curl -s --noproxy '*' --max-time 5 -o "$body" "http://127.0.0.1:$api_port/test/stats"
        code=200
        t lambda/chunked-and-reconnect py 'd["chunked"] >= 3 and d["dropped"] >= 3 and d["connections"] >= d["dropped"] + 1 and d["answers"] == d["served"]'
        note "lambda: $(tr -d '\n' <"$body")"
    else
        tail -5 "$rt_log" | sed 's/^/#   /'
    fi
    head -1 "$rt_log" >"$e2e_tmp/ready.json"
    body=$e2e_tmp/ready.json
    code=log
    t lambda/startup-log-line py 'd["event"] == "ready" and d["model_setup_ms"] >= 0 and "load_ms" in d'
    rt_stop
    exit0() { [ "$rt_rc" -eq 0 ] || { why="exit status $rt_rc after SIGTERM: $(tail -2 "$rt_log" | tr '\n' ' ')"; return 1; }; }
    t lambda/sigterm-exit-0 exit0
    vg_check events
    api_stop
else
    fail lambda/api-start "$why"
fi

# ---- 2. 1,000 invocations: memory, init and per-invocation time ---------------------------------

mix=("$EV/direct_features.json" "$EV/direct_instances.json" "$EV/apigw_v1.json" "$EV/http_v2.json"
    "$EV/function_url_b64.json" "$EV/direct_wrong_count.json" "$EV/apigw_v1_bad_json.json")
n1=100 n2=1000
[ -n "$VG" ] && n1=20 n2=60
if api_start perf; then
    rt_start NGINFER_MODEL="$MODEL"
    enqueue cycle a "$n1" "${mix[@]}"
    if t lambda/first-$n1-invocations wait_answers "$n1"; then
        sleep 0.2
        rss1=$(rss_kb "$rt_pid")
        enqueue cycle b $((n2 - n1)) "${mix[@]}"
        if t lambda/$n2-invocations wait_answers "$n2"; then
            sleep 0.2
            rss2=$(rss_kb "$rt_pid")
            if [ -n "$VG" ]; then
                skip lambda/no-memory-growth "RSS under valgrind says nothing"
            elif grep -aq __asan_init "$LAMBDA"; then
                skip lambda/no-memory-growth "an ASan build: its quarantine holds freed memory"
            else
                grow() {
                    if [ -z "$rss1" ] || [ -z "$rss2" ]; then why="no VmRSS"; return 1; fi
                    [ $((rss2 - rss1)) -le 256 ] || { why="VmRSS $rss1 kB after $n1, $rss2 kB after $n2 (+$((rss2 - rss1)) kB > 256 kB)"; return 1; }
                }
                t lambda/no-memory-growth grow
            fi
            note "lambda: VmRSS $rss1 kB after $n1 invocations, $rss2 kB after $n2 (+$((rss2 - rss1)) kB)"
            # one event in 7 (direct_wrong_count) goes to /error
            mixed() {
                local errs want
                errs=$(find "$api_dir/out" -name 'b-*.error' | wc -l)
                want=$(((n2 - n1) / 7))
                [ "$errs" -ge "$want" ] && [ "$errs" -le $((want + 1)) ] ||
                    { why="$errs /error answers in the second batch, want $want or $((want + 1))"; return 1; }
            }
            t lambda/mixed-answers mixed
            read -r mean p50 p99 wall cnt < <("$E2E_PY" "$EVTOOL" timing "$api_dir/out/log.jsonl" b)
            first=$("$E2E_PY" "$EVTOOL" first-next "$api_dir/out/log.jsonl")
            init_ms=$(awk -v a="$first" -v b="$rt_t0" 'BEGIN { printf "%.1f", a * 1000 - b / 1e6 }')
            setup=$(head -1 "$rt_log" | "$E2E_PY" -c 'import json,sys; print(json.loads(sys.stdin.readline()).get("model_setup_ms", "?"))' 2>/dev/null)
            own=$(grep '"latency_us"' "$rt_log" | tail -n $((n2 - n1)) |
                sed 's/.*"latency_us":\([0-9.]*\).*/\1/' | awk '{ s += $1 } END { if (NR) printf "%.0f", s / NR }')
            note "lambda: init $init_ms ms, $mean us per invocation"
            note "lambda: init = process start to first /next (model load + warm-up: $setup ms); per invocation over $cnt: mean $mean us, p50 $p50 us, p99 $p99 us (/next sent to answer received, as the stand-in logs them); $wall us per event end to end; ${own:-?} us inside the runtime (its access log: event in hand to answer posted)"
        fi
    fi
    rt_stop
    vg_check perf
    api_stop
else
    fail lambda/api-start "$why"
fi

# ---- 3. init failures ----------------------------------------------------------------------------

# init_fails NAME WANT [VAR=value ...]: the runtime exits non-zero within 10 s, having
# posted Runtime.InitError with WANT in errorMessage and never called /next.
init_fails() {
    local name=$1 want=$2
    shift 2
    api_start "$name" || return 1
    rt_start "$@"
    if ! wait_exit "$rt_pid" $((WAIT / 2)); then
        rt_stop
        api_stop
        why="still running after $((WAIT / 2)) s"
        return 1
    fi
    wait "$rt_pid"
    rt_rc=$?
    unset "e2e_procs[$rt_pid]"
    api_stop
    [ "$rt_rc" -ne 0 ] || { why="exit status 0"; return 1; }
    [ "$(cat "$api_dir/out/init-error-type" 2>/dev/null)" = Runtime.InitError ] ||
        { why="no init error with Lambda-Runtime-Function-Error-Type Runtime.InitError; log: $(tail -2 "$rt_log" | tr '\n' ' ')"; return 1; }
    ! grep -q '"next"' "$api_dir/out/log.jsonl" || { why="/next was called"; return 1; }
    body=$api_dir/out/init-error
    code=init
    export LAMBDA_WANT=$want
    py 'd["errorType"] == "Runtime.InitError" and __import__("os").environ["LAMBDA_WANT"] in d["errorMessage"] and d["stackTrace"] == []' ||
        return 1
    note "$name: exit $rt_rc: $(head -c 200 "$body")"
}
t lambda/init-error-missing-model init_fails init-missing /nonexistent NGINFER_MODEL=/nonexistent
vg_check init-missing
head -c 4096 /dev/urandom >"$e2e_tmp/corrupt.onnx"
t lambda/init-error-corrupt-model init_fails init-corrupt "$e2e_tmp/corrupt.onnx" NGINFER_MODEL="$e2e_tmp/corrupt.onnx"
vg_check init-corrupt
mkdir -p "$e2e_tmp/emptytask"
if [ -e /opt/model.onnx ] || [ -e /opt/models/default.onnx ]; then
    skip lambda/init-error-no-model "a model exists under /opt on this machine"
else
    t lambda/init-error-no-model init_fails init-none "$e2e_tmp/emptytask/model.onnx" LAMBDA_TASK_ROOT="$e2e_tmp/emptytask"
fi

no_api() {
    local out=$e2e_tmp/noapi.out rc
    timeout 10 env -u AWS_LAMBDA_RUNTIME_API NGINFER_MODEL="$MODEL" "$LAMBDA" >"$out" 2>&1 </dev/null
    rc=$?
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q AWS_LAMBDA_RUNTIME_API "$out" || { why="exit $rc: $(head -c 200 "$out")"; return 1; }
}
t lambda/no-runtime-api-variable no_api

api_gone() {
    local out=$e2e_tmp/gone.out rc port
    port=$(free_port 400) || { why="no free port"; return 1; }
    timeout 10 env AWS_LAMBDA_RUNTIME_API=127.0.0.1:$port NGINFER_MODEL="$MODEL" "$LAMBDA" >"$out" 2>&1 </dev/null
    rc=$?
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'connect' "$out" || { why="exit $rc: $(tail -c 300 "$out")"; return 1; }
}
t lambda/runtime-api-unreachable api_gone

# ---- 4. model from the function package ($LAMBDA_TASK_ROOT/model.onnx) ---------------------------

task_root() {
    local root=$e2e_tmp/task
    mkdir -p "$root"
    ln -sf "$MODEL" "$root/model.onnx"
    api_start taskroot || return 1
    rt_start LAMBDA_TASK_ROOT="$root"
    enqueue one one="$EV/direct_features.json"
    wait_answers 1 || { rt_stop; api_stop; return 1; }
    answer one response '25 <= d["prediction"] <= 346'
    local rc=$?
    rt_stop
    api_stop
    return $rc
}
t lambda/model-from-task-root task_root

# ---- 5. make lambda-zip -----------------------------------------------------------------------------

if [ -n "$VG" ]; then
    skip lambda/zip "not under valgrind"
elif grep -aq __asan_init "$LAMBDA"; then
    skip lambda/zip "an ASan build is not packaged"
else
    dist=$e2e_tmp/dist
    zip_ok() {
        local out=$e2e_tmp/zip.out
        if ! timeout 300 make -C "$E2E_ROOT" -s lambda-zip BUILD="${BUILD:-build}" DIST="$dist" >"$out" 2>&1; then
            why="make lambda-zip failed: $(tail -3 "$out" | tr '\n' ' ')"
            return 1
        fi
        grep '^lambda-zip: .*bytes' "$out" | sed 's/^/# /'
        why=$("$E2E_PY" - "$dist" <<'EOF'
import os, stat, sys, zipfile
d = sys.argv[1]
def bad(m):
    print(m); sys.exit(1)
fn, layer = os.path.join(d, "nginfer-lambda.zip"), os.path.join(d, "nginfer-model-layer.zip")
for z in (fn, layer):
    if not os.path.isfile(z): bad("%s missing" % z)
    if os.path.getsize(z) > 50 * 2**20: bad("%s over 50 MB" % z)
total = 0
for z in (fn, layer):
    with zipfile.ZipFile(z) as f:
        total += sum(i.file_size for i in f.infolist())
if total > 250 * 2**20: bad("function + layer %d bytes unzipped, over 250 MB" % total)
with zipfile.ZipFile(fn) as f:
    names = {i.filename: i for i in f.infolist()}
    b = names.get("bootstrap")
    if not b: bad("no bootstrap at the root of the function zip: %s" % sorted(names))
    if not (b.external_attr >> 16) & stat.S_IXUSR: bad("bootstrap is not executable")
    if "lib/libopenblas.so.0" not in names: bad("no lib/libopenblas.so.0: %s" % sorted(names))
    if any(n.startswith("lib/libc.so") or n.startswith("lib/ld-linux") for n in names): bad("glibc packaged")
with zipfile.ZipFile(layer) as f:
    if "models/default.onnx" not in f.namelist(): bad("layer lacks models/default.onnx: %s" % f.namelist())
EOF
        ) || return 1
    }
    if t lambda/zip zip_ok; then
        # The package itself: unzipped, with no LD_LIBRARY_PATH, must load its own lib/
        # and answer an event with the layer's model.
        packaged() {
            local task=$e2e_tmp/pkg/task opt=$e2e_tmp/pkg/opt
            mkdir -p "$task" "$opt"
            # unzip(1) may not be installed: zipfile, with the modes Lambda would keep
            "$E2E_PY" -c '
import os, sys, zipfile
for z, d in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    with zipfile.ZipFile(z) as f:
        for i in f.infolist():
            p = f.extract(i, d)
            if i.external_attr >> 16: os.chmod(p, (i.external_attr >> 16) & 0o777)
' "$dist/nginfer-lambda.zip" "$task" "$dist/nginfer-model-layer.zip" "$opt" || { why="unzipping failed"; return 1; }
            api_start pkg || return 1
            rt_bin=$task/bootstrap rt_start LAMBDA_TASK_ROOT="$task" NGINFER_MODEL="$opt/models/default.onnx"
            enqueue one one="$EV/http_v2.json"
            wait_answers 1 || { rt_stop; api_stop; return 1; }
            local maps
            maps=$(grep -c "$task/lib/" "/proc/$rt_pid/maps" 2>/dev/null)
            answer one response "$http_ok and $body_preds"
            local rc=$?
            rt_stop
            api_stop
            [ $rc -eq 0 ] || return 1
            [ "${maps:-0}" -gt 0 ] || { why="the bootstrap did not map libraries from $task/lib"; return 1; }
        }
        t lambda/zip-bootstrap-runs packaged
    fi
fi

echo "# $e2e_passed passed, $e2e_failed failed"
[ "$e2e_failed" -eq 0 ]

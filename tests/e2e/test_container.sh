#!/bin/bash
# test_container.sh: the container image (docker/) end to end.
#
# Always (no container needed, a second or two): docker/nginfer-entrypoint on
# this machine with the worker from $BUILD: the worker count from fake
# cgroup v1/v2 trees and NGINFER_WORKERS, and how the model is chosen
# (/opt/ml/model, NGINFER_MODEL, NGINFER_DEFAULT_MODEL, a clear exit 1 when
# there is none).
#
# With NGINFER_TEST_CONTAINER=1 or CI=true (else one SKIP line saying so):
# installs podman (+ runc, uidmap, slirp4netns, fuse-overlayfs) with apt-get
# when missing, `make image` (the first time the base image is made from
# Debian's archive: a few minutes), then, with `podman --runtime runc`:
#   the image: under 60 MB, user, no compiler, Python or package manager in
#     it (but Debian's package records, for scanners)
#   serve --read-only --tmpfs /tmp --user 10001 on 127.0.0.1:PORT:8080 with
#     the bundled model: start to first 200 (the "# container:" line), /ping,
#     CSV and JSON, Accept, custom attributes in the log, 413 over 6 MB,
#     nothing but uid 10001 running, the root filesystem read-only, one
#     worker per CPU; podman stop while slow uploads are in flight: each
#     gets its 200, exit 0 well within the 30 s
#   a model in /opt/ml/model (a two-layer perceptron made here with
#     python3-onnx, served with NGINFER_GEMM=openblas so the image's cut-down OpenBLAS (dlopen) runs sgemm: its answer
#     must match numpy's within 1e-4), SAGEMAKER_BIND_TO_PORT=9090, --cpus 1
#     (one worker); SIGKILL to multiwatch inside: the container exits non-zero
#   no model: exits 1 at once with the reason; lambda --event (when the
#     image has nginfer-lambda)
# Every container it starts is removed at the end (by id); images are kept.
# Env: NGINFER_TEST_CONTAINER=1, NGINFER_TEST_IMAGE (default
#      localhost/nginfer:latest), NGINFER_TEST_NET=host (publish nothing:
#      host network, nginx on 127.0.0.1 only), E2E_KEEP=1.
# Run by tests/run.sh (e2e suite) or alone:
#   NGINFER_TEST_CONTAINER=1 BUILD=build bash tests/e2e/test_container.sh

. "$(dirname "$0")/lib.sh"
e2e_bound 590 "$0" "$@"

entry=$E2E_ROOT/docker/nginfer-entrypoint
model=$E2E_ROOT/models/default.onnx
image=${NGINFER_TEST_IMAGE:-localhost/nginfer:latest}
row='0.038076,0.05068,0.061696,0.021872,-0.044223,-0.034821,-0.043401,-0.0025923,0.019907,-0.017646'

# --- the entry script on this machine ------------------------------------------------

# entry_run NAME ENV... -- ARGS: the entry script with NGINFER_HOME a copy of
# the image's /opt/nginfer layout made of this tree's files; output in
# $e2e_tmp/NAME.out, status in rc.
[ -x "$E2E_BIN/nginfer-worker" ] || { fail entrypoint/worker "$E2E_BIN/nginfer-worker: not built (make)"; exit 1; }
fake_home=$e2e_tmp/home
mkdir -p "$fake_home/bin" "$fake_home/conf" "$fake_home/models" "$fake_home/tools"
ln -s "$E2E_BIN/nginfer-worker" "$fake_home/bin/nginfer-worker"
cp "$E2E_ROOT/docker/nginfer.cfg" "$fake_home/conf/"
ln -s "$model" "$fake_home/models/default.onnx"
rc=0
entry_run() {
    local name=$1 envs=()
    shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    env -u NGINFER_MODEL -u NGINFER_WORKERS -u NGINFER_CONFIG -u NGINFER_DEFAULT_MODEL \
        -u SAGEMAKER_MODEL_SERVER_WORKERS -u SAGEMAKER_BIND_TO_PORT \
        NGINFER_HOME="$fake_home" NGINFER_MODEL_DIR="$e2e_tmp/ml-empty" "${envs[@]}" \
        timeout 20 bash "$entry" "$@" >"$e2e_tmp/$name.out" 2>&1 </dev/null
    rc=$?
}
# has NAME STATUS TEXT: the last entry_run NAME exited STATUS and printed TEXT.
has() {
    [ "$rc" -eq "$2" ] && grep -qF -- "$3" "$e2e_tmp/$1.out" && return 0
    why="exit $rc (want $2), output: $(head -c 300 "$e2e_tmp/$1.out" | tr '\n' ' ') (want '$3')"
    return 1
}

mkdir -p "$e2e_tmp/ml-empty"
ncpu=$(nproc)
cg=$e2e_tmp/cg
mkdir -p "$cg/v2/kubepods/pod1/ctr" "$cg/v1a/cpu" "$cg/v1b/cpu,cpuacct"
: >"$cg/v2/cgroup.controllers"
echo 'max 100000' >"$cg/v2/kubepods/cpu.max"
echo '150000 100000' >"$cg/v2/kubepods/pod1/cpu.max"
echo 'max 100000' >"$cg/v2/kubepods/pod1/ctr/cpu.max"
echo '0::/kubepods/pod1/ctr' >"$cg/self-nested"
echo '0::/' >"$cg/self-root"
echo 100000 >"$cg/v1a/cpu/cpu.cfs_quota_us"
echo 100000 >"$cg/v1a/cpu/cpu.cfs_period_us"
echo -1 >"$cg/v1b/cpu,cpuacct/cpu.cfs_quota_us"
echo 100000 >"$cg/v1b/cpu,cpuacct/cpu.cfs_period_us"
want2=$((ncpu < 2 ? ncpu : 2))

entry_run cg-v2 NGINFER_CGROUP_FS="$cg/v2" NGINFER_PROC_CGROUP="$cg/self-nested" -- workers
t entrypoint/workers-cgroup-v2-nested has cg-v2 0 "$want2 (cgroup v2 $cg/v2/kubepods/pod1/cpu.max 150000 100000"
echo '50000 100000' >"$cg/v2/cpu.max"
entry_run cg-v2-root NGINFER_CGROUP_FS="$cg/v2" NGINFER_PROC_CGROUP="$cg/self-root" -- workers
t entrypoint/workers-cgroup-v2-half-cpu has cg-v2-root 0 "1 (cgroup v2 $cg/v2/cpu.max 50000 100000"
entry_run cg-v1 NGINFER_CGROUP_FS="$cg/v1a" -- workers
t entrypoint/workers-cgroup-v1 has cg-v1 0 "1 (cgroup v1 $cg/v1a/cpu cfs_quota_us 100000"
entry_run cg-v1-none NGINFER_CGROUP_FS="$cg/v1b" -- workers
t entrypoint/workers-no-quota-nproc has cg-v1-none 0 "$ncpu (nproc $ncpu, no CPU quota)"
entry_run cg-env NGINFER_CGROUP_FS="$cg/v1a" NGINFER_WORKERS=3 -- workers
t entrypoint/workers-env-override has cg-env 0 "3 (NGINFER_WORKERS)"
entry_run cg-bad NGINFER_WORKERS=two -- workers
t entrypoint/workers-env-bad has cg-bad 1 "bad worker count 'two'"

ml=$e2e_tmp/ml
mkdir -p "$ml/one" "$ml/named" "$ml/sub/v1" "$ml/two"
cp "$model" "$ml/one/model.onnx"
cp "$model" "$ml/named/diabetes.onnx"
cp "$model" "$ml/sub/v1/m.onnx"
cp "$model" "$ml/two/a.onnx"
cp "$model" "$ml/two/b.onnx"
entry_run m-none -- check
t entrypoint/no-model-exits-1 has m-none 1 "no model: $e2e_tmp/ml-empty has no model.onnx"
entry_run m-default NGINFER_DEFAULT_MODEL=1 -- check
t entrypoint/default-model-when-told has m-default 0 "from the bundled default model (NGINFER_DEFAULT_MODEL=1)"
entry_run m-dir NGINFER_MODEL_DIR="$ml/one" NGINFER_DEFAULT_MODEL=1 -- check
t entrypoint/model-dir-model-onnx has m-dir 0 "model $ml/one/model.onnx (from $ml/one)"
entry_run m-sub NGINFER_MODEL_DIR="$ml/sub" -- check
t entrypoint/model-dir-single-onnx has m-sub 0 "model $ml/sub/v1/m.onnx"
entry_run m-two NGINFER_MODEL_DIR="$ml/two" -- check
t entrypoint/model-dir-two-models has m-two 1 "name one with NGINFER_MODEL"
entry_run m-env NGINFER_MODEL_DIR="$ml/two" NGINFER_MODEL=b.onnx -- check
t entrypoint/model-env-relative has m-env 0 "model $ml/two/b.onnx (from NGINFER_MODEL)"
entry_run m-env-missing NGINFER_MODEL=/nonexistent.onnx -- check
t entrypoint/model-env-missing has m-env-missing 1 "NGINFER_MODEL=/nonexistent.onnx: no such file"
entry_run bad-port NGINFER_DEFAULT_MODEL=1 NGINFER_WORKERS=1 SAGEMAKER_BIND_TO_PORT=http -- serve
t entrypoint/bad-port has bad-port 1 "bad port 'http'"

# --- the container: only when asked (it builds the image) ----------------------------

summary() {
    echo "# e2e container: $e2e_passed passed, $e2e_failed failed"
    [ "$e2e_failed" -eq 0 ]
}
if [ "${NGINFER_TEST_CONTAINER:-}" != 1 ] && [ "${CI:-}" != true ]; then
    skip container/all "set NGINFER_TEST_CONTAINER=1 (or CI=true) to build and run the image with podman (about 6-7 minutes the first time, 1-2 after)"
    summary
    exit
fi

if ! command -v podman >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        t0=$SECONDS
        note "installing podman runc uidmap slirp4netns fuse-overlayfs with apt-get"
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                podman runc uidmap slirp4netns fuse-overlayfs; } >"$e2e_tmp/apt.log" 2>&1; then
            skip container/all "podman is not installed and apt-get could not install it: $(tail -2 "$e2e_tmp/apt.log" | tr '\n' ' ')"
            summary
            exit
        fi
        note "podman installed in $((SECONDS - t0)) s"
    else
        skip container/all "podman is not installed (apt-get install podman runc, as root)"
        summary
        exit
    fi
fi
e2e_podman container/all || { summary; exit; }

# Containers we start, by id (cidfiles), removed whatever happens.
cid_dir=$e2e_tmp/cids
mkdir -p "$cid_dir"
c_cleanup() {
    local f id
    for f in "$cid_dir"/*; do
        [ -s "$f" ] || continue
        id=$(cat "$f")
        "${pm[@]}" rm -f "$id" >/dev/null 2>&1
    done
    e2e_cleanup
}
trap c_cleanup EXIT
c_n=0
# crun NAME ARGS...: podman run ARGS with a cidfile; NAME's id is $(cid NAME).
crun() {
    local name=$1
    shift
    c_n=$((c_n + 1))
    "${pm[@]}" run --cidfile "$cid_dir/$c_n-$name" "${ulim[@]}" "$@"
}
cid() { cat "$cid_dir"/*-"$1" 2>/dev/null | head -1; }

# --- image ----------------------------------------------------------------------------

t0=$SECONDS
if make -C "$E2E_ROOT" image IMAGE="$image" CONTAINER=podman >"$e2e_tmp/image.log" 2>&1; then
    pass container/make-image
    note "container: make image took $((SECONDS - t0)) s ($(grep -q 'exists (cached' "$e2e_tmp/image.log" && echo 'base cached' || echo 'base built'))"
    note "$(grep '^image: .*MB uncompressed' "$e2e_tmp/image.log")"
else
    fail container/make-image "exit status $? after $((SECONDS - t0)) s: $(tail -5 "$e2e_tmp/image.log" | tr '\n' ' ')"
    summary
    exit
fi

# The goal of issue 6: under 60 MB uncompressed with the default model.
size=$("${pm[@]}" image inspect --format '{{.Size}}' "$image")
[ -n "$size" ] && [ "$size" -lt 60000000 ] &&
    pass container/image-size-under-60mb || fail container/image-size-under-60mb "size $size bytes"
user=$("${pm[@]}" image inspect --format '{{.Config.User}}' "$image")
[ "$user" = 10001:10001 ] && pass container/image-user-10001 || fail container/image-user-10001 "User is '$user'"
tools=$(crun tools --rm --entrypoint /bin/bash "$image" -c \
    'for c in gcc cc c99 make python3 python protoc-c; do command -v $c; done; true' 2>&1)
[ -z "$tools" ] && pass container/no-toolchain || fail container/no-toolchain "found: $(echo "$tools" | tr '\n' ' ')"
# A root made of the programs it needs (docker/mkroot.sh): no package
# manager or perl, but the dpkg records of what it holds (for scanners),
# and the tools the entry scripts call.
minimal=$(crun minimal --rm --entrypoint /bin/bash "$image" -c '
    for c in apt-get dpkg perl; do command -v $c; done
    for c in sh bash nginx spawn-fcgi multiwatch setsid setpriv flock mkfifo pgrep ps stat sed grep find sort seq; do
        command -v $c >/dev/null || echo "missing $c"
    done
    [ -s /var/lib/dpkg/status.d/nginx ] && [ -s /var/lib/dpkg/status.d/libc6 ] || echo "no dpkg records"
    true' 2>&1)
[ -z "$minimal" ] && pass container/minimal-root || fail container/minimal-root "$(echo "$minimal" | tr '\n' ' ')"

# --- no model: exit 1 at once, one line saying why -------------------------------------

out=$(timeout 60 "${pm[@]}" run --rm "${ulim[@]}" --read-only --tmpfs /tmp "$image" serve 2>&1)
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$out" | grep -q 'no model: /opt/ml/model has no model.onnx'; then
    pass container/no-model-exits-nonzero
else
    fail container/no-model-exits-nonzero "exit $rc: $(echo "$out" | tail -2 | tr '\n' ' ')"
fi

# --- lambda entry point ------------------------------------------------------------------

if crun lambda-probe --rm --entrypoint /bin/test "$image" -x /usr/local/bin/nginfer-lambda 2>/dev/null; then
    ev=$E2E_ROOT/tests/lambda/events/direct_instances.json
    if [ -f "$ev" ]; then
        mkdir -p "$e2e_tmp/ev" && cp "$ev" "$e2e_tmp/ev/" && chmod -R a+rX "$e2e_tmp/ev"
        out=$(timeout 60 "${pm[@]}" run --rm "${ulim[@]}" --read-only --tmpfs /tmp -e NGINFER_DEFAULT_MODEL=1 \
            -v "$e2e_tmp/ev:/ev:ro" "$image" lambda --event /ev/direct_instances.json 2>&1)
        rc=$?
        [ $rc -eq 0 ] && echo "$out" | grep -q '"predictions"' &&
            pass container/lambda-event || fail container/lambda-event "exit $rc: $(echo "$out" | tail -3 | tr '\n' ' ')"
    else
        skip container/lambda-event "no tests/lambda/events/direct_instances.json"
    fi
else
    skip container/lambda-event "the image has no /usr/local/bin/nginfer-lambda"
fi

# --- serve: read-only, uid 10001, bundled model ----------------------------------------------

port=$(free_port 0) || { fail container/port "no free port"; summary; exit; }
# shellcheck disable=SC2034
base=http://127.0.0.1:$port
# Loopback only: the published port is bound to 127.0.0.1, or with
# NGINFER_TEST_NET=host nginx itself listens on 127.0.0.1 (a config that
# says so) and no port is published.
printf 'listen = "127.0.0.1:8080";\n' >"$e2e_tmp/loopback.cfg"
chmod 0644 "$e2e_tmp/loopback.cfg"
net_args() { # net_args HOST_PORT CONTAINER_PORT: how to reach it
    if [ "${NGINFER_TEST_NET:-}" = host ]; then
        echo "--network host -v $e2e_tmp/loopback.cfg:/etc/nginfer-loopback.cfg:ro -e NGINFER_CONFIG=/etc/nginfer-loopback.cfg -e NGINFER_PORT=$1 -e SAGEMAKER_BIND_TO_PORT=$1"
    else
        echo "-p 127.0.0.1:$1:$2"
    fi
}

# wait_code URL CODE SECONDS [CURL ARGS]: polls until URL answers CODE.
wait_code() {
    local url=$1 want=$2 n=$(($3 * 50)) c
    shift 3
    while [ $n -gt 0 ]; do
        c=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 2 "$@" "$url" 2>/dev/null)
        [ "$c" = "$want" ] && return 0
        sleep 0.02
        n=$((n - 1))
    done
    why="$url: last answer $c, want $want"
    return 1
}

t_run=$(date +%s%N)
# shellcheck disable=SC2046
if ! crun serve -d --read-only --tmpfs /tmp --user 10001 -e NGINFER_DEFAULT_MODEL=1 \
    $(net_args "$port" 8080) "$image" serve >"$e2e_tmp/serve.run" 2>&1; then
    fail container/serve-start "podman run failed: $(tail -3 "$e2e_tmp/serve.run" | tr '\n' ' ') (NGINFER_TEST_NET=host to try without publishing)"
    summary
    exit
fi
ca=$(cid serve)
first='' first200=''
# Polls /invocations every 10 ms (a podman call takes 100 ms or more, so
# whether the container still runs is asked only every 100 rounds).
for i in $(seq 3000); do
    c=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 2 -H 'Content-Type: text/csv' \
        --data-binary "$row" "$base/invocations" 2>/dev/null)
    now=$(date +%s%N)
    [ -z "$first" ] && [ "$c" != 000 ] && first="$(((now - t_run) / 1000000)) ms (HTTP $c)"
    if [ "$c" = 200 ]; then first200=$now; break; fi
    if [ $((i % 100)) -eq 0 ]; then
        [ "$("${pm[@]}" inspect --format '{{.State.Running}}' "$ca" 2>/dev/null)" = true ] || break
    fi
    sleep 0.01
done
if [ -n "$first200" ]; then
    started=$("${pm[@]}" inspect --format '{{.State.StartedAt.UnixNano}}' "$ca" 2>/dev/null)
    pass container/serve-start
    note "container: start to first 200 $(((first200 - t_run) / 1000000)) ms (from podman run; $(((first200 - started) / 1000000)) ms from the container's start; first answer of any kind at $first)"
else
    fail container/serve-start "no 200 on /invocations within 30 s: $("${pm[@]}" logs "$ca" 2>&1 | tail -4 | tr '\n' ' ')"
    summary
    exit
fi

req GET /ping
t container/ping expect 200

req POST /invocations -H 'Content-Type: text/csv' -H 'Accept: text/csv' --data-binary "$row"$'\n'"$row"
csv_two() {
    expect 200 || return 1
    case $ctype in text/csv*) ;; *) why="Content-Type '$ctype', want text/csv"; return 1 ;; esac
    [ "$(grep -c . "$body")" -eq 2 ] || { why="want 2 lines: $(head -c 200 "$body" | tr '\n' '|')"; return 1; }
}
t container/invocations-csv csv_two

printf '{"instances": [[%s], [%s], [%s]]}' "$row" "$row" "$row" >"$e2e_tmp/three.json"
req POST /invocations -H 'Content-Type: application/json' --data-binary "@$e2e_tmp/three.json"
t container/invocations-json expect 200 'len(preds(d)) == 3 and in_range(preds(d), 25, 346)'

req POST /invocations -H 'Content-Type: text/csv' -H 'Accept: application/json' \
    -H 'X-Amzn-SageMaker-Custom-Attributes: trace_id=e2e-container' --data-binary "$row"
t container/custom-attributes expect 200 'len(preds(d)) == 1'
sleep 0.2
"${pm[@]}" logs "$ca" >"$e2e_tmp/serve.log" 2>&1
grep -q '"custom_attributes":"trace_id=e2e-container"' "$e2e_tmp/serve.log" &&
    pass container/custom-attributes-logged || fail container/custom-attributes-logged "not in podman logs: $(grep -c . "$e2e_tmp/serve.log") lines"

req POST /invocations -H 'Content-Type: text/csv' -H 'Accept: application/xml' --data-binary "$row"
t container/accept-xml-406 expect_error 406
req POST /invocations -H 'Content-Type: text/plain' --data-binary "$row"
t container/text-plain-415 expect_error 415
head -c $((6 * 1024 * 1024 + 1024)) /dev/zero | tr '\0' '0' >"$e2e_tmp/big.csv"
req POST /invocations -H 'Content-Type: text/csv' --data-binary "@$e2e_tmp/big.csv"
t container/over-6mb-413 expect_error 413

ps_out=$("${pm[@]}" exec "$ca" ps -eo uid=,ppid=,pid=,comm= 2>&1)
bad=$(echo "$ps_out" | awk '$1 != 10001')
[ -n "$ps_out" ] && [ -z "$bad" ] && pass container/all-uid-10001 || fail container/all-uid-10001 "$(echo "${bad:-$ps_out}" | tr '\n' ';')"
mw=$(echo "$ps_out" | awk '$4 == "multiwatch" { print $3 }' | head -1)
nw=$(echo "$ps_out" | awk -v m="$mw" '$2 == m && $4 == "nginfer-worker"' | wc -l)
cw=$("${pm[@]}" exec "$ca" /usr/local/bin/nginfer-entrypoint workers 2>/dev/null | cut -d' ' -f1)
[ -n "$mw" ] && [ "$nw" = "$cw" ] && pass container/one-worker-per-cpu ||
    fail container/one-worker-per-cpu "multiwatch '$mw' has $nw workers; entrypoint says $cw"
if "${pm[@]}" exec "$ca" touch /opt/nginfer/x 2>/dev/null; then
    fail container/read-only-root "could write /opt/nginfer/x"
else
    pass container/read-only-root
fi
runfiles=$("${pm[@]}" exec "$ca" ls /tmp/nginfer 2>&1 | tr '\n' ' ')
case " $runfiles " in *" worker.sock "*" nginx.conf "* | *" nginx.conf "*" worker.sock "*) pass container/run-dir-in-tmp ;;
*) fail container/run-dir-in-tmp "ls /tmp/nginfer: $runfiles" ;;
esac
grep -q '"event":"ready"' "$e2e_tmp/serve.log" && pass container/logs-on-stdout ||
    fail container/logs-on-stdout "no worker ready line in podman logs"

# Drain: three uploads of 150 KB at 50 KB/s (3 s each) are in flight when
# podman stop sends SIGTERM: nginx stops accepting, finishes them (each must
# get its 200), the workers finish, the container exits 0, well within 30 s.
"$E2E_PY" -c '
import json, sys
r = [float(x) for x in sys.argv[1].split(",")]
open(sys.argv[2], "w").write(json.dumps({"instances": [r] * 1400}))' "$row" "$e2e_tmp/slow.json"
drain() {
    local pids=() i codes t0 ms rc
    for i in 1 2 3; do
        curl -s --noproxy '*' -o "$e2e_tmp/slow$i.out" -w '%{http_code}' --max-time 25 --limit-rate 50k \
            -H 'Content-Type: application/json' --data-binary "@$e2e_tmp/slow.json" "$base/invocations" \
            >"$e2e_tmp/slow$i.code" 2>/dev/null &
        pids+=($!)
    done
    sleep 0.7
    t0=$(date +%s%N)
    "${pm[@]}" stop -t 30 "$ca" >/dev/null 2>&1
    ms=$((($(date +%s%N) - t0) / 1000000))
    wait "${pids[@]}"
    codes=$(for i in 1 2 3; do cat "$e2e_tmp/slow$i.code"; echo; done | tr '\n' ' ')
    rc=$("${pm[@]}" inspect --format '{{.State.ExitCode}}' "$ca")
    note "container: podman stop took $ms ms with 3 slow uploads in flight; their answers: $codes; exit $rc"
    [ "$codes" = "200 200 200 " ] || { why="uploads in flight got $codes (want 200 200 200)"; return 1; }
    grep -q '"predictions"' "$e2e_tmp/slow1.out" || { why="no predictions in the answer: $(head -c 200 "$e2e_tmp/slow1.out")"; return 1; }
    [ "$rc" = 0 ] || { why="exit code $rc after SIGTERM (want 0)"; return 1; }
    [ "$ms" -lt 30000 ] || { why="stop took $ms ms"; return 1; }
    [ "$ms" -ge 1000 ] || { why="stop took only $ms ms: were the uploads in flight?"; return 1; }
}
t container/sigterm-drains drain || "${pm[@]}" logs "$ca" 2>&1 | tail -8 | sed 's/^/#   /'

# --- /opt/ml/model, SAGEMAKER_BIND_TO_PORT, --cpus 1, pool death -----------------------------

port2=$(free_port 400) || { fail container/port2 "no free port"; summary; exit; }
mkdir -p "$e2e_tmp/mlmodel"
# A 10-16-1 perceptron (Gemm, Relu, Gemm) and numpy's answer for two rows
# (the second is the first times -3), served with NGINFER_GEMM=openblas so
# its products go to the image's cut-down OpenBLAS (opened with dlopen:
# nothing links it); the default model (trees, no BLAS) when python3-onnx
# is missing.
mlp=0
if "$E2E_PY" - "$e2e_tmp/mlmodel/model.onnx" "$row" >"$e2e_tmp/mlp.expect" 2>"$e2e_tmp/mlp.err" <<'EOF'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
rng = np.random.default_rng(6)
w1 = rng.standard_normal((10, 16)).astype(np.float32)
b1 = rng.standard_normal(16).astype(np.float32)
w2 = rng.standard_normal((16, 1)).astype(np.float32)
b2 = np.array([0.5], np.float32)
g = helper.make_graph(
    [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
     helper.make_node("Gemm", ["r", "w2", "b2"], ["y"])],
    "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
    [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
x = np.array([[float(v) for v in sys.argv[2].split(",")]] * 2, np.float32)
x[1] *= -3
print(" ".join("%.9g" % v for v in (np.maximum(x @ w1 + b1, 0) @ w2 + b2).ravel()))
EOF
then
    mlp=1
else
    note "container: no perceptron model ($(tail -1 "$e2e_tmp/mlp.err")): the default model instead"
    cp "$model" "$e2e_tmp/mlmodel/model.onnx"
fi
chmod -R a+rX "$e2e_tmp/mlmodel"
# shellcheck disable=SC2046
if crun bind -d --read-only --tmpfs /tmp --user 10001 --cpus 1 -e SAGEMAKER_BIND_TO_PORT=9090 -e NGINFER_GEMM=openblas \
    -v "$e2e_tmp/mlmodel:/opt/ml/model:ro" $(net_args "$port2" 9090) "$image" serve >"$e2e_tmp/bind.run" 2>&1; then
    cb=$(cid bind)
    t container/bind-to-port wait_code "http://127.0.0.1:$port2/ping" 200 30
    "${pm[@]}" logs "$cb" >"$e2e_tmp/bind.log" 2>&1
    grep -q 'model /opt/ml/model/model.onnx (from /opt/ml/model)' "$e2e_tmp/bind.log" &&
        pass container/model-from-opt-ml-model || fail container/model-from-opt-ml-model "$(head -2 "$e2e_tmp/bind.log" | tr '\n' ' ')"
    if [ $mlp -eq 1 ]; then
        neg=$("$E2E_PY" -c 'import sys; print(",".join(repr(-3 * float(v)) for v in sys.argv[1].split(",")))' "$row")
        base=http://127.0.0.1:$port2
        req POST /invocations -H 'Content-Type: text/csv' --data-binary "$row"$'\n'"$neg"
        base=http://127.0.0.1:$port
        want=$(cat "$e2e_tmp/mlp.expect")
        t container/sgemm-model-matches-numpy expect 200 \
            "len(preds(d)) == 2 and all(abs(a - float(b)) <= 1e-4 * max(1.0, abs(float(b))) for a, b in zip(preds(d), '$want'.split()))"
    else
        skip container/sgemm-model-matches-numpy "no python3-onnx/numpy to make the perceptron"
    fi
    if [ "${NGINFER_TEST_NET:-}" = host ]; then
        skip container/cpus-1-one-worker "--cpus is not checked with NGINFER_TEST_NET=host"
    else
        grep -q 'port 9090, 1 worker (cgroup' "$e2e_tmp/bind.log" &&
            pass container/cpus-1-one-worker || fail container/cpus-1-one-worker "$(head -1 "$e2e_tmp/bind.log")"
    fi
    # The pool dies: SIGKILL to multiwatch (its pid inside the container).
    pool_death() {
        local mwp rc
        mwp=$("${pm[@]}" exec "$cb" ps -eo pid=,comm= | awk '$2 == "multiwatch" { print $1 }' | head -1)
        [ -n "$mwp" ] || { why="no multiwatch in the container"; return 1; }
        "${pm[@]}" exec "$cb" kill -KILL "$mwp" || { why="podman exec kill failed"; return 1; }
        rc=$(timeout 20 "${pm[@]}" wait "$cb" 2>/dev/null)
        [ -n "$rc" ] || { why="container still running 20 s after multiwatch was killed"; return 1; }
        [ "$rc" != 0 ] || { why="container exited 0 (want non-zero)"; return 1; }
        "${pm[@]}" logs "$cb" 2>&1 | grep -q 'multiwatch' || { why="no line about multiwatch in the log"; return 1; }
        note "container: multiwatch killed -> exit $rc: $("${pm[@]}" logs "$cb" 2>&1 | grep 'multiwatch' | tail -1)"
    }
    t container/pool-death-exits-nonzero pool_death
else
    fail container/bind-to-port "podman run failed: $(tail -3 "$e2e_tmp/bind.run" | tr '\n' ' ')"
fi

summary

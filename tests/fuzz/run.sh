#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [TARGET...]: builds the libFuzzer targets
# (tests/fuzz/fuzz.mk), replays tests/fuzz/regressions/<target>/* (inputs
# that once crashed), then fuzzes each target for SECONDS (0 = replay
# only). Prints, per target:
#   PASS fuzz/<target>: N execs, 0 crashes        or   FAIL fuzz/<target>: why
#   # fuzz/<target>: N execs/s
# The corpus grows in $FUZZ_BUILD/corpus/<target> (kept between runs); seeds
# come from our tests (see seed_dirs). A crash, leak or timeout leaves its
# input in $FUZZ_BUILD/artifacts/<target>/: fix the bug, then move the file
# to tests/fuzz/regressions/<target>/ so every run replays it.
# Environment: FUZZ_BUILD=build/fuzz, FUZZ_JOBS=1 (targets run at once),
# FUZZ_CC=clang. Exit status 1 if anything failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
jobs=${FUZZ_JOBS:-1}
all=(json csv jsonl lambda_event config onnx)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

# ---- build ------------------------------------------------------------------------
# The top Makefile includes fuzz.mk; a tree whose Makefile does not gets it
# named here. Either way every make variable (GEN, ...) is the same.
if grep -q 'tests/fuzz/fuzz.mk' Makefile; then mk=(make); else mk=(make -f Makefile -f tests/fuzz/fuzz.mk); fi
if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
    for t in "${targets[@]}"; do echo "FAIL fuzz/$t: ${FUZZ_CC:-clang} not installed (Debian: clang libclang-rt-14-dev)"; done
    exit 1
fi
blog=$(mktemp)
if ! "${mk[@]}" -s -j"$(nproc)" FUZZ_BUILD="$FUZZ_BUILD" fuzz-build >"$blog" 2>&1; then
    tail -20 "$blog"
    for t in "${targets[@]}"; do echo "FAIL fuzz/$t: build failed"; done
    rm -f "$blog"
    exit 1
fi
rm -f "$blog"

# ---- seeds ------------------------------------------------------------------------
# Small files only (libFuzzer's -max_len applies anyway): models under 100 KB.
small() { find "$@" -maxdepth 0 -type f -size -100k 2>/dev/null; }
seed_files() {
    local t=$1 td=${NGINFER_ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}
    case $t in
    json) ls tests/fuzz/seeds/json/* ;;
    csv) ls tests/fuzz/seeds/csv/* ;;
    jsonl) ls tests/fuzz/seeds/jsonl/* ;;
    lambda_event) ls tests/lambda/events/*.json tests/fuzz/seeds/json/* ;;
    config) ls conf/nginfer.cfg tests/fuzz/seeds/config/* ;;
    onnx)
        small tests/models/*/model.onnx tests/models/bad/*.onnx tests/models/hostile/*.onnx
        # ONNX's backend node tests (Debian libonnx-testdata, the conformance
        # suite's): one small model per operator
        for d in node simple pytorch-operator; do
            [ -d "$td/$d" ] && small "$td"/"$d"/*/model.onnx
        done ;;
    esac
}
max_len() {
    case $1 in
    config) echo 4096 ;;
    onnx) echo 102400 ;;
    *) echo 16384 ;;
    esac
}

# A hostile model may ask for any tensor up to the core's 2^40-byte bound:
# allocations over max_allocation_size_mb fail (NULL, so the core's
# out-of-memory paths run) instead of being filled and computed on for
# longer than -timeout. 64 MB for the loader (a [2048, 2048] MatMul is
# still allowed), 1 GB for the rest.
asan_base=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:handle_abort=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0}
export OPENBLAS_NUM_THREADS=1

# run_target T: writes its report lines to $FUZZ_BUILD/logs/T.result
run_target() {
    local t=$1 bin=$FUZZ_BUILD/fuzz_$1 logs=$FUZZ_BUILD/logs
    local res=$logs/$t.result log=$logs/$t.log
    local corpus=$FUZZ_BUILD/corpus/$t seeds=$FUZZ_BUILD/seeds/$t art=$FUZZ_BUILD/artifacts/$t/
    mkdir -p "$corpus" "$art" "$logs"
    rm -rf "$seeds" && mkdir -p "$seeds"
    seed_files "$t" | while read -r f; do
        cp "$f" "$seeds/$(echo "$f" | tr '/' '_')"
    done
    local dict=()
    [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
    local opts=(-timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" "${dict[@]}")
    local mb=1024
    [ "$t" = onnx ] && mb=64
    export ASAN_OPTIONS="$asan_base:max_allocation_size_mb=$mb"
    : >"$res"
    # regressions: each input must run clean
    local reg=tests/fuzz/regressions/$t
    if compgen -G "$reg/*" >/dev/null; then
        local n; n=$(find "$reg" -type f | wc -l)
        if "$bin" "${opts[@]}" -runs=1 "$reg"/* >"$log.regressions" 2>&1; then
            echo "PASS fuzz/$t/regressions: $n inputs" >>"$res"
        else
            local bad; bad=$(grep -o 'Running: [^ ]*' "$log.regressions" | tail -1 | cut -d' ' -f2)
            echo "FAIL fuzz/$t/regressions: ${bad:-an input} fails again: $(grep -m1 -E 'ERROR|runtime error|oracle' "$log.regressions")" >>"$res"
        fi
    fi
    [ "$secs" -gt 0 ] || return 0
    "$bin" "${opts[@]}" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$art" \
        "$corpus" "$seeds" >"$log" 2>&1
    local rc=$?
    local execs rate
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    local found; found=$(grep -o "Test unit written to [^ ]*" "$log" | awk '{print $5}' | tr '\n' ' ')
    if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
        echo "PASS fuzz/$t: ${execs:-0} execs, 0 crashes" >>"$res"
    else
        local why; why=$(grep -m1 -E '^==[0-9]+==ERROR|runtime error|fuzz oracle|ALARM|out-of-memory|deadly signal' "$log")
        echo "FAIL fuzz/$t: ${why:-exit status $rc} (input: ${found:-none}; log: $log)" >>"$res"
    fi
    echo "# fuzz/$t: ${rate:-0} execs/s ($(find "$corpus" -type f | wc -l) corpus files)" >>"$res"
}

# FUZZ_JOBS targets at a time; results in the order asked
running=0
for t in "${targets[@]}"; do
    if [ ! -x "$FUZZ_BUILD/fuzz_$t" ]; then
        mkdir -p "$FUZZ_BUILD/logs" && echo "FAIL fuzz/$t: no such target" >"$FUZZ_BUILD/logs/$t.result"
        continue
    fi
    run_target "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
failed=0
for t in "${targets[@]}"; do
    cat "$FUZZ_BUILD/logs/$t.result"
    grep -q '^FAIL ' "$FUZZ_BUILD/logs/$t.result" && failed=1
done
exit "$failed"

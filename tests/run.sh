#!/usr/bin/env bash
# tests/run.sh [unit|conformance|e2e|fuzz|san ...]: runs the test suites
# (default: all five) and ends with "N passed, N failed, N skipped". Every
# suite prints "PASS name", "FAIL name: why" or "SKIP name: why" lines; the
# full output goes to $BUILD/test.log, FAIL lines and per-suite summaries
# (with their time) to the terminal. Exit status: 1 if anything failed.
#
#   unit, conformance, e2e  against the build in $BUILD (default build)
#   fuzz   tests/fuzz/run.sh 60: replays tests/fuzz/regressions, then each
#          libFuzzer target for 60 s (FUZZ_SECONDS), built in $BUILD/fuzz
#   san    `make SANITIZE=1` into $SAN_BUILD (default $BUILD/san; make test
#          SANITIZE=1 passes its own build), then unit, conformance and e2e
#          against it. Every process that build makes (tests, the
#          conformance runner, the FastCGI workers behind nginfer-serve,
#          also when they run as user nginfer, nginfer-lambda) writes
#          ASan/UBSan/LSan reports to a world-writable scratch directory
#          (log_path); each sub-suite ends with a line counting its report
#          files, and a FAIL quotes the first one.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit conformance e2e fuzz san)
mkdir -p "$BUILD"
log=$BUILD/test.log
: > "$log"
TESTDATA=${NGINFER_ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}

run_suite() { # name, command...
  local name=$1; shift
  local out; out=$(mktemp)
  local start=$SECONDS
  suite_name=$name
  "$@" > "$out" 2>&1
  local rc=$?
  cat "$out" >> "$log"
  local p f s
  p=$(grep -c '^PASS ' "$out"); f=$(grep -c '^FAIL ' "$out"); s=$(grep -c '^SKIP ' "$out")
  grep '^FAIL ' "$out" | head -50
  grep '^# ' "$out" | grep -v '^# [0-9]* passed' | head -60
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    # a suite that crashed or exited non-zero without a FAIL line still fails
    echo "FAIL $name: exited with status $rc"; tail -5 "$out"
    f=1; echo "FAIL $name: exited with status $rc" >> "$log"
  fi
  echo "== $name: $p passed, $f failed, $s skipped ($((SECONDS - start)) s)"
  total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
  rm -f "$out"
}
# result LINE: a PASS/FAIL/SKIP line of run.sh's own, counted and logged.
result() {
  echo "$1"; echo "$1" >> "$log"
  case $1 in
  PASS*) total_p=$((total_p + 1)) ;;
  FAIL*) total_f=$((total_f + 1)) ;;
  SKIP*) total_s=$((total_s + 1)) ;;
  esac
}

# The suites, each against the build in $1, result names prefixed with $2
# ("" or "san/"); in the sanitizer suite every command goes through san_run.
wrap=()
suite_unit() {
  local b=$1 pre=$2 t
  for t in "$b"/tests/test_*; do
    [ -x "$t" ] || continue
    run_suite "${pre}unit/$(basename "$t")" "${wrap[@]}" timeout 300 "$t"
  done
}
suite_conformance() {
  local b=$1 pre=$2 d
  run_suite "${pre}conformance/fixtures" "${wrap[@]}" timeout 600 "$b/tests/nf-conformance" -l fixtures tests/models
  for d in node pytorch-converted pytorch-operator simple; do
    if [ -d "$TESTDATA/$d" ]; then
      run_suite "${pre}conformance/onnx-$d" "${wrap[@]}" timeout 900 "$b/tests/nf-conformance" -l "onnx/$d" "$TESTDATA/$d"
    else
      result "FAIL ${pre}conformance/onnx-$d: $TESTDATA/$d missing (Debian package libonnx-testdata)"
    fi
  done
}
suite_e2e() {
  local b=$1 pre=$2 t limit
  for t in tests/e2e/test_*.sh; do
    [ -f "$t" ] || continue
    if [ -n "$pre" ]; then
      case $t in
      *test_container.sh)
        result "SKIP ${pre}e2e/test_container: builds and runs its own image (make image, from a normal build); the sanitizer build is not packaged"
        continue ;;
      *test_systemd.sh)
        result "SKIP ${pre}e2e/test_systemd: runs the unit under systemd in its own container, which the sanitizer report directory and options do not reach"
        continue ;;
      *test_k8s.sh)
        result "SKIP ${pre}e2e/test_k8s: checks manifests only, runs no nginfer binary"
        continue ;;
      esac
    fi
    # the container test builds an image from Debian's archive the first time
    limit=600; case $t in *test_container.sh) limit=1800 ;; esac
    run_suite "${pre}e2e/$(basename "$t" .sh)" "${wrap[@]}" timeout "$limit" env BUILD="$b" bash "$t"
  done
}

# ---- sanitizer reports ----------------------------------------------------------
# ASan stops a process at its first error (UBSan too: the build has
# -fno-sanitize-recover), LSan reports at exit. Reports go to files, not to
# stderr: a worker's stderr is the service log, and a test that passes
# despite a report must still fail here. The directory is world-writable
# (sticky) because the workers run as user nginfer when we are root.
# tests/fuzz/lsan.supp: LSan suppressions, for leaks inside third-party
# libraries only (shared with the fuzz targets).
san_asan="detect_leaks=1:log_exe_name=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
san_ubsan="print_stacktrace=1:halt_on_error=1:log_exe_name=1"
san_dir=''
# san_reports DIR: the report files under DIR.
san_reports() { find "$1" -type f -name '*san.*' 2>/dev/null | sort; }
# san_first FILE: the first lines of a report, on one line.
san_first() {
  grep -v '^\s*$' "$1" | grep -v '^=*$' | head -6 | cut -c1-200 | tr '\n' '|' | sed 's/|$//'
}
# san_run CMD...: runs CMD (run_suite's command for suite $suite_name)
# with its processes' reports going to $san_dir/<n>/, then says how many
# there were.
san_n=0
san_run() {
  san_n=$((san_n + 1))
  local d=$san_dir/$san_n rc n first
  mkdir -p "$d" && chmod 1777 "$d"
  ASAN_OPTIONS="log_path=$d/asan:$san_asan" \
  UBSAN_OPTIONS="log_path=$d/ubsan:$san_ubsan" \
  LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0" \
    "$@"
  rc=$?
  # LSan writes when a process exits: give stragglers (workers told to
  # stop) a moment.
  sleep 0.2
  n=$(san_reports "$d" | wc -l)
  if [ "$n" -eq 0 ]; then
    echo "PASS $suite_name/sanitizers: 0 reports"
  else
    first=$(san_reports "$d" | head -1)
    echo "FAIL $suite_name/sanitizers: $n sanitizer report(s) in $d, first $(basename "$first"): $(san_first "$first")"
  fi
  return $rc
}
suite_san() {
  local sb=${SAN_BUILD:-$BUILD/san} start=$SECONDS blog n first
  blog=$(mktemp)
  # make test SANITIZE=1 has built it already; then this is a no-op.
  if ! make -s -j"$(nproc)" SANITIZE=1 BUILD="$sb" all >"$blog" 2>&1; then
    cat "$blog" >> "$log"; tail -20 "$blog"
    result "FAIL san/build: make SANITIZE=1 BUILD=$sb all failed (see $log)"
    rm -f "$blog"; return
  fi
  rm -f "$blog"
  if ! grep -aq __asan_init "$sb/nginfer-worker"; then
    result "FAIL san/build: $sb/nginfer-worker is not an ASan build (make clean, or another SAN_BUILD)"; return
  fi
  echo "== san/build: make SANITIZE=1 BUILD=$sb ($((SECONDS - start)) s)"
  san_dir=$(mktemp -d "${TMPDIR:-/tmp}/nginfer-san.XXXXXX") || { result "FAIL san: no scratch dir"; return; }
  chmod 1777 "$san_dir"
  wrap=(san_run)
  suite_unit "$sb" san/
  suite_conformance "$sb" san/
  suite_e2e "$sb" san/
  wrap=()
  # Reports written after a sub-suite's count (a late exit) still count.
  sleep 1
  n=$(san_reports "$san_dir" | wc -l)
  if [ "$n" -eq 0 ]; then
    result "PASS san/reports: 0 ASan/UBSan/LSan reports from the unit, conformance and e2e runs"
    rm -rf "$san_dir"
  else
    first=$(san_reports "$san_dir" | head -1)
    result "FAIL san/reports: $n sanitizer report(s) kept in $san_dir, first $first: $(san_first "$first")"
  fi
}

total_p=0; total_f=0; total_s=0
for suite in "${suites[@]}"; do
  case "$suite" in
  unit) suite_unit "$BUILD" "" ;;
  conformance) suite_conformance "$BUILD" "" ;;
  e2e) suite_e2e "$BUILD" "" ;;
  fuzz)
    # One target per core at a time, 60 s each (FUZZ_SECONDS); the corpus
    # in $BUILD/fuzz/corpus grows between runs.
    run_suite "fuzz" timeout 1800 env FUZZ_BUILD="$BUILD/fuzz" FUZZ_JOBS="${FUZZ_JOBS:-$(nproc)}" \
      tests/fuzz/run.sh "${FUZZ_SECONDS:-60}" ;;
  san) suite_san ;;
  *) echo "unknown suite $suite" >&2; exit 2 ;;
  esac
done
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" -eq 0 ]

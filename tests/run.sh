#!/usr/bin/env bash
# tests/run.sh [unit|conformance|e2e ...]: runs the test suites and ends
# with "N passed, N failed, N skipped". Every suite prints "PASS name",
# "FAIL name: why" or "SKIP name: why" lines; the full output goes to
# $BUILD/test.log, FAIL lines and per-suite summaries to the terminal.
# Exit status: 1 if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit conformance e2e)
log=$BUILD/test.log
: > "$log"
TESTDATA=${NGINFER_ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}

run_suite() { # name, command...
  local name=$1; shift
  local out; out=$(mktemp)
  local start=$SECONDS
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

total_p=0; total_f=0; total_s=0
for suite in "${suites[@]}"; do
  case "$suite" in
  unit)
    for t in "$BUILD"/tests/test_*; do
      [ -x "$t" ] || continue
      run_suite "unit/$(basename "$t")" timeout 300 "$t"
    done ;;
  conformance)
    run_suite "conformance/fixtures" timeout 600 "$BUILD/tests/nf-conformance" -l fixtures tests/models
    for d in node pytorch-converted pytorch-operator simple; do
      if [ -d "$TESTDATA/$d" ]; then
        run_suite "conformance/onnx-$d" timeout 900 "$BUILD/tests/nf-conformance" -l "onnx/$d" "$TESTDATA/$d"
      else
        echo "FAIL conformance/onnx-$d: $TESTDATA/$d missing (Debian package libonnx-testdata)"; total_f=$((total_f + 1))
      fi
    done ;;
  e2e)
    for t in tests/e2e/test_*.sh; do
      [ -f "$t" ] || continue
      # the container test builds an image from Debian's archive the first time
      limit=600; case $t in *test_container.sh) limit=1800 ;; esac
      run_suite "e2e/$(basename "$t" .sh)" timeout "$limit" env BUILD="$BUILD" bash "$t"
    done ;;
  *) echo "unknown suite $suite" >&2; exit 2 ;;
  esac
done
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" -eq 0 ]

#!/bin/bash
# run.sh: runs every tests/e2e/test_*.sh (or the ones named) one after the
# other and passes their "PASS/FAIL/SKIP" lines through; exit 1 if any test
# failed or a file exited non-zero. tests/run.sh (make test, make e2e) runs
# the same files itself; this is for running the e2e suite alone:
#   BUILD=build tests/e2e/run.sh [test_serve.sh ...]
# Each file starts its own nginfer-serve on a free loopback port with its own
# run dir, and bounds itself with timeout(1).
# Env: BUILD (bin dir, default build), E2E_CONFIG (default conf/nginfer.cfg),
#      E2E_KEEP=1 keeps the scratch dirs (server logs) for a look afterwards.

here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.." || exit 2
files=("$@")
[ ${#files[@]} -gt 0 ] || files=("$here"/test_*.sh)

failed=0
for f in "${files[@]}"; do
    case $f in */*) ;; *) f=$here/$f ;; esac
    name=$(basename "$f" .sh)
    out=$(mktemp)
    timeout -k 10 600 bash "$f" >"$out" 2>&1
    rc=$?
    cat "$out"
    n_fail=$(grep -c '^FAIL ' "$out")
    if [ "$rc" -ne 0 ] && [ "$n_fail" -eq 0 ]; then
        echo "FAIL e2e/$name: exited with status $rc"
        n_fail=1
    fi
    rm -f "$out"
    [ "$n_fail" -eq 0 ] || failed=1
done
exit $failed

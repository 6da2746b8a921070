#!/bin/bash
# test_classifier.sh: a classifier with string labels through the real
# stack: tests/models/sk_rf_clf_str/model.onnx (RandomForestClassifier on
# iris, labels setosa/versicolor/virginica, input "input" float32 [N, 4]).
# Each prediction must be {"label": ..., "probabilities": {label: p}}.
# Run by tests/run.sh (e2e suite) or alone: BUILD=build bash tests/e2e/test_classifier.sh

. "$(dirname "$0")/lib.sh"
e2e_bound 120 "$0" "$@"

model=$E2E_ROOT/tests/models/sk_rf_clf_str/model.onnx
if [ ! -f "$model" ]; then
    skip classifier "$model not there yet"
    exit 0
fi
port=$(free_port 500) || { fail classifier/port "no free port"; exit 1; }
# shellcheck disable=SC2034
base=http://127.0.0.1:$port
run_dir=$e2e_tmp/run

if ! serve_start clf -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$model" -p "$port" -w 1 -r "$run_dir"; then
    fail classifier/start "$why"
    tail_log 15
    exit 1
fi
pass classifier/start

# One clear flower of each species (iris rows 1, 64 and 101, 0-based 0, 63, 100).
printf '%s' '{"instances": [[5.1, 3.5, 1.4, 0.2], [6.1, 2.9, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]]}' >"$e2e_tmp/iris.json"
labels='["setosa", "versicolor", "virginica"]'

req POST /invocations -H 'Content-Type: application/json' --data-binary "@$e2e_tmp/iris.json"
t classifier/label-and-probabilities expect 200 \
    "len(d['predictions']) == 3 and all(isinstance(p, dict) and isinstance(p.get('label'), str) and isinstance(p.get('probabilities'), dict) for p in d['predictions'])"
t classifier/labels py "[p['label'] for p in d['predictions']] == $labels"
t classifier/probabilities py \
    "all(sorted(p['probabilities']) == sorted($labels) and all(num(v) and 0 <= v <= 1.0001 for v in p['probabilities'].values()) and abs(sum(p['probabilities'].values()) - 1) < 1e-3 and max(p['probabilities'], key=p['probabilities'].get) == p['label'] for p in d['predictions'])"

req POST /invocations -H 'Content-Type: text/csv' -H 'Accept: text/csv' --data-binary $'5.1,3.5,1.4,0.2\n6.3,3.3,6.0,2.5\n'
clf_csv() {
    expect 200 || return 1
    grep -q '^setosa,' "$body" && grep -q '^virginica,' "$body" && [ "$(grep -c . "$body")" -eq 2 ] ||
        { why="want 2 lines 'label,p...': $(head -c 200 "$body" | tr '\n' '|')"; return 1; }
}
t classifier/csv clf_csv

req GET /models
t classifier/models expect 200 'find_key(d, "inputs") and find_key(d, "outputs")'

t classifier/stop serve_stop_check "$serve_pid" "$run_dir"

echo "# e2e classifier: $e2e_passed passed, $e2e_failed failed"
[ "$e2e_failed" -eq 0 ]

#!/bin/bash
# test_torch.sh: the PyTorch-exported models through the real stack (nginx +
# spawn-fcgi + multiwatch + worker): models/digits_mlp.onnx,
# models/digits_cnn.onnx and models/text_bert.onnx. The request is the
# fixture's test_data_set_1 (batch 8, or 4 for BERT with padding) sent as
# {"inputs": {...}}; the answer must match ONNX Runtime's output_0.pb
# within 1e-4, the bound of the parity fixtures. python3-onnx reads the .pb.
# Run by tests/run.sh (e2e suite) or alone: BUILD=build bash tests/e2e/test_torch.sh

. "$(dirname "$0")/lib.sh"
e2e_bound 180 "$0" "$@"

if ! "$E2E_PY" -c 'import onnx.numpy_helper' 2>/dev/null; then
    skip torch "python3-onnx is not installed (tools/deps.sh test installs it)"
    exit 0
fi

# fixture -> request body and expected output (JSON)
mkreq() { # fixture-dir body-out expect-out
    "$E2E_PY" - "$1" "$2" "$3" <<'PYEOF'
import json, sys, onnx
from onnx import numpy_helper
d, body, exp = sys.argv[1:4]
m = onnx.load(d + "/model.onnx")
inits = {i.name for i in m.graph.initializer}
names = [i.name for i in m.graph.input if i.name not in inits]
inputs = {}
for k, n in enumerate(names):
    t = onnx.TensorProto()
    t.ParseFromString(open("%s/test_data_set_1/input_%d.pb" % (d, k), "rb").read())
    inputs[n] = numpy_helper.to_array(t).tolist()
t = onnx.TensorProto()
t.ParseFromString(open(d + "/test_data_set_1/output_0.pb", "rb").read())
json.dump({"inputs": inputs}, open(body, "w"))
json.dump(numpy_helper.to_array(t).tolist(), open(exp, "w"))
PYEOF
}

for name in digits_mlp digits_cnn text_bert; do
    model=$E2E_ROOT/models/$name.onnx
    fixture=$E2E_ROOT/tests/models/torch_$name
    if [ ! -f "$model" ] || [ ! -d "$fixture" ]; then
        fail torch/$name "$model or $fixture missing"
        continue
    fi
    port=$(free_port 600) || { fail torch/$name "no free port"; continue; }
    base=http://127.0.0.1:$port
    if ! serve_start "$name" -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$model" -p "$port" -w 1 -r "$e2e_tmp/run-$name"; then
        fail torch/$name/start "$why"
        tail_log 15
        continue
    fi
    pass torch/$name/start
    if ! mkreq "$fixture" "$e2e_tmp/$name.json" "$e2e_tmp/$name.exp"; then
        fail torch/$name/request "cannot build the request from $fixture"
    else
        req POST /invocations -H 'Content-Type: application/json' --data-binary "@$e2e_tmp/$name.json"
        exp=$(cat "$e2e_tmp/$name.exp")
        t torch/$name/parity expect 200 \
            "len(d['predictions']) == len($exp) and all(abs(a - b) <= 1e-4 for pr, ex in zip(d['predictions'], $exp) for a, b in zip(pr, ex))"
        req GET /models
        t torch/$name/models expect 200 "len(d['inputs']) >= 1 and d['outputs'][0]['name'] == 'probabilities'"
    fi
    t torch/$name/stop serve_stop_check "$serve_pid" "$e2e_tmp/run-$name"
done

# A token id beyond the vocabulary (1000) is the client's mistake: 422 naming
# the node, and the worker keeps serving.
port=$(free_port 600) && base=http://127.0.0.1:$port &&
    if serve_start bert-bad -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$E2E_ROOT/models/text_bert.onnx" -p "$port" -w 1 -r "$e2e_tmp/run-bad"; then
        ids=$("$E2E_PY" -c 'print([[5000] + [1] * 31])')
        mask=$("$E2E_PY" -c 'print([[1] * 32])')
        req POST /invocations -H 'Content-Type: application/json' --data-binary "{\"inputs\": {\"input_ids\": $ids, \"attention_mask\": $mask}}"
        t torch/bert/token-out-of-range expect_error 422 "'out of range' in msg(d)"
        req POST /invocations -H 'Content-Type: application/json' --data-binary "{\"inputs\": {\"input_ids\": [[1, 2]], \"attention_mask\": [[1, 1]]}}"
        t torch/bert/wrong-length expect_error 422 "'32' in msg(d)"
        req GET /ping
        t torch/bert/alive-after-errors expect 200
        t torch/bert/stop serve_stop_check "$serve_pid" "$e2e_tmp/run-bad"
    else
        fail torch/bert-bad/start "$why"
    fi

echo "# e2e torch: $e2e_passed passed, $e2e_failed failed"
[ "$e2e_failed" -eq 0 ]

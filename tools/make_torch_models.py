#!/usr/bin/python3
"""Train three small PyTorch models, export them to ONNX, write the served
models and their parity fixtures.

    /usr/bin/python3 tools/make_torch_models.py [--node-modules DIR]

Uses Debian's python (python3-torch 1.13, python3-onnx 1.12, scikit-learn
1.2, numpy) and ONNX Runtime through node (onnxruntime-node, see
tools/ort_run.js; default /tmp/ort/node_modules or $ORT_NODE_MODULES).

Models (all exported by torch.onnx.export, opset 17, dynamic batch axis "N"):

  digits_mlp   MLP 64-128-64-10 (ReLU) on scikit-learn's bundled digits.
               input  "input"         float32 [N, 64]  raw pixel values 0..16
               output "probabilities" float32 [N, 10]  softmax
  digits_cnn   Conv(1,16,3,p1)+BN+ReLU+MaxPool2 + Conv(16,32,3,p1)+ReLU +
               global average pool + Linear(32,10) + softmax, on digits.
               Exported with the BatchNorm kept as an inference-mode
               BatchNormalization node (not folded into the Conv).
               input  "input"         float32 [N, 1, 8, 8] raw pixels 0..16
               output "probabilities" float32 [N, 10]
  text_bert    BERT-style encoder: token embedding (vocab 1000) + learned
               positions (32) + embedding LayerNorm, 2 layers (hidden 128,
               4 heads, FFN 512, exact GELU, post-LN), hand-written attention
               with an additive mask built from attention_mask, first-token
               pooling -> Linear(128, 2) -> softmax.  Trained for 16 Adam
               steps (one epoch of 1024 rows) on a toy task: label 1 iff
               token 7 occurs among the unpadded tokens.  Short on purpose:
               the toy test rows are all classified right but P(label 1)
               stays between 0.07 and 0.97, not saturated at 0/1, so the
               fixtures are sensitive to kernel errors.
               inputs "input_ids", "attention_mask" int64 [N, 32]
               output "probabilities" float32 [N, 2]

The digits models scale their input by 1/16 inside the graph, so clients send
the pixel intensities exactly as load_digits() gives them.

Writes, for NAME in digits_mlp, digits_cnn, text_bert:
  models/NAME.onnx                   served model, metadata_props model_name
                                     (NAME with '-' for '_') / model_version "1"
  tests/models/torch_NAME/model.onnx (same bytes)
  tests/models/torch_NAME/test_data_set_0/  batch 1
  tests/models/torch_NAME/test_data_set_1/  batch 8 (MLP, CNN) / batch 4 with
                                     padding (BERT)
      input_K.pb / output_K.pb       expected outputs are ONNX Runtime's
  tests/models/torch_NAME/tolerance  "rtol 1e-4 atol 1e-4"
  tests/models/torch_NAME/torch_expected.json  torch's own outputs (record)

Each run also checks ORT against torch (max |diff| must be < 1e-4) and prints
the operator types of every exported graph and the file sizes.
Deterministic: fixed seeds, one thread, deterministic algorithms; rerunning
gives identical bytes.
"""

import argparse
import json
import os
import shutil
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import fixture_util  # noqa: E402

REPO = fixture_util.REPO
OPSET = 17
TOLERANCE = "rtol 1e-4 atol 1e-4\n"
PARITY = 1e-4          # ORT vs torch, max abs diff
MODEL_VERSION = "1"
SEED = 0


def seed_all(seed=SEED):
    torch.manual_seed(seed)
    np.random.seed(seed)


# ---------------------------------------------------------------------------
# data

def digits_split():
    """load_digits() (bundled, no download), fixed shuffled 80/20 split.
    Returns float32 X (raw 0..16), int64 y for train and test."""
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    y = y.astype(np.int64)
    perm = np.random.RandomState(SEED).permutation(len(X))
    n_train = int(0.8 * len(X))
    tr, te = perm[:n_train], perm[n_train:]
    return X[tr], y[tr], X[te], y[te]


# ---------------------------------------------------------------------------
# models

class DigitsMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 128), nn.ReLU(),
            nn.Linear(128, 64), nn.ReLU(),
            nn.Linear(64, 10))

    def logits(self, x):
        return self.net(x * (1.0 / 16.0))

    def forward(self, x):
        return torch.softmax(self.logits(x), dim=-1)


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(32, 10)

    def logits(self, x):
        return self.fc(self.features(x * (1.0 / 16.0)))

    def forward(self, x):
        return torch.softmax(self.logits(x), dim=-1)


VOCAB, MAX_LEN, HIDDEN, HEADS, FFN, LAYERS = 1000, 32, 128, 4, 512, 2
PAD_ID, CLS_ID, KEY_ID = 0, 1, 7


class SelfAttention(nn.Module):
    def __init__(self, hidden, heads, dropout=0.1):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.o = nn.Linear(hidden, hidden)
        self.drop = nn.Dropout(dropout)

    def split(self, x):                      # [N, L, H] -> [N, heads, L, d]
        n, l, _ = x.shape
        return x.reshape(n, l, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x, add_mask):          # add_mask [N, 1, 1, L]
        n, l, h = x.shape
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / (self.head_dim ** 0.5)
        probs = self.drop(torch.softmax(scores + add_mask, dim=-1))
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(n, l, h)
        return self.o(ctx)


class EncoderLayer(nn.Module):
    def __init__(self, hidden, heads, ffn, dropout=0.1):
        super().__init__()
        self.attn = SelfAttention(hidden, heads, dropout)
        self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ff1 = nn.Linear(hidden, ffn)
        self.ff2 = nn.Linear(ffn, hidden)
        self.ln2 = nn.LayerNorm(hidden, eps=1e-12)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, add_mask):
        x = self.ln1(x + self.drop(self.attn(x, add_mask)))
        return self.ln2(x + self.drop(self.ff2(F.gelu(self.ff1(x)))))


class TextBert(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, HIDDEN)
        self.pos = nn.Embedding(MAX_LEN, HIDDEN)
        self.ln = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.drop = nn.Dropout(0.1)
        self.layers = nn.ModuleList(EncoderLayer(HIDDEN, HEADS, FFN) for _ in range(LAYERS))
        self.cls = nn.Linear(HIDDEN, 2)

    def logits(self, input_ids, attention_mask):
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.drop(self.ln(self.tok(input_ids) + self.pos(pos)))
        # additive mask: 0 where attention_mask is 1, -10000 where it is 0
        keep = attention_mask.unsqueeze(1).unsqueeze(2).to(torch.float32)
        add_mask = (1.0 - keep) * -10000.0
        for layer in self.layers:
            x = layer(x, add_mask)
        return self.cls(x[:, 0])

    def forward(self, input_ids, attention_mask):
        return torch.softmax(self.logits(input_ids, attention_mask), dim=-1)


def toy_text(rng, n):
    """Random sequences: [CLS] + 5..31 tokens from 2..999, padded with 0.
    Label 1 iff KEY_ID (7) occurs among the real tokens.  Half the rows have
    it forced in; a KEY_ID placed in the padding area does not count (the
    mask must be honoured)."""
    ids = np.zeros((n, MAX_LEN), dtype=np.int64)
    mask = np.zeros((n, MAX_LEN), dtype=np.int64)
    y = np.zeros(n, dtype=np.int64)
    for i in range(n):
        length = rng.randint(6, MAX_LEN + 1)             # incl. CLS
        toks = rng.randint(8, VOCAB, size=length - 1)
        if rng.rand() < 0.5:
            toks[rng.randint(0, length - 1)] = KEY_ID
            y[i] = 1
        ids[i, 0] = CLS_ID
        ids[i, 1:length] = toks
        mask[i, :length] = 1
        if length < MAX_LEN and rng.rand() < 0.3:
            # garbage under the mask (ids are ignored where mask == 0)
            ids[i, length:] = rng.randint(2, VOCAB, size=MAX_LEN - length)
            ids[i, rng.randint(length, MAX_LEN)] = KEY_ID
    return ids, mask, y


# ---------------------------------------------------------------------------
# training

def train(model, batches_fn, epochs, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for args, y in batches_fn():
            opt.zero_grad()
            loss = F.cross_entropy(model.logits(*args), y)
            loss.backward()
            opt.step()
    model.eval()
    return model


def minibatches(arrays, y, bs, gen):
    n = len(y)
    perm = torch.randperm(n, generator=gen)
    for s in range(0, n, bs):
        idx = perm[s:s + bs]
        yield tuple(torch.from_numpy(a)[idx] for a in arrays), torch.from_numpy(y)[idx]


def accuracy(model, arrays, y):
    with torch.no_grad():
        p = model(*[torch.from_numpy(a) for a in arrays]).numpy()
    return float((p.argmax(1) == y).mean())


# ---------------------------------------------------------------------------
# export, metadata, fixtures

def export(model, args, input_names, path, keep_batchnorm=False):
    """torch.onnx.export in eval mode.  By default the exporter folds an eval
    BatchNorm that follows a Conv into the Conv's weights; keep_batchnorm
    (TrainingMode.PRESERVE on a model in eval mode) keeps it as an inference
    BatchNormalization node instead, so the fixture exercises that kernel."""
    mode = torch.onnx.TrainingMode.PRESERVE if keep_batchnorm else torch.onnx.TrainingMode.EVAL
    dyn = {n: {0: "N"} for n in input_names + ["probabilities"]}
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        # PRESERVE warns about constant folding for models in training mode;
        # ours is in eval mode, so folding is safe.
        warnings.filterwarnings("ignore", message="It is recommended that constant folding")
        torch.onnx.export(model, tuple(torch.from_numpy(a) for a in args), path,
                          input_names=input_names, output_names=["probabilities"],
                          dynamic_axes=dyn, opset_version=OPSET, do_constant_folding=True,
                          export_params=True, training=mode)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return m


def set_meta(m, name):
    del m.metadata_props[:]
    helper.set_model_props(m, {"model_name": name, "model_version": MODEL_VERSION})
    m.model_version = int(MODEL_VERSION)
    m.graph.name = name
    return m


def op_summary(m):
    ops = sorted({(n.domain or "ai.onnx", n.op_type) for n in m.graph.node})
    opsets = {(o.domain or "ai.onnx"): o.version for o in m.opset_import}
    return ops, opsets


def write_fixture(path, model_bytes, sets, torch_outs, diffs):
    """sets: list of (inputs [(name, arr)], outputs [(name, arr)])."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    with open(os.path.join(path, "model.onnx"), "wb") as f:
        f.write(model_bytes)
    for k, (ins, outs) in enumerate(sets):
        d = os.path.join(path, "test_data_set_%d" % k)
        os.makedirs(d)
        for kind, items in (("input", ins), ("output", outs)):
            for i, (name, arr) in enumerate(items):
                t = numpy_helper.from_array(np.ascontiguousarray(arr), name)
                with open(os.path.join(d, "%s_%d.pb" % (kind, i)), "wb") as f:
                    f.write(t.SerializeToString())
    with open(os.path.join(path, "tolerance"), "w") as f:
        f.write(TOLERANCE)
    rec = {"note": "torch %s outputs on the inputs of each test_data_set (float32 values "
                   "printed as doubles); output_K.pb holds ONNX Runtime's" % torch.__version__,
           "sets": {}}
    for k, outs in enumerate(torch_outs):
        rec["sets"]["test_data_set_%d" % k] = {
            "outputs": {n: [[float(v) for v in row] for row in a] for n, a in outs},
            "ort_vs_torch_max_abs_diff": float(diffs[k])}
    with open(os.path.join(path, "torch_expected.json"), "w") as f:
        json.dump(rec, f, indent=1, sort_keys=True)
        f.write("\n")


def build(name, model, input_names, sets, node_modules, served_name, keep_batchnorm=False):
    """sets: list of input tuples (numpy arrays in input_names order)."""
    served = os.path.join(REPO, "models", "%s.onnx" % name)
    tmp = served + ".tmp"
    export(model, sets[0], input_names, tmp, keep_batchnorm)
    m = set_meta(onnx.load(tmp), served_name)
    os.remove(tmp)
    onnx.checker.check_model(m)
    data = m.SerializeToString()
    with open(served, "wb") as f:
        f.write(data)

    fixture_sets, torch_outs, diffs = [], [], []
    for args in sets:
        with torch.no_grad():
            want = model(*[torch.from_numpy(a) for a in args]).numpy()
        ins = list(zip(input_names, args))
        got = fixture_util.ort_run(served, ins, node_modules)
        if [n for n, _ in got] != ["probabilities"]:
            raise SystemExit("%s: unexpected ORT outputs %r" % (name, [n for n, _ in got]))
        ort = got[0][1]
        if ort.shape != want.shape or ort.dtype != np.float32:
            raise SystemExit("%s: ORT output %s %s, torch %s" % (name, ort.shape, ort.dtype,
                                                                 want.shape))
        diff = float(np.max(np.abs(ort.astype(np.float64) - want.astype(np.float64))))
        if not diff < PARITY:
            raise SystemExit("%s: ORT vs torch max abs diff %.3g >= %g" % (name, diff, PARITY))
        ok, msg = fixture_util.allclose(ort, want, rtol=1e-4, atol=1e-4)
        if not ok:
            raise SystemExit("%s: ORT vs torch: %s" % (name, msg))
        fixture_sets.append((ins, [("probabilities", ort)]))
        torch_outs.append([("probabilities", want)])
        diffs.append(diff)
    fix = os.path.join(REPO, "tests", "models", "torch_%s" % name)
    write_fixture(fix, data, fixture_sets, torch_outs, diffs)

    ops, opsets = op_summary(m)
    n_params = sum(p.numel() for p in model.parameters())
    print("== %s (%s): %d parameters, %d nodes, opset %s" % (
        name, served_name, n_params, len(m.graph.node),
        ", ".join("%s %d" % kv for kv in sorted(opsets.items()))))
    print("   ops: %s" % " ".join(op if dom == "ai.onnx" else "%s:%s" % (dom, op)
                                  for dom, op in ops))
    for gi in m.graph.input:
        dims = [d.dim_param or d.dim_value for d in gi.type.tensor_type.shape.dim]
        print("   input  %s %s %s" % (gi.name, onnx.TensorProto.DataType.Name(
            gi.type.tensor_type.elem_type).lower(), dims))
    for go in m.graph.output:
        dims = [d.dim_param or d.dim_value for d in go.type.tensor_type.shape.dim]
        print("   output %s %s %s" % (go.name, onnx.TensorProto.DataType.Name(
            go.type.tensor_type.elem_type).lower(), dims))
    print("   ORT vs torch max abs diff: %s" % ", ".join(
        "set %d (batch %d) %.3g" % (k, len(s[0]), d) for k, (s, d) in enumerate(zip(sets, diffs))))
    print("   %s: %d bytes; %s: %d bytes" % (
        os.path.relpath(served, REPO), os.path.getsize(served),
        os.path.relpath(fix, REPO) + "/", fixture_util.dir_size(fix)))
    return m


# ---------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--node-modules", default=None,
                    help="node_modules holding onnxruntime-node "
                         "(default $ORT_NODE_MODULES or /tmp/ort/node_modules)")
    args = ap.parse_args(argv)
    if not fixture_util.ort_available(args.node_modules):
        raise SystemExit("onnxruntime-node not found; see tools/ort_run.js for how to get it")

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(os.path.join(REPO, "models"), exist_ok=True)
    print("torch %s, onnx %s" % (torch.__version__, onnx.__version__))

    Xtr, ytr, Xte, yte = digits_split()

    # 1. MLP
    t0 = time.time()
    seed_all()
    gen = torch.Generator().manual_seed(SEED)
    mlp = train(DigitsMLP(), lambda: minibatches([Xtr], ytr, 32, gen), epochs=20, lr=1e-3)
    print("digits_mlp: trained in %.1f s, test accuracy %.4f"
          % (time.time() - t0, accuracy(mlp, [Xte], yte)))
    build("digits_mlp", mlp, ["input"], [(Xte[:1],), (Xte[1:9],)],
          args.node_modules, "digits-mlp")

    # 2. CNN
    t0 = time.time()
    seed_all()
    gen = torch.Generator().manual_seed(SEED)
    Xtr4, Xte4 = Xtr.reshape(-1, 1, 8, 8), Xte.reshape(-1, 1, 8, 8)
    cnn = train(DigitsCNN(), lambda: minibatches([Xtr4], ytr, 32, gen), epochs=15, lr=3e-3)
    print("digits_cnn: trained in %.1f s, test accuracy %.4f"
          % (time.time() - t0, accuracy(cnn, [Xte4], yte)))
    build("digits_cnn", cnn, ["input"], [(Xte4[:1].copy(),), (Xte4[1:9].copy(),)],
          args.node_modules, "digits-cnn", keep_batchnorm=True)

    # 3. BERT-style text classifier
    t0 = time.time()
    seed_all()
    gen = torch.Generator().manual_seed(SEED)
    rng = np.random.RandomState(SEED)
    ids, mask, y = toy_text(rng, 1024)
    ids_te, mask_te, y_te = toy_text(rng, 256)
    bert = train(TextBert(), lambda: minibatches([ids, mask], y, 64, gen), epochs=1, lr=1e-3)
    print("text_bert: trained in %.1f s, toy test accuracy %.4f"
          % (time.time() - t0, accuracy(bert, [ids_te, mask_te], y_te)))
    # set 0: one full-length row (no padding).  set 1: 4 rows, 3 of them
    # padded: a full-length row, a label-0 row with KEY_ID hidden under the
    # mask (the mask must be honoured to get it right), a padded label-1 row,
    # and the shortest row.
    lengths = mask_te.sum(1)
    full = np.nonzero(lengths == MAX_LEN)[0]
    padded = np.nonzero(lengths < MAX_LEN)[0]
    hidden_key = [i for i in padded
                  if y_te[i] == 0 and (ids_te[i][mask_te[i] == 0] == KEY_ID).any()]
    padded_pos = [i for i in padded if y_te[i] == 1 and i not in hidden_key]
    if len(full) == 0 or not hidden_key or not padded_pos:
        raise SystemExit("text_bert: toy test rows lack a full, hidden-key or positive row")
    rows1 = [int(full[-1]), int(hidden_key[0]), int(padded_pos[0])]
    rows1.append(int(min((i for i in padded if i not in rows1), key=lambda i: (lengths[i], i))))
    sets = [(ids_te[full[:1]], mask_te[full[:1]]), (ids_te[rows1], mask_te[rows1])]
    build("text_bert", bert, ["input_ids", "attention_mask"], sets,
          args.node_modules, "text-bert")
    return 0


if __name__ == "__main__":
    sys.exit(main())

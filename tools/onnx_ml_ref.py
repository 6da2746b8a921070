#!/usr/bin/python3
"""onnx_ml_ref -- a small, slow, literal reading of the ai.onnx.ml operators
nginfer serves (TreeEnsembleRegressor/Classifier, LinearRegressor/Classifier,
Scaler, Normalizer), in numpy float64.

It is a cross-check for the fixture generators, written from the operator
documentation (onnx.defs schemas), not from any runtime:
  * make_sk_fixtures.py runs each converted model through it and compares
    with scikit-learn's predictions (catches converter mistakes);
  * make_spec_fixtures.py compares it with ONNX Runtime and reports every
    place the two disagree (the spec is silent or ORT departs from it).
It is not used by the server and it is not the source of any expected value.

Where the spec is silent this file makes a choice and says so in a comment
(marked SPEC-SILENT); the spec fixtures then show what ORT does instead.

    run(model: onnx.ModelProto, feeds: {name: ndarray}) -> [ndarray, ...]
"""

import math

import numpy as np
from onnx import helper


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


# ---------------------------------------------------------------------------
# post transforms


def _erfinv(y):
    # Newton on erf (math.erf is exact enough); y in (-1, 1)
    if math.isnan(y) or y < -1.0 or y > 1.0:
        return math.nan
    if y == -1.0:
        return -math.inf
    if y == 1.0:
        return math.inf
    # closed-form initial guess (a = 0.147), then Newton steps on math.erf
    a = 0.147
    ln = math.log(1.0 - y * y)
    t = 2.0 / (math.pi * a) + ln / 2.0
    x = math.copysign(math.sqrt(math.sqrt(t * t - ln / a) - t), y)
    for _ in range(6):
        err = math.erf(x) - y
        x -= err / (2.0 / math.sqrt(math.pi) * math.exp(-x * x))
    return x


def post_transform(scores, kind):
    """Apply post_transform row-wise to a float64 [N, C] array."""
    kind = _s(kind) or "NONE"
    s = np.array(scores, dtype=np.float64)
    if kind == "NONE":
        return s
    if kind == "LOGISTIC":
        return 1.0 / (1.0 + np.exp(-s))
    if kind == "SOFTMAX":
        m = s.max(axis=1, keepdims=True)
        e = np.exp(s - m)
        return e / e.sum(axis=1, keepdims=True)
    if kind == "SOFTMAX_ZERO":
        # softmax over the non-zero entries; zero entries stay zero
        out = np.zeros_like(s)
        for i, row in enumerate(s):
            nz = row != 0
            if nz.any():
                e = np.exp(row[nz] - row[nz].max())
                out[i, nz] = e / e.sum()
        return out
    if kind == "PROBIT":
        # probit = inverse of the standard normal CDF = sqrt(2) * erfinv(2p - 1)
        return np.vectorize(lambda p: math.sqrt(2.0) * _erfinv(2.0 * p - 1.0))(s)
    raise ValueError("unknown post_transform %r" % kind)


# ---------------------------------------------------------------------------
# tree ensembles


def _branch(mode, x, t):
    if mode == "BRANCH_LEQ":
        return x <= t
    if mode == "BRANCH_LT":
        return x < t
    if mode == "BRANCH_GTE":
        return x >= t
    if mode == "BRANCH_GT":
        return x > t
    if mode == "BRANCH_EQ":
        return x == t
    if mode == "BRANCH_NEQ":
        return x != t
    raise ValueError("unknown node mode %r" % mode)


class _Trees:
    def __init__(self, a, prefix):
        self.nodes = {}
        n = len(a["nodes_nodeids"])
        tracks = a.get("nodes_missing_value_tracks_true") or [0] * n
        for i in range(n):
            key = (a["nodes_treeids"][i], a["nodes_nodeids"][i])
            self.nodes[key] = dict(
                mode=_s(a["nodes_modes"][i]),
                feature=a["nodes_featureids"][i],
                value=np.float64(np.float32(a["nodes_values"][i])),
                true=a["nodes_truenodeids"][i],
                false=a["nodes_falsenodeids"][i],
                track_true=bool(tracks[i]),
            )
        # root of each tree: the node no other node of that tree points to
        children = set()
        for (tid, nid), nd in self.nodes.items():
            if nd["mode"] != "LEAF":
                children.add((tid, nd["true"]))
                children.add((tid, nd["false"]))
        self.roots = sorted(k for k in self.nodes if k not in children)
        self.tree_ids = sorted({k[0] for k in self.nodes})
        self.weights = {}
        for t, nid, cid, w in zip(a[prefix + "_treeids"], a[prefix + "_nodeids"],
                                  a[prefix + "_ids"], a[prefix + "_weights"]):
            self.weights.setdefault((t, nid), []).append((cid, float(np.float32(w))))

    def leaf(self, root, x):
        tid = root[0]
        key = root
        while True:
            nd = self.nodes[key]
            if nd["mode"] == "LEAF":
                return key
            v = x[nd["feature"]]
            if np.isnan(v):
                # Spec: NaN takes the true branch iff missing_value_tracks_true,
                # else the false branch -- for every mode (SPEC: "use the 'true'
                # or 'false' branch based on the value in this array").
                go = nd["track_true"]
            else:
                go = _branch(nd["mode"], v, nd["value"])
            key = (tid, nd["true"] if go else nd["false"])


def _aggregate(trees, x, n_out, agg):
    """Return (scores [n_out], has_score [n_out]) for one row."""
    score = np.zeros(n_out)
    has = np.zeros(n_out, dtype=bool)
    for root in trees.roots:
        leaf = trees.leaf(root, x)
        for cid, w in trees.weights.get(leaf, []):
            if agg in ("SUM", "AVERAGE"):
                score[cid] += w
            elif agg == "MIN":
                score[cid] = w if not has[cid] else min(score[cid], w)
            elif agg == "MAX":
                score[cid] = w if not has[cid] else max(score[cid], w)
            else:
                raise ValueError("unknown aggregate_function %r" % agg)
            has[cid] = True
    if agg == "AVERAGE":
        score /= len(trees.roots)
    return score, has


def tree_ensemble_regressor(node, X):
    a = _attrs(node)
    n_targets = a.get("n_targets", 1)
    agg = _s(a.get("aggregate_function", "SUM"))
    base = a.get("base_values") or []
    trees = _Trees(a, "target")
    out = np.zeros((X.shape[0], n_targets))
    for i, x in enumerate(X):
        s, _ = _aggregate(trees, x, n_targets, agg)
        if base:
            s = s + np.asarray(base, dtype=np.float64)
        out[i] = s
    return [post_transform(out, a.get("post_transform", "NONE"))]


def _labels(a, ints_key):
    if a.get("classlabels_strings"):
        return np.array([_s(v) for v in a["classlabels_strings"]], dtype=object)
    return np.array(a.get(ints_key) or [], dtype=np.int64)


def tree_ensemble_classifier(node, X):
    a = _attrs(node)
    labels = _labels(a, "classlabels_int64s")
    n_classes = len(labels)
    base = a.get("base_values") or []
    trees = _Trees(a, "class")
    # Two labels with weights for one class only ("binary" models): read
    # literally, the other class simply scores 0 (plus its base value).
    raw = np.zeros((X.shape[0], n_classes))
    for i, x in enumerate(X):
        s, _ = _aggregate(trees, x, n_classes, "SUM")
        if base:
            s = s + np.asarray(base, dtype=np.float64)
        raw[i] = s
    # SPEC-SILENT: the label is taken as argmax of the scores before the
    # post transform (ties: first class).
    lab = labels[np.argmax(raw, axis=1)]
    return [lab, post_transform(raw, a.get("post_transform", "NONE"))]


# ---------------------------------------------------------------------------
# linear models and preprocessing


def linear_regressor(node, X):
    a = _attrs(node)
    targets = a.get("targets", 1)
    coef = np.asarray(a["coefficients"], dtype=np.float64).reshape(targets, -1)
    y = X @ coef.T
    if a.get("intercepts"):
        y = y + np.asarray(a["intercepts"], dtype=np.float64)
    return [post_transform(y, a.get("post_transform", "NONE"))]


def linear_classifier(node, X):
    a = _attrs(node)
    labels = _labels(a, "classlabels_ints")
    coef = np.asarray(a["coefficients"], dtype=np.float64).reshape(-1, X.shape[1])
    raw = X @ coef.T
    if a.get("intercepts"):
        raw = raw + np.asarray(a["intercepts"], dtype=np.float64)
    if coef.shape[0] == 1 and len(labels) == 2:
        # SPEC-SILENT: one coefficient row, two labels.
        raise NotImplementedError("binary single-row LinearClassifier")
    lab = labels[np.argmax(raw, axis=1)]
    return [lab, post_transform(raw, a.get("post_transform", "NONE"))]


def scaler(node, X):
    a = _attrs(node)
    off = np.asarray(a.get("offset") or [0.0], dtype=np.float64)
    sc = np.asarray(a.get("scale") or [1.0], dtype=np.float64)
    return [(X - off) * sc]


def normalizer(node, X):
    a = _attrs(node)
    norm = _s(a.get("norm", "MAX"))
    X = np.asarray(X, dtype=np.float64)
    out = X.copy()
    for i, row in enumerate(X):
        if norm == "MAX":
            d = row.max()
            if d != 0:
                out[i] = row / d
        elif norm == "L1":
            d = row.sum()
            if d != 0:
                out[i] = row / d
        elif norm == "L2":
            d = (row * row).sum()
            if d != 0:
                out[i] = np.sqrt(row * row / d)
        else:
            raise ValueError("unknown norm %r" % norm)
    return [out]


OPS = {
    "TreeEnsembleRegressor": tree_ensemble_regressor,
    "TreeEnsembleClassifier": tree_ensemble_classifier,
    "LinearRegressor": linear_regressor,
    "LinearClassifier": linear_classifier,
    "Scaler": scaler,
    "Normalizer": normalizer,
}


def run(model, feeds):
    """Evaluate a graph of the ops above; returns the graph outputs in order."""
    env = {k: np.asarray(v, dtype=np.float64) if np.asarray(v).dtype.kind == "f" else np.asarray(v)
           for k, v in feeds.items()}
    for node in model.graph.node:
        if node.op_type not in OPS:
            raise NotImplementedError(node.op_type)
        X = np.asarray(env[node.input[0]], dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        outs = OPS[node.op_type](node, X)
        for name, val in zip(node.output, outs):
            env[name] = val
    return [env[o.name] for o in model.graph.output]

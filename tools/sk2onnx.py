#!/usr/bin/python3
"""sk2onnx -- convert fitted scikit-learn estimators to ONNX for nginfer.

Written for nginfer from the ONNX operator specification (ai.onnx.ml opset 3)
and scikit-learn's documented estimator attributes; it does not derive from
any other converter.

Library use:
    from sk2onnx import convert
    model = convert(estimator, n_features, name="model", version="1")

Command line (Debian's python: /usr/bin/python3, which has onnx and sklearn):
    /usr/bin/python3 tools/sk2onnx.py MODEL.pkl OUT.onnx --n-features N \
        [--name NAME] [--version V]

Supported fitted estimators:
    RandomForestRegressor, RandomForestClassifier,
    ExtraTreesRegressor, ExtraTreesClassifier,
    GradientBoostingRegressor, GradientBoostingClassifier,
    DecisionTreeRegressor, DecisionTreeClassifier,
    LinearRegression, Ridge, Lasso,
    LogisticRegression (binary, multinomial, one-vs-rest),
    Pipeline(StandardScaler..., <one of the above>).

Graph conventions the nginfer C server relies on (keep them exactly):
    * opset imports ai.onnx 17 and ai.onnx.ml 3, ir_version 8;
      only the classic float attributes (nodes_values, target_weights,
      class_weights, base_values), never the *_as_tensor ones;
    * one input "input": float32 [N, n_features], N symbolic (dim_param);
    * regressors: one output "variable": float32 [N, n_targets];
    * classifiers: outputs "label" ([N], int64 or string) then
      "probabilities" (float32 [N, n_classes]); no ZipMap;
    * metadata: producer_name "nginfer-sk2onnx", graph name = name,
      metadata_props model_name / model_version,
      ModelProto.model_version set when the version is an integer.
"""

import argparse
import pickle
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

PRODUCER_NAME = "nginfer-sk2onnx"
PRODUCER_VERSION = "1"
OPSET_ONNX = 17
OPSET_ML = 3
IR_VERSION = 8
ML_DOMAIN = "ai.onnx.ml"

INPUT_NAME = "input"
REG_OUTPUT = "variable"
LABEL_OUTPUT = "label"
PROBA_OUTPUT = "probabilities"

# sklearn's tree_ marks leaves with children_left == TREE_LEAF (-1).
_TREE_LEAF = -1


class ConversionError(ValueError):
    """Raised for estimators (or configurations) sk2onnx cannot convert."""


# ---------------------------------------------------------------------------
# helpers


def _cls(obj):
    return type(obj).__name__


def _f32_floor(values):
    """Largest float32 <= each float64 value (rounding toward -inf).

    scikit-learn's trees cast X to float32 and then test `x <= threshold`
    with the threshold kept as float64.  The ONNX node attribute
    nodes_values is float32, so storing float32(t) (round to nearest) can be
    wrong: when float32(t) > t, an input x == float32(t) goes right in
    sklearn (x > t) but left in ONNX (x <= float32(t)).  Storing instead
    t32 = the largest float32 <= t makes the two tests identical for every
    float32 x:
        x <= t32  implies  x <= t            (t32 <= t)
        x <= t    implies  x <= t32          (x is a float32 <= t and t32 is
                                              the largest such float32)
    so with mode BRANCH_LEQ every branch decision matches sklearn exactly.
    """
    t = np.asarray(values, dtype=np.float64)
    t32 = t.astype(np.float32)
    too_big = t32.astype(np.float64) > t
    t32[too_big] = np.nextafter(t32[too_big], np.float32(-np.inf), dtype=np.float32)
    return t32


def _check_fitted(est, attr):
    if not hasattr(est, attr):
        raise ConversionError("%s is not fitted (no %s)" % (_cls(est), attr))


def _check_n_features(est, n_features):
    n_in = getattr(est, "n_features_in_", None)
    if n_in is not None and int(n_in) != int(n_features):
        raise ConversionError(
            "%s was fitted on %d features but n_features=%d"
            % (_cls(est), int(n_in), int(n_features)))


def _class_labels(classes):
    """Return (attribute-name-suffix, python list, onnx elem type) for classes_."""
    classes = np.asarray(classes)
    if classes.ndim != 1:
        raise ConversionError("multi-output classifiers are not supported")
    if classes.dtype.kind in "iu":
        return "int64s", [int(c) for c in classes], TensorProto.INT64
    if classes.dtype.kind == "b":
        return "int64s", [int(c) for c in classes], TensorProto.INT64
    if classes.dtype.kind == "f":
        if np.all(np.isfinite(classes)) and np.all(classes == np.round(classes)):
            return "int64s", [int(c) for c in classes], TensorProto.INT64
        raise ConversionError("non-integer float class labels are not supported")
    if classes.dtype.kind in "UO" and all(isinstance(c, str) for c in classes):
        return "strings", [str(c) for c in classes], TensorProto.STRING
    raise ConversionError("class labels of dtype %s are not supported" % classes.dtype)


class _Graph:
    """Accumulates nodes; tracks the name of the current feature tensor."""

    def __init__(self, n_features):
        self.n_features = int(n_features)
        self.nodes = []
        self.current = INPUT_NAME
        self.outputs = []
        self._counter = 0

    def fresh(self, base):
        self._counter += 1
        return "%s_%d" % (base, self._counter)

    def add(self, op, inputs, outputs, **attrs):
        name = self.fresh(op)
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name,
                                           domain=ML_DOMAIN, **attrs))


# ---------------------------------------------------------------------------
# trees


def _tree_nodes(tree_, tree_id):
    """Node attribute lists for one sklearn tree_ (node ids = sklearn's)."""
    n = tree_.node_count
    left = tree_.children_left
    right = tree_.children_right
    is_leaf = left == _TREE_LEAF
    thresholds = _f32_floor(np.where(is_leaf, 0.0, tree_.threshold))
    nodes = {
        "treeids": [tree_id] * n,
        "nodeids": list(range(n)),
        "featureids": [0 if is_leaf[i] else int(tree_.feature[i]) for i in range(n)],
        "modes": ["LEAF" if is_leaf[i] else "BRANCH_LEQ" for i in range(n)],
        # sklearn sends x[f] <= threshold to the left child: true = left.
        "values": [float(v) for v in thresholds],
        "truenodeids": [0 if is_leaf[i] else int(left[i]) for i in range(n)],
        "falsenodeids": [0 if is_leaf[i] else int(right[i]) for i in range(n)],
    }
    leaves = [i for i in range(n) if is_leaf[i]]
    return nodes, leaves


def _merge_nodes(all_nodes, nodes):
    for k, v in nodes.items():
        all_nodes.setdefault(k, []).extend(v)


def _node_attrs(all_nodes):
    return {"nodes_" + k: v for k, v in all_nodes.items()}


def _forest_trees(est):
    """The list of DecisionTree estimators in a forest or a single tree."""
    if hasattr(est, "estimators_"):
        return list(est.estimators_)
    return [est]


def _tree_regressor(g, est):
    """DecisionTreeRegressor / RandomForestRegressor / ExtraTreesRegressor."""
    _check_fitted(est, "estimators_" if hasattr(est, "n_estimators") else "tree_")
    trees = _forest_trees(est)
    n_trees = len(trees)
    n_targets = int(trees[0].tree_.n_outputs)
    all_nodes = {}
    t_tree, t_node, t_id, t_w = [], [], [], []
    for tid, tree in enumerate(trees):
        tree_ = tree.tree_
        nodes, leaves = _tree_nodes(tree_, tid)
        _merge_nodes(all_nodes, nodes)
        for leaf in leaves:
            for k in range(n_targets):
                t_tree.append(tid)
                t_node.append(leaf)
                t_id.append(k)
                # mean over trees = SUM of leaf / n_trees
                t_w.append(float(np.float32(tree_.value[leaf, k, 0] / n_trees)))
    g.add("TreeEnsembleRegressor", [g.current], [REG_OUTPUT],
          n_targets=n_targets, aggregate_function="SUM", post_transform="NONE",
          target_treeids=t_tree, target_nodeids=t_node, target_ids=t_id,
          target_weights=t_w, **_node_attrs(all_nodes))
    g.outputs.append(helper.make_tensor_value_info(
        REG_OUTPUT, TensorProto.FLOAT, ["N", n_targets]))


def _tree_classifier(g, est):
    """DecisionTreeClassifier / RandomForestClassifier / ExtraTreesClassifier.

    predict_proba is the mean over trees of each tree's leaf class fractions
    (tree_.value normalised per leaf); predict is classes_[argmax(proba)].
    """
    _check_fitted(est, "classes_")
    if getattr(est, "n_outputs_", 1) != 1:
        raise ConversionError("multi-output %s is not supported" % _cls(est))
    kind, labels, elem = _class_labels(est.classes_)
    n_classes = len(labels)
    trees = _forest_trees(est)
    n_trees = len(trees)
    all_nodes = {}
    c_tree, c_node, c_id, c_w = [], [], [], []
    for tid, tree in enumerate(trees):
        tree_ = tree.tree_
        if tree_.value.shape[2] != n_classes:
            raise ConversionError("tree %d of %s has %d classes, expected %d"
                                  % (tid, _cls(est), tree_.value.shape[2], n_classes))
        nodes, leaves = _tree_nodes(tree_, tid)
        _merge_nodes(all_nodes, nodes)
        for leaf in leaves:
            v = tree_.value[leaf, 0, :].astype(np.float64)
            total = v.sum()
            frac = v / total if total > 0 else np.full(n_classes, 1.0 / n_classes)
            for c in range(n_classes):
                c_tree.append(tid)
                c_node.append(leaf)
                c_id.append(c)
                c_w.append(float(np.float32(frac[c] / n_trees)))
    g.add("TreeEnsembleClassifier", [g.current], [LABEL_OUTPUT, PROBA_OUTPUT],
          post_transform="NONE",
          class_treeids=c_tree, class_nodeids=c_node, class_ids=c_id,
          class_weights=c_w, **{"classlabels_" + kind: labels},
          **_node_attrs(all_nodes))
    g.outputs.append(helper.make_tensor_value_info(LABEL_OUTPUT, elem, ["N"]))
    g.outputs.append(helper.make_tensor_value_info(
        PROBA_OUTPUT, TensorProto.FLOAT, ["N", n_classes]))


def _gb_regressor(g, est):
    """GradientBoostingRegressor: init prediction + learning_rate * sum(trees).

    sklearn: raw = init_.predict(X) (init_ is DummyRegressor: mean for
    squared_error, median for absolute_error, the alpha/0.5 quantile for
    quantile/huber; 'zero' gives 0), then predict_stages adds
    learning_rate * tree.value[leaf] for every stage.  All of these init
    estimators predict a constant, stored as base_values.
    """
    _check_fitted(est, "estimators_")
    base = _gb_init_regressor(est)
    lr = float(est.learning_rate)
    all_nodes = {}
    t_tree, t_node, t_id, t_w = [], [], [], []
    for tid, tree in enumerate(est.estimators_[:, 0]):
        tree_ = tree.tree_
        nodes, leaves = _tree_nodes(tree_, tid)
        _merge_nodes(all_nodes, nodes)
        for leaf in leaves:
            t_tree.append(tid)
            t_node.append(leaf)
            t_id.append(0)
            t_w.append(float(np.float32(lr * tree_.value[leaf, 0, 0])))
    g.add("TreeEnsembleRegressor", [g.current], [REG_OUTPUT],
          n_targets=1, aggregate_function="SUM", post_transform="NONE",
          base_values=[float(np.float32(base))],
          target_treeids=t_tree, target_nodeids=t_node, target_ids=t_id,
          target_weights=t_w, **_node_attrs(all_nodes))
    g.outputs.append(helper.make_tensor_value_info(
        REG_OUTPUT, TensorProto.FLOAT, ["N", 1]))


def _gb_init_regressor(est):
    from sklearn.dummy import DummyRegressor
    init = est.init_
    if isinstance(init, str) and init == "zero":
        return 0.0
    if isinstance(init, DummyRegressor):
        const = np.asarray(init.constant_, dtype=np.float64).reshape(-1)
        if const.size != 1:
            raise ConversionError("multi-output init estimator is not supported")
        return float(const[0])
    raise ConversionError("GradientBoostingRegressor with init=%s is not supported "
                          "(only the default DummyRegressor or 'zero')" % _cls(init))


def _gb_init_classifier(est, n_classes):
    """Initial raw scores of a GradientBoostingClassifier, as sklearn 1.2 computes.

    Default init_ is DummyClassifier(strategy='prior'): its predict_proba is
    the (sample-weighted) class_prior_ for every row.  The loss then turns it
    into raw scores (sklearn/ensemble/_gb_losses.py get_init_raw_predictions):
        eps = float32 machine epsilon (np.finfo(np.float32).eps)
        binary log_loss:   p = clip(prior[1], eps, 1-eps);  raw = log(p/(1-p))
        exponential:       raw = 0.5 * log(p/(1-p))  (same clipped p)
        multiclass:        raw_k = log(clip(prior[k], eps, 1-eps))
    init='zero' gives zeros.  Returns a float64 array of length K
    (1 for binary, n_classes otherwise).
    """
    from sklearn.dummy import DummyClassifier
    K = 1 if n_classes == 2 else n_classes
    init = est.init_
    if isinstance(init, str) and init == "zero":
        return np.zeros(K)
    if not isinstance(init, DummyClassifier) or init.strategy != "prior":
        raise ConversionError("GradientBoostingClassifier with init=%s is not supported "
                              "(only the default DummyClassifier(strategy='prior') "
                              "or 'zero')" % _cls(init))
    prior = np.asarray(init.class_prior_, dtype=np.float64)
    eps = np.finfo(np.float32).eps
    if K == 1:
        p = np.clip(prior[1], eps, 1 - eps)
        raw = np.log(p / (1 - p))
        if _gb_loss_name(est) == "exponential":
            raw = 0.5 * raw
        return np.array([raw])
    return np.log(np.clip(prior, eps, 1 - eps))


def _gb_loss_name(est):
    loss = est.loss
    if loss == "deviance":  # deprecated alias in sklearn 1.1/1.2
        loss = "log_loss"
    return loss


def _gb_classifier(g, est):
    """GradientBoostingClassifier.

    binary (K=1 tree per stage): z = init + lr * sum(tree); sklearn gives
    proba = (1 - expit(z), expit(z)).  We emit two class columns with weights
    (-w, +w), the start value folded into the first tree's leaves, and
    post_transform LOGISTIC, so
    the probabilities are (sigmoid(-z), sigmoid(z)) = (1-p, p): no binary
    special case anywhere.  For loss='exponential' sklearn uses expit(2z), so
    every weight and base value is doubled.
    multiclass: K trees per stage, class k's tree adds lr * value to score k,
    base_values = log priors, post_transform SOFTMAX.
    """
    _check_fitted(est, "estimators_")
    kind, labels, elem = _class_labels(est.classes_)
    n_classes = len(labels)
    loss = _gb_loss_name(est)
    if loss not in ("log_loss", "exponential"):
        raise ConversionError("GradientBoostingClassifier loss=%r is not supported" % est.loss)
    init = _gb_init_classifier(est, n_classes)
    lr = float(est.learning_rate)
    binary = n_classes == 2
    scale = 2.0 if loss == "exponential" else 1.0
    all_nodes = {}
    c_tree, c_node, c_id, c_w = [], [], [], []
    stages, K = est.estimators_.shape
    tid = 0
    for s in range(stages):
        for k in range(K):
            tree_ = est.estimators_[s, k].tree_
            nodes, leaves = _tree_nodes(tree_, tid)
            _merge_nodes(all_nodes, nodes)
            for leaf in leaves:
                w = scale * lr * tree_.value[leaf, 0, 0]
                if binary and tid == 0:
                    # the start value rides on the first tree's leaves (every
                    # row reaches exactly one of them) instead of base_values:
                    # ONNX Runtime mishandles two base values on a 2-class
                    # ensemble, and this form means the same under the spec
                    w += scale * init[0]
                if binary:
                    for c, sign in ((0, -1.0), (1, 1.0)):
                        c_tree.append(tid)
                        c_node.append(leaf)
                        c_id.append(c)
                        c_w.append(float(np.float32(sign * w)))
                else:
                    c_tree.append(tid)
                    c_node.append(leaf)
                    c_id.append(k)
                    c_w.append(float(np.float32(w)))
            tid += 1
    if binary:
        base = {}
        post = "LOGISTIC"
    else:
        base = {"base_values": [float(np.float32(b)) for b in init]}
        post = "SOFTMAX"
    g.add("TreeEnsembleClassifier", [g.current], [LABEL_OUTPUT, PROBA_OUTPUT],
          post_transform=post, **base,
          class_treeids=c_tree, class_nodeids=c_node, class_ids=c_id,
          class_weights=c_w, **{"classlabels_" + kind: labels},
          **_node_attrs(all_nodes))
    g.outputs.append(helper.make_tensor_value_info(LABEL_OUTPUT, elem, ["N"]))
    g.outputs.append(helper.make_tensor_value_info(
        PROBA_OUTPUT, TensorProto.FLOAT, ["N", n_classes]))


# ---------------------------------------------------------------------------
# linear models


def _linear_regressor(g, est):
    """LinearRegression / Ridge / Lasso: y = X @ coef_.T + intercept_."""
    _check_fitted(est, "coef_")
    coef = np.asarray(est.coef_, dtype=np.float64)
    if coef.ndim == 1:
        coef = coef.reshape(1, -1)
    n_targets = coef.shape[0]
    if coef.shape[1] != g.n_features:
        raise ConversionError("%s has %d coefficients per target, n_features=%d"
                              % (_cls(est), coef.shape[1], g.n_features))
    intercept = np.broadcast_to(np.asarray(est.intercept_, dtype=np.float64).reshape(-1),
                                (n_targets,))
    g.add("LinearRegressor", [g.current], [REG_OUTPUT],
          coefficients=[float(np.float32(c)) for c in coef.reshape(-1)],
          intercepts=[float(np.float32(b)) for b in intercept],
          targets=n_targets, post_transform="NONE")
    g.outputs.append(helper.make_tensor_value_info(
        REG_OUTPUT, TensorProto.FLOAT, ["N", n_targets]))


def _logistic_is_ovr(est):
    """Same decision as LogisticRegression.predict_proba in sklearn 1.2."""
    mc = est.multi_class
    return mc in ("ovr", "warn") or (
        mc == "auto" and (est.classes_.size <= 2
                          or est.solver in ("liblinear", "newton-cholesky")))


def _logistic_regression(g, est):
    """LogisticRegression.

    binary: decision d = x.w + b (one coef_ row).  OvR (the default for two
    classes): proba = (1 - expit(d), expit(d)).  We emit rows (-w, +w) and
    intercepts (-b, +b) with LOGISTIC: (sigmoid(-d), sigmoid(d)).
    binary with multi_class='multinomial': sklearn uses softmax(-d, d); the
    same rows with SOFTMAX give exactly that.
    multiclass multinomial: one row per class, SOFTMAX.
    multiclass OvR: expit of each row then divided by the row sum: LOGISTIC,
    then a Normalizer(norm='L1') on the scores.  The label comes from the
    LinearClassifier (argmax of the scores, unchanged by L1 normalisation).
    """
    _check_fitted(est, "coef_")
    kind, labels, elem = _class_labels(est.classes_)
    n_classes = len(labels)
    coef = np.asarray(est.coef_, dtype=np.float64)
    intercept = np.asarray(est.intercept_, dtype=np.float64).reshape(-1)
    if coef.shape[1] != g.n_features:
        raise ConversionError("%s has %d coefficients per class, n_features=%d"
                              % (_cls(est), coef.shape[1], g.n_features))
    ovr = _logistic_is_ovr(est)
    if n_classes == 2:
        if coef.shape[0] != 1:
            raise ConversionError("unexpected coef_ shape %s for a binary LogisticRegression"
                                  % (coef.shape,))
        intercept = np.broadcast_to(intercept, (1,))
        coef = np.vstack([-coef[0], coef[0]])
        intercept = np.array([-intercept[0], intercept[0]])
        post = "LOGISTIC" if ovr else "SOFTMAX"
        normalise = False
    else:
        if coef.shape[0] != n_classes:
            raise ConversionError("unexpected coef_ shape %s for %d classes"
                                  % (coef.shape, n_classes))
        intercept = np.broadcast_to(intercept, (n_classes,))
        post = "LOGISTIC" if ovr else "SOFTMAX"
        normalise = ovr
    scores = g.fresh("scores") if normalise else PROBA_OUTPUT
    g.add("LinearClassifier", [g.current], [LABEL_OUTPUT, scores],
          coefficients=[float(np.float32(c)) for c in coef.reshape(-1)],
          intercepts=[float(np.float32(b)) for b in intercept],
          multi_class=0 if ovr else 1,
          post_transform=post, **{"classlabels_" + ("ints" if kind == "int64s" else kind): labels})
    if normalise:
        g.add("Normalizer", [scores], [PROBA_OUTPUT], norm="L1")
    g.outputs.append(helper.make_tensor_value_info(LABEL_OUTPUT, elem, ["N"]))
    g.outputs.append(helper.make_tensor_value_info(
        PROBA_OUTPUT, TensorProto.FLOAT, ["N", n_classes]))


# ---------------------------------------------------------------------------
# preprocessing


def _standard_scaler(g, est):
    """StandardScaler: (x - mean_) / scale_  ->  Scaler(offset=mean_, scale=1/scale_)."""
    _check_fitted(est, "n_features_in_")
    n = g.n_features
    mean = getattr(est, "mean_", None)
    scale = getattr(est, "scale_", None)
    offset = np.zeros(n) if mean is None else np.asarray(mean, dtype=np.float64)
    mult = np.ones(n) if scale is None else 1.0 / np.asarray(scale, dtype=np.float64)
    out = g.fresh("scaled")
    g.add("Scaler", [g.current], [out],
          offset=[float(np.float32(v)) for v in offset],
          scale=[float(np.float32(v)) for v in mult])
    g.current = out


# ---------------------------------------------------------------------------
# dispatch

_FINAL = {
    "RandomForestRegressor": _tree_regressor,
    "ExtraTreesRegressor": _tree_regressor,
    "DecisionTreeRegressor": _tree_regressor,
    "RandomForestClassifier": _tree_classifier,
    "ExtraTreesClassifier": _tree_classifier,
    "DecisionTreeClassifier": _tree_classifier,
    "GradientBoostingRegressor": _gb_regressor,
    "GradientBoostingClassifier": _gb_classifier,
    "LinearRegression": _linear_regressor,
    "Ridge": _linear_regressor,
    "Lasso": _linear_regressor,
    "LogisticRegression": _logistic_regression,
}

_PRE = {
    "StandardScaler": _standard_scaler,
}


def _lookup(table, est):
    # Exact class match through the MRO's sklearn classes, so a user subclass
    # of a supported estimator still converts but an unrelated one does not.
    for klass in type(est).__mro__:
        if klass.__module__.startswith("sklearn.") and klass.__name__ in table:
            return table[klass.__name__]
    return None


def _steps(estimator):
    """Flatten a Pipeline into (preprocessing steps, final estimator)."""
    from sklearn.pipeline import Pipeline
    if isinstance(estimator, Pipeline):
        ests = [step for _, step in estimator.steps
                if step is not None and not (isinstance(step, str) and step == "passthrough")]
        if not ests:
            raise ConversionError("empty Pipeline")
        pre, final = ests[:-1], ests[-1]
        for p in pre:
            if _lookup(_PRE, p) is None:
                raise ConversionError(
                    "unsupported Pipeline step %s (only StandardScaler may precede "
                    "the final estimator)" % _cls(p))
        return pre, final
    return [], estimator


def convert(estimator, n_features, name="model", version="1"):
    """Convert a fitted scikit-learn estimator to an onnx.ModelProto."""
    n_features = int(n_features)
    if n_features <= 0:
        raise ConversionError("n_features must be positive")
    pre, final = _steps(estimator)
    conv = _lookup(_FINAL, final)
    if conv is None:
        raise ConversionError("unsupported estimator: %s" % _cls(final))
    for est in pre + [final]:
        _check_n_features(est, n_features)

    g = _Graph(n_features)
    for p in pre:
        _lookup(_PRE, p)(g, p)
    conv(g, final)

    inp = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", n_features])
    graph = helper.make_graph(g.nodes, str(name), [inp], g.outputs)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET_ONNX),
                       helper.make_opsetid(ML_DOMAIN, OPSET_ML)],
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
    )
    model.ir_version = IR_VERSION
    version = str(version)
    try:
        iv = int(version)
    except ValueError:
        iv = None
    if iv is not None and str(iv) == version.strip() and iv >= 0:
        model.model_version = iv
    helper.set_model_props(model, {"model_name": str(name), "model_version": version})
    onnx.checker.check_model(model)
    return model


def _load(path):
    try:
        import joblib
        return joblib.load(path)
    except ImportError:
        pass
    with open(path, "rb") as f:
        return pickle.load(f)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Convert a pickled scikit-learn model to ONNX for nginfer.")
    ap.add_argument("model", help="pickle/joblib file holding a fitted estimator")
    ap.add_argument("out", help="output .onnx path")
    ap.add_argument("--n-features", type=int, required=True)
    ap.add_argument("--name", default="model")
    ap.add_argument("--version", default="1")
    args = ap.parse_args(argv)
    est = _load(args.model)
    try:
        model = convert(est, args.n_features, name=args.name, version=args.version)
    except ConversionError as e:
        print("sk2onnx: error: %s" % e, file=sys.stderr)
        return 2
    onnx.save(model, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

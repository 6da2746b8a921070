#!/usr/bin/python3
"""Write tests/models/spec_<name>/ fixtures: hand-built ai.onnx.ml models
exercising what scikit-learn never produces (every node mode, every
aggregate function and post transform, base values, several targets, NaN
with nodes_missing_value_tracks_true, "binary" classifiers with one weight
column, string labels, LinearRegressor / LinearClassifier / Scaler /
Normalizer corner cases), with expected outputs computed by ONNX Runtime.

    /usr/bin/python3 tools/make_spec_fixtures.py [--node-modules DIR]
                                                 [--out tests/models] [--only NAME ...]

ONNX Runtime is run through node: tools/ort_run.js with the npm package
onnxruntime-node.  Get it (npm registry only) with
    mkdir -p /tmp/ort && cd /tmp/ort && npm init -y >/dev/null &&
    npm install --ignore-scripts onnxruntime-node
(--ignore-scripts is required).  The node_modules directory is taken from
--node-modules, else $ORT_NODE_MODULES, else /tmp/ort/node_modules, and
passed to node as NODE_PATH.

Every case is also evaluated by tools/onnx_ml_ref.py (a literal reading of
the operator docs).  Where ORT and that reading differ the script stops,
unless the case is listed in ORT_DEPARTS (ORT's behaviour is kept as the
expected value: the spec is silent there, or ORT's reading is the de facto
standard) or in LEFT_OUT (ORT contradicts the spec or refuses the model:
no fixture is written, tests/models/README.md says why).  Cases the
reference cannot evaluate (SPEC-SILENT in onnx_ml_ref.py) take ORT's values.

Inputs are float32; each fixture's tolerance is "rtol 1e-5 atol 1e-6".
Deterministic: no randomness; rerunning gives identical files.
"""

import argparse
import os
import sys

import numpy as np
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fixture_util as fu  # noqa: E402
import onnx_ml_ref  # noqa: E402

ML = "ai.onnx.ml"
F32 = np.float32
NAN = float("nan")
INF = float("inf")

# ---------------------------------------------------------------------------
# model building helpers


def _model(name, nodes, n_features, outputs, input_name="input"):
    inp = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", n_features])
    graph = helper.make_graph(nodes, name, [inp], outputs)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid(ML, 3)],
                          producer_name="nginfer-spec-fixtures", producer_version="1")
    m.ir_version = 8
    helper.set_model_props(m, {"model_name": name, "model_version": "1"})
    return m


def _out_f(name, width):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", width])


def _out_label(strings=False):
    return helper.make_tensor_value_info(
        "label", TensorProto.STRING if strings else TensorProto.INT64, ["N"])


def leaf(**w):
    """Leaf with weights: leaf(t0=1.5, t2=-1) -> target/class 0 and 2.
    Repeated keys for the same target use a suffix: t0=1, t0_b=2."""
    return ("LEAF", [(int(k[1:].split("_")[0]), float(v)) for k, v in w.items()])


def br(mode, feature, value, true, false, track=None):
    return (mode, feature, float(value), true, false, track)


def _flatten(trees, prefix):
    """trees: list of nested br()/leaf() -> node and weight attribute dicts.
    Node ids are preorder, restarting at 0 for every tree."""
    a = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids",
                         "nodes_modes", "nodes_values", "nodes_truenodeids",
                         "nodes_falsenodeids", "nodes_missing_value_tracks_true")}
    w = {k: [] for k in (prefix + "_treeids", prefix + "_nodeids", prefix + "_ids",
                         prefix + "_weights")}
    for tid, root in enumerate(trees):
        counter = [0]

        def visit(node):
            nid = counter[0]
            counter[0] += 1
            idx = len(a["nodes_nodeids"])
            a["nodes_treeids"].append(tid)
            a["nodes_nodeids"].append(nid)
            for k in ("nodes_featureids", "nodes_modes", "nodes_values", "nodes_truenodeids",
                      "nodes_falsenodeids", "nodes_missing_value_tracks_true"):
                a[k].append(None)
            if node[0] == "LEAF":
                a["nodes_featureids"][idx] = 0
                a["nodes_modes"][idx] = "LEAF"
                a["nodes_values"][idx] = 0.0
                a["nodes_truenodeids"][idx] = 0
                a["nodes_falsenodeids"][idx] = 0
                a["nodes_missing_value_tracks_true"][idx] = 0
                for cid, weight in node[1]:
                    w[prefix + "_treeids"].append(tid)
                    w[prefix + "_nodeids"].append(nid)
                    w[prefix + "_ids"].append(cid)
                    w[prefix + "_weights"].append(weight)
                return nid
            mode, feat, value, t, f, track = node
            a["nodes_featureids"][idx] = feat
            a["nodes_modes"][idx] = mode
            a["nodes_values"][idx] = value
            a["nodes_missing_value_tracks_true"][idx] = int(track or 0)
            a["nodes_truenodeids"][idx] = visit(t)
            a["nodes_falsenodeids"][idx] = visit(f)
            return nid

        visit(root)
    if not any(isinstance(n[5], int) for n in _all_branches(trees)):
        del a["nodes_missing_value_tracks_true"]
    a.update(w)
    return a


def _all_branches(trees):
    out = []

    def rec(n):
        if n[0] == "LEAF":
            return
        out.append(n)
        rec(n[3])
        rec(n[4])

    for t in trees:
        rec(t)
    return out


def tree_reg(name, trees, n_targets, n_features, rows, **attrs):
    a = _flatten(trees, "target")
    node = helper.make_node("TreeEnsembleRegressor", ["input"], ["variable"], domain=ML,
                            n_targets=n_targets, **a, **attrs)
    return name, _model(name, [node], n_features, [_out_f("variable", n_targets)]), rows


def tree_clf(name, trees, labels, n_features, rows, **attrs):
    a = _flatten(trees, "class")
    strings = isinstance(labels[0], str)
    lab = {"classlabels_strings": labels} if strings else {"classlabels_int64s": labels}
    node = helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "probabilities"],
                            domain=ML, **a, **lab, **attrs)
    outs = [_out_label(strings), _out_f("probabilities", len(labels))]
    return name, _model(name, [node], n_features, outs), rows


def lin_reg(name, coef, rows, intercepts=None, **attrs):
    coef = np.asarray(coef, dtype=np.float64)
    kw = dict(coefficients=[float(v) for v in coef.reshape(-1)], targets=coef.shape[0], **attrs)
    if intercepts is not None:
        kw["intercepts"] = [float(v) for v in intercepts]
    node = helper.make_node("LinearRegressor", ["input"], ["variable"], domain=ML, **kw)
    return name, _model(name, [node], coef.shape[1], [_out_f("variable", coef.shape[0])]), rows


def lin_clf(name, coef, labels, rows, intercepts=None, n_out=None, **attrs):
    coef = np.asarray(coef, dtype=np.float64)
    strings = isinstance(labels[0], str)
    kw = dict(coefficients=[float(v) for v in coef.reshape(-1)], **attrs)
    kw["classlabels_strings" if strings else "classlabels_ints"] = labels
    if intercepts is not None:
        kw["intercepts"] = [float(v) for v in intercepts]
    node = helper.make_node("LinearClassifier", ["input"], ["label", "probabilities"],
                            domain=ML, **kw)
    outs = [_out_label(strings), _out_f("probabilities", n_out or len(labels))]
    return name, _model(name, [node], coef.shape[1], outs), rows


def scaler(name, n_features, rows, **attrs):
    node = helper.make_node("Scaler", ["input"], ["variable"], domain=ML, **attrs)
    return name, _model(name, [node], n_features, [_out_f("variable", n_features)]), rows


def normalizer(name, n_features, rows, norm):
    node = helper.make_node("Normalizer", ["input"], ["variable"], domain=ML, norm=norm)
    return name, _model(name, [node], n_features, [_out_f("variable", n_features)]), rows


def rows_f32(*rows):
    return np.array(rows, dtype=F32)


# ---------------------------------------------------------------------------
# the cases

ONE_M = float(np.nextafter(F32(1), F32(0)))    # largest float32 < 1
ONE_P = float(np.nextafter(F32(1), F32(2)))    # smallest float32 > 1
P1 = float(F32(0.1))                           # 0.1 as float32 (not 0.1 exactly)

MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]


def _mode_rows():
    # column 0 is compared with 1.0, column 1 with float32(0.1), column 2 unused
    vals0 = [-INF, -1.0, 0.0, ONE_M, 1.0, ONE_P, 2.0, INF]
    vals1 = [P1, 0.1000001, 0.0, -0.0, P1, 0.2, P1, -INF]
    return rows_f32(*[[a, b, 5.0] for a, b in zip(vals0, vals1)])


def cases():
    out = []

    # --- node modes -------------------------------------------------------
    # tree k tests MODES[k] on feature 0 against 1.0 (true -> 1, false -> 2
    # on target k); trees 6..11 do the same on feature 1 against
    # float32(0.1); tree 12 is a lone LEAF (target 12 = 0.5 always).
    trees = [br(m, 0, 1.0, leaf(**{"t%d" % k: 1}), leaf(**{"t%d" % k: 2}))
             for k, m in enumerate(MODES)]
    trees += [br(m, 1, P1, leaf(**{"t%d" % (k + 6): 1}), leaf(**{"t%d" % (k + 6): 2}))
              for k, m in enumerate(MODES)]
    trees += [leaf(t12=0.5)]
    out.append(tree_reg("spec_tree_modes", trees, 13, 3, _mode_rows()))

    # --- NaN inputs, missing_value_tracks_true ------------------------------
    nan_rows = rows_f32([NAN, 0.0, 0.0], [0.5, NAN, 0.0], [2.0, 0.5, NAN], [NAN, NAN, NAN],
                        [1.0, 1.0, 1.0])
    for m in MODES:
        short = m.split("_")[1].lower()
        # target 0: tracks_true=1, target 1: tracks_true=0 (explicit),
        # target 2: deeper tree, NaN on feature 1 at depth 2
        trees = [
            br(m, 0, 1.0, leaf(t0=1), leaf(t0=2), track=1),
            br(m, 0, 1.0, leaf(t1=1), leaf(t1=2), track=0),
            br("BRANCH_LEQ", 2, 10.0,
               br(m, 1, 0.25, leaf(t2=1), leaf(t2=2), track=1),
               leaf(t2=3)),
        ]
        out.append(tree_reg("spec_tree_nan_%s" % short, trees, 3, 3, nan_rows))
    # no nodes_missing_value_tracks_true attribute at all: NaN -> false branch
    for m in MODES:
        short = m.split("_")[1].lower()
        trees = [br(m, 0, 1.0, leaf(t0=1), leaf(t0=2))]
        out.append(tree_reg("spec_tree_nan_default_%s" % short, trees, 1, 3, nan_rows))

    # --- aggregate functions, base values, several targets -------------------
    # 3 trees, 3 targets; some leaves vote for several targets, some for
    # none; target 2 only gets votes from tree 2.
    agg_trees = [
        br("BRANCH_LEQ", 0, 0.0, leaf(t0=1.0, t1=-2.0), leaf(t0=3.0)),
        br("BRANCH_LT", 1, 0.5,
           br("BRANCH_GT", 0, -1.0, leaf(t0=-4.0, t1=0.5), leaf()),
           leaf(t1=7.0, t0=0.25)),
        br("BRANCH_GTE", 2, 1.0, leaf(t2=10.0, t0=2.0), leaf(t1=-1.0)),
    ]
    agg_rows = rows_f32([-2, 0, 0], [-0.5, 0, 2], [0, 1, 1], [0.5, 0.25, 0.5], [3, 3, 3],
                        [-1, 0.5, 1], [0, 0, 0], [-1.5, -1, 5])
    # every leaf votes for every target (so base_values meet a voted score)
    full_trees = [
        br("BRANCH_LEQ", 0, 0.0, leaf(t0=1.0, t1=-2.0, t2=0.5), leaf(t0=3.0, t1=0.0, t2=-0.5)),
        br("BRANCH_LT", 1, 0.5,
           br("BRANCH_GT", 0, -1.0, leaf(t0=-4.0, t1=0.5, t2=1.0), leaf(t0=0.0, t1=1.0, t2=2.0)),
           leaf(t1=7.0, t0=0.25, t2=-3.0)),
        br("BRANCH_GTE", 2, 1.0, leaf(t2=10.0, t0=2.0, t1=-6.0), leaf(t1=-1.0, t0=-2.0, t2=0.0)),
    ]
    for agg in ("SUM", "AVERAGE", "MIN", "MAX"):
        out.append(tree_reg("spec_tree_agg_%s" % agg.lower(), agg_trees, 3, 3, agg_rows,
                            aggregate_function=agg))
        out.append(tree_reg("spec_tree_agg_%s_base" % agg.lower(), full_trees, 3, 3, agg_rows,
                            aggregate_function=agg, base_values=[0.5, -1.0, 100.0]))
        # base_values plus a target that no reached leaf votes for
        out.append(tree_reg("spec_tree_agg_%s_base_unvoted" % agg.lower(), agg_trees, 3, 3,
                            agg_rows, aggregate_function=agg, base_values=[0.5, -1.0, 100.0]))
    # one target, one base value
    one_trees = [br("BRANCH_LEQ", 0, 0.0, leaf(t0=1.0), leaf(t0=3.0)),
                 br("BRANCH_LT", 1, 0.5, leaf(t0=-4.0), leaf(t0=0.25)),
                 br("BRANCH_GTE", 2, 1.0, leaf(t0=2.0), leaf(t0=-1.0))]
    for agg in ("SUM", "AVERAGE", "MIN", "MAX"):
        out.append(tree_reg("spec_tree_reg1_%s_base" % agg.lower(), one_trees, 1, 3, agg_rows,
                            aggregate_function=agg, base_values=[10.0]))

    # --- regressor post transforms ------------------------------------------
    pt_trees = [
        br("BRANCH_LEQ", 0, 0.0, leaf(t0=0.25, t1=0.5, t2=0.125), leaf(t0=-1.0, t2=2.0)),
        br("BRANCH_LEQ", 1, 0.0, leaf(t0=0.25, t1=0.25), leaf(t1=-0.5, t2=-2.0)),
    ]
    pt_rows = rows_f32([-1, -1, 0], [-1, 1, 0], [1, -1, 0], [1, 1, 0])
    for pt in ("LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"):
        out.append(tree_reg("spec_tree_reg_%s" % pt.lower(), pt_trees, 3, 3, pt_rows,
                            post_transform=pt))
    # PROBIT needs scores in (0, 1)
    pr_trees = [br("BRANCH_LEQ", 0, 0.0, leaf(t0=0.25, t1=0.5), leaf(t0=0.5, t1=0.125)),
                br("BRANCH_LEQ", 1, 0.0, leaf(t0=0.125, t1=0.25), leaf(t0=0.375, t1=0.0625))]
    out.append(tree_reg("spec_tree_reg_probit", pr_trees, 2, 3, pt_rows, post_transform="PROBIT"))
    out.append(tree_reg("spec_tree_reg1_probit", [br("BRANCH_LEQ", 0, 0.0, leaf(t0=0.3), leaf(t0=0.9)),
                                                 br("BRANCH_LEQ", 1, 0.0, leaf(t0=0.05), leaf(t0=-0.1))],
                        1, 3, pt_rows, post_transform="PROBIT"))
    out.append(tree_reg("spec_tree_reg1_logistic", [br("BRANCH_LEQ", 0, 0.0, leaf(t0=0.3), leaf(t0=-2.0))],
                        1, 3, pt_rows, post_transform="LOGISTIC"))

    # --- deeper mixed tree, 2 targets ----------------------------------------
    deep = [
        br("BRANCH_GT", 0, 0.5,
           br("BRANCH_EQ", 1, 2.0, leaf(t0=1, t1=10), br("BRANCH_LT", 2, -1.0, leaf(t0=2), leaf(t1=20))),
           br("BRANCH_NEQ", 1, 3.0,
              br("BRANCH_GTE", 2, 0.0, leaf(t0=3, t1=30), leaf(t0=4, t1=40)),
              leaf(t0=5, t1=50))),
        br("BRANCH_LEQ", 2, 0.0, leaf(t0=0.5), br("BRANCH_LEQ", 0, 0.5, leaf(t1=0.25), leaf(t0=-0.5, t1=-0.25))),
    ]
    deep_rows = rows_f32([1, 2, 0], [1, 2.5, -2], [1, 2.5, 0], [0.5, 3, 0], [0, 3, 1], [0, 1, -1],
                         [0, 1, 0], [2, 2, 2], [-3, 3, -3], [0.5, 2, -1])
    out.append(tree_reg("spec_tree_deep", deep, 2, 3, deep_rows))

    # --- classifiers, 3 classes ----------------------------------------------
    clf_trees = [
        br("BRANCH_LEQ", 0, 0.0, leaf(t0=0.6, t1=0.3, t2=0.1), leaf(t0=0.1, t1=0.2, t2=0.7)),
        br("BRANCH_LEQ", 1, 0.0, leaf(t0=0.2, t1=0.7, t2=0.1), leaf(t0=0.3, t1=0.3, t2=0.4)),
    ]
    clf_rows = rows_f32([-1, -1, 0], [-1, 1, 0], [1, -1, 0], [1, 1, 0], [0, 0, 0], [0.5, -0.5, 0])
    labels = [10, 20, 30]
    out.append(tree_clf("spec_tree_clf_none", clf_trees, labels, 3, clf_rows))
    out.append(tree_clf("spec_tree_clf_str", clf_trees, ["cat", "dog", "émeu"], 3, clf_rows))
    for pt in ("LOGISTIC", "SOFTMAX"):
        out.append(tree_clf("spec_tree_clf_%s" % pt.lower(), clf_trees, labels, 3, clf_rows,
                            post_transform=pt))
    # SOFTMAX_ZERO: every row has a class scoring exactly 0
    zero_trees = [
        br("BRANCH_LEQ", 0, 0.0, leaf(t0=0.5, t1=0.25), leaf(t0=-0.5, t1=0.125, t2=1.0)),
        br("BRANCH_LEQ", 1, 0.0, leaf(t0=-0.5, t2=-1.0), leaf(t1=0.5, t0=0.5)),
    ]
    out.append(tree_clf("spec_tree_clf_softmax_zero", zero_trees, labels, 3, clf_rows,
                        post_transform="SOFTMAX_ZERO"))
    # PROBIT: scores kept inside (0, 1) (halved weights)
    half_trees = [
        br("BRANCH_LEQ", 0, 0.0, leaf(t0=0.3, t1=0.15, t2=0.05), leaf(t0=0.05, t1=0.1, t2=0.35)),
        br("BRANCH_LEQ", 1, 0.0, leaf(t0=0.1, t1=0.35, t2=0.05), leaf(t0=0.15, t1=0.15, t2=0.2)),
    ]
    out.append(tree_clf("spec_tree_clf_probit", half_trees, labels, 3, clf_rows,
                        post_transform="PROBIT"))
    gb_trees = [
        br("BRANCH_LEQ", 0, 0.0, leaf(t0=1.5), leaf(t0=-0.5)),
        br("BRANCH_LEQ", 0, 0.0, leaf(t1=-1.0), leaf(t1=0.75)),
        br("BRANCH_LEQ", 1, 0.0, leaf(t2=0.25), leaf(t2=-0.25)),
    ]
    out.append(tree_clf("spec_tree_clf_softmax_base", gb_trees, labels, 3, clf_rows,
                        post_transform="SOFTMAX", base_values=[-1.0, 0.5, 0.0]))
    out.append(tree_clf("spec_tree_clf_none_base", gb_trees, labels, 3, clf_rows,
                        base_values=[-1.0, 0.5, 0.0]))
    # negative scores and a class that never gets a vote (score 0)
    neg_trees = [br("BRANCH_LEQ", 0, 0.0, leaf(t0=-1.0, t1=-2.0), leaf(t0=-3.0, t1=-0.5))]
    out.append(tree_clf("spec_tree_clf_unvoted", neg_trees, labels, 3, clf_rows))

    # --- "binary" classifiers: 2 labels, weights for one class only ----------
    bin_rows = rows_f32([-1, -1, 0], [-1, 1, 0], [1, -1, 0], [1, 1, 0], [0, 0, 0], [3, 3, 0])
    prob_trees = [br("BRANCH_LEQ", 0, 0.0, leaf(t1=0.1), leaf(t1=0.4)),
                  br("BRANCH_LEQ", 1, 0.0, leaf(t1=0.2), leaf(t1=0.35))]
    out.append(tree_clf("spec_tree_bin_prob", prob_trees, [0, 1], 3, bin_rows))
    out.append(tree_clf("spec_tree_bin_prob_str", prob_trees, ["no", "yes"], 3, bin_rows))
    out.append(tree_clf("spec_tree_bin_prob_labels", prob_trees, [-5, 7], 3, bin_rows))
    raw_trees = [br("BRANCH_LEQ", 0, 0.0, leaf(t1=-1.25), leaf(t1=0.75)),
                 br("BRANCH_LEQ", 1, 0.0, leaf(t1=-0.5), leaf(t1=0.25))]
    out.append(tree_clf("spec_tree_bin_logistic", raw_trees, [0, 1], 3, bin_rows,
                        post_transform="LOGISTIC"))
    out.append(tree_clf("spec_tree_bin_logistic_base1", raw_trees, [0, 1], 3, bin_rows,
                        post_transform="LOGISTIC", base_values=[0.5]))
    out.append(tree_clf("spec_tree_bin_class0", [br("BRANCH_LEQ", 0, 0.0, leaf(t0=0.1), leaf(t0=0.4)),
                                                 br("BRANCH_LEQ", 1, 0.0, leaf(t0=0.2), leaf(t0=0.35))],
                        [0, 1], 3, bin_rows))
    out.append(tree_clf("spec_tree_bin_raw_none", raw_trees, [0, 1], 3, bin_rows))
    out.append(tree_clf("spec_tree_bin_probit", prob_trees, [0, 1], 3, bin_rows,
                        post_transform="PROBIT"))
    # 2 labels, both columns voted (what sk2onnx writes for binary forests / GB)
    two_trees = [br("BRANCH_LEQ", 0, 0.0, leaf(t0=0.9, t1=0.1), leaf(t0=0.3, t1=0.7)),
                 br("BRANCH_LEQ", 1, 0.0, leaf(t0=0.6, t1=0.4), leaf(t0=0.45, t1=0.55))]
    out.append(tree_clf("spec_tree_2col_none", two_trees, [0, 1], 3, bin_rows))
    gb2 = [br("BRANCH_LEQ", 0, 0.0, leaf(t0=1.25, t1=-1.25), leaf(t0=-0.75, t1=0.75)),
           br("BRANCH_LEQ", 1, 0.0, leaf(t0=0.5, t1=-0.5), leaf(t0=-0.25, t1=0.25))]
    out.append(tree_clf("spec_tree_2col_logistic", gb2, [0, 1], 3, bin_rows,
                        post_transform="LOGISTIC"))
    out.append(tree_clf("spec_tree_2col_logistic_base", gb2, [0, 1], 3, bin_rows,
                        post_transform="LOGISTIC", base_values=[-0.5, 0.5]))

    # --- LinearRegressor ----------------------------------------------------
    lrows = rows_f32([0, 0, 0, 0], [1, 2, 3, 4], [-1, 0.5, -0.25, 2], [100, -100, 0.001, 3],
                     [1e-3, 1e3, -7, 0])
    coef3 = [[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0], [-0.25, 0.0, 0.5, 3.0]]
    out.append(lin_reg("spec_linreg_multi", coef3, lrows, intercepts=[1.0, -2.0, 0.5]))
    out.append(lin_reg("spec_linreg_nointercept", [[0.5, -1.0, 2.0, 0.25]], lrows))
    out.append(lin_reg("spec_linreg_single", [[0.5, -1.0, 2.0, 0.25]], lrows, intercepts=[3.0]))
    small = rows_f32([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], [-0.1, 0.05, -0.025, 0.2], [0.3, -0.3, 0, 0.1])
    for pt in ("LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"):
        out.append(lin_reg("spec_linreg_%s" % pt.lower(), coef3, small, intercepts=[0.0, 0.0, 0.5],
                           post_transform=pt))
    pcoef = [[0.5, 0.25, 0.0, 0.125], [0.0, 0.25, 0.5, 0.0]]
    out.append(lin_reg("spec_linreg_probit", pcoef, rows_f32([0.5, 0.5, 0.5, 0.5], [0.1, 0.2, 0.3, 0.4],
                                                              [1, 0, 0, 1], [0, 1, 1, 0]),
                       intercepts=[0.1, 0.2], post_transform="PROBIT"))

    # --- LinearClassifier -----------------------------------------------------
    out.append(lin_clf("spec_linclf_none", coef3, [1, 2, 3], lrows, intercepts=[1.0, -2.0, 0.5]))
    out.append(lin_clf("spec_linclf_str", coef3, ["a", "b", "c"], lrows, intercepts=[1.0, -2.0, 0.5]))
    out.append(lin_clf("spec_linclf_nointercept", coef3, [7, 8, 9], lrows))
    for pt in ("LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"):
        out.append(lin_clf("spec_linclf_%s" % pt.lower(), coef3, [0, 1, 2], small,
                           intercepts=[0.0, 0.0, 0.5], post_transform=pt,
                           multi_class=1 if pt.startswith("SOFTMAX") else 0))
    out.append(lin_clf("spec_linclf_probit", pcoef + [[0.1, 0.1, 0.1, 0.1]], [0, 1, 2],
                       rows_f32([0.5, 0.5, 0.5, 0.5], [0.1, 0.2, 0.3, 0.5], [1, 0, 0, 1], [0, 1, 1, 0]),
                       intercepts=[0.1, 0.2, 0.3], post_transform="PROBIT"))
    # one coefficient row, two labels ("binary")
    brow = [[0.5, -1.0, 2.0, 0.25]]
    out.append(lin_clf("spec_linclf_bin1_none", brow, [0, 1], small, intercepts=[-0.125]))
    out.append(lin_clf("spec_linclf_bin1_logistic", brow, [0, 1], small, intercepts=[-0.125],
                       post_transform="LOGISTIC"))
    out.append(lin_clf("spec_linclf_bin1_str", brow, ["neg", "pos"], small, intercepts=[-0.125],
                       post_transform="LOGISTIC"))
    # two rows, two labels (what sk2onnx writes for binary LogisticRegression)
    out.append(lin_clf("spec_linclf_bin2_logistic", [[-0.5, 1.0, -2.0, -0.25], [0.5, -1.0, 2.0, 0.25]],
                       [0, 1], small, intercepts=[0.125, -0.125], post_transform="LOGISTIC"))

    # --- Scaler ---------------------------------------------------------------
    srows = rows_f32([0, 0, 0], [1, 2, 3], [-1.5, 1e6, -1e-6], [INF, -INF, NAN])
    out.append(scaler("spec_scaler", 3, srows, offset=[1.0, -2.0, 0.5], scale=[2.0, 0.5, -4.0]))
    out.append(scaler("spec_scaler_broadcast", 3, srows, offset=[1.5], scale=[0.25]))
    out.append(scaler("spec_scaler_scale_only", 3, srows, scale=[2.0, 0.5, -4.0]))
    out.append(scaler("spec_scaler_offset_only", 3, srows, offset=[1.0, -2.0, 0.5]))

    # --- Normalizer -------------------------------------------------------------
    nrows = rows_f32([1, 2, 3, 4], [-1, 2, -3, 4], [0, 0, 0, 0], [-1, -2, -3, -4], [0, 5, 0, 0],
                     [1e-3, 2e-3, 0, 0], [3, -3, 0, 0])
    for norm in ("MAX", "L1", "L2"):
        out.append(normalizer("spec_normalizer_%s" % norm.lower(), 4, nrows, norm))
    # positive-only rows (where the spec's formulas are unambiguous)
    prow = rows_f32([1, 2, 3, 4], [0, 0, 0, 0], [0, 5, 0, 0], [1e-3, 2e-3, 0, 0], [0.5, 0.25, 0.125, 8])
    for norm in ("MAX", "L1", "L2"):
        out.append(normalizer("spec_normalizer_%s_pos" % norm.lower(), 4, prow, norm))
    return out


# ---------------------------------------------------------------------------
# decisions about ORT vs the literal reading, from runs of onnxruntime-node
# 1.30.0.  Each entry is reported in tests/models/README.md.

_BIN_LABEL = ("2 labels, weights for class 1 only: ORT outputs scores (0, s) "
              "(post transform applied to both) as read literally, but its label is "
              "class 1 iff s > 0.5 when every weight is >= 0 (iff s > 0 otherwise); "
              "a literal argmax of (0, s) would say s > 0.  The spec is silent; ORT kept")

# ORT's values are kept as the expected outputs although the literal reading differs.
ORT_DEPARTS = {
    "spec_tree_bin_prob": _BIN_LABEL,
    "spec_tree_bin_prob_str": _BIN_LABEL,
    "spec_tree_bin_prob_labels": _BIN_LABEL,
    "spec_tree_bin_probit": _BIN_LABEL,
    "spec_normalizer_l1": "ORT divides by sum(|x|), the usual L1 norm; the doc's formula "
                          "reads sum(x)",
    "spec_normalizer_l2": "ORT computes x / sqrt(sum(x^2)), keeping the sign; the doc's "
                          "formula sqrt(x^2 / sum(x^2)) would drop it",
}

# No fixture: ORT refuses the model, or contradicts the operator doc.
LEFT_OUT = {
    "spec_tree_nan_neq": "BRANCH_NEQ with a NaN input and missing_value_tracks_true=0: "
                         "ORT takes the true branch (NaN != t), the doc says the false one",
    "spec_tree_nan_default_neq": "same as spec_tree_nan_neq with the attribute absent",
    "spec_tree_agg_sum_base_unvoted": "ORT does not add base_values to a target no reached "
                                      "leaf votes for (it outputs 0)",
    "spec_tree_agg_average_base_unvoted": "as spec_tree_agg_sum_base_unvoted",
    "spec_tree_agg_min_base_unvoted": "as spec_tree_agg_sum_base_unvoted",
    "spec_tree_agg_max_base_unvoted": "as spec_tree_agg_sum_base_unvoted",
    "spec_tree_reg1_logistic": "ORT ignores post_transform LOGISTIC for a 1-target "
                               "TreeEnsembleRegressor (only PROBIT is applied there)",
    "spec_tree_clf_unvoted": "ORT's label skips classes no reached leaf votes for (score 0 "
                             "loses to negative scores), against its own probabilities",
    "spec_tree_bin_class0": "2 labels, weights for class 0 only: ORT treats them as class 1's "
                            "score s and outputs (1-s, s)",
    "spec_tree_bin_logistic_base1": "2 labels, one base value (invalid: base_values must have "
                                    "one entry per class); ORT ignores it",
    "spec_tree_2col_none": "2 labels, both classes voted, no base_values: probabilities are "
                           "right but ORT's label is class 1 whenever its score is > 0",
    "spec_tree_2col_logistic_base": "2 labels, both classes voted, 2 base_values: ORT sets "
                                    "score1 = base1 + score0, score0 = -score1, ignoring class "
                                    "1's weights (sk2onnx's GradientBoosting binary encoding)",
    "spec_linclf_nointercept": "ORT refuses: 'LinearClassifier: intercepts must not be empty'",
    "spec_scaler_scale_only": "ORT refuses: scale and offset must have the same size",
    "spec_scaler_offset_only": "ORT refuses: scale and offset must have the same size",
}

TOLERANCE = "rtol 1e-5 atol 1e-6\n"
# ORT's PROBIT uses an approximate erfinv (errors ~2e-4 on these values);
# the looser tolerance accepts both it and the exact inverse normal CDF.
PROBIT_TOLERANCE = "rtol 1e-3 atol 5e-4\n"


def tolerance_for(name):
    return PROBIT_TOLERANCE if "probit" in name else TOLERANCE


def _tol_values(text):
    parts = text.split()
    return float(parts[1]), float(parts[3])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(fu.REPO, "tests", "models"))
    ap.add_argument("--node-modules", default=None)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--survey", action="store_true",
                    help="print every ORT/reference difference, write nothing")
    args = ap.parse_args(argv)
    if not fu.ort_available(args.node_modules):
        raise SystemExit("onnxruntime-node not found (see the docstring: npm install "
                         "--ignore-scripts onnxruntime-node, then --node-modules DIR)")
    failures = []
    total = 0
    for name, model, rows in cases():
        if args.only and name not in args.only:
            continue
        inputs = [("input", rows)]
        try:
            ort = fu.ort_run(model, inputs, args.node_modules)
            ort_err = None
        except fu.OrtError as e:
            ort, ort_err = None, str(e).splitlines()[0][:200]
        try:
            ref = onnx_ml_ref.run(model, {"input": rows})
            ref_err = None
        except NotImplementedError as e:
            ref, ref_err = None, "spec silent: %s" % e
        diffs = []
        rtol, atol = _tol_values(tolerance_for(name))
        if ort is not None and ref is not None:
            for (oname, o), r in zip(ort, ref):
                ok, msg = fu.allclose(o, r, rtol=rtol, atol=atol)
                if not ok:
                    diffs.append("%s: %s" % (oname, msg))
        status = ("ORT REFUSED: %s" % ort_err if ort_err else
                  "differs: %s" % "; ".join(diffs) if diffs else
                  ref_err if ref_err else "agrees")
        if args.survey:
            print("%-36s %s" % (name, status))
            continue
        if name in LEFT_OUT:
            stale = os.path.join(args.out, name)
            if os.path.isdir(stale):
                import shutil
                shutil.rmtree(stale)
            print("%-36s left out (%s)" % (name, LEFT_OUT[name]))
            continue
        if ort_err:
            failures.append("%s: ORT refused it: %s" % (name, ort_err))
            continue
        if diffs and name not in ORT_DEPARTS:
            failures.append("%s: ORT and the literal reading differ: %s" % (name, "; ".join(diffs)))
            continue
        path = os.path.join(args.out, name)
        fu.write_test_dir(path, model, inputs, ort, tolerance=tolerance_for(name))
        size = fu.dir_size(path)
        total += size
        note = ("ORT kept, differs from the literal reading") if diffs else (
            ref_err + ", ORT kept" if ref_err else "ORT == reference")
        print("%-36s %6d bytes  %s" % (name, size, note))
    if failures:
        raise SystemExit("\n".join(failures))
    if not args.survey:
        print("total %d bytes" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main())

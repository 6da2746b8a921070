#!/usr/bin/python3
"""make.py -- writes the hostile ai.onnx.ml models tests/unit/test_ml_ops.c
loads: each bad_*.onnx breaks one rule of the TreeEnsemble / Linear /
Scaler / Normalizer specifications (nginfer must refuse it at load with
NF_EMODEL or NF_EUNSUPPORTED and a message naming the attribute), each
ok_*.onnx is a tiny valid model whose outputs the test computes by hand.

    /usr/bin/python3 tests/models/bad/make.py      (writes next to itself)

The models are built with onnx.helper only (no checker: most are invalid
on purpose). Keep them small; the test names each file.
"""

import os

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

HERE = os.path.dirname(os.path.abspath(__file__))
ML = "ai.onnx.ml"


def model(op, attrs, outs, in_type=TensorProto.FLOAT, ml_opset=3, n_feat=3):
    x = helper.make_tensor_value_info("X", in_type, ["N", n_feat])
    node = helper.make_node(op, ["X"], [o[0] for o in outs], domain=ML, name="n0", **attrs)
    g = helper.make_graph([node], "g", [x], [helper.make_tensor_value_info(n, t, s) for n, t, s in outs])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ML, ml_opset)])
    m.ir_version = 8
    return m


REG_OUT = [("Y", TensorProto.FLOAT, ["N", 1])]
CLF_OUT = [("label", TensorProto.INT64, ["N"]), ("scores", TensorProto.FLOAT, ["N", 3])]


def stump(**over):
    """tree 0: node 0 (x[0] <= 0.5) -> 1 (leaf) | 2 (x[1] <= 0) -> 3 | 4.
    tree 1: node 0, a single leaf."""
    a = dict(
        nodes_treeids=[0, 0, 0, 0, 0, 1],
        nodes_nodeids=[0, 1, 2, 3, 4, 0],
        nodes_featureids=[0, 0, 1, 0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF", "LEAF"],
        nodes_values=[0.5, 0.0, 0.0, 0.0, 0.0, 0.0],
        nodes_truenodeids=[1, 0, 3, 0, 0, 0],
        nodes_falsenodeids=[2, 0, 4, 0, 0, 0],
    )
    a.update(over)
    return a


def reg(_in=TensorProto.FLOAT, _nf=3, **over):
    a = stump(n_targets=1, target_treeids=[0, 0, 0, 1], target_nodeids=[1, 3, 4, 0],
              target_ids=[0, 0, 0, 0], target_weights=[1.0, 2.0, 4.0, 0.5])
    a.update(over)
    return model("TreeEnsembleRegressor", a, REG_OUT, in_type=_in, n_feat=_nf)


def clf(**over):
    a = stump(class_treeids=[0, 0, 0, 1], class_nodeids=[1, 3, 4, 0], class_ids=[0, 1, 2, 0],
              class_weights=[1.0, 1.0, 1.0, 0.25], classlabels_int64s=[10, 20, 30])
    a.update(over)
    a = {k: v for k, v in a.items() if v is not None}
    return model("TreeEnsembleClassifier", a, CLF_OUT)


def dtensor(vals):
    return numpy_helper.from_array(np.array(vals, dtype=np.float64))


MODELS = {
    # --- hostile trees: every one must fail at load
    "bad_true_id": reg(nodes_truenodeids=[1, 0, 99, 0, 0, 0]),
    "bad_false_other_tree": reg(nodes_falsenodeids=[7, 0, 4, 0, 0, 0]),
    "bad_self_child": reg(nodes_truenodeids=[1, 0, 2, 0, 0, 0]),
    # node 2's false branch goes back up to node 0: 0 -> 2 -> 0 is a cycle
    # (leaf 4, now without a parent, would pass for the root)
    "bad_no_root": reg(nodes_falsenodeids=[2, 0, 0, 0, 0, 0]),
    # both of node 2's branches go back to node 0: every node has a parent
    "bad_all_parents": reg(nodes_truenodeids=[1, 0, 0, 0, 0, 0], nodes_falsenodeids=[2, 0, 0, 0, 0, 0],
                           nodes_treeids=[0, 0, 0, 1, 1, 1], target_treeids=[0, 1, 1, 1]),
    # 0 -> (1, 2), 2 -> (3, 5), 5 -> (2, 4): 2 and 5 form a cycle under the root
    "bad_cycle": reg(nodes_treeids=[0, 0, 0, 0, 0, 0, 1], nodes_nodeids=[0, 1, 2, 3, 4, 5, 0],
                     nodes_featureids=[0, 0, 1, 0, 0, 2, 0],
                     nodes_modes=["BRANCH_LEQ", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_GT", "LEAF"],
                     nodes_values=[0.5, 0, 0, 0, 0, 1.0, 0], nodes_truenodeids=[1, 0, 3, 0, 0, 2, 0],
                     nodes_falsenodeids=[2, 0, 5, 0, 0, 4, 0]),
    "bad_lengths": reg(nodes_featureids=[0, 0, 1, 0, 0]),
    "bad_values_len": reg(nodes_values=[0.5, 0.0]),
    "bad_mode": reg(nodes_modes=["BRANCH_FOO", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF", "LEAF"]),
    "bad_neg_feature": reg(nodes_featureids=[-1, 0, 1, 0, 0, 0]),
    "bad_dup_node": reg(nodes_nodeids=[0, 1, 2, 3, 3, 0]),
    "bad_tracks": reg(nodes_missing_value_tracks_true=[0, 0, 2, 0, 0, 0]),
    "bad_target_tree": reg(target_treeids=[0, 0, 0, 7]),
    "bad_target_node": reg(target_nodeids=[1, 3, 4, 9]),
    "bad_target_id": reg(target_ids=[0, 0, 1, 0]),
    "bad_target_lengths": reg(target_weights=[1.0, 2.0, 4.0]),
    "bad_n_targets": reg(n_targets=0),
    "bad_base_len": reg(base_values=[1.0, 2.0]),
    "bad_agg": reg(aggregate_function="MEDIAN"),
    "bad_post": reg(post_transform="SIGMOID"),
    "bad_unknown_attr": reg(nodes_valuez=[1.0]),
    "bad_attr_type": reg(n_targets=[1]),
    "bad_both_values": reg(nodes_values_as_tensor=dtensor([0.5, 0, 0, 0, 0, 0])),
    "bad_no_trees": model("TreeEnsembleRegressor", dict(n_targets=1), REG_OUT),
    "bad_class_id": clf(class_ids=[0, 1, 5, 0]),
    "bad_no_labels": clf(classlabels_int64s=None),
    "bad_two_label_kinds": clf(classlabels_strings=["a", "b", "c"]),
    "bad_one_label": clf(classlabels_int64s=[1], class_ids=[0, 0, 0, 0]),
    "bad_clf_base_len": clf(base_values=[0.1, 0.2]),
    # --- linear family
    "bad_linclf_intercepts": model("LinearClassifier", dict(coefficients=[1.0] * 9, intercepts=[0.0, 0.0],
                                                            classlabels_ints=[1, 2, 3]), CLF_OUT, ml_opset=1),
    "bad_linclf_coef": model("LinearClassifier", dict(coefficients=[1.0] * 8, intercepts=[0.0, 0.0, 0.0],
                                                      classlabels_ints=[1, 2, 3]), CLF_OUT, ml_opset=1),
    "bad_linclf_nolabels": model("LinearClassifier", dict(coefficients=[1.0] * 9, intercepts=[0.0, 0.0, 0.0]),
                                 CLF_OUT, ml_opset=1),
    "bad_linreg_targets": model("LinearRegressor", dict(coefficients=[1.0] * 3, targets=2), REG_OUT, ml_opset=1),
    "bad_scaler_len": model("Scaler", dict(offset=[1.0, 2.0], scale=[1.0, 2.0, 3.0]),
                            [("Y", TensorProto.FLOAT, ["N", 3])], ml_opset=1),
    "bad_normalizer": model("Normalizer", dict(norm="L3"), [("Y", TensorProto.FLOAT, ["N", 3])], ml_opset=1),
    # --- valid models the test runs
    "ok_reg": reg(nodes_missing_value_tracks_true=[0, 0, 1, 0, 0, 0], base_values=[0.25]),
    # double thresholds: 0.1 is not a float; X = 0.1f (> 0.1) must go right
    "ok_as_tensor": reg(nodes_values=None, nodes_values_as_tensor=dtensor([0.1, 0, 0, 0, 0, 0]),
                        target_weights=None, target_weights_as_tensor=dtensor([1.0, 2.0, 4.0, 0.5])),
    "ok_reg_f64": reg(_in=TensorProto.DOUBLE, nodes_missing_value_tracks_true=[0, 0, 1, 0, 0, 0], base_values=[0.25]),
    "ok_reg_i64": reg(_in=TensorProto.INT64, nodes_missing_value_tracks_true=[0, 0, 1, 0, 0, 0], base_values=[0.25]),
    "ok_reg_i32": reg(_in=TensorProto.INT32, nodes_missing_value_tracks_true=[0, 0, 1, 0, 0, 0], base_values=[0.25]),
    # the number of features is not declared: the kernel checks it
    "ok_reg_dynf": reg(_nf="F", base_values=[0.25]),
    "ok_as_tensor_f64": reg(_in=TensorProto.DOUBLE, nodes_values=None,
                            nodes_values_as_tensor=dtensor([0.1, 0, 0, 0, 0, 0])),
    # node 2's two branches share leaf 3 (a DAG, still a finite walk); leaf 4 unreachable
    "ok_shared_leaf": reg(nodes_falsenodeids=[2, 0, 3, 0, 0, 0]),
    "ok_reg_min": reg(n_targets=2, aggregate_function="MIN", target_treeids=[0, 0, 0, 1, 0],
                      target_nodeids=[1, 3, 4, 0, 1], target_ids=[0, 0, 0, 0, 1],
                      target_weights=[1.0, 2.0, 4.0, 0.5, -3.0], base_values=[10.0, 20.0]),
    "ok_clf": clf(),
    "ok_clf_bin": clf(class_ids=[0, 0, 0, 0], classlabels_int64s=None, classlabels_strings=["no", "yes"],
                      class_weights=[0.2, 0.3, 0.9, 0.1]),
    "ok_linclf_bin": model("LinearClassifier", dict(coefficients=[1.0, -1.0, 0.0], intercepts=[0.5],
                                                    classlabels_ints=[0, 1], post_transform="LOGISTIC"),
                           [("label", TensorProto.INT64, ["N"]), ("scores", TensorProto.FLOAT, ["N", 2])],
                           ml_opset=1),
}
MODELS["ok_clf_bin"].graph.output[0].type.tensor_type.elem_type = TensorProto.STRING
MODELS["ok_clf_bin"].graph.output[1].type.tensor_type.shape.dim[1].dim_value = 2
# opset 1 has no *_as_tensor attributes
MODELS["bad_as_tensor_opset1"] = model("TreeEnsembleRegressor",
                                       stump(n_targets=1, nodes_values=None,
                                             nodes_values_as_tensor=dtensor([0.5, 0, 0, 0, 0, 0]),
                                             target_treeids=[0, 0, 0, 1], target_nodeids=[1, 3, 4, 0],
                                             target_ids=[0, 0, 0, 0], target_weights=[1.0, 2.0, 4.0, 0.5]),
                                       REG_OUT, ml_opset=1)
for name, m in sorted(MODELS.items()):
    save(m, os.path.join(HERE, name + ".onnx"))
print("wrote %d models to %s" % (len(MODELS), HERE))

#!/usr/bin/python3
"""Broad self-check of tools/sk2onnx.py: converts many estimator
configurations (beyond the committed fixtures) and compares each converted
model with scikit-learn's predictions, using tools/onnx_ml_ref.py and, when
onnxruntime-node is available (see tools/ort_run.js), ONNX Runtime.
Writes nothing.

    /usr/bin/python3 tools/check_sk2onnx.py

Exit status 1 if any configuration disagrees.
"""

import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fixture_util as fu  # noqa: E402
import onnx_ml_ref  # noqa: E402
from sk2onnx import ConversionError, convert  # noqa: E402

from sklearn import datasets, dummy, ensemble, linear_model, pipeline, preprocessing, svm, tree  # noqa: E402


def configs():
    E, L, T = ensemble, linear_model, tree
    d = datasets.load_diabetes(return_X_y=True)
    Xd, yd = d
    yd2 = np.c_[yd, np.log(yd)]
    Xi, yi = datasets.load_iris(return_X_y=True)
    yi_str = np.array(["a", "b", "c"])[yi]
    Xb, yb = datasets.load_breast_cancer(return_X_y=True)
    Xb = Xb / np.abs(Xb).max(axis=0)
    yb_str = np.array(["benign", "malignant"])[yb]
    Xw, yw = datasets.load_wine(return_X_y=True)
    Xw = Xw / np.abs(Xw).max(axis=0)
    yw_odd = np.array([-3, 7, 100])[yw]
    return [
        ("rf_reg_multioutput", E.RandomForestRegressor(n_estimators=5, max_depth=5, random_state=1), Xd, yd2),
        ("dt_reg_multioutput", T.DecisionTreeRegressor(max_depth=5, random_state=1), Xd, yd2),
        ("et_clf_bin_str", E.ExtraTreesClassifier(n_estimators=5, max_depth=5, random_state=1), Xb, yb_str),
        ("rf_clf_odd_labels", E.RandomForestClassifier(n_estimators=5, max_depth=4, random_state=1), Xw, yw_odd),
        ("rf_clf_nobootstrap", E.RandomForestClassifier(n_estimators=5, bootstrap=False, max_depth=4,
                                                        random_state=1), Xi, yi),
        ("dt_clf_weighted", T.DecisionTreeClassifier(max_depth=4, class_weight="balanced", random_state=1),
         Xw, yw),
        ("gb_reg_absolute", E.GradientBoostingRegressor(loss="absolute_error", n_estimators=10, random_state=1),
         Xd, yd),
        ("gb_reg_huber", E.GradientBoostingRegressor(loss="huber", n_estimators=10, random_state=1), Xd, yd),
        ("gb_reg_quantile", E.GradientBoostingRegressor(loss="quantile", alpha=0.8, n_estimators=10,
                                                        random_state=1), Xd, yd),
        ("gb_reg_zero_init", E.GradientBoostingRegressor(init="zero", n_estimators=10, random_state=1), Xd, yd),
        ("gb_reg_subsample", E.GradientBoostingRegressor(subsample=0.7, n_estimators=10, random_state=1), Xd, yd),
        ("gb_reg_early_stop", E.GradientBoostingRegressor(n_estimators=200, n_iter_no_change=3,
                                                          random_state=1), Xd, yd),
        ("gb_clf_bin_str", E.GradientBoostingClassifier(n_estimators=10, random_state=1), Xb, yb_str),
        ("gb_clf_bin_zero_init", E.GradientBoostingClassifier(init="zero", n_estimators=10, random_state=1),
         Xb, yb),
        ("gb_clf_multi_str", E.GradientBoostingClassifier(n_estimators=10, random_state=1), Xi, yi_str),
        ("gb_clf_multi_lr", E.GradientBoostingClassifier(n_estimators=10, learning_rate=0.37,
                                                         random_state=1), Xw, yw_odd),
        ("ridge_multi", L.Ridge(alpha=0.5), Xd, yd2),
        ("lasso_multi", L.Lasso(alpha=0.05), Xd, yd2),
        ("linreg_nointercept", L.LinearRegression(fit_intercept=False), Xd, yd),
        ("logreg_liblinear_multi", L.LogisticRegression(solver="liblinear"), Xi, yi),
        ("logreg_liblinear_bin", L.LogisticRegression(solver="liblinear"), Xb, yb_str),
        ("logreg_nointercept", L.LogisticRegression(fit_intercept=False, max_iter=1000), Xw, yw),
        ("logreg_ovr_str", L.LogisticRegression(multi_class="ovr", max_iter=1000), Xi, yi_str),
        ("pipe_2scalers_gb", pipeline.make_pipeline(preprocessing.StandardScaler(),
                                                    preprocessing.StandardScaler(with_mean=False),
                                                    E.GradientBoostingClassifier(n_estimators=5, random_state=1)),
         Xi, yi),
        ("pipe_scaler_nostd_ridge", pipeline.make_pipeline(preprocessing.StandardScaler(with_std=False),
                                                           L.Ridge()), Xd, yd),
    ]


def expected(est, X32):
    X64 = X32.astype(np.float64)
    if hasattr(est, "predict_proba"):
        lab = np.asarray(est.predict(X64))
        lab = lab.astype(np.int64) if lab.dtype.kind in "iuf" else np.array([str(v) for v in lab], dtype=object)
        return [lab, est.predict_proba(X64).astype(np.float32)]
    return [np.asarray(est.predict(X64)).reshape(len(X64), -1).astype(np.float32)]


def main():
    warnings.filterwarnings("ignore")
    have_ort = fu.ort_available()
    bad = 0
    for name, est, X, y in configs():
        est.fit(X, y)
        X32 = X[:: max(1, len(X) // 40)].astype(np.float32)
        if hasattr(est, "predict_proba"):
            p = np.sort(est.predict_proba(X32.astype(np.float64)), axis=1)
            X32 = X32[(p[:, -1] - p[:, -2]) > 1e-4]
        model = convert(est, X.shape[1], name=name)
        want = expected(est, X32)
        msgs = []
        got = onnx_ml_ref.run(model, {"input": X32})
        for g, w in zip(got, want):
            ok, msg = fu.allclose(g, w)
            if not ok:
                msgs.append("ref: " + msg)
        ort_note = ""
        if have_ort:
            got = [a for _, a in fu.ort_run(model, [("input", X32)])]
            for g, w in zip(got, want):
                ok, msg = fu.allclose(g, w)
                if not ok:
                    ort_note += " ort differs (%s)" % msg
        print("%-26s %s%s" % (name, "FAIL " + "; ".join(msgs) if msgs else "ok", ort_note))
        bad += bool(msgs)
    # unsupported estimators must fail clearly
    for est in (svm.SVR().fit(Xs := np.eye(3), [0, 1, 2]),
                dummy.DummyRegressor().fit(Xs, [0, 1, 2]),
                pipeline.make_pipeline(preprocessing.MinMaxScaler(), linear_model.Ridge()).fit(Xs, [0, 1, 2])):
        try:
            convert(est, 3)
            print("%-26s FAIL: converted" % type(est).__name__)
            bad += 1
        except ConversionError as e:
            print("%-26s ok (rejected: %s)" % (type(est).__name__, e))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Write tests/models/sk_<name>/ parity fixtures: models converted by
tools/sk2onnx.py, with expected outputs from scikit-learn's own
predict / predict_proba (never from the converted model).

    /usr/bin/python3 tools/make_sk_fixtures.py [--out tests/models] [--only NAME ...]
                                               [--ort-node-modules DIR]

Layout of each directory (ONNX backend-test style), see fixture_util.py.
Everything is seeded; rerunning gives identical files.

Input rows: ~30 rows spread over the bundled data set, plus, for tree models,
two rows built on a split threshold t (t is float64 in sklearn; X is
compared as float32), see _threshold_rows:
  * x = the largest float32 <= t   -> x <= t, goes left
  * x = the next float32 up, which is float32(t) rounded to nearest when
    that is > t                    -> x > t, goes right
The second row is exactly the one a converter that stores float32(t)
(round-to-nearest) gets wrong; every tree fixture except sk_dt_clf (digits:
all thresholds are exact x.5, so its pair lies exactly on a threshold
instead) fails with such a converter.  Classifier rows whose top two sklearn
probabilities are within 1e-4 are skipped: float32 summation order could
legitimately break such a tie either way.

Self-checks before writing (the script fails on a mismatch):
  * tools/onnx_ml_ref.py (literal float64 reading of the ops) on the
    converted model vs sklearn, at the fixture tolerance;
  * ONNX Runtime (node + onnxruntime-node, if found; see tools/ort_run.js)
    vs sklearn, except where ORT is known to depart from the ONNX spec
    (ORT_SKIP below).
"""

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fixture_util as fu  # noqa: E402
import onnx_ml_ref  # noqa: E402
from sk2onnx import _f32_floor, convert  # noqa: E402

from sklearn import datasets, ensemble, linear_model, pipeline, preprocessing, tree  # noqa: E402

N_ROWS = 30

# ONNX Runtime special-cases TreeEnsembleClassifier with exactly two classes
# (observed with onnxruntime-node 1.30), departing from the ONNX spec:
#  * base_values of size 2 and class 1 has scores: it sets
#    score1 = base_values[1] + score0, score0 = -score1, ignoring the class-1
#    weights -> our GB binary encoding (two weight columns, base_values
#    (-init, +init), LOGISTIC) comes out wrong (labels and probabilities);
#  * no base_values, weights for both classes: probabilities are right but
#    the label is class 1 whenever class 1's score is > 0, not the argmax.
# The fixtures' expected values come from sklearn; this only narrows the ORT
# self-check.  name -> (outputs not compared with ORT, reason)
ORT_SKIP = {
    "rf_clf_bin": (("label",),
                   "ORT 2-class TreeEnsembleClassifier label = class 1 if its score > 0"),
}


def _colmax(X):
    """Divide each column by its max |value| (a fixed, documented input
    transform so that plain logistic regression is well conditioned)."""
    return X / np.abs(X).max(axis=0)


def _data():
    d = {}
    d["diabetes"] = datasets.load_diabetes(return_X_y=True)
    # unscaled diabetes (integers / 1-4 decimals): no float noise, so the
    # scaler pipeline has no near-duplicate values split by a threshold
    d["diabetes_raw"] = datasets.load_diabetes(return_X_y=True, scaled=False)
    d["iris"] = datasets.load_iris(return_X_y=True)
    iris = datasets.load_iris()
    d["iris_str"] = (iris.data, np.asarray(iris.target_names)[iris.target])
    d["wine"] = datasets.load_wine(return_X_y=True)
    Xw, yw = d["wine"]
    d["wine_colmax"] = (_colmax(Xw), yw)
    d["breast_cancer"] = datasets.load_breast_cancer(return_X_y=True)
    Xb, yb = d["breast_cancer"]
    d["breast_cancer_colmax"] = (_colmax(Xb), yb)
    d["digits"] = datasets.load_digits(return_X_y=True)
    lin = datasets.load_linnerud()
    d["linnerud2"] = (lin.data, lin.target[:, :2])  # targets Weight, Waist
    return d


def _cases():
    E, L, T = ensemble, linear_model, tree
    std = preprocessing.StandardScaler
    return [
        # name, dataset, estimator, description
        ("rf_reg", "diabetes", E.RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0),
         "RandomForestRegressor, diabetes"),
        ("rf_clf", "wine", E.RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0),
         "RandomForestClassifier, wine (int labels 0-2)"),
        ("rf_clf_str", "iris_str", E.RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0),
         "RandomForestClassifier, iris species names (string labels)"),
        ("rf_clf_bin", "breast_cancer", E.RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0),
         "RandomForestClassifier, breast_cancer (2 classes, two weight columns)"),
        ("et_reg", "diabetes", E.ExtraTreesRegressor(n_estimators=20, max_depth=6, random_state=0),
         "ExtraTreesRegressor, diabetes"),
        ("et_clf", "wine", E.ExtraTreesClassifier(n_estimators=20, max_depth=6, random_state=0),
         "ExtraTreesClassifier, wine"),
        ("gb_reg", "diabetes", E.GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0),
         "GradientBoostingRegressor (squared_error), diabetes"),
        ("gb_clf_bin", "breast_cancer", E.GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0),
         "GradientBoostingClassifier log_loss binary, breast_cancer"),
        ("gb_clf_exp", "breast_cancer",
         E.GradientBoostingClassifier(loss="exponential", n_estimators=20, max_depth=3, random_state=0),
         "GradientBoostingClassifier exponential loss binary, breast_cancer"),
        ("gb_clf_multi", "iris", E.GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0),
         "GradientBoostingClassifier multiclass (softmax), iris"),
        ("dt_reg", "diabetes", T.DecisionTreeRegressor(max_depth=8, random_state=0),
         "DecisionTreeRegressor, diabetes"),
        ("dt_clf", "digits", T.DecisionTreeClassifier(max_depth=8, random_state=0),
         "DecisionTreeClassifier, digits (10 classes, 64 features)"),
        ("linreg", "diabetes", L.LinearRegression(), "LinearRegression, diabetes"),
        ("ridge", "diabetes", L.Ridge(alpha=1.0), "Ridge, diabetes"),
        ("lasso", "diabetes", L.Lasso(alpha=0.1), "Lasso, diabetes"),
        ("linreg_multi", "linnerud2", L.LinearRegression(),
         "LinearRegression with 2 targets, linnerud (Weight, Waist)"),
        ("logreg_bin", "breast_cancer_colmax", L.LogisticRegression(max_iter=1000),
         "LogisticRegression binary (OvR/logistic), breast_cancer / column max"),
        ("logreg_bin_mn", "breast_cancer_colmax",
         L.LogisticRegression(multi_class="multinomial", max_iter=1000),
         "LogisticRegression binary with multi_class='multinomial' (softmax of -d, d)"),
        ("logreg_multi", "iris", L.LogisticRegression(max_iter=1000),
         "LogisticRegression multinomial, iris"),
        ("logreg_ovr", "wine_colmax", L.LogisticRegression(multi_class="ovr", max_iter=1000),
         "LogisticRegression one-vs-rest (LOGISTIC + Normalizer L1), wine / column max"),
        ("pipe_scaler_logreg", "wine",
         pipeline.make_pipeline(std(), L.LogisticRegression(max_iter=1000)),
         "Pipeline(StandardScaler, LogisticRegression multinomial), wine"),
        ("pipe_scaler_rf_reg", "diabetes_raw",
         pipeline.make_pipeline(std(), E.RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0)),
         "Pipeline(StandardScaler, RandomForestRegressor), diabetes unscaled"),
    ]


def _threshold_rows(est, X32):
    """Two rows straddling a split threshold t (float64 in sklearn).

    Looks, tree by tree and node by node, for a split where float32(t)
    rounded to nearest is > t -- the case a round-to-nearest converter gets
    wrong -- and takes a data row whose path goes through that node.  Its
    feature is set to lo = largest float32 <= t (goes left) in one copy and
    to hi = the next float32 up, i.e. float32(t), (goes right) in the other.
    If no such split exists (digits: every threshold is an exact x.5), any
    split is used and the first row then lies exactly on the threshold.
    Ancestors keep their decisions: t lies strictly inside the interval
    they allow for that feature.  Only a pair whose sklearn outputs differ
    (so the fixture really tells the two roundings apart) and whose
    classifier rows are unambiguous is taken.
    """
    def out(rows):
        rows = np.asarray(rows, dtype=np.float64)
        return est.predict_proba(rows) if hasattr(est, "predict_proba") else est.predict(rows)

    trees = np.asarray(getattr(est, "estimators_", [est]), dtype=object).reshape(-1)
    for rounding_case_only in (True, False):
        for t in trees:
            tr = t.tree_
            path = None
            for n in range(tr.node_count):
                if tr.children_left[n] == -1:
                    continue
                th = float(tr.threshold[n])
                if rounding_case_only and not np.float64(np.float32(th)) > th:
                    continue
                if path is None:
                    path = t.decision_path(X32).toarray().astype(bool)
                through = np.where(path[:, n])[0]
                if len(through) == 0:
                    continue
                f = int(tr.feature[n])
                lo = _f32_floor([th])[0]
                hi = np.nextafter(lo, np.float32(np.inf), dtype=np.float32)
                assert np.float64(lo) <= th < np.float64(hi)
                a = X32[through[0]].copy()
                b = X32[through[0]].copy()
                a[f] = lo
                b[f] = hi
                pa, pb = out([a, b])
                if np.max(np.abs(np.asarray(pa) - np.asarray(pb))) <= 1e-3:
                    continue
                if not _unambiguous(est, np.array([a, b])).all():
                    continue
                return [a, b]
    return []


def _select_rows(X, mask, n=N_ROWS):
    """n rows evenly spread over the rows of X allowed by mask, as float32."""
    X = X[mask]
    idx = np.unique(np.linspace(0, len(X) - 1, min(n, len(X))).round().astype(int))
    return X[idx]


def _on_threshold_rows(est, X32):
    """How many rows meet a split with x == threshold exactly on their path."""
    if not _is_tree_model(est):
        return 0
    trees = np.asarray(getattr(est, "estimators_", [est]), dtype=object).reshape(-1)
    hit = np.zeros(len(X32), dtype=bool)
    for t in trees:
        tr = t.tree_
        path = t.decision_path(X32).toarray().astype(bool)
        inner = tr.children_left != -1
        for n in np.where(inner)[0]:
            on = path[:, n] & (X32[:, tr.feature[n]].astype(np.float64) == tr.threshold[n])
            hit |= on
    return int(hit.sum())


def _unambiguous(est, X32):
    """Mask of rows whose top-2 predict_proba differ by more than 1e-4."""
    if not hasattr(est, "predict_proba"):
        return np.ones(len(X32), dtype=bool)
    p = np.sort(est.predict_proba(X32.astype(np.float64)), axis=1)
    return (p[:, -1] - p[:, -2]) > 1e-4


def _robust_after_scaler(est, X32):
    """Mask of rows safe for Pipeline(StandardScaler..., tree model).

    The ONNX Scaler computes (x - offset) * scale in float32, sklearn
    computes (x - mean_) / scale_ in float64 and the tree then casts to
    float32; the two can differ by an ulp.  That only matters when a scaled
    value lies within an ulp or so of a split threshold, which happens in
    diabetes (near-duplicate feature values that float32 rounds to adjacent
    floats, with a split between them).  Such rows cannot be matched exactly
    by any float32 implementation, so they are left out.
    """
    ok = np.ones(len(X32), dtype=bool)
    if not hasattr(est, "steps"):
        return ok
    final = est.steps[-1][1]
    if not _is_tree_model(final):
        return ok
    Z = est[:-1].transform(X32.astype(np.float64))
    trees = np.asarray(getattr(final, "estimators_", [final]), dtype=object).reshape(-1)
    by_feature = {}
    for t in trees:
        tr = t.tree_
        inner = tr.children_left != -1
        for f, th in zip(tr.feature[inner], tr.threshold[inner]):
            by_feature.setdefault(int(f), []).append(th)
    for f, ths in by_feature.items():
        ths = np.asarray(ths)
        near = np.abs(Z[:, f][:, None] - ths[None, :]) <= 1e-6 * np.maximum(1.0, np.abs(ths))[None, :]
        ok &= ~near.any(axis=1)
    return ok


def _expected(est, X32):
    X64 = X32.astype(np.float64)
    if hasattr(est, "predict_proba"):
        label = np.asarray(est.predict(X64))
        if label.dtype.kind in "iub" or label.dtype.kind == "f":
            label = label.astype(np.int64)
        else:
            label = np.array([str(v) for v in label], dtype=object)
        proba = est.predict_proba(X64).astype(np.float32)
        return [("label", label), ("probabilities", proba)]
    y = np.asarray(est.predict(X64)).reshape(len(X64), -1).astype(np.float32)
    return [("variable", y)]


def _is_tree_model(est):
    return hasattr(est, "tree_") or (hasattr(est, "estimators_") and not hasattr(est, "steps"))


def build(name, dataset, est, data):
    X, y = data[dataset]
    est.fit(X, y)
    n_features = X.shape[1]
    X32 = np.asarray(X, dtype=np.float32)
    rows = _select_rows(X32, _unambiguous(est, X32) & _robust_after_scaler(est, X32))
    if _is_tree_model(est):
        extra = np.array(_threshold_rows(est, X32), dtype=np.float32)
        if len(extra):
            rows = np.vstack([rows, extra])
    model = convert(est, n_features, name="sk_" + name, version="1")
    expected = _expected(est, rows)
    return model, [("input", rows)], expected, _on_threshold_rows(est, rows)


def check_ref(name, model, inputs, expected):
    got = onnx_ml_ref.run(model, dict(inputs))
    for (oname, want), g in zip(expected, got):
        ok, msg = fu.allclose(g, want)
        if not ok:
            raise SystemExit("%s: reference evaluator disagrees with sklearn on %s: %s"
                             % (name, oname, msg))


def check_ort(name, model, inputs, expected, node_modules, skip=()):
    got = fu.ort_run(model, inputs, node_modules)
    for (oname, want), (gname, g) in zip(expected, got):
        if oname in skip:
            continue
        ok, msg = fu.allclose(g, want)
        if not ok or gname != oname:
            raise SystemExit("%s: ONNX Runtime disagrees with sklearn on %s: %s"
                             % (name, oname, msg))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(fu.REPO, "tests", "models"))
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--ort-node-modules", default=None,
                    help="node_modules dir holding onnxruntime-node (default $ORT_NODE_MODULES "
                         "or /tmp/ort/node_modules); the ORT check is skipped if not found")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")  # convergence / deprecation chatter
    data = _data()
    have_ort = fu.ort_available(args.ort_node_modules)
    if not have_ort:
        print("note: onnxruntime-node not found, skipping the ORT cross-check")
    total = 0
    for name, dataset, est, desc in _cases():
        if args.only and name not in args.only:
            continue
        model, inputs, expected, on_t = build(name, dataset, est, data)
        check_ref(name, model, inputs, expected)
        ort_note = "ort: skipped"
        if have_ort:
            skip, why = ORT_SKIP.get(name, ((), ""))
            check_ort(name, model, inputs, expected, args.ort_node_modules, skip)
            ort_note = "ort: ok" if not skip else "ort: ok except %s (%s)" % ("/".join(skip), why)
        path = os.path.join(args.out, "sk_" + name)
        fu.write_test_dir(path, model, inputs, expected)
        size = fu.dir_size(path)
        total += size
        print("sk_%-20s %3d rows (%2d on a threshold) %7d bytes  ref: ok  %s"
              % (name, len(inputs[0][1]), on_t, size, ort_note))
    print("total %d bytes" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main())

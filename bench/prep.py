#!/usr/bin/python3
"""bench/prep.py -- everything the benchmark needs that is made, not written.

Called by bench/run.sh (Debian's /usr/bin/python3: onnx 1.12, scikit-learn,
numpy) after `npm install` in bench/work.  Cached under bench/work: an
artifact that exists is not made again (delete bench/work to start over).

    /usr/bin/python3 bench/prep.py WORK_DIR NODE_MODULES_DIR

Makes, in WORK_DIR:
  models/rf100.pkl    the forest of models/default.onnx, retrained the way
                      tools/make_default_model.py trains it
                      (RandomForestRegressor(n_estimators=100, random_state=0)
                      on load_diabetes()), checked against models/default.onnx
                      (tools/onnx_ml_ref.py on every row, and ONNX Runtime)
                      to 1e-5 relative;
  models/rf500.pkl    RandomForestRegressor(500 trees, max_depth=12,
                      random_state=0) on make_regression(2000 x 50 features,
                      random_state=0), and
  models/rf500.onnx   the same converted by tools/sk2onnx.py, checked against
                      scikit-learn with ONNX Runtime (1e-5 relative);
  models/identity_10.onnx  one Identity node, float32 [N, 10]: ONNX Runtime's
                      per-call floor;
  inputs/KEY_bB.spec + .bin  model inputs for the in-process benchmarks
                      (batch B = 1 and 64);
  bodies/WORKLOAD.json  the HTTP request bodies;
  manifest.json       which models and workloads exist, file sizes, inputs.
"""

import hashlib
import json
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))

import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from sklearn.datasets import load_diabetes, load_digits, make_regression  # noqa: E402
from sklearn.ensemble import RandomForestRegressor  # noqa: E402

RTOL = 1e-5
BATCHES = (1, 64)
DT_CODE = {"float32": 1, "int64": 7}


def log(msg):
    print("prep: " + msg, flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rel_err(got, want):
    got = np.asarray(got, dtype=np.float64).ravel()
    want = np.asarray(want, dtype=np.float64).ravel()
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0)))


def ort_run(node_modules, model, feeds):
    """Runs model on feeds {name: ndarray} with tools/ort_run.js."""
    enc = {}
    for name, a in feeds.items():
        t = {np.float32: "float32", np.int64: "int64"}[a.dtype.type]
        enc[name] = {"type": t, "dims": list(a.shape),
                     "b64": __import__("base64").b64encode(np.ascontiguousarray(a).tobytes()).decode()}
    with tempfile.TemporaryDirectory() as d:
        ip, op = os.path.join(d, "in.json"), os.path.join(d, "out.json")
        with open(ip, "w") as f:
            json.dump({"inputs": enc}, f)
        env = dict(os.environ, ORT_NODE_MODULES=node_modules)
        subprocess.run(["node", os.path.join(REPO, "tools", "ort_run.js"), model, ip, op],
                       check=True, env=env, timeout=300)
        with open(op) as f:
            out = json.load(f)
    name = out["output_names"][0]
    t = out["outputs"][name]
    raw = __import__("base64").b64decode(t["b64"])
    return np.frombuffer(raw, dtype={"float32": np.float32, "float64": np.float64}[t["type"]]).reshape(t["dims"])


def save_pickle(est, path):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(est, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# models


def rf100(work, node_modules, stamp):
    """The default forest as a pickle, checked against models/default.onnx."""
    onnx_path = os.path.join(REPO, "models", "default.onnx")
    pkl = os.path.join(work, "models", "rf100.pkl")
    digest = sha256(onnx_path)
    if os.path.exists(pkl) and stamp.get("rf100_onnx_sha256") == digest:
        return
    log("retraining the default forest (tools/make_default_model.py's estimator) -> " + pkl)
    X, y = load_diabetes(return_X_y=True)
    # exactly tools/make_default_model.py's estimator and data
    est = RandomForestRegressor(n_estimators=100, random_state=0).fit(X, y)
    X32 = X.astype(np.float32)
    want = est.predict(X32)
    import onnx_ml_ref
    ref = onnx_ml_ref.run(onnx.load(onnx_path), {"input": X32})[0][:, 0]
    e_ref = rel_err(ref, want)
    got = ort_run(node_modules, onnx_path, {"input": X32})[:, 0]
    e_ort = rel_err(got, want)
    log("rf100: pickle vs models/default.onnx on %d rows: max rel diff %.2e (onnx_ml_ref), %.2e (ONNX Runtime)"
        % (len(X32), e_ref, e_ort))
    if e_ref > RTOL or e_ort > RTOL:
        raise SystemExit("prep: the retrained forest does not match models/default.onnx "
                         "(was default.onnx made by a different scikit-learn?)")
    save_pickle(est, pkl)
    stamp["rf100_onnx_sha256"] = digest
    stamp["rf100_check"] = {"rows": len(X32), "max_rel_diff_ref": e_ref, "max_rel_diff_ort": e_ort}


def rf500(work, node_modules, stamp):
    pkl = os.path.join(work, "models", "rf500.pkl")
    out = os.path.join(work, "models", "rf500.onnx")
    if os.path.exists(pkl) and os.path.exists(out) and stamp.get("rf500_onnx_sha256") == sha256(out):
        return
    log("training the 500-tree depth-12 forest on make_regression(2000 x 50) (about a minute)")
    X, y = make_regression(n_samples=2000, n_features=50, n_informative=20, noise=10.0, random_state=0)
    est = RandomForestRegressor(n_estimators=500, max_depth=12, random_state=0, n_jobs=2).fit(X, y)
    est.n_jobs = None  # predict() single-threaded, as served
    save_pickle(est, pkl)
    log("converting with tools/sk2onnx.py -> " + out)
    subprocess.run(["/usr/bin/python3", os.path.join(REPO, "tools", "sk2onnx.py"), pkl, out + ".tmp",
                    "--n-features", "50", "--name", "rf500", "--version", "1"], check=True, timeout=600)
    os.replace(out + ".tmp", out)
    Xc = rf500_rows(64)
    e = rel_err(ort_run(node_modules, out, {"input": Xc})[:, 0], est.predict(Xc))
    log("rf500: pickle vs rf500.onnx on 64 rows: max rel diff %.2e (ONNX Runtime)" % e)
    if e > RTOL:
        raise SystemExit("prep: rf500.onnx disagrees with its pickle")
    stamp["rf500_onnx_sha256"] = sha256(out)
    stamp["rf500_check"] = {"rows": 64, "max_rel_diff_ort": e,
                            "nodes": int(sum(t.tree_.node_count for t in est.estimators_))}


def identity(work):
    out = os.path.join(work, "models", "identity_10.onnx")
    if os.path.exists(out):
        return
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 10])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])
    g = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "identity", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="nginfer-bench")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, out)


# ---------------------------------------------------------------------------
# inputs


def rf500_rows(n):
    # make_regression draws X from a standard normal: fresh rows, same law
    return np.random.RandomState(1).normal(size=(n, 50)).astype(np.float32)


def bert_rows(n):
    rng = np.random.RandomState(0)
    ids = np.zeros((n, 32), dtype=np.int64)
    mask = np.zeros((n, 32), dtype=np.int64)
    for i in range(n):
        length = rng.randint(6, 33)
        ids[i, 0] = 1
        ids[i, 1:length] = rng.randint(8, 1000, size=length - 1)
        mask[i, :length] = 1
    return ids, mask


def inputs_for(key, b):
    """{name: ndarray} for model KEY at batch b (deterministic)."""
    if key == "rf100":
        X, _ = load_diabetes(return_X_y=True)
        return {"input": X[:b].astype(np.float32)}
    if key == "rf500":
        return {"input": rf500_rows(b)}
    if key in ("mlp", "cnn"):
        X, _ = load_digits(return_X_y=True)
        X = X[:b].astype(np.float32)
        return {"input": X if key == "mlp" else X.reshape(b, 1, 8, 8)}
    if key == "bert":
        ids, mask = bert_rows(b)
        return {"input_ids": ids, "attention_mask": mask}
    if key == "identity":
        X, _ = load_diabetes(return_X_y=True)
        return {"input": X[:b].astype(np.float32)}
    raise KeyError(key)


def write_spec(work, key, b, feeds):
    """inputs/KEY_bB.spec: one line per input, 'dtype_code n_dims d0 .. raw_file'."""
    d = os.path.join(work, "inputs")
    lines = []
    for i, (name, a) in enumerate(feeds.items()):
        raw = os.path.join(d, "%s_b%d_%d.bin" % (key, b, i))
        with open(raw, "wb") as f:
            f.write(np.ascontiguousarray(a).tobytes())
        lines.append("%d %d %s %s %s" % (DT_CODE[str(a.dtype)], a.ndim, " ".join(str(x) for x in a.shape),
                                         raw, name))
    with open(os.path.join(d, "%s_b%d.spec" % (key, b)), "w") as f:
        f.write("%d\n%s\n" % (len(lines), "\n".join(lines)))


def fmt_float(v):
    return float("%.8g" % v)


def body(key, b):
    feeds = inputs_for(key, b)
    if key in ("rf100", "rf500", "mlp"):
        rows = [[fmt_float(v) for v in row] for row in feeds["input"]]
        return {"instances": rows}
    if key == "cnn":
        return {"inputs": feeds["input"].tolist()}
    if key == "bert":
        return {"inputs": {k: v.tolist() for k, v in feeds.items()}}
    raise KeyError(key)


def main(argv):
    work, node_modules = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    for d in ("models", "inputs", "bodies"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    stamp_path = os.path.join(work, "prep_stamp.json")
    stamp = {}
    if os.path.exists(stamp_path):
        with open(stamp_path) as f:
            stamp = json.load(f)

    rf100(work, node_modules, stamp)
    rf500(work, node_modules, stamp)
    identity(work)
    with open(stamp_path, "w") as f:
        json.dump(stamp, f, indent=1)

    mdir = os.path.join(REPO, "models")
    wm = os.path.join(work, "models")
    models = {
        "rf100": {"onnx": os.path.join(mdir, "default.onnx"), "pickle": os.path.join(wm, "rf100.pkl"),
                  "label": "RF 100 trees (models/default.onnx)"},
        "rf500": {"onnx": os.path.join(wm, "rf500.onnx"), "pickle": os.path.join(wm, "rf500.pkl"),
                  "label": "RF 500 trees depth 12, 50 features"},
        "mlp": {"onnx": os.path.join(mdir, "digits_mlp.onnx"), "label": "digits MLP"},
        "cnn": {"onnx": os.path.join(mdir, "digits_cnn.onnx"), "label": "digits CNN"},
        "bert": {"onnx": os.path.join(mdir, "text_bert.onnx"), "label": "text BERT (32 tokens)"},
        "identity": {"onnx": os.path.join(wm, "identity_10.onnx"), "label": "Identity [N,10] (ORT floor)"},
    }
    models = {k: v for k, v in models.items() if os.path.exists(v["onnx"])}
    for k, m in models.items():
        m["onnx_bytes"] = os.path.getsize(m["onnx"])
        if "pickle" in m:
            m["pickle_bytes"] = os.path.getsize(m["pickle"])
        m["specs"] = {}
        for b in BATCHES:
            write_spec(work, k, b, inputs_for(k, b))
            m["specs"][str(b)] = os.path.join(work, "inputs", "%s_b%d.spec" % (k, b))

    workloads = [("rf100_1", "rf100", 1), ("rf100_64", "rf100", 64), ("rf500_1", "rf500", 1),
                 ("mlp_1", "mlp", 1), ("cnn_1", "cnn", 1), ("bert_1", "bert", 1)]
    wl = {}
    for name, key, b in workloads:
        if key not in models:
            continue
        path = os.path.join(work, "bodies", name + ".json")
        with open(path, "w") as f:
            json.dump(body(key, b), f, separators=(",", ":"))
        wl[name] = {"model": key, "rows": b, "body": path, "body_bytes": os.path.getsize(path)}

    manifest = {"models": models, "workloads": wl, "checks": {k: v for k, v in stamp.items() if k.endswith("_check")}}
    with open(os.path.join(work, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    log("models: %s; workloads: %s" % (" ".join(models), " ".join(wl)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/python3
"""Shared helpers for tools/make_sk_fixtures.py and tools/make_spec_fixtures.py.

Writes test directories in the layout of ONNX's own backend tests:
    DIR/model.onnx
    DIR/test_data_set_0/input_0.pb, input_1.pb, ...   (onnx TensorProto)
    DIR/test_data_set_0/output_0.pb, output_1.pb, ... (onnx TensorProto)
    DIR/tolerance                                      ("rtol 1e-5 atol 1e-6")
Each TensorProto's name is the graph input/output name.

Also runs a model in ONNX Runtime through tools/ort_run.js (node +
onnxruntime-node, see that file for how node_modules is obtained).
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
TOLERANCE = "rtol 1e-5 atol 1e-6\n"
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-6


def as_tensor_array(a):
    """numpy array in a dtype numpy_helper.from_array accepts (str -> object)."""
    a = np.asarray(a)
    if a.dtype.kind in "US":
        return np.array([str(v) for v in a.reshape(-1)], dtype=object).reshape(a.shape)
    if a.dtype.kind == "O":
        return np.array([str(v) for v in a.reshape(-1)], dtype=object).reshape(a.shape)
    return a


def write_test_dir(path, model, inputs, outputs, tolerance=TOLERANCE):
    """inputs / outputs: lists of (name, ndarray) in graph order."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    data = os.path.join(path, "test_data_set_0")
    os.makedirs(data)
    onnx.save(model, os.path.join(path, "model.onnx"))
    for kind, items in (("input", inputs), ("output", outputs)):
        for i, (name, arr) in enumerate(items):
            t = numpy_helper.from_array(as_tensor_array(arr), name)
            with open(os.path.join(data, "%s_%d.pb" % (kind, i)), "wb") as f:
                f.write(t.SerializeToString())
    with open(os.path.join(path, "tolerance"), "w") as f:
        f.write(tolerance)


def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for fn in files:
            total += os.path.getsize(os.path.join(root, fn))
    return total


def allclose(got, want, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL):
    """Element-wise |got - want| <= atol + rtol * |want|, NaN == NaN; exact for
    non-float types.  Returns (ok, message)."""
    got = np.asarray(got)
    want = np.asarray(want)
    if got.shape != want.shape:
        return False, "shape %s != %s" % (got.shape, want.shape)
    if want.dtype.kind in "fc":
        g = got.astype(np.float64)
        w = want.astype(np.float64)
        both_nan = np.isnan(g) & np.isnan(w)
        with np.errstate(invalid="ignore"):
            ok = both_nan | (g == w) | (np.abs(g - w) <= atol + rtol * np.abs(w))
        if ok.all():
            return True, ""
        bad = np.argwhere(~ok)[0]
        return False, "at %s got %r want %r (%d bad)" % (tuple(bad), g[tuple(bad)],
                                                           w[tuple(bad)], int((~ok).sum()))
    g = [str(v) for v in got.reshape(-1)] if want.dtype.kind in "OUS" else got.reshape(-1)
    w = [str(v) for v in want.reshape(-1)] if want.dtype.kind in "OUS" else want.reshape(-1)
    bad = [i for i, (a, b) in enumerate(zip(g, w)) if a != b]
    if bad:
        return False, "at %d got %r want %r (%d bad)" % (bad[0], g[bad[0]], w[bad[0]], len(bad))
    return True, ""


# ---------------------------------------------------------------------------
# ONNX Runtime through node

_JS_TYPES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64",
             np.dtype(np.int64): "int64", np.dtype(np.int32): "int32"}
_NP_TYPES = {v: k for k, v in _JS_TYPES.items()}


class OrtError(RuntimeError):
    """ONNX Runtime refused the model or the run."""


def _enc(a):
    a = np.asarray(a)
    if a.dtype.kind in "UOS":
        return {"type": "string", "dims": list(a.shape), "strings": [str(v) for v in a.reshape(-1)]}
    le = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return {"type": _JS_TYPES[a.dtype], "dims": list(a.shape),
            "b64": base64.b64encode(le.tobytes()).decode("ascii")}


def _dec(t):
    if t["type"] == "string":
        return np.array(t["strings"], dtype=object).reshape(t["dims"])
    dt = _NP_TYPES[t["type"]].newbyteorder("<")
    return np.frombuffer(base64.b64decode(t["b64"]), dtype=dt).reshape(t["dims"]).astype(
        _NP_TYPES[t["type"]])


def ort_env(node_modules=None):
    """Environment for node: NODE_PATH pointing at onnxruntime-node's node_modules."""
    env = dict(os.environ)
    nm = node_modules or os.environ.get("ORT_NODE_MODULES") or "/tmp/ort/node_modules"
    env["NODE_PATH"] = os.pathsep.join(p for p in (os.path.abspath(nm), env.get("NODE_PATH")) if p)
    return env


def ort_available(node_modules=None):
    try:
        r = subprocess.run(["node", "-e", "require('onnxruntime-node')"],
                           env=ort_env(node_modules), capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def ort_run(model, inputs, node_modules=None):
    """Run model (ModelProto or path) on inputs [(name, array)]; returns
    [(name, array)] in the session's output order.  Raises OrtError."""
    with tempfile.TemporaryDirectory() as d:
        if isinstance(model, onnx.ModelProto):
            mpath = os.path.join(d, "model.onnx")
            onnx.save(model, mpath)
        else:
            mpath = model
        ipath = os.path.join(d, "in.json")
        opath = os.path.join(d, "out.json")
        with open(ipath, "w") as f:
            json.dump({"inputs": {n: _enc(a) for n, a in inputs}}, f)
        r = subprocess.run(["node", os.path.join(TOOLS, "ort_run.js"), mpath, ipath, opath],
                           env=ort_env(node_modules), capture_output=True, text=True)
        if r.returncode != 0:
            raise OrtError(r.stderr.strip())
        with open(opath) as f:
            res = json.load(f)
    return [(n, _dec(res["outputs"][n])) for n in res["output_names"]]

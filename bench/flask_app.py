"""flask_app.py -- the Flask + gunicorn peer for bench/run.sh.

    BENCH_PICKLE=bench/work/models/rf100.pkl \
        gunicorn -w 2 -k sync -b 127.0.0.1:PORT --chdir bench flask_app:app

Loads the pickled scikit-learn estimator once at import (each gunicorn
worker imports the app, so each holds its own copy, like nginfer's
workers). POST /invocations with {"instances": [[...], ...]} answers
{"predictions": [...]} (estimator.predict on float32 rows); GET /ping 200.
"""

import os
import pickle

import numpy as np
from flask import Flask, jsonify, request

with open(os.environ["BENCH_PICKLE"], "rb") as _f:
    model = pickle.load(_f)

app = Flask(__name__)


@app.get("/ping")
def ping():
    return jsonify(status="ok")


@app.post("/invocations")
def invocations():
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict) or "instances" not in body:
        return jsonify(error={"code": "bad_request", "message": 'expected {"instances": [[...]]}'}), 400
    try:
        X = np.asarray(body["instances"], dtype=np.float32)
        if X.ndim != 2:
            raise ValueError("instances must be a list of rows")
        pred = model.predict(X)
    except (ValueError, TypeError) as e:
        return jsonify(error={"code": "bad_request", "message": str(e)}), 400
    return jsonify(predictions=pred.tolist())

#!/usr/bin/python3
"""Train and convert nginfer's default model: models/default.onnx.

RandomForestRegressor(n_estimators=100, random_state=0) on scikit-learn's
bundled diabetes data set (load_diabetes(), no download), converted by
tools/sk2onnx.py with name "diabetes-rf", version "1".  Input: float32
[N, 10] (age, sex, bmi, bp, s1..s6 as load_diabetes() scales them), output
"variable": float32 [N, 1] (disease progression one year after baseline).

    /usr/bin/python3 tools/make_default_model.py [OUT]

No pickle is written.  Deterministic: rerunning gives the same bytes.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.ensemble import RandomForestRegressor  # noqa: E402

import onnx_ml_ref  # noqa: E402
from sk2onnx import convert  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out = argv[0] if argv else os.path.join(REPO, "models", "default.onnx")
    X, y = load_diabetes(return_X_y=True)
    est = RandomForestRegressor(n_estimators=100, random_state=0).fit(X, y)
    model = convert(est, X.shape[1], name="diabetes-rf", version="1")

    # sanity check against sklearn on a few rows
    X32 = X[:20].astype(np.float32)
    want = est.predict(X32.astype(np.float64))
    got = onnx_ml_ref.run(model, {"input": X32})[0][:, 0]
    if not np.allclose(got, want, rtol=1e-5, atol=1e-6):
        raise SystemExit("converted model disagrees with sklearn")

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    onnx.save(model, out)
    print("%s: %d bytes" % (out, os.path.getsize(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

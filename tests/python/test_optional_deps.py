"""scikit-learn and River stay optional: without them the forests keep their API."""

from __future__ import annotations

import pytest
from servers import run_python

_WITHOUT = """
import sys
sys.modules["sklearn"] = None  # import sklearn now raises ImportError
sys.modules["river"] = None
import numpy as np
from anomaly_detection import HalfSpaceTrees, IsolationForest, NotFittedError, StatisticalAnomalyDetector

X = np.r_[np.random.default_rng(0).normal(size=(200, 2)), [[6.0, 6.0]]]
forest = IsolationForest(n_estimators=20, random_state=0)
try:
    forest.predict(X)
except NotFittedError:
    pass
assert forest.fit(X).predict(X)[-1] == -1
assert forest.n_features_in_ == 2 and not hasattr(forest, "feature_names_in_")
assert forest.get_params()["warm_start"] is False
assert forest.set_params(n_estimators=30) is forest and "n_estimators=30" in repr(forest)
try:
    forest.set_params(n_trees=3)
    raise SystemExit("set_params accepted an unknown parameter")
except ValueError:
    pass
try:
    forest.score_samples(np.zeros((2, 3)))
    raise SystemExit("a wrong width was accepted")
except ValueError:
    pass
forest.set_params(warm_start=True, n_estimators=50).fit(X)
assert [f.n_trees for f in forest.estimators_] == [20, 30]
import pandas as pd  # named columns: scikit-learn's rule without scikit-learn (swapped columns were scored)
named = IsolationForest(n_estimators=10, random_state=0).fit(pd.DataFrame(X, columns=["a", "b"]))
assert list(named.feature_names_in_) == ["a", "b"]
try:
    named.score_samples(pd.DataFrame(X, columns=["b", "a"]))
    raise SystemExit("swapped columns were accepted")
except ValueError as exc:
    assert "order" in str(exc), exc
assert (named.score_samples(X) == named.score_samples(pd.DataFrame(X, columns=["a", "b"]))).all()
hst = HalfSpaceTrees(n_trees=3, height=3, window_size=5, seed=1)
for i in range(12):
    hst.learn_one({"a": i / 12, "b": float("nan")})
assert 0.0 <= hst.score_one({"a": 0.5}) <= 1.0
river_face = StatisticalAnomalyDetector(detection_method="zscore", min_samples=3, window_size=10).as_river()
for v in (1.0, 2.0, 1.5, 1.2, 1.8):
    river_face.learn_one({"s": v}, t=0.0)
assert river_face.score_one({"s": 40.0}) > river_face.score_one({"s": 1.5})
print("ok")
"""


def test_forests_and_adapter_work_without_scikit_learn_and_river():
    out = run_python(_WITHOUT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("missing", ["httpx", "tenacity"])
def test_client_without_its_extra_names_the_extra(missing):
    code = (
        "import sys\n"
        f"sys.modules[{missing!r}] = None\n"
        "try:\n"
        "    import anomaly_detection.client\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc)\n"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert "pip install 'anomaly-detection-core[client]'" in out.stdout
    assert missing in out.stdout

"""Isolation Forest on the C++ core, with scikit-learn's estimator contract."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np

from anomaly_detection import _core
from anomaly_detection.errors import NotFittedError
from anomaly_detection.forest._validation import as_numeric_array, resolve_n_jobs, resolve_seed

__all__ = ["IsolationForest"]


class IsolationForest:
    """Isolation Forest (Liu, Ting and Zhou, 2008), scikit-learn compatible.

    Same semantics as :class:`sklearn.ensemble.IsolationForest`: each tree grows on
    ``max_samples`` rows (without replacement unless ``bootstrap``) and
    ``max_features`` features, splitting on a random non-constant feature at a
    threshold uniform between its minimum and maximum in the node, down to depth
    ``ceil(log2(max_samples))``. The trees are grown and walked in C++, on
    ``n_jobs`` threads, without the GIL.

    Parameters
    ----------
    n_estimators : int, default=100
        Number of trees.
    max_samples : "auto", int or float, default="auto"
        Rows per tree: ``min(256, n_samples)`` for "auto", a count (capped at
        ``n_samples`` with a warning) or a fraction of ``n_samples`` in (0, 1].
    contamination : "auto" or float, default="auto"
        Expected share of outliers in (0, 0.5]; sets ``offset_`` to that
        percentile of the training scores. "auto" sets ``offset_ = -0.5``.
    max_features : int or float, default=1.0
        Features per tree: a count or a fraction of ``n_features`` in (0, 1].
    bootstrap : bool, default=False
        Draw the rows of each tree with replacement.
    n_jobs : int or None, default=None
        Threads for fit and scoring (None: 1, -1: every core). The model does
        not depend on it.
    random_state : int, RandomState, Generator or None, default=None
        Seed of every random draw.

    Attributes
    ----------
    offset_ : float
        ``decision_function = score_samples - offset_``.
    max_samples_ : int
        Rows per tree actually used.
    n_features_in_ : int
        Number of features seen by ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from anomaly_detection.forest import IsolationForest
    >>> X = np.r_[np.random.default_rng(0).normal(size=(200, 2)), [[6.0, 6.0]]]
    >>> forest = IsolationForest(random_state=0).fit(X)
    >>> int(forest.predict(X)[-1])
    -1
    >>> bool(forest.score_samples(X)[-1] < forest.score_samples(X)[:-1].min())
    True
    """

    def __init__(
        self,
        n_estimators: int = 100,
        max_samples: str | float = "auto",
        contamination: str | float = "auto",
        max_features: float = 1.0,
        bootstrap: bool = False,
        n_jobs: int | None = None,
        random_state: Any = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.n_jobs = n_jobs
        self.random_state = random_state
        self._model: _core.IsolationForest | None = None

    # -- scikit-learn's parameter protocol -----------------------------------------

    _PARAMS = ("n_estimators", "max_samples", "contamination", "max_features", "bootstrap", "n_jobs", "random_state")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters by name (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params: Any) -> IsolationForest:
        """Set constructor parameters; they take effect at the next ``fit``."""
        for name in params:
            if name not in self._PARAMS:
                raise ValueError(f"set_params: unknown parameter {name!r}, expected one of {self._PARAMS}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = IsolationForest().get_params()
        changed = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v != defaults[k])
        return f"IsolationForest({changed})"

    # -- fitting and scoring --------------------------------------------------------

    def fit(self, X: Any, y: Any = None, sample_weight: None = None) -> IsolationForest:
        """Grow the trees on ``X`` of shape (n_samples, n_features); ``y`` is ignored."""
        if sample_weight is not None:
            raise ValueError("sample_weight: not supported, expected None")
        X = as_numeric_array(X, 2)
        n_samples, n_features = X.shape
        model = _core.IsolationForest(
            n_estimators=self._check_n_estimators(),
            max_samples=self._resolve_max_samples(n_samples),
            # All features travel as 0, so restored bytes say 1.0 as the default does.
            max_features=k if (k := self._resolve_max_features(n_features)) < n_features else 0,
            contamination=self._check_contamination(),
            bootstrap=self._check_bootstrap(),
            seed=resolve_seed(self.random_state),
        )
        model.fit(X, resolve_n_jobs(self.n_jobs))
        self._model = model
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """Opposite of the anomaly score of the paper: the lower, the more abnormal."""
        return self._fitted().score_samples(as_numeric_array(X, 2), resolve_n_jobs(self.n_jobs))

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers, positive for inliers."""
        return self._fitted().decision_function(as_numeric_array(X, 2), resolve_n_jobs(self.n_jobs))

    def predict(self, X: Any) -> np.ndarray:
        """-1 for outliers and 1 for inliers."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X)`` then ``predict(X)``."""
        return self.fit(X).predict(X)

    @property
    def offset_(self) -> float:
        return self._fitted().offset

    @property
    def max_samples_(self) -> int:
        return self._fitted().max_samples_used

    @property
    def n_features_in_(self) -> int:
        return self._fitted().n_features_in

    # -- serialisation ----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Versioned, checksummed bytes of the fitted model (for example for Redis)."""
        return self._fitted().to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> IsolationForest:
        """Restore a model from ``to_bytes``; corrupt bytes raise ``ValueError``.

        Parameters come back as the resolved values the model was grown with
        (a fractional ``max_samples`` becomes its count).
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"data: expected bytes, got {type(data).__name__}")  # noqa: TRY004 (project rule: ValueError)
        model = _core.IsolationForest.from_bytes(bytes(data))
        if not model.is_fitted:
            raise ValueError("data: expected a fitted model, got an unfitted one")
        n_estimators, max_samples, max_features, contamination, bootstrap, seed = model.config
        forest = cls(
            n_estimators=n_estimators,
            max_samples="auto" if max_samples == 0 else max_samples,
            contamination="auto" if contamination == 0 else contamination,
            max_features=1.0 if max_features == 0 else max_features,
            bootstrap=bootstrap,
            random_state=seed,
        )
        forest._model = model
        return forest

    def __getstate__(self) -> dict[str, Any]:
        state = self.get_params()
        if isinstance(state["random_state"], (np.random.RandomState, np.random.Generator)):
            state["random_state"] = None  # the generator's position is not part of the model
        state["_model"] = None if self._model is None else self._model.to_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        blob = state.pop("_model")
        self.__dict__.update(state)
        self._model = None if blob is None else _core.IsolationForest.from_bytes(blob)

    # -- helpers ----------------------------------------------------------------------

    def _fitted(self) -> _core.IsolationForest:
        if self._model is None:
            raise NotFittedError("This IsolationForest instance is not fitted yet: call fit before using it.")
        return self._model

    def _check_n_estimators(self) -> int:
        n = self.n_estimators
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n_estimators: expected an int >= 1, got {n!r}")
        return int(n)

    def _check_contamination(self) -> float:
        c = self.contamination
        if isinstance(c, str) and c == "auto":
            return 0.0
        if isinstance(c, numbers.Real) and not isinstance(c, bool) and 0.0 < c <= 0.5:
            return float(c)
        raise ValueError(f"contamination: expected 'auto' or a float in (0, 0.5], got {c!r}")

    def _check_bootstrap(self) -> bool:
        if not isinstance(self.bootstrap, (bool, np.bool_)):
            raise ValueError(f"bootstrap: expected a bool, got {self.bootstrap!r}")  # noqa: TRY004
        return bool(self.bootstrap)

    def _resolve_max_samples(self, n_samples: int) -> int:
        m = self.max_samples
        if isinstance(m, str) and m == "auto":
            return min(256, n_samples)
        if isinstance(m, numbers.Integral) and not isinstance(m, bool) and m >= 1:
            if m > n_samples:
                warnings.warn(
                    f"max_samples ({m}) is greater than the total number of samples ({n_samples}). "
                    "max_samples will be set to n_samples for estimation.",
                    UserWarning,
                    stacklevel=3,
                )
                return n_samples
            return int(m)
        if isinstance(m, numbers.Real) and not isinstance(m, bool) and 0.0 < m <= 1.0:
            return max(1, int(m * n_samples))
        raise ValueError(f"max_samples: expected 'auto', an int >= 1 or a float in (0, 1], got {m!r}")

    def _resolve_max_features(self, n_features: int) -> int:
        k = self.max_features
        if isinstance(k, numbers.Integral) and not isinstance(k, bool) and 1 <= k <= n_features:
            return int(k)
        if isinstance(k, numbers.Real) and not isinstance(k, (bool, numbers.Integral)) and 0.0 < k <= 1.0:
            return max(1, int(k * n_features))
        raise ValueError(
            f"max_features: expected an int in [1, {n_features}] or a float in (0, 1], got {k!r}"
        )

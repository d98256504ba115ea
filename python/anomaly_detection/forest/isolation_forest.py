"""Isolation Forest on the C++ core, with scikit-learn's estimator contract.

With scikit-learn installed (it stays optional) the estimator is a real
``OutlierMixin, BaseEstimator``: scikit-learn validates its input (feature names,
feature counts, sparse input refused, sample weights) and its own
``check_estimator`` suite passes. Without it, a small stand-in gives the same
parameter protocol and the checks of ``_validation``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

from anomaly_detection import _core
from anomaly_detection.errors import NotFittedError
from anomaly_detection.forest._validation import (
    as_numeric_array,
    check_feature_names,
    check_loaded_features,
    resolve_n_jobs,
    resolve_seed,
)

try:
    from sklearn.base import BaseEstimator, OutlierMixin
    from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
    from sklearn.utils.validation import _check_sample_weight, validate_data
except ImportError:  # scikit-learn is optional (or older than 1.6, which lacks validate_data)
    _SKLEARN = False
    from anomaly_detection.forest._validation import ParamsMixin as BaseEstimator

    class OutlierMixin:  # type: ignore[no-redef]
        """Stand-in for scikit-learn's mixin (nothing to add without scikit-learn)."""

    _NotFitted: type[Exception] = NotFittedError
else:
    _SKLEARN = True

    class _NotFitted(NotFittedError, _SklearnNotFittedError):
        """Ours and scikit-learn's at once, so ``except`` clauses of either catch it."""


__all__ = ["IsolationForest"]


class IsolationForest(OutlierMixin, BaseEstimator):
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
    verbose : int, default=0
        Accepted for scikit-learn's signature; the native fit prints nothing.
    warm_start : bool, default=False
        When True and already fitted, ``fit`` keeps the trees it has and grows
        ``n_estimators`` minus their number on the new ``X`` (as scikit-learn does;
        fewer than fitted raises ``ValueError``).

    Attributes
    ----------
    offset_ : float
        ``decision_function = score_samples - offset_``.
    max_samples_ : int
        Rows per tree actually used (by the last fit).
    n_features_in_ : int
        Number of features seen by ``fit``.
    feature_names_in_ : ndarray of str
        Column names of a DataFrame given to ``fit`` (only then; scikit-learn
        installed); scoring reordered or renamed columns raises ``ValueError``.
    estimators_ : list of _core.IsolationForest
        The native forests, one per ``fit`` (a warm start appends one); together
        they hold ``n_estimators`` trees (``sum(f.n_trees for f in estimators_)``).

    Notes
    -----
    ``sample_weight`` in ``fit``: rows of weight 0 take no part in growing the
    trees, and with a float ``contamination`` the offset is the weighted
    percentile of the training scores. Positive weights do not otherwise change
    the trees: in scikit-learn they enter only the split criterion, which an
    isolation tree does not use (its own checks of weight-as-repetition are
    expected failures for the same reason).

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
        verbose: int = 0,
        warm_start: bool = False,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def __sklearn_is_fitted__(self) -> bool:
        return bool(self.__dict__.get("_forests"))

    # -- fitting and scoring --------------------------------------------------------

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> IsolationForest:
        """Grow the trees on ``X`` of shape (n_samples, n_features); ``y`` is ignored.

        Nothing changes when any input or parameter is invalid.
        """
        names = self.__dict__.get("feature_names_in_"), self.__dict__.get("n_features_in_")
        try:
            X = self._check_X(X, reset=True)
            weights = self._check_weights(sample_weight, X)
            forests = self._grow(X if weights is None or weights.all() else X[weights > 0])
        except BaseException:
            self._restore_names(*names)
            raise
        self._forests = forests
        self._offset = self._fit_offset(X, weights)
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """Opposite of the anomaly score of the paper: the lower, the more abnormal."""
        forests = self._fitted()
        X = self._check_X(X, reset=False)
        if len(forests) == 1:
            return _native(forests[0].score_samples, X, resolve_n_jobs(self.n_jobs))
        return self._combined_scores(forests, X)

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers, positive for inliers."""
        forests = self._fitted()
        if len(forests) == 1 and self._offset is None:
            return _native(
                forests[0].decision_function, self._check_X(X, reset=False), resolve_n_jobs(self.n_jobs)
            )
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """-1 for outliers and 1 for inliers."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """``fit(X, **kwargs)`` then ``predict(X)``."""
        return self.fit(X, **kwargs).predict(X)

    @property
    def offset_(self) -> float:
        forests = self._fitted()
        return forests[0].offset if self._offset is None else self._offset

    @property
    def max_samples_(self) -> int:
        return self._fitted()[-1].max_samples_used

    @property
    def estimators_(self) -> list[_core.IsolationForest]:
        return list(self._fitted())

    # -- serialisation ----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Versioned, checksummed bytes of the fitted model (for example for Redis).

        A warm-started forest of several fits, one fitted with ``sample_weight`` and a
        float ``contamination``, or one fitted on named columns (a DataFrame: the bytes
        do not hold ``feature_names_in_``, so the restored model could not refuse
        reordered columns) has no single-blob form: pickle it instead.
        """
        forests = self._fitted()
        if len(forests) > 1 or self._offset is not None:
            raise ValueError("to_bytes: this forest combines several fits or a weighted offset; use pickle")
        if "feature_names_in_" in self.__dict__:
            raise ValueError(
                "to_bytes: this forest was fitted on named columns (feature_names_in_), which the bytes "
                "do not hold; use pickle, or fit on an array"
            )
        return forests[0].to_bytes()

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
        check_loaded_features(model.n_features_in)
        n_estimators, max_samples, max_features, contamination, bootstrap, seed = model.config
        forest = cls(
            n_estimators=n_estimators,
            max_samples="auto" if max_samples == 0 else max_samples,
            contamination="auto" if contamination == 0 else contamination,
            max_features=1.0 if max_features == 0 else max_features,
            bootstrap=bootstrap,
            random_state=seed,
        )
        forest._forests = [model]
        forest._offset = None
        forest.n_features_in_ = model.n_features_in
        return forest

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__() if _SKLEARN else self.__dict__.copy()
        state = dict(state)
        if isinstance(state.get("random_state"), (np.random.RandomState, np.random.Generator)):
            state["random_state"] = None  # the generator's position is not part of the model
        if "_forests" in state:
            state["_forests"] = [forest.to_bytes() for forest in state["_forests"]]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if "_forests" in state:
            state["_forests"] = [_core.IsolationForest.from_bytes(blob) for blob in state["_forests"]]
            for forest in state["_forests"]:
                check_loaded_features(forest.n_features_in)
        elif state.get("_model") is not None:  # pickled by version 0.1
            state["_forests"], state["_offset"] = [_core.IsolationForest.from_bytes(state["_model"])], None
            state["n_features_in_"] = state["_forests"][0].n_features_in
        state.pop("_model", None)
        state.setdefault("verbose", 0)
        state.setdefault("warm_start", False)
        if _SKLEARN:
            super().__setstate__(state)
        else:
            self.__dict__.update(state)

    # -- helpers ----------------------------------------------------------------------

    def _fitted(self) -> list[_core.IsolationForest]:
        forests = self.__dict__.get("_forests")
        if not forests:
            raise _NotFitted(
                f"This {type(self).__name__} instance is not fitted yet: call fit before using it."
            )
        return forests

    def _check_X(self, X: Any, reset: bool) -> Any:
        """``X`` validated by scikit-learn (names, feature count, no sparse input) when it is
        installed, else by ``as_numeric_array``; conversion to float64 happens at most once."""
        if _SKLEARN:
            if self._plain_matrix(X, reset):
                return X
            try:
                return validate_data(self, X, reset=reset, ensure_all_finite=False, dtype=_FLOAT_DTYPES)
            except ValueError as exc:
                raise ValueError(f"X: {exc}") from None
        # without scikit-learn, its rule for feature names (check_feature_names) all the same
        names = check_feature_names(None if reset else self.__dict__.get("feature_names_in_"), X)
        X = as_numeric_array(X, 2)
        if reset:
            self._restore_names(names, X.shape[1])
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X: expected {self.n_features_in_} features, got {X.shape[1]}")
        return X

    def _plain_matrix(self, X: Any, reset: bool) -> bool:
        """Whether ``X`` is a non-empty 2-D float array that scikit-learn's ``validate_data``
        would pass through unchanged (no names to check, the right width); if so, record
        what it records. Its own run costs ~0.3 ms a call (it looks for dataframes of
        every kind), 30 times the native scoring of a few rows."""
        if type(X) is not np.ndarray or X.ndim != 2 or X.dtype not in _PLAIN_DTYPES or 0 in X.shape:
            return False
        if reset:
            self.__dict__.pop("feature_names_in_", None)
            self.n_features_in_ = X.shape[1]
            return True
        return "feature_names_in_" not in self.__dict__ and X.shape[1] == self.__dict__.get("n_features_in_")

    def _restore_names(self, names: Any, n_features: Any) -> None:
        for attr, value in (("feature_names_in_", names), ("n_features_in_", n_features)):
            if value is None:
                self.__dict__.pop(attr, None)
            else:
                self.__dict__[attr] = value

    def _check_weights(self, sample_weight: Any, X: Any) -> np.ndarray | None:
        if sample_weight is None:
            return None
        if _SKLEARN:
            weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        else:
            weights = np.asarray(sample_weight, dtype=np.float64)
            if weights.shape != (X.shape[0],) or not np.isfinite(weights).all() or (weights < 0).any():
                raise ValueError(f"sample_weight: expected {X.shape[0]} finite weights >= 0")
        if not weights.any():
            raise ValueError("sample_weight: expected at least one positive weight, got all zeros")
        return weights

    def _grow(self, X: Any) -> list[_core.IsolationForest]:
        """The forests after this fit: a new one, or (warm start) the kept ones plus one."""
        kept = list(self.__dict__.get("_forests") or []) if self.warm_start else []
        n_new = self._check_n_estimators() - sum(forest.n_trees for forest in kept)
        if n_new < 0:
            raise ValueError(
                f"n_estimators: expected at least the {-n_new + self.n_estimators} trees already fitted "
                f"with warm_start=True, got {self.n_estimators}"
            )
        if n_new == 0:
            warnings.warn("Warm-start fitting without increasing n_estimators does not fit new trees.",
                          UserWarning, stacklevel=3)  # fmt: skip
            return kept
        n_samples, n_features = X.shape
        model = _core.IsolationForest(
            n_estimators=n_new,
            max_samples=self._resolve_max_samples(n_samples),
            # All features travel as 0, so restored bytes say 1.0 as the default does.
            max_features=k if (k := self._resolve_max_features(n_features)) < n_features else 0,
            contamination=0.0 if kept else self._check_contamination(),
            bootstrap=self._check_bootstrap(),
            seed=resolve_seed(self.random_state),
        )
        _native(model.fit, X, resolve_n_jobs(self.n_jobs))
        return [*kept, model]

    def _fit_offset(self, X: Any, weights: np.ndarray | None) -> float | None:
        """The offset when the native forest's own does not apply (None when it does)."""
        contamination = self._check_contamination()
        if len(self._forests) == 1 and (weights is None or contamination == 0.0):
            return None
        if contamination == 0.0:
            return -0.5
        scores = self.score_samples(X)
        if weights is None:
            return float(np.percentile(scores, 100.0 * contamination))
        return float(np.percentile(scores, 100.0 * contamination, weights=weights, method="inverted_cdf"))

    def _combined_scores(self, forests: list[_core.IsolationForest], X: Any) -> np.ndarray:
        # scikit-learn's rule for trees of several fits: the mean path length over
        # every tree, normalised by c(max_samples_) of the last fit.
        n_jobs = resolve_n_jobs(self.n_jobs)
        depth = sum(f.n_trees * _native(f.mean_path_length, X, n_jobs) for f in forests)
        depth /= sum(f.n_trees for f in forests)
        return -np.exp2(-depth / _average_path_length(forests[-1].max_samples_used))

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


_FLOAT_DTYPES = (np.float64, np.float32, np.float16)
_PLAIN_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
_EULER_GAMMA = 0.5772156649015329


def _average_path_length(n: int) -> float:
    """c(n), the mean path length of an unsuccessful search in a binary search tree
    of n keys (as the core and scikit-learn define it)."""
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return 2.0 * (math.log(n - 1.0) + _EULER_GAMMA) - 2.0 * (n - 1.0) / n


def _native(method: Any, X: Any, n_jobs: int) -> Any:
    """Call the core; its message for NaN/inf names the row and column, and says
    "NaN or infinity" as scikit-learn's does (its checks look for those words)."""
    try:
        return method(X, n_jobs)
    except ValueError as exc:
        if "expected finite values" in str(exc):
            raise ValueError(f"{exc} (X contains NaN or infinity)") from None
        raise

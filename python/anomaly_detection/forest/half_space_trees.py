"""Half-Space Trees on the C++ core, with River's streaming API and semantics.

With River installed (it stays optional) the detector is a
``river.anomaly.base.AnomalyDetector``, so it composes with River's pipelines
(``preprocessing.MinMaxScaler() | HalfSpaceTrees()``), metrics and evaluators.
"""

from __future__ import annotations

import copy
import math
import numbers
import secrets
from collections.abc import Mapping
from typing import Any

import numpy as np

from anomaly_detection import _core
from anomaly_detection.forest._validation import as_numeric_array, check_feature_names

try:
    from river.base import AnomalyDetector as _RiverAnomalyDetector
except ImportError:  # River is optional: without it the same API stands alone
    _RiverAnomalyDetector = object

__all__ = ["HalfSpaceTrees"]

#: Beyond every split threshold (thresholds lie within the padded feature limits).
_BEYOND = np.finfo(np.float64).max


class HalfSpaceTrees(_RiverAnomalyDetector):
    """Half-Space Trees (Tan, Ting and Liu, 2011), River's streaming anomaly detector.

    Same parameters, defaults and scores as :class:`river.anomaly.HalfSpaceTrees`:
    with the same ``seed`` the trees are the same and so are the scores, to the
    last bit. Observations are dicts (as in River) or NumPy rows; the features
    are fixed by the first observation learned (dict keys, sorted, as River does;
    or the columns of a row). Features are assumed in [0, 1] unless ``limits``
    says otherwise. Higher scores are more anomalous; the score is 0 until the
    first window of ``window_size`` observations has been learned.

    Missing features follow River: a feature absent from a dict goes, in each
    node, to the child with the larger mass; a NaN value (as River's scalers give
    for a feature on its first appearance) compares as River's ``value <
    threshold`` does, false, so it goes right, as ``+inf`` does. NumPy rows must be
    finite.

    Parameters
    ----------
    n_trees : int, default=10
        Number of trees.
    height : int, default=8
        Height of each tree (``2 ** (height + 1) - 1`` nodes).
    window_size : int, default=250
        Observations per window of masses.
    limits : mapping or None, default=None
        ``{feature: (low, high)}``; features of NumPy rows are named by their
        column index. Missing features default to ``(0, 1)``.
    seed : int or None, default=None
        Seed of the tree construction (as ``random.Random(seed)``).

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        The column names of a DataFrame (or the index of a pandas Series row) the
        first observations were learned from, when all are strings (scikit-learn's
        rule); only then. Arrays and DataFrames with other names or another column
        order are refused (``ValueError``) by every learn and score method; plain
        arrays are taken by position. Dicts keep River's semantics (by key).

    Examples
    --------
    >>> from anomaly_detection.forest import HalfSpaceTrees
    >>> X = [0.5, 0.45, 0.43, 0.44, 0.445, 0.45, 0.0]
    >>> hst = HalfSpaceTrees(n_trees=5, height=3, window_size=3, seed=42)
    >>> for x in X[:3]:
    ...     hst.learn_one({"x": x})
    >>> for x in X:
    ...     hst.learn_one({"x": x})
    ...     print(f"{x:.3f}: {hst.score_one({'x': x}):.3f}")
    0.500: 0.107
    0.450: 0.071
    0.430: 0.107
    0.440: 0.107
    0.445: 0.107
    0.450: 0.071
    0.000: 0.853
    """

    def __init__(
        self,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        limits: Mapping[Any, tuple[float, float]] | None = None,
        seed: int | None = None,
    ) -> None:
        for name, value, low in (
            ("n_trees", n_trees, 1),
            ("height", height, 0),
            ("window_size", window_size, 1),
        ):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        if window_size > 2**32:
            raise ValueError(f"window_size: expected an int in [1, 2**32], got {window_size!r}")
        if limits is not None and not isinstance(limits, Mapping):
            raise ValueError(f"limits: expected a mapping {{feature: (low, high)}} or None, got {limits!r}")
        if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)):
            raise ValueError(f"seed: expected an int or None, got {seed!r}")
        if seed is not None and abs(int(seed)) >= 2**64:
            raise ValueError(f"seed: expected |seed| < 2**64, got {seed}")
        self.n_trees = int(n_trees)
        self.height = int(height)
        self.window_size = int(window_size)
        self.limits = dict(limits) if limits is not None else None
        self.seed = seed
        for feature, pair in (self.limits or {}).items():
            self._check_limit(feature, pair)
        self._model: _core.HalfSpaceTrees | None = None
        self._names: list[Any] | None = None  # None: features are the columns of NumPy rows

    # -- River's API ------------------------------------------------------------------

    def learn_one(self, x: Mapping[Any, float] | np.ndarray) -> None:
        """Learn one observation (a dict or a 1-D row)."""
        # A dict of finite floats and ints is read by the core in one call; anything
        # else (first observation, other values, NumPy rows) takes the checked path.
        model = self._model
        if model is not None and type(x) is dict and model.learn_dict(x):
            return
        row = self._row(x, learning=True)
        self._model.learn_one(row)

    def score_one(self, x: Mapping[Any, float] | np.ndarray) -> float:
        """Anomaly score in [0, 1] of one observation; does not learn it."""
        model = self._model
        if model is None:
            self._row(x, learning=False)  # still validate the input
            return 0.0
        if type(x) is dict and (score := model.score_dict(x)) is not None:
            return score
        return model.score_one(self._row(x, learning=False))

    def learn_many(self, X: Any) -> None:
        """Learn the rows of a 2-D array (or DataFrame) in order; same as a loop of learn_one."""
        X = self._matrix(X, learning=True)
        if self._model is not None:  # None only for an empty first batch
            self._model.learn_many(X)

    def score_many(self, X: Any) -> np.ndarray:
        """Scores of the rows of a 2-D array; same as a loop of score_one (nothing is learned)."""
        X = self._matrix(X, learning=False)
        if self._model is None:
            return np.zeros(X.shape[0])
        return self._model.score_many(X)

    def score_learn_many(self, X: Any) -> np.ndarray:
        """For each row in order, its score before it is learned (progressive validation)."""
        X = self._matrix(X, learning=True)
        if self._model is None:  # an empty first batch
            return np.zeros(0)
        return self._model.score_learn_many(X)

    # -- parameters and serialisation -------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters by name."""
        return {
            "n_trees": self.n_trees,
            "height": self.height,
            "window_size": self.window_size,
            "limits": self.limits,
            "seed": self.seed,
        }

    def clone(
        self, new_params: dict[str, Any] | None = None, include_attributes: bool = False
    ) -> HalfSpaceTrees:
        """A fresh detector with the same parameters, updated by ``new_params`` (River's
        ``clone``); ``include_attributes=True`` keeps what was learned as well."""
        params = {**self.get_params(), **(new_params or {})}
        clone = type(self)(**params)
        if include_attributes and self._model is not None:
            state = copy.deepcopy(self.__getstate__())
            state.update({k: v for k, v in clone.__dict__.items() if k in params})
            clone.__setstate__(state)
        return clone

    def __repr__(self) -> str:
        return f"HalfSpaceTrees(n_trees={self.n_trees}, height={self.height}, window_size={self.window_size})"

    def to_bytes(self) -> bytes:
        """Versioned, checksummed bytes of the parameters, features and masses.

        Raises ``ValueError`` before the first observation (nothing to store), when
        dict features are not strings (only string names are stored) and, as
        ``IsolationForest.to_bytes``, for a model that learned named columns (the bytes
        do not hold ``feature_names_in_``, so the restored model could not refuse
        reordered columns): pickle those.
        """
        if self._model is None:
            raise ValueError("HalfSpaceTrees has learned nothing yet: nothing to serialise")
        if self._names is not None and not all(isinstance(n, str) for n in self._names):
            raise ValueError("to_bytes: expected string feature names; use pickle for other keys")
        if "feature_names_in_" in self.__dict__:
            raise ValueError(
                "to_bytes: this model learned named columns (feature_names_in_), which the bytes "
                "do not hold; use pickle, or learn from an array"
            )
        return self._model.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> HalfSpaceTrees:
        """Restore from ``to_bytes``; corrupt bytes raise ``ValueError``."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"data: expected bytes, got {type(data).__name__}")  # noqa: TRY004 (project rule: ValueError)
        model = _core.HalfSpaceTrees.from_bytes(bytes(data))
        n_trees, height, window_size, seed = model.config
        names = list(model.feature_names) or None
        keys = names if names is not None else range(model.n_features)
        limits = {k: tuple(v) for k, v in zip(keys, model.limits, strict=True) if tuple(v) != (0.0, 1.0)}
        hst = cls(n_trees=n_trees, height=height, window_size=window_size, limits=limits or None, seed=seed)
        hst._model = model
        hst._names = names
        if names is not None:
            model.set_keys(names)
        return hst

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None if self._model is None else self._model.to_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        blob = state.pop("_model")
        self.__dict__.update(state)
        self._model = None if blob is None else _core.HalfSpaceTrees.from_bytes(blob)
        if self._model is not None and self._names is not None:
            self._model.set_keys(self._names)

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def _check_limit(feature: Any, pair: Any) -> tuple[float, float]:
        try:
            low, high = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(f"limits[{feature!r}]: expected (low, high), got {pair!r}") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"limits[{feature!r}]: expected finite low < high, got {pair!r}")
        return low, high

    def _build(self, names: list[Any] | None, n_features: int, columns: np.ndarray | None = None) -> None:
        keys = names if names is not None else list(range(n_features))
        given = self.limits or {}
        limits = [self._check_limit(k, given[k]) if k in given else (0.0, 1.0) for k in keys]
        # random.seed(n) uses |n|; None draws fresh entropy, as random.Random(None) does.
        seed = secrets.randbits(64) if self.seed is None else abs(int(self.seed))
        string_names = [n for n in names if isinstance(n, str)] if names is not None else []
        stored = string_names if names is not None and len(string_names) == len(names) else []
        self._model = _core.HalfSpaceTrees(self.n_trees, self.height, self.window_size, seed, limits, stored)
        self._names = names
        if names is not None:
            self._model.set_keys(names)
        if columns is not None:  # learned from named columns (scikit-learn's feature_names_in_)
            self.feature_names_in_ = columns

    @staticmethod
    def _check_values(x: Mapping[Any, Any], names: Any) -> None:
        # Any real number, NaN and +-inf included (River compares them as they are);
        # an int beyond the float range cannot be compared as River would.
        for name in names:
            if name in x:
                value = x[name]
                real = isinstance(value, numbers.Real)
                try:
                    if real:
                        float(value)
                except OverflowError:
                    real = False
                if not real:
                    raise ValueError(f"x[{name!r}]: expected a real number, got {value!r}")

    def _row(self, x: Any, learning: bool) -> np.ndarray:
        if isinstance(x, Mapping):
            if self._model is None:
                if not x:
                    raise ValueError("x: expected at least one feature, got an empty dict")
                self._check_values(x, x)
                if not learning:
                    return np.empty(0)
                try:
                    names = sorted(x)
                except TypeError:
                    raise ValueError("x: expected sortable feature names (River sorts them)") from None
                self._build(names, len(names))
            if self._names is None:
                raise ValueError("x: this detector learned NumPy rows; expected a 1-D array, got a dict")
            # Features the trees do not use are ignored, as in River; an absent one is
            # NaN for the core, which then follows River's rule for missing features.
            # A present NaN or +inf goes right in every node, as River's ``value <
            # threshold`` sends it, and -inf left: the largest finite floats do the same.
            self._check_values(x, self._names)
            row = np.array([x.get(name, math.nan) for name in self._names], dtype=np.float64)
            present_nan = np.isnan(row) & np.array([name in x for name in self._names])
            row[present_nan] = _BEYOND
            return np.clip(row, -_BEYOND, _BEYOND, out=row, where=~np.isnan(row))
        columns = check_feature_names(getattr(self, "feature_names_in_", None), x, name="x")
        row = as_numeric_array(x, 1, name="x").astype(np.float64, copy=False)
        if not np.isfinite(row).all():
            raise ValueError("x: expected finite values, got NaN or inf")
        if self._model is None:
            if row.size == 0:
                raise ValueError("x: expected at least one feature, got an empty row")
            if learning:
                self._build(None, row.size, columns)
        elif self._names is not None:
            raise ValueError("x: this detector learned dicts; expected a dict, got an array")
        return row

    def _matrix(self, X: Any, learning: bool) -> np.ndarray:
        columns = check_feature_names(getattr(self, "feature_names_in_", None), X)
        X = as_numeric_array(X, 2).astype(np.float64, copy=False)
        if X.shape[1] == 0:
            raise ValueError(f"X: expected at least one feature, got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("X: expected finite values, got NaN or inf")
        if self._model is None:
            if learning and X.shape[0] > 0:
                self._build(None, X.shape[1], columns)
        elif self._names is not None:
            raise ValueError("X: this detector learned dicts; expected dicts, got an array")
        elif X.shape[1] != self._model.n_features:
            raise ValueError(f"X: expected {self._model.n_features} features, got {X.shape[1]}")
        return X

"""Input checks shared by the forest estimators (numeric arrays, seeds, thread counts)."""

from __future__ import annotations

import inspect
import numbers
import os
import sys
from typing import Any

import numpy as np

__all__ = [
    "MAX_LOADED_FEATURES",
    "ParamsMixin",
    "as_numeric_array",
    "check_feature_names",
    "check_loaded_features",
    "feature_names",
    "resolve_n_jobs",
    "resolve_seed",
]

#: The most features a loaded model may declare: the core scores rows in blocks of 128
#: whose feature offsets are 32-bit, and one row of more would take over 256 MB.
MAX_LOADED_FEATURES = (2**32 - 1) // 128


def check_loaded_features(n_features: int) -> int:
    """``n_features`` of a model read from bytes, refused (``ValueError``) when no input
    could ever match it, so that such bytes fail at load rather than at predict."""
    if not 1 <= n_features <= MAX_LOADED_FEATURES:
        raise ValueError(
            f"possible corruption: n_features_in: expected 1..{MAX_LOADED_FEATURES}, got {n_features}"
        )
    return n_features


class ParamsMixin:
    """scikit-learn's parameter protocol for when scikit-learn is not installed: the
    constructor's parameters, stored under their own names, are the parameters."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind == p.POSITIONAL_OR_KEYWORD
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters by name (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Any:
        """Set constructor parameters; they take effect at the next ``fit``."""
        names = self._param_names()
        for name in params:
            if name not in names:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {self!r}: expected one of {names}"
                )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {n: p.default for n, p in inspect.signature(type(self).__init__).parameters.items()}
        changed = ", ".join(
            f"{k}={v!r}" for k, v in self.get_params().items() if v is not defaults[k] and v != defaults[k]
        )
        return f"{type(self).__name__}({changed})"


_UINT64_MAX = 2**64 - 1


def as_numeric_array(X: Any, ndim: int, name: str = "X") -> np.ndarray:
    """Return ``X`` as a NumPy array of numbers with ``ndim`` dimensions.

    Anything ``np.asarray`` understands is accepted (lists, pandas DataFrames,
    float32, Fortran order); the conversion to C-contiguous float64 happens in
    the native layer, once. NaN/inf are rejected there with a ``ValueError``.
    """
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected an array of numbers, got {type(X).__name__} ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected numeric values, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        shape = "(n_samples, n_features)" if ndim == 2 else "(n_features,)"
        raise ValueError(f"{name}: expected a {ndim}-D array {shape}, got shape {arr.shape}")
    if arr.dtype.kind == "b":
        arr = arr.astype(np.float64)
    return arr


def feature_names(X: Any) -> np.ndarray | None:
    """The feature names of ``X`` by scikit-learn's rule for ``feature_names_in_``: the
    columns of a DataFrame (or the index of a pandas Series, one row) when every one is a
    string, else None (a plain array, or numbered columns: features by position)."""
    if type(X) is np.ndarray:  # the common case, at once
        return None
    names = getattr(X, "columns", None)
    if names is None:
        pd = sys.modules.get("pandas")  # imported already if X is a pandas object
        if pd is None or not isinstance(X, pd.Series):
            return None
        names = X.index
    names = np.asarray(names, dtype=object)
    if names.ndim != 1 or names.size == 0 or not all(isinstance(n, str) for n in names):
        return None
    return names


def _listed(names: Any, most: int = 5) -> str:
    names = list(names)
    return "[" + ", ".join(map(repr, names[:most])) + (", ...]" if len(names) > most else "]")


def check_feature_names(learned: np.ndarray | None, X: Any, name: str = "X") -> np.ndarray | None:
    """The feature names of ``X`` (:func:`feature_names`); ``ValueError`` naming the
    difference when both ``X`` and the model (``learned``) have names and they differ, as
    scikit-learn's estimators refuse them. ``X`` without names passes (by position)."""
    names = feature_names(X)
    if learned is None or names is None or (len(names) == len(learned) and (names == learned).all()):
        return names
    seen, given = set(learned), set(names)
    unseen = [n for n in names if n not in seen]
    missing = [n for n in learned if n not in given]
    if unseen or missing:
        raise ValueError(
            f"{name}: the feature names differ from those learned (feature_names_in_): "
            f"unseen {_listed(unseen)}, missing {_listed(missing)}"
        )
    raise ValueError(
        f"{name}: the features are in another order than learned (feature_names_in_): "
        f"expected {_listed(learned)}, got {_listed(names)}"
    )


def resolve_seed(random_state: Any) -> int:
    """A 64-bit seed from ``random_state`` as scikit-learn understands it.

    ``None`` draws from NumPy's global generator (so ``np.random.seed`` makes it
    repeatable), an int is used as is, a ``RandomState`` or ``Generator`` is drawn from.
    """
    if random_state is None:
        return int(np.random.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= int(random_state) <= _UINT64_MAX:
            raise ValueError(f"random_state: expected an integer in [0, 2**64), got {random_state}")
        return int(random_state)
    raise ValueError(
        f"random_state: expected None, an int, a RandomState or a Generator, got {random_state!r}"
    )


def resolve_n_jobs(n_jobs: int | None) -> int:
    """Worker threads for joblib's ``n_jobs`` convention (None is 1, -1 is every core)."""
    if n_jobs is None:
        return 1
    if not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool) or n_jobs == 0:
        raise ValueError(f"n_jobs: expected None, a positive int or a negative int, got {n_jobs!r}")
    if n_jobs > 0:
        return int(n_jobs)
    return max(1, (os.cpu_count() or 1) + 1 + int(n_jobs))

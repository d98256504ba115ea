"""Checks of user input shared by every store: bad input raises ValueError
(or TypeError for a wrong Python type) before anything changes."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from anomaly_detection import _core

__all__ = ["as_timestamp", "as_timestamps", "as_value", "as_values", "check_sensor_name"]


def check_sensor_name(name: object) -> str:
    """Return ``name`` if it can be a sensor name (and a part of a Redis key)."""
    if not isinstance(name, str):
        raise TypeError(f"sensor name: expected str, got {type(name).__name__}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the core's rule reads UTF-8, which cannot hold it
        raise ValueError(
            f"sensor name {name!r}: expected valid Unicode text (it holds a lone surrogate)"
        ) from None
    _core.check_sensor_name(name)
    return name


def as_value(value: Any) -> float:
    """A finite float from a number."""
    if isinstance(value, (str, bytes, bool, np.bool_, complex, np.complexfloating)) or value is None:
        raise ValueError(f"value: expected a finite number, got {_short(value)}")
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"value: expected a finite number, got {_short(value)}") from None
    if not math.isfinite(v):
        raise ValueError(f"value: expected a finite number, got {v}")
    return v


def as_timestamp(timestamp: Any) -> float:
    """Epoch seconds from None (now), a number, a datetime or an ISO-8601 string."""
    if timestamp is None:
        return time.time()
    return _one_timestamp(timestamp)


def _one_timestamp(timestamp: Any) -> float:
    """Epoch seconds from one given timestamp (None is refused: only a whole missing
    timestamp argument means now)."""
    if timestamp is None:
        raise ValueError("timestamp: expected a number, datetime or ISO-8601 string, got None")
    if isinstance(timestamp, (bool, np.bool_, complex, np.complexfloating)):
        raise ValueError(  # noqa: TRY004 (project rule: ValueError)
            f"timestamp: expected a real number, datetime or ISO-8601 string, got {timestamp!r}"
        )
    if isinstance(timestamp, datetime):
        return _epoch(timestamp)
    if isinstance(timestamp, str):
        try:
            return _epoch(datetime.fromisoformat(timestamp))
        except ValueError:
            raise ValueError(f"timestamp: expected ISO-8601 or epoch seconds, got {timestamp!r}") from None
    if isinstance(timestamp, np.datetime64):
        if np.isnat(timestamp):
            raise ValueError("timestamp: expected a date, got NaT (not a time)")
        return float(timestamp.astype("datetime64[ns]").astype(np.int64)) / 1e9
    try:
        t = float(timestamp)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"timestamp: expected a finite number, datetime or ISO-8601 string, got {_short(timestamp)}"
        ) from None
    if not math.isfinite(t):
        raise ValueError(f"timestamp: expected a finite number, got {t}")
    return t


def _short(value: Any) -> str:
    """``repr(value)`` cut to a readable length (``10**400`` has 401 digits)."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _epoch(dt: datetime) -> float:
    """Epoch seconds; a naive datetime is taken as UTC (as NumPy and pandas do)."""
    return (dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)).timestamp()


def as_values(values: Any) -> np.ndarray:
    """A non-empty 1-D float64 array of finite numbers."""
    if np.ma.isMaskedArray(values) and np.ma.getmaskarray(values).any():
        bad = int(np.flatnonzero(np.ma.getmaskarray(values))[0])
        raise ValueError(f"values[{bad}]: expected a number, got a masked (missing) entry")
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        what = "booleans" if arr.dtype.kind == "b" else f"an array of dtype {arr.dtype}"
        raise ValueError(f"values: expected numbers, got {what}")
    if arr.ndim != 1:
        raise ValueError(f"values: expected a 1-D array, got {arr.ndim}-D with shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("values: expected at least one value, got an empty array")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"values[{bad}]: expected a finite number, got {arr[bad]}")
    return arr


def as_values_with_gaps(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`as_values`, but a missing value (NaN, None, a masked or pandas NA
    entry) is allowed: returns the float64 array (NaN where missing) and the mask of
    the values present. Infinities are still refused."""
    if np.ma.isMaskedArray(values):
        values = np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)
    elif hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):  # pandas, nullable dtypes too
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    arr = np.asarray(values)
    if arr.dtype == object:
        try:
            arr = np.array([np.nan if v is None else v for v in arr.ravel()], dtype=np.float64).reshape(
                arr.shape
            )
        except (TypeError, ValueError, OverflowError):
            raise ValueError("values: expected numbers or None") from None
    present = ~np.isnan(arr) if arr.dtype.kind == "f" else np.ones(arr.shape, dtype=bool)
    if arr.dtype.kind == "f" and arr.ndim == 1:
        arr = np.where(present, arr, 0.0)  # checked as finite numbers below, NaN put back after
    checked = as_values(arr)
    checked[~present] = np.nan
    return checked, present


def as_timestamps(timestamps: Any, n: int) -> np.ndarray:
    """A 1-D float64 array of n epoch seconds; None means now for every point."""
    if timestamps is None:
        return np.full(n, time.time())
    arr = np.asarray(timestamps)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"timestamps: expected a 1-D sequence of length {n} (as values), got shape {arr.shape}"
        )
    if arr.dtype.kind == "M":
        if np.isnat(arr).any():
            raise ValueError(f"timestamps[{int(np.flatnonzero(np.isnat(arr))[0])}]: expected a date, got NaT")
        out = arr.astype("datetime64[ns]").astype(np.int64) / 1e9
    elif arr.dtype.kind in "iuf":
        out = np.ascontiguousarray(arr, dtype=np.float64)
    elif arr.dtype.kind in "bc":
        raise ValueError(f"timestamps: expected real numbers or dates, got an array of dtype {arr.dtype}")
    else:
        seq: Sequence[Any] = list(timestamps)
        out = np.empty(n, dtype=np.float64)
        for i, t in enumerate(seq):
            try:
                out[i] = _one_timestamp(t)
            except ValueError as e:  # noqa: PERF203 - the error names the entry; the loop is per object
                raise ValueError(f"timestamps[{i}]: {e}".replace(": timestamp:", ":")) from None
    if not np.isfinite(out).all():
        raise ValueError("timestamps: expected finite numbers")
    return out

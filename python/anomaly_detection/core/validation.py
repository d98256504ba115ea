"""Checks of user input shared by every store: bad input raises ValueError
(or TypeError for a wrong Python type) before anything changes."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from anomaly_detection import _core

__all__ = ["as_timestamp", "as_timestamps", "as_value", "as_values", "batch_input", "check_sensor_name"]

# Ticks per second of each resolution a pandas DatetimeIndex may have (pandas 2 and 3).
_TICKS_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


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


def _pandas() -> Any:
    """The pandas module if it is imported already: if it is not, no input can be a pandas
    object, so pandas stays an optional dependency that costs nothing when unused."""
    return sys.modules.get("pandas")


def batch_input(
    values: Any,
    timestamps: Any,
    hint: str = "use detect_many(frame.to_dict('series')) for one sensor per column",
) -> tuple[Any, Any]:
    """``(values, timestamps)`` of one sensor's batch: a pandas Series with a DatetimeIndex
    and no explicit timestamps gives its index as the timestamps (naive means UTC); explicit
    timestamps win. A DataFrame is refused (``TypeError``): it holds several series."""
    pd = _pandas()
    if pd is None:
        return values, timestamps
    if isinstance(values, pd.DataFrame):
        raise TypeError(
            f"values: expected one sensor's values (a 1-D sequence or a pandas Series), got a DataFrame "
            f"with columns {_short(list(values.columns))}; pass one column (frame[name]) or {hint}"
        )
    if timestamps is None and isinstance(values, pd.Series) and isinstance(values.index, pd.DatetimeIndex):
        timestamps = values.index
    return values, timestamps


def _index_seconds(index: Any) -> np.ndarray:
    """Epoch seconds of a pandas DatetimeIndex (tz-aware: its instants; naive: taken as UTC)."""
    if index.hasnans:
        bad = int(np.flatnonzero(index.isna())[0])
        raise ValueError(f"timestamps[{bad}]: expected a date, got NaT (in a pandas DatetimeIndex)")
    # asi8 counts ticks since the epoch in UTC whatever the index's time zone; whole seconds
    # and the fraction apart, as nanoseconds since 1970 do not fit a float64 exactly.
    per_second = _TICKS_PER_SECOND[getattr(index, "unit", "ns")]
    seconds, ticks = np.divmod(index.asi8, per_second)
    return seconds + ticks / per_second


def _pandas_numbers(values: Any) -> Any:
    """A pandas Series, Index or array of real numbers (nullable ``Float64``/``Int64`` too) as
    float64 with NaN where a value is missing; any other input as it came."""
    pd = _pandas()
    if pd is None or not isinstance(values, (pd.Series, pd.Index, pd.api.extensions.ExtensionArray)):
        return values
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype) or dtype.kind == "c":
        return values  # refused below with the message of its NumPy twin
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _check_entries(arr: np.ndarray, allow_none: bool = False) -> None:
    """Name the first entry of a 1-D object array that is no number (``10**400``, too
    large for a float; a string; None unless ``allow_none``), as the timestamps' messages do."""
    for i, v in enumerate(arr):
        if v is None and allow_none:
            continue
        if v is None or isinstance(v, (str, bytes, bool, np.bool_, complex, np.complexfloating)):
            raise ValueError(f"values[{i}]: expected a number, got {_short(v)}")
        try:
            float(v)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"values[{i}]: expected a number, got {_short(v)}") from None


def as_values(values: Any, check_finite: bool = True) -> np.ndarray:
    """A non-empty 1-D float64 array of finite numbers.

    ``check_finite=False`` leaves the finiteness check to the caller: the embedded store's
    kernels make it as they score, with the same message and nothing changed on failure."""
    if np.ma.isMaskedArray(values) and np.ma.getmaskarray(values).any():
        bad = int(np.flatnonzero(np.ma.getmaskarray(values))[0])
        raise ValueError(f"values[{bad}]: expected a number, got a masked (missing) entry")
    numbers = _pandas_numbers(values)
    if numbers is not values and np.isnan(numbers).any():
        bad = int(np.flatnonzero(np.isnan(numbers))[0])
        raise ValueError(
            f"values[{bad}]: expected a number, got a missing (NA or NaN) entry of a pandas "
            f"{type(values).__name__}; missing='skip' skips missing values"
        )
    arr = np.asarray(numbers)
    if arr.dtype == object and arr.ndim == 1:
        _check_entries(arr)
    if arr.dtype.kind not in "iuf":
        what = "booleans" if arr.dtype.kind == "b" else f"an array of dtype {arr.dtype}"
        raise ValueError(f"values: expected numbers, got {what}")
    if arr.ndim != 1:
        raise ValueError(f"values: expected a 1-D array, got {arr.ndim}-D with shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("values: expected at least one value, got an empty array")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if check_finite and not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"values[{bad}]: expected a finite number, got {arr[bad]}")
    return arr


def as_values_with_gaps(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`as_values`, but a missing value (NaN, None, a masked or pandas NA
    entry) is allowed: returns the float64 array (NaN where missing) and the mask of
    the values present. Infinities are still refused."""
    if np.ma.isMaskedArray(values):
        values = np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)
    else:
        values = _pandas_numbers(values)  # nullable dtypes: NaN where NA
    arr = np.asarray(values)
    if arr.dtype == object:
        if any(isinstance(v, (bool, np.bool_)) for v in arr.ravel()):  # float(True) would pass
            raise ValueError("values: expected numbers or None, got booleans")
        if arr.ndim == 1:
            _check_entries(arr, allow_none=True)
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


def as_timestamps(timestamps: Any, n: int, check_finite: bool = True) -> np.ndarray:
    """A 1-D float64 array of n epoch seconds; None means now for every point.
    ``check_finite=False``: as for :func:`as_values`."""
    if timestamps is None:
        return np.full(n, time.time())
    pd = _pandas()
    if pd is not None and isinstance(timestamps, (pd.Series, pd.Index)) and timestamps.dtype.kind == "M":
        if len(timestamps) != n:
            raise ValueError(
                f"timestamps: expected {n} (as values), got a pandas {type(timestamps).__name__} "
                f"of length {len(timestamps)}"
            )
        return _index_seconds(pd.DatetimeIndex(timestamps))
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
    if check_finite and not np.isfinite(out).all():
        raise ValueError("timestamps: expected finite numbers")
    return out

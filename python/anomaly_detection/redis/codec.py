"""How values are written into Redis and read back: JSON documents and window entries."""

from __future__ import annotations

import json
import logging
import re
import struct
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np

from anomaly_detection import _core

__all__ = [
    "decode_packed",
    "decode_mirror",
    "decode_points",
    "decode_ring",
    "decode_window",
    "dumps",
    "encode_append",
    "encode_joined",
    "encode_packed",
    "encode_points",
    "loads",
    "text",
]

_log = logging.getLogger(__name__)

_EMPTY = np.empty(0, dtype=np.float64)


def text(raw: Any) -> str:
    """A reply as str (redis-py returns bytes unless the client decodes responses)."""
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def dumps(value: Any) -> str:
    """Compact JSON; ValueError for what JSON cannot hold (NaN, infinities, other types)."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"value is not JSON-serialisable: {exc}") from None


def loads(raw: bytes | str | None, key: str) -> Any:
    """The JSON value stored at ``key`` (None stays None); ValueError naming the key when corrupt."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested 100,000 deep
        raise ValueError(f"{key}: stored value is not valid JSON (possible corruption): {exc}") from None


def encode_points(values: np.ndarray, timestamps: np.ndarray) -> list[str]:
    """The JSON entries of a window list (``repr`` of a float round-trips exactly)."""
    return [f'{{"value":{v!r},"timestamp":{t!r}}}' for v, t in zip(values.tolist(), timestamps.tolist())]


def encode_joined(values: np.ndarray, timestamps: np.ndarray) -> str:
    """The JSON entries of :func:`encode_points` joined by newlines: one script argument (an
    entry never holds a newline). Written by the C++ core (the same text, ~15x faster)."""
    return _core.json_point_entries(values, timestamps).decode()


def encode_packed(values: np.ndarray, timestamps: np.ndarray) -> tuple[bytes, bytes]:
    """The points for the window's compact mirror: values and timestamps, each packed as
    little-endian float64 (what the append script appends to the mirror's two strings)."""
    return values.astype("<f8", copy=False).tobytes(), timestamps.astype("<f8", copy=False).tobytes()


# The head of an append script's one argument (scripts.UNPACK_APPEND): window size, TTL,
# points of the call, sequence number, points sent, the caller's claim (the sequence number
# of its previous append and the point count after it), the anomalies to count when the claim
# holds; whether the caller takes the packed window, whether the TTLs are refreshed; the
# writer id's length.
_APPEND_HEAD = struct.Struct("<ddddddddBBB")
# One point of encode_append_point: its value and timestamp.
_POINT = struct.Struct("<dd")


def encode_append(
    window: int, ttl: int, n: int, writer: str, seq: int, want_packed: bool,
    values: np.ndarray, timestamps: np.ndarray, prev: int = 0, known: int = 0, counted: int = 0,
) -> bytes:  # fmt: skip
    """The one argument of an append script (``scripts.UNPACK_APPEND``): a call of ``n``
    points by ``writer`` with sequence number ``seq``, of which ``values`` and ``timestamps``
    are the last ``min(n, window)`` (packed as little-endian float64 pairs, then as the
    window's JSON entries joined by newlines), the TTLs refreshed; with the caller's claim
    that its append ``prev`` was the sensor's last and left ``known`` points (0, 0: none) and
    the ``counted`` anomalies it found scoring the points on that window (added only when
    the claim holds)."""
    wid = writer.encode()
    want = 1 if want_packed else 0
    head = _APPEND_HEAD.pack(window, ttl, n, seq, len(values), prev, known, counted, want, 1, len(wid))
    pairs = np.empty((len(values), 2), dtype="<f8")
    pairs[:, 0], pairs[:, 1] = values, timestamps
    return b"".join((head, wid, pairs.tobytes(), _core.json_point_entries(values, timestamps)))


def encode_append_point(
    window: int, ttl: int, writer: bytes, seq: int, value: float, timestamp: float,
    prev: int = 0, known: int = 0, refresh: bool = True,
) -> bytes:  # fmt: skip
    """:func:`encode_append` of one point, from Python floats (the single ``detect``'s path:
    no NumPy), for a caller that takes the packed window; with the caller's claim that its
    append ``prev`` was the sensor's last and left ``known`` points (0, 0: none), and whether
    the TTLs are refreshed."""
    return b"".join((
        _APPEND_HEAD.pack(window, ttl, 1, seq, 1, prev, known, 0, 1, 1 if refresh else 0, len(writer)),
        writer, _POINT.pack(value, timestamp),
        f'{{"value":{value!r},"timestamp":{timestamp!r}}}'.encode(),
    ))  # fmt: skip


def decode_packed(values: bytes, stamps: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Values and timestamps of the compact mirror's two packed strings (no JSON, no copy
    beyond NumPy's read-only view)."""
    return np.frombuffer(values, dtype="<f8"), np.frombuffer(stamps, dtype="<f8")


def decode_ring(ring: bytes, count: int, seen: int) -> tuple[np.ndarray, np.ndarray]:
    """Values and timestamps of the last ``count`` points before point number ``seen`` in
    the compact mirror ``ring`` (``scripts._APPEND_ONCE``: slots of 16 bytes, point k in slot
    k mod the number of slots, then 8 bytes); ValueError for a ring too short for them."""
    slots = (len(ring) - 8) // 16
    if count <= 0:
        return _EMPTY, _EMPTY
    if count > slots:
        raise ValueError(f"compact mirror of {slots} slots cannot hold {count} points")
    pairs = np.frombuffer(ring, dtype="<f8", count=2 * slots).reshape(slots, 2)
    start = (seen - count) % slots
    if start + count <= slots:
        window = pairs[start : start + count]
    else:
        window = np.concatenate((pairs[start:], pairs[: start + count - slots]))
    return np.ascontiguousarray(window[:, 0]), np.ascontiguousarray(window[:, 1])


def decode_mirror(ring: Any, ring_field: Any, seen: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The window a sensor's compact mirror holds, from the mirror key (``ring``) and the
    counters' ``ring`` and ``seen`` fields as read from Redis; None when there is none."""
    if ring is None or ring_field is None or seen is None:
        return None
    count = int(text(ring_field).split(":")[1])
    return decode_ring(text_bytes(ring), count, int(seen))


def decode_window(
    entries: list[bytes | str], packed: Any = None, seen: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The window before point number ``seen`` an append script answered: from the compact
    mirror when the reply has it (``packed``: the ring and its count of the window's points),
    else from the JSON entries."""
    if packed is not None:
        return decode_ring(text_bytes(packed[0]), int(packed[1]), seen)
    return decode_points(entries)


def text_bytes(raw: Any) -> bytes:
    """A reply as bytes (a client with ``decode_responses=True`` returns str)."""
    return raw if isinstance(raw, bytes) else raw.encode("latin-1")


# The entries this package writes; anything else takes the general JSON path.
_OWN_ENTRY = re.compile(rb'\{"value":(-?[0-9][0-9.eE+-]*),"timestamp":(-?[0-9][0-9.eE+-]*)\}')


def decode_points(entries: list[bytes | str]) -> tuple[np.ndarray, np.ndarray]:
    """Values and timestamps of window entries; entries that are not JSON objects
    with a finite numeric ``value`` are skipped with a warning (never a crash)."""
    if not entries:
        return _EMPTY, _EMPTY
    if isinstance(entries[0], bytes):
        # Fast path, vectorised: every entry is one of ours, parsed by NumPy.
        found = _OWN_ENTRY.findall(b"\n".join(entries))
        if len(found) == len(entries):
            try:
                pairs = np.array(found, dtype=np.bytes_).astype(np.float64)
            except ValueError:
                pairs = None
            if pairs is not None and np.isfinite(pairs).all():
                return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])
    raw = [e.decode() if isinstance(e, bytes) else e for e in entries]
    try:
        points = json.loads("[" + ",".join(raw) + "]")
    except (ValueError, RecursionError):  # RecursionError: an entry of arrays nested 100,000 deep
        points = []
        for e in raw:
            try:
                points.append(json.loads(e))
            except (ValueError, RecursionError):  # noqa: PERF203 - only when the window holds corrupt entries
                points.append(None)
    values, stamps, skipped = [], [], 0
    for p in points:
        try:
            v = float(p["value"])
            t = p.get("timestamp", 0.0)
            t = float(t) if isinstance(t, (int, float)) else _entry_timestamp(t)
        except (TypeError, KeyError, ValueError, AttributeError):
            skipped += 1
            continue
        if np.isfinite(v) and np.isfinite(t):
            values.append(v)
            stamps.append(t)
        else:
            skipped += 1
    if skipped:
        _log.warning("skipped %d unreadable window entries", skipped)
    return np.array(values, dtype=np.float64), np.array(stamps, dtype=np.float64)


def _entry_timestamp(t: Any) -> float:
    """Epoch seconds of a timestamp another writer stored: null (now), or an ISO-8601 string
    (naive means UTC, as NumPy and pandas take it); ValueError for anything else."""
    if t is None:
        return time.time()
    if isinstance(t, str):
        dt = datetime.fromisoformat(t)
        return (dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)).timestamp()
    raise ValueError(f"timestamp: expected a number, null or ISO-8601 string, got {t!r}")

"""The C++ writer of window entries (``_core.json_point_entries``) against Python's repr."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anomaly_detection import _core
from anomaly_detection.redis.codec import (
    _APPEND_HEAD,
    decode_points,
    encode_append,
    encode_joined,
    encode_points,
)


def _python_entries(values: np.ndarray, stamps: np.ndarray) -> bytes:
    return "\n".join(
        f'{{"value":{v!r},"timestamp":{t!r}}}' for v, t in zip(values.tolist(), stamps.tolist())
    ).encode()


EDGES = [0.0, -0.0, 0.1, 1e-4, 9.9999e-5, 1e-5, 1.5e-7, 1e15, 9999999999999998.0, 1e16, 1.25e100, 5e-324,
         2.2250738585072014e-308, 1.7976931348623157e308, -123.456, 50.0, 1764892800.123456, 123456789.0]  # fmt: skip


def test_entries_equal_pythons_repr_on_edges_and_random_bits() -> None:
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**64, size=200_000, dtype=np.uint64).view(np.float64)
    bits = bits[np.isfinite(bits)]
    scaled = rng.normal(0, 1, 50_000) * 10.0 ** rng.integers(-8, 20, 50_000)
    rounded = np.round(rng.normal(50, 5, 50_000), 3)
    for values in (np.array(EDGES), bits, scaled, rounded):
        stamps = np.roll(values, 1)
        got = _core.json_point_entries(values, stamps)
        assert got == _python_entries(values, stamps)
        assert encode_joined(values, stamps) == "\n".join(encode_points(values, stamps))
    # the entries parse back to the same numbers (JSON, and the codec's fast path)
    parsed = [json.loads(line) for line in got.split(b"\n")]
    assert [p["value"] for p in parsed] == values.tolist()
    back_v, back_t = decode_points(got.split(b"\n"))
    np.testing.assert_array_equal(back_v, values)
    np.testing.assert_array_equal(back_t, stamps)


def test_entries_refuse_non_finite_and_bad_shapes() -> None:
    ok = np.array([1.0, 2.0])
    assert _core.json_point_entries(ok[:0], ok[:0]) == b""
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="not finite"):
            _core.json_point_entries(np.array([1.0, bad]), ok)
        with pytest.raises(ValueError, match="not finite"):
            _core.json_point_entries(ok, np.array([bad, 1.0]))
    with pytest.raises(ValueError, match="1-D"):
        _core.json_point_entries(ok, np.array([1.0]))
    with pytest.raises(ValueError, match="1-D"):
        _core.json_point_entries(np.ones((2, 2)), np.ones((2, 2)))


def test_append_argument_ends_with_the_entries() -> None:
    values, stamps = np.array([1.5, 2.0, -3.25]), np.array([10.0, 11.0, 12.0])
    arg = encode_append(100, 3600, 3, "w1", 4, True, values, stamps)
    head = _APPEND_HEAD.size + 2  # the head, then the writer id "w1"
    pairs = np.column_stack((values, stamps)).astype("<f8")
    assert arg[head : head + 48] == pairs.tobytes()  # (value, timestamp) pairs
    assert arg[head + 48 :] == _python_entries(values, stamps)


def test_entries_of_repeated_numbers_equal_pythons_repr() -> None:
    # a number equal in its bits to the one before it is copied from that one's text: runs of
    # one timestamp (a batch stamped on arrival), flat values, -0.0 beside 0.0, long texts
    rng = np.random.default_rng(11)
    pool = np.array([*EDGES, -1.7976931348623157e308, 1.5e-7, -0.0, 0.0])
    runs = rng.integers(1, 6, size=3_000)
    values = np.repeat(rng.choice(pool, size=len(runs)), runs)
    stamps = np.repeat(rng.choice(pool, size=len(runs)), np.roll(runs, 1))  # runs of other lengths
    for n in (len(values), 4_000, 1):  # below and beyond the size written without the GIL
        assert _core.json_point_entries(values[:n], stamps[:n]) == _python_entries(values[:n], stamps[:n])
    with pytest.raises(ValueError, match="point 2 is not finite"):
        _core.json_point_entries(np.array([1.0, 1.0, np.nan]), np.array([5.0, 5.0, 5.0]))

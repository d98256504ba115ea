"""Untrusted bytes: random mutations and truncations raise ValueError and never crash."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomaly_detection.sketches import BloomFilter, CountMinSketch, CuckooFilter, HyperLogLog, TDigest, TopK

HEADER = 24  # magic, version, family, payload length, FNV-1a checksum


def small_sketches():
    cms = CountMinSketch(8, 2)
    cms.incrby(["a", "b"], [2, 3])
    hll = HyperLogLog(4)
    hll.add(np.arange(50))
    td = TDigest(10)
    td.add(np.arange(40.0))
    bloom = BloomFilter(5, 0.1)
    bloom.add(np.arange(12))
    cuckoo = CuckooFilter(8, bucket_size=2, seed=1)
    cuckoo.add(np.arange(6))
    top = TopK(2, width=4, depth=2)
    top.incrby(["x", "y", "z"], [3, 2, 1])
    return [cms, hll, td, bloom, cuckoo, top]


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def reseal(blob: bytes, payload: bytes) -> bytes:
    """The same header over another payload, with a valid length and checksum."""
    return blob[:8] + struct.pack("<QQ", len(payload), fnv1a64(payload)) + payload


def exercise(sketch) -> None:
    """Use a loaded sketch: whatever the bytes said, it must answer or raise cleanly."""
    sketch.info()
    assert type(sketch).from_bytes(sketch.to_bytes()) == sketch
    if isinstance(sketch, (CountMinSketch, TopK)):
        sketch.query(["a", "x"])
        sketch.incrby("a", 1)
    elif isinstance(sketch, (BloomFilter, CuckooFilter)):
        sketch.exists(["a", "x"])
    elif isinstance(sketch, TDigest):
        sketch.quantile([0.0, 0.5, 1.0])
        sketch.cdf(0.5)
        sketch.add([1.0])
    elif isinstance(sketch, HyperLogLog):
        sketch.count()
        sketch.add("a")
    if isinstance(sketch, TopK):
        sketch.list(with_count=True)


def test_one_hundred_thousand_random_mutations_and_truncations_raise_value_error():
    rng = np.random.default_rng(12345)
    sketches = small_sketches()
    rejected = accepted = 0
    per_sketch = 100_000 // len(sketches) + 1
    for sketch in sketches:
        blob = sketch.to_bytes()
        cls = type(sketch)
        arr = np.frombuffer(blob, dtype=np.uint8)
        trial = 0
        while trial < per_sketch:
            kind = trial % 4
            if kind == 0:  # truncate
                bad = blob[: int(rng.integers(0, len(blob)))]
            elif kind == 1:  # flip random bits
                mutated = arr.copy()
                idx = rng.integers(0, len(blob), size=int(rng.integers(1, 4)))
                mutated[idx] ^= rng.integers(1, 256, size=len(idx), dtype=np.uint8)
                bad = mutated.tobytes()
            elif kind == 2:  # random bytes spliced in
                at = int(rng.integers(0, len(blob)))
                bad = blob[:at] + rng.bytes(int(rng.integers(1, 9))) + blob[at:]
            else:  # overwrite a run with garbage
                at = int(rng.integers(0, len(blob)))
                garbage = rng.bytes(int(rng.integers(1, 17)))
                bad = blob[:at] + garbage + blob[at + len(garbage) :]
            if bad == blob:
                continue
            trial += 1
            try:
                cls.from_bytes(bad)
            except ValueError:
                rejected += 1
            else:
                accepted += 1
    assert rejected >= 100_000
    assert accepted == 0  # the checksum catches every one of these


@pytest.mark.parametrize("index", range(6))
def test_resealed_payload_mutations_are_parsed_safely(index):
    """Mutations behind a valid checksum reach the field checks: they either load into a
    usable sketch or raise ValueError (a crash here fails the whole run)."""
    sketch = small_sketches()[index]
    cls = type(sketch)
    blob = sketch.to_bytes()
    payload = np.frombuffer(blob[HEADER:], dtype=np.uint8)
    rng = np.random.default_rng(index)
    rejected = 0
    for trial in range(1500):
        mutated = payload.copy()
        if trial % 3 == 0 and len(mutated) > 1:
            mutated = mutated[: int(rng.integers(0, len(mutated)))]
        else:
            idx = rng.integers(0, len(mutated), size=int(rng.integers(1, 3)))
            mutated[idx] = rng.integers(0, 256, size=len(idx), dtype=np.uint8)
        try:
            loaded = cls.from_bytes(reseal(blob, mutated.tobytes()))
        except ValueError:
            rejected += 1
            continue
        exercise(loaded)
    assert rejected > 0


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_never_load_as_anything_unexpected(data):
    for cls in (CountMinSketch, HyperLogLog, TDigest, BloomFilter, CuckooFilter, TopK):
        with pytest.raises(ValueError, match="possible corruption"):
            cls.from_bytes(data)


@pytest.mark.slow
def test_fuzz_harness_under_sanitizers(tmp_path):
    """Build tests/fuzz/fuzz_sketches.cpp with ASan + UBSan (GCC, standalone driver) and
    feed it 50k mutations of the golden blobs, half of them behind a valid checksum."""
    root = Path(__file__).resolve().parents[2]
    compiler = shutil.which("g++") or shutil.which("c++")
    assert compiler, "a C++ compiler is needed to build the core anyway"
    binary = tmp_path / "fuzz_sketches"
    sources = sorted(str(p) for p in (root / "cpp" / "src" / "sketches").glob("*.cpp"))
    subprocess.run(
        [
            compiler,
            "-std=c++17",
            "-O1",
            "-g",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=undefined",
            "-DSKETCH_FUZZ_STANDALONE",
            f"-I{root / 'cpp' / 'include'}",
            str(root / "tests" / "fuzz" / "fuzz_sketches.cpp"),
            *sources,
            "-o",
            str(binary),
        ],
        check=True,
    )
    seeds = sorted(str(p) for p in (root / "tests" / "python" / "golden").glob("sketch_*.bin"))
    run = subprocess.run(
        [str(binary), "50000", *seeds], capture_output=True, text=True, timeout=600, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "50000 inputs, no crash" in run.stdout

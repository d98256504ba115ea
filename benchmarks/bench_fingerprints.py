"""Fingerprint pipeline: false alerts and detections on simulated traffic, and speed.

Run from the repository root:
    PYTHONPATH=python python benchmarks/bench_fingerprints.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "python"))
from test_fingerprints import run  # the tests' traffic generator

from anomaly_detection.fingerprints import FingerprintAggregator, FingerprintDetector, FingerprintPipeline


def quality(seeds: int = 20, n: int = 400) -> None:
    false = detected = forest_alone = incidents = normal = 0
    max_normal_z, min_incident_z = 0.0, np.inf
    for seed in range(seeds):
        inc = {100: "5xx", 200: "latency"} if seed % 2 == 0 else {}
        scored = run(FingerprintPipeline(detector=FingerprintDetector(random_state=seed)), n, inc, seed=seed)
        for i, s in enumerate(scored[60:], start=60):
            z = max(abs(v) for v in s.deviations.values())
            if i in inc:
                incidents += 1
                detected += s.is_anomaly
                forest_alone += s.score > s.threshold
                min_incident_z = min(min_incident_z, z)
            else:
                normal += 1
                false += s.is_anomaly
                max_normal_z = max(max_normal_z, z)
    print(f"false alerts          {false} of {normal} normal intervals")
    print(f"incidents alerted     {detected} of {incidents}")
    print(f"forest alone above    {forest_alone} of {incidents}")
    print(f"largest normal z      {max_normal_z:.1f} (smallest incident z {min_incident_z:.1f})")


def speed(n: int = 200_000) -> None:
    rng = np.random.default_rng(0)
    agg = FingerprintAggregator(interval=5.0)
    lat = rng.lognormal(4, 0.3, n).tolist()
    status = rng.choice([200, 404, 503], n, p=[0.97, 0.02, 0.01]).tolist()
    start = time.perf_counter()
    for i in range(n):
        agg.add_metric("svc", "GET:/a" if i % 3 else "GET:/b", lat[i], status[i], i * 0.001)
    print(f"add_metric            {n / (time.perf_counter() - start):,.0f} records/s")
    fps = agg.recent() * 4
    det = FingerprintDetector(warmup=60)
    start = time.perf_counter()
    for fp in fps[:60]:
        det.update(fp)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    for fp in fps[60:]:
        det.update(fp)
    per = (time.perf_counter() - start) / len(fps[60:])
    print(f"warm-up fit           {fit * 1e3:.1f} ms (60 fingerprints); scoring {per * 1e3:.3f} ms each")


if __name__ == "__main__":
    quality()
    speed()

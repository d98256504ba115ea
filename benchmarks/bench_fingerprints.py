"""Fingerprint pipeline: false alerts and detections on simulated traffic, and speed.

Run from the repository root:
    PYTHONPATH=python python benchmarks/bench_fingerprints.py [--quick] [--json]

There is no peer for the pipeline: the figures are reported on their own (false alerts
in normal traffic, injected incidents alerted, aggregation and scoring rates).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "python"))
from test_fingerprints import run  # the tests' traffic generator

from anomaly_detection.fingerprints import FingerprintAggregator, FingerprintDetector, FingerprintPipeline


def quality(seeds: int = 20, n: int = 400) -> dict[str, float]:
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
    return {"false": false, "normal": normal, "detected": detected, "incidents": incidents}


def speed(n: int = 200_000) -> dict[str, float]:
    rng = np.random.default_rng(0)
    agg = FingerprintAggregator(interval=5.0)
    lat = rng.lognormal(4, 0.3, n).tolist()
    status = rng.choice([200, 404, 503], n, p=[0.97, 0.02, 0.01]).tolist()
    start = time.perf_counter()
    for i in range(n):
        agg.add_metric("svc", "GET:/a" if i % 3 else "GET:/b", lat[i], status[i], i * 0.001)
    records = n / (time.perf_counter() - start)
    print(f"add_metric            {records:,.0f} records/s")
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
    return {"records": records, "scored": 1.0 / per}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 seeds instead of 20")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    q = quality(seeds=4 if args.quick else 20)
    s = speed()
    if args.json:
        figures = [
            {"metric": "fingerprints: add_metric records per second (no peer)", "unit": "records/s",
             "ours": s["records"]},
            {"metric": "fingerprints: fingerprints scored per second (no peer)", "unit": "fingerprints/s",
             "ours": s["scored"]},
            {"metric": f"fingerprints: injected incidents alerted, of {q['incidents']}", "unit": "incidents",
             "ours": q["detected"]},
            {"metric": f"fingerprints: false alerts in {q['normal']} normal intervals", "unit": "alerts",
             "ours": q["false"], "target": "0"},
        ]  # fmt: skip
        print(json.dumps({"bench": "fingerprints", "figures": figures}))


if __name__ == "__main__":
    main()

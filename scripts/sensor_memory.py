"""Memory per sensor of each scoring method, in the embedded store (RSS growth).

Each method runs in a fresh process: ``n`` sensors each learn ``points`` points (past
the ensemble's 300-point warm-up, so every structure has its steady size), and the
growth of the resident set is divided by ``n``. Usage:
``python scripts/sensor_memory.py [--sensors 2000] [--points 400] [--window-size 100] [--untimed]
[--step 60]`` (``--untimed``: the batches carry no timestamps, so the ensemble keeps the values
of its period estimate; the values are noise, so it finds no period, as ``--step 1`` finds none
from the timestamps: those two differ by the estimate's buffer alone).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys
import numpy as np
from anomaly_detection import StatisticalAnomalyDetector

def rss_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

method, n, points, window = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
untimed, step = sys.argv[5] == "1", float(sys.argv[6])
det = StatisticalAnomalyDetector(detection_method=method, window_size=window, max_sensors=0)
rng = np.random.default_rng(0)
values = 20.0 + rng.normal(size=points)
ts = None if untimed else np.arange(points, dtype=np.float64) * step
det.detect_batch("warm", values, ts)  # code paths and allocator pools touched once
before = rss_kb()
for i in range(n):
    det.detect_batch(f"sensor-{i}", values, ts)
print(json.dumps({"method": method, "kb_per_sensor": (rss_kb() - before) / n}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=2000)
    parser.add_argument("--points", type=int, default=400)
    parser.add_argument("--window-size", type=int, default=100)
    parser.add_argument("--untimed", action="store_true", help="batches without timestamps")
    parser.add_argument(
        "--step", type=float, default=60.0, help="seconds between the timestamps (default 60)"
    )
    args = parser.parse_args()
    stamps = "no timestamps" if args.untimed else "timestamps"
    print(f"| method | KB per sensor (window {args.window_size}, {args.points} points each, {stamps}) |")
    print("|---|---:|")
    for method in ("zscore", "mad", "iqr", "ewma", "cusum", "ensemble"):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, method, str(args.sensors), str(args.points), str(args.window_size),
             "1" if args.untimed else "0", str(args.step)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        row = json.loads(out.stdout)
        print(f"| {row['method']} | {row['kb_per_sensor']:.1f} |")


if __name__ == "__main__":
    main()

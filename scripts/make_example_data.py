"""Writes examples/sensors.csv: two synthetic sensors, one sample a minute for
three days, with three injected incidents (a spike, a level shift, a drop-out).

    python scripts/make_example_data.py
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np


def main() -> None:
    rng = np.random.default_rng(7)
    n = 3 * 24 * 60
    minutes = np.arange(n)
    daily = np.sin(2 * np.pi * minutes / (24 * 60))
    temperature = 21.0 + 0.5 * daily + rng.normal(0, 0.2, n)
    pressure = 101.3 + 0.01 * daily + rng.normal(0, 0.02, n)
    temperature[1500] += 3.0  # a spike
    temperature[2600:2660] += 2.0  # an overheating episode
    pressure[3500:3510] -= 0.3  # a pressure drop
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    out = Path(__file__).resolve().parents[1] / "examples" / "sensors.csv"
    out.parent.mkdir(exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["timestamp", "temperature", "pressure"])
        for i in range(n):
            ts = (start + timedelta(minutes=int(i))).strftime("%Y-%m-%d %H:%M:%S")
            writer.writerow([ts, f"{temperature[i]:.3f}", f"{pressure[i]:.3f}"])
    print(f"wrote {out} ({n} rows)")


if __name__ == "__main__":
    main()

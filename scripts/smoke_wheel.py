"""Smoke check of an installed wheel, run in a fresh environment outside the source tree
(.ci/run after `pip wheel`, and cibuildwheel's test-command): the compiled core imports,
a detector scores, a sketch counts, the CLI answers --help. Exits non-zero on any failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    import anomaly_detection
    from anomaly_detection import StatisticalAnomalyDetector
    from anomaly_detection.sketches import HyperLogLog

    where = Path(anomaly_detection.__file__).resolve()
    if "site-packages" not in where.parts and "dist-packages" not in where.parts:
        print(f"smoke: imported {where}, not an installed package", file=sys.stderr)
        return 1
    detector = StatisticalAnomalyDetector(detection_method="zscore", min_samples=5)
    for i in range(30):
        detector.detect("pump", 20.0 + 0.1 * (i % 3))
    result = detector.detect("pump", 95.0)
    assert result.is_anomaly, result
    hll = HyperLogLog(precision=12)
    hll.add([f"user-{i}" for i in range(10_000)])
    assert abs(hll.count() - 10_000) < 500, hll.count()
    cli = Path(sys.executable).with_name("anomaly-detection")
    out = subprocess.run([str(cli), "--help"], capture_output=True, text=True, check=True)
    assert "usage: anomaly-detection" in out.stdout, out.stdout
    print(f"smoke: ok ({anomaly_detection.__version__}, {where.parent})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The cost of a fork with the native locks held across it (anomaly_detection/_fork.py).

``python benchmarks/bench_fork.py [--sensors 10000] [--forks 40] [--rounds 5]``

One process, one embedded detector of ``--sensors`` sensors (and a count-min sketch), no other
thread: ``os.fork()`` timed in the parent (the child ``os._exit(0)``s at once; the parent waits
for it untimed) with the detector's registry and the sketch held across the fork ("held", what
every fork does now) and with both taken out of the hook's set ("not held": what a fork did
before, the peer), interleaved in blocks of ``--forks`` forks, ``--rounds`` times. Prints the
median fork of each block and the ratio; then the prepare and parent steps alone
(``_core._lock_for_fork`` + ``_core._unlock_after_fork``) on that registry, no fork.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from _common import machine, table

from anomaly_detection import Settings, StatisticalAnomalyDetector, _core, _fork
from anomaly_detection.sketches import CountMinSketch


def fork_once() -> float:
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    took = time.perf_counter() - start
    os.waitpid(pid, 0)
    return took


def block(forks: int) -> float:
    return statistics.median(fork_once() for _ in range(forks))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=10_000)
    ap.add_argument("--forks", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    det = StatisticalAnomalyDetector(Settings(detection_method="zscore", window_size=100))
    det.detect_many({f"s{i}": np.arange(100.0) for i in range(args.sensors)})
    cms = CountMinSketch(2048, 5)
    cms.incrby(np.arange(10_000), 1)
    natives = [det.store.registry, cms._native]
    assert all(n in _fork._natives for n in natives)

    def held(on: bool) -> None:
        for n in natives:
            if on:
                _fork.hold_across_fork(n)
            else:
                _fork._natives.discard(n)

    rows = []
    for r in range(args.rounds):
        held(False)
        peer = block(args.forks)
        held(True)
        ours = block(args.forks)
        rows.append([r + 1, f"{ours * 1e3:.3f}", f"{peer * 1e3:.3f}", f"{ours / peer:.2f}"])
    print(machine())
    print(
        f"os.fork() with {args.sensors:,} sensors, median of {args.forks} forks a block, load {os.getloadavg()}"
    )
    print(table(["round", "held (ms)", "not held (ms)", "held / not held"], rows))

    locked_us = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _ in range(args.forks):
            locked = _core._lock_for_fork(natives)
            _core._unlock_after_fork(locked, False)
        locked_us.append((time.perf_counter() - start) / args.forks * 1e6)
    print(
        f"prepare + parent steps alone: {min(locked_us):.1f}-{max(locked_us):.1f} us "
        f"(the registry's fork gate with {args.sensors:,} sensors, and the sketch's lock)"
    )


if __name__ == "__main__":
    main()

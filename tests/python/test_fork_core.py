"""A fork while another thread is inside the C++ core (docs/reliability.md, "Forking").

The embedded store's sensor registry and the in-process sketches guard their state with C++
mutexes and release the GIL while they work. A fork at that moment (``multiprocessing``'s
``fork``, a pre-forking server, ``os.fork()`` beside a background thread) used to leave the
child a mutex no thread of it would release: its first call on that sensor or sketch waited
forever. Each scenario runs in a subprocess of its own (a deadlock of the forking parent fails
the test by its timeout instead of hanging the suite); the parent forks while a background
thread is inside the core, each child makes a call on the same sensor or sketch under a
deadline and checks what it inherited, and the parent checks its own state afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

FORKS = 4
CHILD_DEADLINE = 10.0  # seconds a child may take for its call (it takes milliseconds)
SCENARIO_TIMEOUT = 240.0

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork: POSIX only")


def _wait_child(pid: int) -> str:
    """'ok', 'failed' (the child's check failed) or 'hung' (killed at the deadline)."""
    deadline = time.monotonic() + CHILD_DEADLINE
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "ok" if os.waitstatus_to_exitcode(status) == 0 else "failed"
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hung"
        time.sleep(0.005)


def _fork_while(busy, child_check, inside) -> dict[str, int]:
    """Fork FORKS times while `busy()` loops in a background thread (each fork once it is
    inside the core: `inside()` true); the child runs `child_check()` (True: passed)."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            while not stop.is_set():
                busy()
        except BaseException as e:  # noqa: BLE001 (reported by the parent)
            errors.append(e)

    worker = threading.Thread(target=loop)
    worker.start()
    outcomes = {"ok": 0, "failed": 0, "hung": 0}
    try:
        for _ in range(FORKS):
            wait_until = time.monotonic() + 30
            while not inside() and time.monotonic() < wait_until:
                time.sleep(0.001)
            pid = os.fork()
            if pid == 0:
                code = 3
                try:
                    code = 0 if child_check() else 1
                finally:
                    os._exit(code)
            outcomes[_wait_child(pid)] += 1
    finally:
        stop.set()
        worker.join()
    if errors:
        raise errors[0]
    return outcomes


def _gil_thread(call):
    """A second thread calling `call()` with the GIL held (single points) until stopped: a
    forking thread that waits for the core's locks without the GIL must still get it back."""
    stop = threading.Event()
    count = [0]

    def loop() -> None:
        while not stop.is_set():
            call()
            count[0] += 1

    t = threading.Thread(target=loop)
    t.start()

    def done() -> int:
        stop.set()
        t.join()
        return count[0]

    return done


def scenario_detect_batch() -> dict:
    from anomaly_detection import Settings, StatisticalAnomalyDetector

    det = StatisticalAnomalyDetector(Settings(detection_method="zscore", window_size=100))
    n = 1_500_000
    values = np.random.default_rng(0).normal(size=n)
    stamps = np.arange(n, dtype=float)
    batches = [0]

    def busy() -> None:
        det.detect_batch("s", values, stamps)
        batches[0] += 1

    def child_check() -> bool:
        seen = det.stats("s")["points_seen"]
        r = det.detect("s", 0.5, timestamp=1e9)
        # The child holds whole batches only (the fork waited for the one in progress).
        return seen % n == 0 and r.window_count == 100 and det.stats("s")["points_seen"] == seen + 1

    det.detect("t", 1.0, timestamp=1.0)
    stop_gil = _gil_thread(lambda: det.detect("t", 1.0, timestamp=2.0))
    try:
        outcomes = _fork_while(busy, child_check, lambda: batches[0] > 0)
    finally:
        points_t = stop_gil()
    seen = det.stats("s")["points_seen"]
    return {
        **outcomes,
        "parent_consistent": seen == batches[0] * n and det.stats("t")["points_seen"] == points_t + 1,
    }


def scenario_detect_many() -> dict:
    from anomaly_detection import Settings, StatisticalAnomalyDetector

    det = StatisticalAnomalyDetector(Settings(detection_method="zscore", window_size=50))
    n = 400_000
    rng = np.random.default_rng(1)
    batches = {f"m{i}": rng.normal(size=n) for i in range(4)}
    stamps = {k: np.arange(n, dtype=float) for k in batches}
    rounds = [0]

    def busy() -> None:
        det.detect_many(batches, stamps, threads=2)
        rounds[0] += 1

    def child_check() -> bool:
        seen = [det.stats(k)["points_seen"] for k in batches]
        det.detect("m0", 0.1, timestamp=1e9)
        det.detect_batch("m3", np.zeros(3), np.arange(3, dtype=float) + 1e9)
        return all(s % n == 0 for s in seen) and det.stats("m3")["points_seen"] == seen[3] + 3

    outcomes = _fork_while(busy, child_check, lambda: "m0" in det.sensors())
    seen = [det.stats(k)["points_seen"] for k in batches]
    return {**outcomes, "parent_consistent": seen == [rounds[0] * n] * 4}


def scenario_sketch() -> dict:
    from anomaly_detection.sketches import CountMinSketch

    cms = CountMinSketch(2048, 5)
    n = 2_000_000
    items = np.arange(n, dtype=np.int64)
    batches, singles = [0], [0]

    def busy() -> None:
        cms.incrby(items, 1)  # a batch: the count-min's lock taken without the GIL
        batches[0] += 1

    def child_check() -> bool:
        total = cms.total
        cms.incrby("x", 2)
        return cms.total == total + 2 and int(cms.query("x")) >= 2

    def single() -> None:
        cms.incrby("y", 1)  # one item: the lock taken with the GIL held
        singles[0] += 1

    stop_gil = _gil_thread(single)
    try:
        outcomes = _fork_while(busy, child_check, lambda: batches[0] > 0)
    finally:
        count = stop_gil()
    return {**outcomes, "parent_consistent": cms.total == batches[0] * n + count}


def scenario_sketch_exact() -> dict:
    from anomaly_detection.sketches import CountMinSketch

    cms = CountMinSketch(2048, 5)
    n = 2_000_000
    items = np.arange(n, dtype=np.int64)
    batches = [0]

    def busy() -> None:
        cms.incrby(items, 1)
        batches[0] += 1

    def child_check() -> bool:
        total = cms.total
        cms.incrby("x", 2)
        return total % n == 0 and cms.total == total + 2 and int(cms.query("x")) >= 2

    outcomes = _fork_while(busy, child_check, lambda: batches[0] > 0)
    return {**outcomes, "parent_consistent": cms.total == batches[0] * n}


def scenario_gate() -> dict:
    """While the fork hook holds a registry and a sketch (between its before and after steps),
    other threads' calls with the GIL wait without it and go on afterwards."""
    from anomaly_detection import Settings, StatisticalAnomalyDetector, _core
    from anomaly_detection.sketches import CountMinSketch

    det = StatisticalAnomalyDetector(Settings(detection_method="zscore", window_size=10))
    det.detect("s", 1.0, timestamp=1.0)
    cms = CountMinSketch(64, 2)
    natives = [det.store.registry, cms._native]
    locked = _core._lock_for_fork([*natives, object()])  # what the hook's before step does
    done: list[str] = []
    calls = [
        lambda: det.detect("s", 2.0, timestamp=2.0),  # a known sensor
        lambda: det.detect("new", 2.0, timestamp=2.0),  # a new one
        lambda: det.stats("s"),
        lambda: cms.incrby("x", 1),
    ]
    threads = [
        threading.Thread(target=lambda c=c, i=i: (c(), done.append(str(i)))) for i, c in enumerate(calls)
    ]
    for t in threads:
        t.start()
    time.sleep(0.3)  # needs the GIL back: no waiting thread may hold it
    waited = not done
    _core._unlock_after_fork(locked, False)
    for t in threads:
        t.join(10)
    return {
        "locked": [type(o).__name__ for o in locked],
        "waited": waited,
        "finished": sorted(done),
        "points": det.stats("s")["points_seen"],
        "x": int(cms.query("x")),
    }


SCENARIOS = {
    "gate": scenario_gate,
    "detect_batch": scenario_detect_batch,
    "detect_many": scenario_detect_many,
    "sketch": scenario_sketch,
    "sketch_exact": scenario_sketch_exact,
}


def _run(name: str) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    try:
        proc = subprocess.run(
            [sys.executable, __file__, name],
            capture_output=True,
            text=True,
            timeout=SCENARIO_TIMEOUT,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: the forking process itself deadlocked (no answer in {SCENARIO_TIMEOUT} s)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["detect_batch", "detect_many", "sketch", "sketch_exact"])
def test_a_child_forked_while_a_thread_is_inside_the_core_goes_on(name):
    got = _run(name)
    assert got["hung"] == 0, f"{got['hung']} of {FORKS} children hung on a lock held at the fork: {got}"
    assert got["failed"] == 0, f"children found an inconsistent state: {got}"
    assert got["ok"] == FORKS
    assert got["parent_consistent"], got


def test_calls_wait_for_the_fork_without_the_gil_and_go_on_after_it():
    got = _run("gate")
    assert got["locked"] == ["SensorRegistry", "CountMinSketch"]  # the native objects only
    assert got["waited"], "a call went through while the fork held the registry and the sketch"
    assert got["finished"] == ["0", "1", "2", "3"]
    assert got["points"] == 2
    assert got["x"] == 1


def test_every_registry_and_sketch_is_held_across_a_fork_while_it_lives():
    import gc

    from anomaly_detection import Settings, StatisticalAnomalyDetector, _fork
    from anomaly_detection.sketches import (
        BloomFilter,
        CountMinSketch,
        CuckooFilter,
        HyperLogLog,
        TDigest,
        TopK,
    )

    det = StatisticalAnomalyDetector(Settings(detection_method="zscore"))
    cms = CountMinSketch(64, 2)
    made = [
        cms,
        CountMinSketch.from_error(0.01, 0.01),
        CountMinSketch.from_bytes(cms.to_bytes()),
        cms.copy(),
        HyperLogLog(10),
        HyperLogLog.from_redis_bytes(HyperLogLog(14, redis_compatible=True).to_redis_bytes()),
        TDigest(100),
        BloomFilter(100, 0.01),
        CuckooFilter(100),
        TopK(5),
    ]
    assert det.store.registry in _fork._natives
    for sketch in made:
        assert sketch._native in _fork._natives, type(sketch).__name__
    # Held weakly: objects dropped before a fork leave nothing behind.
    gc.collect()
    before = len(_fork._natives)
    for _ in range(5_000):
        CountMinSketch(16, 2)
    gc.collect()
    assert len(_fork._natives) == before


if __name__ == "__main__":
    import warnings

    # Python 3.12+ warns at every fork of a process with threads: forking beside them is the point.
    warnings.filterwarnings("ignore", r"This process .* is multi-threaded", DeprecationWarning)
    print(json.dumps(SCENARIOS[sys.argv[1]]()))

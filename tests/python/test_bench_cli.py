"""The peer benchmark suite: ``anomaly-detection bench`` and ``python -m benchmarks``."""

from __future__ import annotations

import argparse
import re
import textwrap
from pathlib import Path

import pytest

from anomaly_detection.bench_cli import add_bench_parser, find_benchmarks_dir

REPO = Path(__file__).resolve().parents[2]


def run_bench_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="anomaly-detection")
    add_bench_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *argv])
    return args.func(args)


@pytest.fixture
def suite(monkeypatch):
    """The ``benchmarks`` package of this checkout."""
    monkeypatch.syspath_prepend(str(REPO))
    import benchmarks

    return benchmarks


def test_without_a_checkout_says_what_to_do(tmp_path, capsys):
    assert find_benchmarks_dir(tmp_path) is None
    assert run_bench_command(["--benchmarks-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not installed with the package" in err
    assert "pip install '.[bench]'" in err
    assert "python -m benchmarks" in err


def test_finds_the_checkout_from_a_subfolder():
    assert find_benchmarks_dir(start=REPO / "docs") == REPO / "benchmarks"


def test_bad_runs_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="--runs must be at least 1"):
        run_bench_command(["--benchmarks-dir", str(REPO / "benchmarks"), "--runs", "0"])


def test_quick_forest_run_writes_results(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("ANOMALY_DATA_DIR", str(shared_data))
    out = tmp_path / "RESULTS.md"
    rc = run_bench_command(["--only", "forest", "--quick", "--runs", "2", "--output", str(out)])
    assert rc == 0
    text = out.read_text()
    assert "## Machine" in text
    assert "| scikit-learn |" in text
    row = next(line for line in text.splitlines() if "IsolationForest fit vs scikit-learn" in line)
    ratio = float(re.search(r"\*\*([\d.]+)x\*\*", row).group(1))
    assert ratio > 0
    assert "ran | " in text  # the status table, with the seconds of both runs
    assert "IsolationForest mean ROC-AUC" in text


def write_script(folder: Path, name: str, body: str) -> None:
    (folder / name).write_text(textwrap.dedent(body))


def test_medians_over_runs_failures_and_absent_benches(tmp_path, suite):
    # A bench whose runs print ours = 10, 30, 20 (peer 2): the report shows the medians.
    write_script(
        tmp_path,
        "bench_fake.py",
        """
        import json, pathlib, sys
        counter = pathlib.Path(__file__).with_suffix(".count")
        n = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(n + 1))
        print("human readable table")
        if "--json" in sys.argv:
            ours = [10.0, 30.0, 20.0][n]
            print(json.dumps({"bench": "fake", "figures": [
                {"metric": "fake vs peer", "unit": "items/s", "ours": ours, "peer": 2.0, "peer_name": "p"},
                {"metric": "fake quality", "unit": "ROC-AUC", "kind": "quality", "ours": 0.9, "peer": 0.8},
                {"metric": "fake method A vs B", "unit": "items/s", "kind": "internal", "ours": 4.0,
                 "peer": 2.0, "peer_name": "method B"},
            ]}))
        """,
    )
    write_script(tmp_path, "bench_broken.py", 'import sys\nassert "--json"\nsys.exit("boom")\n')
    text, outcomes = suite.run_suite(quick=True, runs=3, folder=tmp_path)
    status = {o.bench.name: o.status for o in outcomes}
    assert status["fake"] == "ok"
    assert status["broken"] == "failed"
    assert status["detector"] == "absent"  # the known benches are not in this folder
    row = next(line for line in text.splitlines() if "fake vs peer" in line)
    assert "| 20 items/s |" in row
    assert "**10.00x**" in row
    assert "5.00-15.00x" in row
    assert "| fake quality | 0.9000 | 0.8000 | +0.1 |" in text
    # two of our own methods compared: their own table, not among the peers (nor in the ratio chart)
    sections = {part.split("\n", 1)[0]: part for part in text.split("\n## ")}
    assert "fake method A vs B" not in sections["Speed against the peers"]
    internal = sections["Our methods against each other (same run; not a peer comparison)"]
    assert "| fake | fake method A vs B | 4 items/s | 2 items/s (method B) | **2.00x** |" in internal
    assert "boom" in text
    assert "human readable table" in text


def test_missing_peer_is_reported_not_run(tmp_path, suite):
    bench = suite.Bench("fake", "bench_forest.py", ("no_such_peer_module_for_tests",), "a fake")
    outcome = suite.run_bench(bench, folder=REPO / "benchmarks", quick=True, runs=1, timeout=60)
    assert outcome.status == "missing-peer"
    assert outcome.runs == []
    text = suite.render([outcome], quick=True, runs=1, facts={"CPU": "x"}, vers={"numpy": "1"})
    assert "**not run**: peer `no_such_peer_module_for_tests` not installed" in text


def test_a_nan_or_negative_timeout_is_refused_before_anything_runs(suite):
    # --timeout nan started the suite and failed in its first run ('cannot convert float
    # NaN to integer'); a negative one ran every benchmark and counted each run as failed.
    for bad in ("nan", "inf", "-1", "0"):
        with pytest.raises(ValueError, match="--timeout must be a finite number"):
            run_bench_command(["--benchmarks-dir", str(REPO / "benchmarks"), "--list", "--timeout", bad])
    with pytest.raises(ValueError, match="timeout must be a finite number"):
        suite.run_suite(quick=True, runs=1, only=["no-such-bench"], timeout=float("nan"))


def test_unknown_benchmark_and_bad_runs(suite):
    with pytest.raises(ValueError, match="unknown benchmark"):
        suite.run_suite(quick=True, runs=1, only=["no-such-bench"])
    with pytest.raises(ValueError, match="runs must be at least 1"):
        suite.run_suite(quick=True, runs=0)


def test_api_bench_servers_import_the_package_this_process_imports(monkeypatch):
    """bench_api's server subprocesses once put the source tree's python/ first on PYTHONPATH:
    without a dev build that folder has no compiled _core, so `python -m benchmarks` after a
    plain `pip install '.[bench]'` failed with "native server did not start"."""
    import subprocess
    import sys

    import anomaly_detection

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import bench_api

    root = bench_api.package_root()
    assert Path(root) == Path(anomaly_detection.__file__).resolve().parents[1]
    # a child with only that folder on its path imports the compiled core, as the server does
    code = "import anomaly_detection._core, anomaly_detection; print(anomaly_detection.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    ).stdout.strip()
    assert Path(out).resolve() == Path(anomaly_detection.__file__).resolve()


@pytest.mark.parametrize("output", ["a-file/report.md", "a-folder", "some/missing/folder/report.md"])
def test_the_output_is_checked_before_anything_runs(tmp_path, monkeypatch, capsys, output):
    # A report path that cannot be written failed only once the whole suite had run (minutes).
    import subprocess

    from anomaly_detection.cli import main

    ran = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: ran.append(a) or subprocess.CompletedProcess(a, 0))
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "a-folder").mkdir()
    argv = ["bench", "--benchmarks-dir", str(REPO / "benchmarks"), "--output", str(tmp_path / output)]
    if output.startswith("some/"):  # a missing folder is created when the report is written
        assert main(argv) == 0
        assert len(ran) == 1
        return
    assert main(argv) == 2
    assert ran == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("anomaly-detection bench: error: --output: ")


@pytest.mark.parametrize("output", ["a-file/report.md", "a-folder"])
def test_the_module_entry_point_checks_the_output_before_anything_runs(
    tmp_path, monkeypatch, capsys, suite, output
):
    # `python -m benchmarks --output X` found X unwritable only after the whole suite had run
    # (`anomaly-detection bench` checked it first); it now makes the same check, first.
    ran = []
    monkeypatch.setattr(suite, "run_bench", lambda *a, **k: ran.append(a) or pytest.fail("a benchmark ran"))
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "a-folder").mkdir()
    assert suite.main(["--only", "forest", "--quick", "--runs", "1", "--output", str(tmp_path / output)]) == 2
    assert ran == []
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]]
    assert err[0].startswith("python -m benchmarks: error: --output: ")
    assert (tmp_path / "a-file").read_text() == "not a folder"


def test_the_list_keeps_its_columns_aligned_with_a_long_name(tmp_path, suite):
    # `bench --list` padded names to 10 characters: a longer name pushed its row's columns right.
    write_script(tmp_path, "bench_a_benchmark_with_a_long_name.py", "print('x')\n")
    benches = suite.all_benches(tmp_path)
    lines = suite.list_benches(tmp_path).splitlines()
    assert len(lines) == len(benches)
    assert any(b.name == "a_benchmark_with_a_long_name" for b in benches)
    states = {line.index(next(s for s in ("ready", "absent", "peer missing") if s in line)) for line in lines}
    whats = {line.index(b.what, len(b.name)) for line, b in zip(lines, benches)}
    assert len(states) == 1, lines  # each column starts at the same offset on every line
    assert len(whats) == 1, lines
    assert all(line.startswith(b.name + " ") for line, b in zip(lines, benches))

"""``anomaly-detection evaluate``, in-process with argv lists and once as a module."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import anomaly_detection
from anomaly_detection.evaluation import NabCorpus, read_nab_csv
from anomaly_detection.evaluation.cli import add_evaluate_parser, build_parser, main, run_evaluate

# NAB's published full-corpus figures (our exact threshold search finds 63.21 for low FP, see
# test_evaluation_nab.py)
NUMENTA = {"standard": 70.10, "reward_low_FP_rate": 63.21, "reward_low_FN_rate": 74.32}


class Result:
    def __init__(self, scores):
        self.scores = scores


class MedianDeviationDetector:
    """A stand-in with the project's detector interface: distance from the
    series median in units of its MAD, squashed to [0, 1]."""

    instances: ClassVar[list[MedianDeviationDetector]] = []

    def __init__(self, **settings):
        self.settings = settings
        MedianDeviationDetector.instances.append(self)

    def detect_batch(self, sensor_name, values, timestamps):
        assert isinstance(sensor_name, str)
        assert len(values) == len(timestamps)
        assert np.all(np.isfinite(timestamps))
        v = np.asarray(values, dtype=float)
        mad = np.median(np.abs(v - np.median(v))) + 1e-9
        return Result(np.clip(np.abs(v - np.median(v)) / (6 * mad), 0.0, 1.0))


class DistanceFromMean:
    def __init__(self, seed):
        self.seed = seed

    def fit(self, X):
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0) + 1e-12
        return self

    def score_samples(self, X):
        return -np.linalg.norm((X - self.mean_) / self.scale_, axis=1)


@pytest.fixture(scope="module")
def nab_dir(shared_data):
    return shared_data / "nab"


def run(argv, **hooks):
    out, err = io.StringIO(), io.StringIO()
    rc = run_evaluate(build_parser().parse_args([str(a) for a in argv]), stdout=out, stderr=err, **hooks)
    return rc, out.getvalue(), err.getvalue()


def test_scores_existing_results(nab_dir):
    rc, out, err = run(["--nab", nab_dir, "--scores", nab_dir / "anchor_scores" / "numenta", "--no-progress"])
    assert rc == 0, err
    assert err == ""
    assert "standard                70.10         70.10" in out
    assert "reward_low_FN_rate      74.32" in out
    assert "realKnownCause/nyc_taxi.csv" in out  # the per-file table
    assert "NAB's stored full-corpus null" in out


def test_json_has_the_three_profiles(nab_dir):
    rc, out, _ = run(["--nab", nab_dir, "--scores", nab_dir / "anchor_scores" / "numenta", "--json"])
    assert rc == 0
    body = json.loads(out)
    assert list(body) == ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]
    assert body == pytest.approx(NUMENTA, abs=0.01)


def test_profile_and_baseline_options(nab_dir):
    scores = nab_dir / "anchor_scores" / "numenta"
    rc, out, _ = run(["--nab", nab_dir, "--scores", scores, "--json", "--profile", "reward_low_FP_rate"])
    assert rc == 0
    assert json.loads(out) == pytest.approx({"reward_low_FP_rate": 63.21}, abs=0.01)
    easy = ["--files", "realKnownCause/*", "--files", "artificial*/*"]
    rc, out, _ = run(["--nab", nab_dir, "--scores", scores, "--json", *easy])
    assert rc == 0
    assert json.loads(out)["standard"] == pytest.approx(86.28, abs=0.01)  # NAB's scale
    rc, out, _ = run(["--nab", nab_dir, "--scores", scores, "--json", "--baseline", "corpus", *easy])
    assert rc == 0
    assert json.loads(out)["standard"] == pytest.approx(61.30, abs=0.01)  # against detecting nothing here


def test_runs_a_detector_writes_results_and_scores_them(nab_dir, tmp_path):
    MedianDeviationDetector.instances.clear()
    out_dir = tmp_path / "results"
    argv = [
        "--nab",
        nab_dir,
        "--out",
        out_dir,
        "--json",
        "--set",
        "detection_method=mad",
        "--set",
        "window_size=50",
    ]
    rc, out, err = run(argv, detector_factory=MedianDeviationDetector)
    assert rc == 0, err
    first = json.loads(out)
    assert set(first) == set(NUMENTA)
    assert all(0.0 <= v <= 100.0 for v in first.values())
    # a fresh detector per file, with the settings given
    assert len(MedianDeviationDetector.instances) == 58
    assert MedianDeviationDetector.instances[0].settings == {"detection_method": "mad", "window_size": 50}
    # progress went to stderr, one line per file when stderr is not a terminal
    assert err.count("\n") == 59
    assert "nab 58/58 done" in err
    # NAB-format results, one per file, that score the same again
    corpus = NabCorpus.load(nab_dir)
    written = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.csv"))
    assert written == sorted(corpus.files)
    cols = read_nab_csv(out_dir / "realKnownCause" / "nyc_taxi.csv")
    assert list(cols) == ["timestamp", "value", "anomaly_score", "label"]
    nyc = corpus.files["realKnownCause/nyc_taxi.csv"]
    np.testing.assert_array_equal(cols["timestamp"], nyc.timestamps)
    np.testing.assert_array_equal(cols["value"], nyc.values)
    np.testing.assert_array_equal(cols["label"], nyc.window_mask())
    rc, again, _ = run(["--nab", nab_dir, "--scores", out_dir, "--json"])
    assert rc == 0
    assert json.loads(again) == first


def test_default_detector(nab_dir, tmp_path):
    argv = [
        "--nab",
        nab_dir,
        "--files",
        "realKnownCause/rogue_agent_key_hold.csv",
        "--out",
        tmp_path,
        "--json",
    ]
    rc, out, err = run(argv)
    if hasattr(anomaly_detection, "StatisticalAnomalyDetector"):
        assert rc == 0, err
        assert set(json.loads(out)) == set(NUMENTA)
        assert (tmp_path / "realKnownCause" / "rogue_agent_key_hold.csv").is_file()
    else:  # the detector is not in this build: a clear error, not a traceback
        assert rc == 1
        assert "the project's detector is not available" in err


def test_adbench_with_an_estimator_factory(shared_data):
    argv = ["--adbench", shared_data / "adbench", "--seeds", "0", "--json", "--no-progress"]
    rc, out, err = run(argv, estimator_factory=DistanceFromMean)
    assert rc == 0, err
    body = json.loads(out)
    assert set(body) == {"roc_auc", "pr_auc", "datasets"}
    assert len(body["datasets"]) == 12
    assert 0.5 < body["roc_auc"] < 1.0
    rc, out, _ = run(argv[:-2], estimator_factory=DistanceFromMean)
    assert rc == 0
    assert "| **mean** |" in out
    assert "| shuttle |" in out


def test_errors_are_reported_not_raised(nab_dir, tmp_path):
    rc, _, err = run(["--nab", nab_dir, "--scores", tmp_path / "missing"])
    assert rc == 1
    assert "error:" in err
    assert "missing" in err
    rc, _, err = run(["--nab", nab_dir, "--scores", nab_dir / "anchor_scores" / "numenta", "--set", "a=1"])
    assert rc == 1
    assert "--set" in err
    rc, _, err = run(["--nab", nab_dir, "--files", "nothing/*"])
    assert rc == 1
    assert "matches no corpus file" in err
    rc, _, err = run(["--nab", tmp_path])
    assert rc == 1
    assert "not a NAB corpus" in err
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([])  # --nab or --adbench is required
    assert exc.value.code == 2


def test_a_malformed_labels_file_is_one_error_naming_it(tmp_path):
    """A truncated combined_windows.json gave only "Expecting value: line 1 column 40": which
    file was not said."""
    (tmp_path / "data" / "cat").mkdir(parents=True)
    (tmp_path / "data" / "cat" / "a.csv").write_text("timestamp,value\n2015-01-01 00:00:00,1\n")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text('{"cat/a.csv": [["2015-01-01 00:00:00", ')
    rc, out, err = run(["--nab", tmp_path, "--no-progress"])
    assert rc == 1
    assert out == ""
    assert "combined_windows.json" in err


def test_plugs_into_a_main_parser(nab_dir):
    parser = argparse.ArgumentParser(prog="anomaly-detection")
    sub = parser.add_subparsers(dest="command", required=True)
    add_evaluate_parser(sub)
    args = parser.parse_args(
        ["evaluate", "--nab", str(nab_dir), "--scores", str(nab_dir / "anchor_scores" / "ARTime")]
    )
    assert args.command == "evaluate"
    out = io.StringIO()
    assert args.func(args, stdout=out, stderr=io.StringIO()) == 0
    assert "74.85" in out.getvalue()


def test_main_in_process(nab_dir, capsys):
    assert main(["--nab", str(nab_dir), "--scores", str(nab_dir / "anchor_scores" / "knncad"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["standard"] == pytest.approx(57.99, abs=0.01)


def test_runs_as_a_module(nab_dir):
    package_root = Path(anomaly_detection.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "anomaly_detection.evaluation.cli", "--nab", str(nab_dir),
         "--scores", str(nab_dir / "anchor_scores" / "numenta"), "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == pytest.approx(NUMENTA, abs=0.01)
    assert "nab" not in proc.stderr  # scoring existing results shows no progress

"""``anomaly-detection evaluate --tsbad``: a small generated folder of TSB-AD CSVs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.cli import main as package_main
from anomaly_detection.evaluation import TSBAD_METRIC_NAMES, tsbad_metrics
from anomaly_detection.evaluation.cli import build_parser, run_evaluate

FIXTURES = Path(__file__).parent / "fixtures" / "tsbad"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())["cases"]
CASES = {"one_range.csv": "one_range", "sub/range_at_start.csv": "range_at_start", "sub/ties.csv": "ties"}


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    rc = run_evaluate(build_parser().parse_args([str(a) for a in argv]), stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def _write(path: Path, header: str, columns: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [header] + [",".join(repr(float(c[i])) for c in columns) for i in range(len(columns[0]))]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """TSB-AD CSVs (``Data,Label``) of three fixture cases and their scores."""
    root = tmp_path_factory.mktemp("tsbad")
    data, scores = root / "data", root / "scores"
    with np.load(FIXTURES / "cases.npz") as arrays:
        for rel, case in CASES.items():
            values, labels = arrays[f"{case}/values"], arrays[f"{case}/labels"]
            _write(data / rel, "Data,Label", [values, labels])
            _write(scores / rel, "anomaly_score", [arrays[f"{case}/scores"]])
    return data, scores


def test_scores_dir_gives_the_reference_metrics(folders):
    data, scores = folders
    rc, out, err = run(["--tsbad", data, "--scores", scores, "--json"])
    assert rc == 0, err
    body = json.loads(out)
    assert set(body["files"]) == set(CASES)
    for rel, case in CASES.items():
        got = body["files"][rel]
        assert got["window"] == EXPECTED[case]["window"]
        for metric in TSBAD_METRIC_NAMES:
            assert got[metric] == pytest.approx(EXPECTED[case][metric], abs=1e-6), (rel, metric)
    for metric in TSBAD_METRIC_NAMES:
        mean = np.mean([EXPECTED[case][metric] for case in CASES.values()])
        assert body["mean"][metric] == pytest.approx(mean, abs=1e-6)


def test_table_lists_files_and_mean(folders):
    data, scores = folders
    rc, out, _ = run(["--tsbad", data, "--scores", scores])
    assert rc == 0
    assert "TSB-AD metrics on 3 files" in out
    assert "VUS-PR" in out
    for rel in CASES:
        assert rel in out
    assert out.rstrip().splitlines()[-1].startswith("mean")


def test_default_detector_is_fresh_per_file(folders, tmp_path):
    data, _ = folders
    rc, out, err = run(["--tsbad", data, "--json", "--no-progress"])
    assert rc == 0, err
    body = json.loads(out)
    assert err == ""
    # the same metrics as a fresh StatisticalAnomalyDetector() per file, detect_batch, its scores
    with np.load(FIXTURES / "cases.npz") as arrays:
        for rel, case in CASES.items():
            values, labels = arrays[f"{case}/values"], arrays[f"{case}/labels"]
            s = StatisticalAnomalyDetector().detect_batch("series", values).scores
            want = tsbad_metrics(labels, s, values=values).to_dict()
            assert body["files"][rel] == pytest.approx(want, abs=1e-12), rel


def test_through_the_package_command(folders, capsys):
    data, scores = folders
    assert package_main(["evaluate", "--tsbad", str(data), "--scores", str(scores), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"]["sub/ties.csv"]["VUS-PR"] == pytest.approx(
        EXPECTED["ties"]["VUS-PR"], abs=1e-6
    )


def test_errors_are_reported_not_raised(folders, tmp_path):
    data, scores = folders
    cases = []
    bad = tmp_path / "no_label"
    _write(bad / "a.csv", "Data,Other", [np.arange(5.0), np.zeros(5)])
    cases.append((["--tsbad", bad], "no Label column"))
    normal = tmp_path / "no_anomaly"
    _write(normal / "a.csv", "Data,Label", [np.arange(5.0), np.zeros(5)])
    cases.append((["--tsbad", normal, "--no-progress"], "a.csv: y_true: both classes must be present"))
    missing_value = tmp_path / "nan"
    _write(missing_value / "a.csv", "Data,Label", [np.array([1.0, np.nan, 2.0]), np.array([0, 1, 0])])
    cases.append((["--tsbad", missing_value], "missing or non-numeric value"))
    short = tmp_path / "short_scores"
    for rel in CASES:
        _write(short / rel, "anomaly_score", [np.zeros(3)])
    cases.append((["--tsbad", data, "--scores", short], "3 scores for"))
    cases.append((["--tsbad", data, "--scores", tmp_path / "none"], "not a folder"))
    cases.append((["--tsbad", data, "--scores", data], "no anomaly_score column"))
    cases.append((["--tsbad", data, "--scores", scores, "--set", "window_size=5"], "--set"))
    cases.append((["--tsbad", tmp_path / "empty_dir_missing"], "not a folder"))
    (tmp_path / "empty").mkdir()
    cases.append((["--tsbad", tmp_path / "empty"], "no CSV files"))
    for argv, message in cases:
        rc, out, err = run(argv)
        assert rc == 1, argv
        assert out == ""
        assert message in err, (argv, err)


def _daily_series() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Six days at five minutes: a daily cycle, and on day 4 the cycle turns upside down
    and back smoothly (its amplitude follows 1 - 2 sin^2 over the day; labelled where it is
    negative: a trough where the peak belongs). No jump, no kink, every value inside the
    range: only the time of day shows it (a mirror switched on at once has a kink, which the
    local-forecast residual sees without any season)."""
    rng = np.random.default_rng(3)
    t = np.arange(6 * 288)
    values = 100 + 10 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.5, len(t))
    day = slice(4 * 288, 5 * 288)
    envelope = 1 - 2 * np.sin(np.pi * (t[day] - 4 * 288) / 288) ** 2
    values[day] = 100 + 10 * np.sin(2 * np.pi * t[day] / 288) * envelope + rng.normal(0, 0.5, 288)
    labels = np.zeros(len(t))
    labels[day] = envelope < 0
    return 1.7e9 + 300.0 * t, values, labels


def test_a_timestamp_column_reaches_the_detector(tmp_path):
    ts, values, labels = _daily_series()
    epoch, iso, none = tmp_path / "epoch", tmp_path / "iso", tmp_path / "none"
    _write(epoch / "a.csv", "timestamp,Data,Label", [ts, values, labels])
    iso.mkdir()
    stamps = np.array(ts * 1e9, dtype="datetime64[ns]").astype(str)
    rows = [f"{s},{v!r},{int(y)}" for s, v, y in zip(stamps, values.tolist(), labels)]
    (iso / "a.csv").write_text("timestamp,Data,Label\n" + "\n".join(rows) + "\n")
    _write(none / "a.csv", "Data,Label", [values, labels])
    got = {}
    for name, folder in (("epoch", epoch), ("iso", iso), ("none", none)):
        rc, out, err = run(["--tsbad", folder, "--json", "--no-progress"])
        assert rc == 0, err
        got[name] = json.loads(out)["files"]["a.csv"]
    with_ts = StatisticalAnomalyDetector().detect_batch("series", values, ts).scores
    want = tsbad_metrics(labels.astype(np.int8), with_ts, values=values).to_dict()
    assert got["epoch"] == pytest.approx(want, abs=1e-12)
    assert got["iso"] == got["epoch"]
    # without timestamps every point is stamped now and the daily season cannot join
    assert got["none"]["VUS-PR"] < 0.5 < got["epoch"]["VUS-PR"]


def test_a_bad_timestamp_column_is_reported_before_any_scoring(tmp_path):
    _write(tmp_path / "ok" / "a.csv", "Data,Label", [np.arange(5.0), np.array([0, 0, 1, 0, 0])])
    (tmp_path / "ok" / "b.csv").write_text("timestamp,Data,Label\nyesterday,1.0,0\ntoday,2.0,1\n")
    rc, out, err = run(["--tsbad", tmp_path / "ok", "--json"])
    assert rc == 1
    assert out == ""
    assert "b.csv: timestamp: expected epoch seconds or ISO-8601" in err
    assert "tsbad 0/2" not in err  # no progress line: nothing was scored


def test_an_unreadable_csv_is_one_error_naming_the_file(tmp_path):
    """A field beyond the csv module's limit raised csv.Error (no ValueError): a traceback
    instead of the command's one error line."""
    bad = tmp_path / "huge"
    bad.mkdir()
    (bad / "a.csv").write_text('Data,Label\n"' + "1" * 200_000 + '",0\n')
    rc, out, err = run(["--tsbad", bad, "--no-progress"])
    assert rc == 1
    assert out == ""
    assert "a.csv" in err
    assert "field larger than field limit" in err

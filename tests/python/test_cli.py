"""The command line, in-process and as the installed console script."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest

from anomaly_detection.cli import main


@pytest.fixture
def small_csv(tmp_path):
    path = tmp_path / "small.csv"
    rows = [("timestamp", "temp", "pressure kPa")]
    for i in range(60):
        temp = 20.0 + 0.1 * (i % 4)
        pressure = 100.0 + 0.05 * (i % 3)
        if i == 40:
            temp = 35.0
        rows.append((f"2026-03-01T00:{i:02d}:00", f"{temp}", "" if i == 10 else f"{pressure}"))
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_detect_writes_flagged_rows_as_csv(small_csv, capsys):
    assert main(["detect", str(small_csv), "--method", "zscore"]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(out.splitlines()))
    assert [(r["row"], r["sensor"], r["value"]) for r in rows] == [("41", "temp", "35.0")]
    assert rows[0]["timestamp"] == "2026-03-01T00:40:00"
    assert "2 sensor(s)" in err
    assert "pressure_kPa" in err  # header sanitised into a valid sensor name
    assert "1 empty/non-numeric skipped" in err


def test_detect_json_all_rows_and_options(small_csv, tmp_path, capsys):
    out_file = tmp_path / "out.json"
    code = main(["detect", str(small_csv), "--format", "json", "--all", "-o", str(out_file),
                 "--method", "mad", "--window-size", "20", "--min-samples", "5"])  # fmt: skip
    assert code == 0
    rows = json.loads(out_file.read_text())
    assert len(rows) == 60 + 59
    flagged = [r for r in rows if r["is_anomaly"]]
    assert {(r["row"], r["sensor"]) for r in flagged} >= {(41, "temp")}
    assert "mad, window 20" in capsys.readouterr().err


def test_detect_plot(small_csv, tmp_path):
    png = tmp_path / "plot.png"
    assert main(["detect", str(small_csv), "--method", "zscore", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_detect_errors_are_clear(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["detect", str(empty)]) == 2
    assert "empty file" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "missing.csv")]) == 2
    with pytest.raises(SystemExit):
        main(["detect", str(empty), "--method", "bogus"])


def test_console_script_runs(small_csv):
    exe = shutil.which("anomaly-detection")
    cmd = [exe] if exe else [sys.executable, "-m", "anomaly_detection.cli"]
    proc = subprocess.run(
        [*cmd, "detect", str(small_csv), "--method", "zscore", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["row"] == 41


def test_command_line_needs_no_optional_extra_to_start():
    # A base install (no api/redis extras) must run `detect`: building the parser imports none of them.
    code = (
        "import sys, anomaly_detection.cli as c; c.build_parser(); "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'redis', 'httpx', 'matplotlib') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_missing_cells_skip_by_default_or_raise_naming_row_and_column(tmp_path, capsys):
    from anomaly_detection.cli import main

    path = tmp_path / "gaps.csv"
    rows = ["timestamp,pump"] + [f"{i},{20 + (i % 3) * 0.1}" for i in range(40)]
    rows[13] = "12,"  # an empty cell in data row 12
    path.write_text("\n".join(rows) + "\n")
    assert main(["detect", str(path)]) == 0
    assert "1 empty/non-numeric skipped" in capsys.readouterr().err
    assert main(["detect", str(path), "--missing", "raise"]) != 0
    err = capsys.readouterr().err
    assert "data row 13" in err
    assert "'pump'" in err


@pytest.mark.parametrize("command", [["health"], ["migrate-keys", "--dry-run"], ["migrate-keys"]])
def test_redis_commands_without_redis_are_one_line_and_non_zero(command):
    from servers import free_port

    port = free_port()  # nothing listens there
    r = subprocess.run(
        [sys.executable, "-m", "anomaly_detection.cli", *command, "--url", f"redis://127.0.0.1:{port}/0"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"anomaly-detection {command[0]}: Redis unavailable: ")
    assert f"127.0.0.1:{port}" in lines[0]


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ('ts,a\n1,"' + "x" * 200_000 + '"\n', [], "row 1"),  # beyond the csv module's field limit
        ("ts,a,a\n1,1,100\n2,1,100\n", [], "'a'"),  # the second column replaced the first
        ("ts,a b,a_b\n1,1,100\n2,1,100\n", [], "a_b"),  # both the sensor a_b: their points mixed
        ("ts,a\n1,1\n", ["--timestamp-column", "time"], "no column 'time'"),  # was "'time' is not in list"
        ("ts,a\n1,1\n", ["--window-size", "0"], "window_size"),  # 0 was ignored: the default used
        ("ts,a\n1,1\n", ["--min-samples", "0"], "min_samples"),
    ],
    ids=["huge field", "duplicate column", "columns of one sensor", "no such column", "window 0", "min 0"],
)
def test_malformed_files_and_options_are_one_clear_error(tmp_path, capsys, content, args, message):
    """Each was a traceback, a silent merge or loss of a column's points, an unclear message or
    an option silently ignored: now one line naming what is wrong, exit code 2, nothing written."""
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["detect", str(path), "--method", "zscore", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("anomaly-detection detect: error:"), err
    assert message in err
    assert "Traceback" not in err


def test_json_output_is_standard_json_when_a_deviation_overflows(tmp_path, capsys):
    """DBL_MAX after two zeros: the deviation is inf (DBL_MAX over the flat window's floor
    scale), which the JSON output wrote as Infinity (refused by JSON parsers); it is null now,
    as over HTTP."""
    path = tmp_path / "extreme.csv"
    largest = "1.7976931348623157e308"
    path.write_text(f"ts,a\n1,0\n2,0\n3,{largest}\n4,0\n")
    assert main(["detect", str(path), "--method", "zscore", "--window-size", "3", "--min-samples", "2",
                 "--format", "json"]) == 0  # fmt: skip
    out = capsys.readouterr().out

    def refuse(constant):
        raise ValueError(constant)

    [row] = json.loads(out, parse_constant=refuse)
    assert (row["row"], row["is_anomaly"], row["deviation"]) == (3, True, None)


@pytest.mark.parametrize("command", [["health"], ["migrate-keys", "--dry-run"], ["migrate-keys"]])
def test_a_redis_url_with_a_database_that_is_no_number_is_refused_without_contacting(command, capsys):
    # redis-py read redis://host:port/abc as database 0: health reported (and migrate-keys renamed
    # keys in) another database than the one typed.
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        assert main([*command, "--url", f"redis://127.0.0.1:{port}/abc"]) == 2
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"anomaly-detection {command[0]}: error: ")
    assert "'abc'" in err[0]


def test_serve_refuses_a_bad_redis_url_before_starting(monkeypatch, capsys):
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append(a))
    for name in ("ANOMALY_API_HOST", "ANOMALY_API_PORT"):  # serve sets them for its workers
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANOMALY_STORE_BACKEND", "redis")
    monkeypatch.setenv("ANOMALY_REDIS_URL", "redis://127.0.0.1:6379/abc")
    assert main(["serve", "--port", "8765"]) == 2
    assert started == []
    assert "'abc'" in capsys.readouterr().err


def test_a_reader_that_closes_the_pipe_early_stops_the_command_quietly(tmp_path):
    # `anomaly-detection detect FILE --all | head -3` ended with "error: [Errno 32] Broken pipe".
    path = tmp_path / "long.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("timestamp", "temp"))
        writer.writerows((f"{1_700_000_000 + 60 * i}", f"{20.0 + 0.1 * (i % 7)}") for i in range(20_000))
    exe = shutil.which("anomaly-detection")
    cmd = [exe] if exe else [sys.executable, "-m", "anomaly_detection.cli"]
    proc = subprocess.Popen(
        [*cmd, "detect", str(path), "--all"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away, as head does, long before the rows are written
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.wait(timeout=60)
    assert "Broken pipe" not in err, err
    assert "Traceback" not in err, err
    assert "error" not in err, err
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell reports a command ended by it

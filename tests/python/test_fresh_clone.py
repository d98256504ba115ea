"""What a fresh clone without ../shared/data meets: scripts/get-data.sh (its arguments and dry
run; the fetch itself needs internet) and the data tests skipped with one line, or failing the
run where the data is required (CI=true, ANOMALY_REQUIRE_DATA=1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "get-data.sh"
BASH = shutil.which("bash")


def _get_data(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([BASH, str(SCRIPT), *args], check=False, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)  # fmt: skip


def test_get_data_help():
    r = _get_data("--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: bash scripts/get-data.sh")
    for option in ("--dry-run", "--only", "--nab-ref", "--adbench-ref", "ANOMALY_DATA_DIR"):
        assert option in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unknown option --bogus"),
        (["--only", "tsbad"], "--only takes nab or adbench, got 'tsbad'"),
        (["--only"], "--only needs nab or adbench"),
        (["a", "b"], "one DIR only, got 'a' and 'b'"),
    ],
)
def test_get_data_refuses_bad_arguments(tmp_path, args, message):
    r = _get_data("--dry-run", *args, env={"ANOMALY_DATA_DIR": str(tmp_path / "data")})
    assert r.returncode == 2
    assert f"get-data.sh: error: {message}" in r.stderr
    assert r.stdout == ""
    assert not (tmp_path / "data").exists()


def test_get_data_dry_run_prints_every_fetch_and_writes_nothing(tmp_path):
    target = tmp_path / "data"
    r = _get_data("--dry-run", str(target))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert not target.exists()
    assert "git clone" in out
    assert "https://github.com/numenta/NAB.git" in out
    sparse = next(line for line in out.splitlines() if "sparse-checkout set" in line)
    for folder in (
        "data",
        "labels",
        "config",
        "results/ARTime",
        "results/numenta",
        "results/windowedGaussian",
    ):
        assert f" {folder}" in sparse
    assert f"{target}/nab/profiles.json" in out
    curls = [line for line in out.splitlines() if line.startswith("+ curl")]
    assert len(curls) == 12
    for name in ("4_breastw", "42_WBC", "47_yeast"):
        url = f"https://raw.githubusercontent.com/Minqi824/ADBench/main/adbench/datasets/Classical/{name}.npz"
        assert any(line.endswith(url) and f"{target}/adbench/{name}.npz" in line for line in curls)


def test_get_data_only_and_default_dir(tmp_path):
    r = _get_data("--dry-run", "--only", "adbench", env={"ANOMALY_DATA_DIR": str(tmp_path / "d")})
    assert r.returncode == 0, r.stderr
    assert "numenta/NAB" not in r.stdout
    assert f"{tmp_path}/d/adbench" in r.stdout
    r = _get_data("--dry-run", "--only", "nab", "--nab-ref", "v1.1", str(tmp_path))
    assert "--branch v1.1" in r.stdout
    assert "curl" not in r.stdout


def test_get_data_keeps_what_is_there(tmp_path):
    (tmp_path / "nab" / "data").mkdir(parents=True)
    (tmp_path / "adbench").mkdir()
    (tmp_path / "adbench" / "4_breastw.npz").write_bytes(b"kept")
    r = _get_data("--dry-run", str(tmp_path))
    assert "exists, kept" in r.stdout
    assert "git clone" not in r.stdout
    assert "4_breastw.npz https://" not in r.stdout
    assert sum(line.startswith("+ curl") for line in r.stdout.splitlines()) == 11


_DATA_TEST = """
def test_needs_data(shared_data):
    assert shared_data.is_dir()

def test_needs_data_too(shared_data):
    assert shared_data.is_dir()

def test_plain():
    assert True
"""


def _pytest_without_data(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """A run of two data tests and a plain one with the data folder pointed at nothing."""
    (tmp_path / "tests").mkdir()
    for name in ("conftest.py", "servers.py"):
        shutil.copy(Path(__file__).parent / name, tmp_path / "tests" / name)
    (tmp_path / "tests" / "test_data.py").write_text(_DATA_TEST)
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "ANOMALY_REQUIRE_DATA")}
    clean.update(ANOMALY_DATA_DIR=str(tmp_path / "no-such-folder"), **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "tests"],
        check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=clean,
    )  # fmt: skip


def test_missing_data_is_one_skip_line(tmp_path):
    r = _pytest_without_data(tmp_path)
    assert r.returncode == 0, r.stdout
    assert "1 passed, 2 skipped" in r.stdout
    skip_lines = [line for line in r.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skip_lines) == 1, r.stdout
    assert skip_lines[0].startswith("SKIPPED [2]")
    assert "labelled data not found" in skip_lines[0]
    assert (
        "`bash scripts/get-data.sh` fetches it there (or into DIR, then set ANOMALY_DATA_DIR=DIR)"
        in skip_lines[0]
    )


@pytest.mark.parametrize("env", [{"CI": "true"}, {"ANOMALY_REQUIRE_DATA": "1"}])
def test_missing_data_fails_the_run_where_required(tmp_path, env):
    r = _pytest_without_data(tmp_path, **env)
    assert r.returncode == 1, r.stdout
    assert "2 test(s) skipped for want of the labelled data, which this run requires" in r.stdout


def test_ci_can_waive_the_data_explicitly(tmp_path):
    # .ci/run run by hand (CI unset) exports ANOMALY_REQUIRE_DATA=0 before defaulting CI=true.
    r = _pytest_without_data(tmp_path, CI="true", ANOMALY_REQUIRE_DATA="0")
    assert r.returncode == 0, r.stdout
    assert "every test must run in CI" not in r.stdout

"""``serve`` and ``demo`` as subprocesses on free 127.0.0.1 ports."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from servers import HOST, free_port, package_env, wait_for_workers

from anomaly_detection.api.demo import TrafficGenerator
from anomaly_detection.cli import build_parser


def _env() -> dict[str, str]:
    return package_env()


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "anomaly_detection.api.cli", *args]


def test_serve_answers_health_and_detects(tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(_command("serve", "--host", HOST, "--port", str(port)), env=_env(),
                                stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        url = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(url + "/health", timeout=1).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.1)
        assert health["status"] == "ok"
        r = httpx.post(url + "/api/detect", json={"sensor_name": "cli-s", "value": 1.0})
        assert r.json()["sensor_name"] == "cli-s"
        # the test extra, like the api extra, installs uvicorn[standard]: serve runs on uvloop + httptools
        assert "(uvicorn, uvloop + httptools)" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_demo_raises_alerts():
    port = free_port()
    out = subprocess.run(
        _command("demo", "--host", HOST, "--port", str(port), "--duration", "9", "--rate", "10",
                 "--first-incident", "4", "--incident-every", "2"),
        env=_env(), capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"dashboard at http://{HOST}:{port}/" in out.stderr
    summary = out.stdout.strip().splitlines()[-1]
    alerts = int(summary.split(",")[-1].split()[0])
    incidents = int(summary.split(",")[1].split()[0])
    assert incidents >= 2
    assert alerts >= 1, summary


def _serve_config(tmp_path, *extra: str) -> dict:
    """Start ``serve`` in ``tmp_path`` (where a stray .env lies) and return its ``/config``."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(_command("serve", "--host", HOST, "--port", str(port), *extra), env=_env(),
                                cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                return httpx.get(f"http://{HOST}:{port}/config", timeout=1).json()
            except httpx.TransportError:  # noqa: PERF203 - polling until the server is up
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_serve_reads_a_dotenv_only_with_env_file(tmp_path):
    (tmp_path / ".env").write_text("ANOMALY_WINDOW_SIZE=37\nANOMALY_DETECTION_METHOD=mad\n")
    assert _serve_config(tmp_path)["window_size"] == 100  # a .env in the working directory is not read
    config = _serve_config(tmp_path, "--env-file", str(tmp_path / ".env"))
    assert (config["window_size"], config["detection_method"]) == (37, "mad")
    missing = subprocess.run(_command("serve", "--env-file", str(tmp_path / "nope.env")), env=_env(),
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert missing.returncode != 0
    assert "no such file" in missing.stderr


def _sample(text: str, name: str) -> float:
    """The value of one sample line of a Prometheus exposition (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_serve_workers_share_one_metrics_view(tmp_path):
    """Under ``serve --workers 2`` every scrape of /metrics counts the requests of both workers
    (prometheus-client's multiprocess mode in a temporary folder that ``serve`` removes)."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**_env(), "TMPDIR": str(tmp_path)}  # where serve makes its metrics folder
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("wb") as sink:
        proc = subprocess.Popen(_command("serve", "--host", HOST, "--port", str(port), "--workers", "2"),
                                env=env, stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://{HOST}:{port}"
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection per request: both workers answer
    k = 40
    try:
        with httpx.Client(base_url=url, timeout=10, limits=fresh) as c:
            wait_for_workers(c, proc, log, 2, 90)
            for i in range(k):  # one sensor per point: each worker's own store holds the points it took
                r = c.post("/api/detect", json={"sensor_name": f"mp-{i}", "value": 1.0})
                assert r.status_code == 200, r.text
            held: dict[int, int] = {}
            deadline = time.monotonic() + 30
            while len(held) < 2:
                assert time.monotonic() < deadline, held
                health = c.get("/health").json()
                held[health["worker_pid"]] = health["store"]["sensors"]
            assert sum(held.values()) == k
            assert min(held.values()) > 0, held  # both workers took some of the K requests
            points = 'anomaly_points_ingested_total{source="detect"}'
            requests = 'anomaly_http_requests_total{method="POST",route="/api/detect",status="200"}'
            for _ in range(6):  # each scrape may land on either worker: every one sees all K
                text = c.get("/metrics").text
                assert _sample(text, points) == k, text
                assert _sample(text, requests) == k, text
            (metrics_dir,) = [
                p for p in tmp_path.iterdir() if p.name.startswith("anomaly-detection-metrics-")
            ]
            assert any(metrics_dir.glob("counter_*.db"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()
    assert not metrics_dir.exists()  # removed when serve stopped


def test_serve_and_demo_refuse_nan_negative_and_zero_numbers_before_binding(capsys):
    # --rate nan passed the 'rate <= 0' check (NaN compares false) and ran the traffic
    # unthrottled (672 ticks in 20 s at '--rate nan', its history refused as non-JSON);
    # --duration -5 or nan stopped at once; --workers 0 or -3 served silently.
    # Each is now argparse's usage error (exit code 2) before anything binds a port.
    for argv in (
        ["serve", "--workers", "0"],
        ["serve", "--workers", "-3"],
        ["demo", "--rate", "nan"],
        ["demo", "--rate", "inf"],
        ["demo", "--incident-every", "nan"],
        ["demo", "--duration", "-5"],
        ["demo", "--duration", "nan"],
        ["demo", "--first-incident", "-1"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([*argv, "--port", str(free_port())])  # parsed only: nothing served
        assert exit_info.value.code == 2, argv
        assert "expected" in capsys.readouterr().err, argv
    with pytest.raises(ValueError, match="finite"):
        TrafficGenerator("http://127.0.0.1:1", rate=float("nan"))

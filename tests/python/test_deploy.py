"""The deployment files agree with the code (issue 19, item 8): Dockerfile, compose.yaml, the
Prometheus scrape config and the Grafana dashboard. No container engine runs on the development
or CI machine, so the images are not built here; these tests parse the files and check each
name, route, port and metric against the package and a live scrape of the app."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import httpx
import pytest
import yaml
from test_api_support import LiveServer

from anomaly_detection import Settings
from anomaly_detection.api import create_app
from anomaly_detection.api.cli import check_bind
from anomaly_detection.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
KEY = "deploy-test-key"


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _instructions(name: str) -> list[str]:
    return [args for word, args in _dockerfile() if word == name]


@pytest.fixture(scope="module")
def live():
    app = create_app(Settings(api_keys=[KEY], detection_method="zscore", min_samples=5))
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def _settings_env_names() -> set[str]:
    return {f"ANOMALY_{name.upper()}" for name in Settings.model_fields}


def _healthcheck_path(command: str) -> tuple[int, str]:
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/-]*)", command)
    assert match, command
    return int(match.group(1)), match.group(2)


# --- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_builds_the_wheel_and_runs_serve_as_a_non_root_user():
    froms = _instructions("FROM")
    assert len(froms) == 2
    assert froms[0].endswith("AS build")
    assert froms[1].endswith("AS runtime")
    for args in _instructions("COPY"):
        if args.startswith("--from="):
            continue
        *sources, _ = shlex.split(args)
        for source in sources:
            assert (ROOT / source).exists(), source
    assert any("pip wheel" in run for run in _instructions("RUN"))
    assert any("[api,redis]" in run for run in _instructions("RUN"))
    user = _instructions("USER")
    assert user
    assert user[-1] not in ("root", "0")

    cmd = json.loads(_instructions("CMD")[-1])
    assert cmd[:2] == ["anomaly-detection", "serve"]
    scripts = (ROOT / "pyproject.toml").read_text()
    assert 'anomaly-detection = "anomaly_detection.cli:main"' in scripts
    args = build_parser().parse_args(cmd[1:])  # the real CLI accepts the CMD
    assert args.host == "0.0.0.0"
    assert [int(p) for p in _instructions("EXPOSE")] == [args.port]
    env = dict(re.findall(r"(ANOMALY_\w+)=(\S+)", " ".join(_instructions("ENV"))))
    assert set(env) <= _settings_env_names()
    assert int(env["ANOMALY_API_PORT"]) == args.port
    port, _ = _healthcheck_path(_instructions("HEALTHCHECK")[-1])
    assert port == args.port
    # serve refuses to bind 0.0.0.0 without write keys: the image needs ANOMALY_API_KEYS
    with pytest.raises(SystemExit, match="ANOMALY_API_KEYS"):
        check_bind(Settings(api_host=args.host))
    check_bind(Settings(api_host=args.host, api_keys=["k"]))


def test_dockerignore_lets_in_what_the_build_copies():
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for args in _instructions("COPY"):
        if not args.startswith("--from="):
            assert set(shlex.split(args)[:-1]) <= allowed, args


def test_healthcheck_paths_are_real_routes(live):
    commands = [
        _instructions("HEALTHCHECK")[-1],
        " ".join(_compose()["services"]["anomaly"]["healthcheck"]["test"]),
    ]
    for command in commands:
        _, path = _healthcheck_path(command)
        r = live.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert r.json()["status"] == "ok"


# --- compose.yaml --------------------------------------------------------------------------------


def test_compose_env_vars_are_settings_and_valid():
    services = _compose()["services"]
    env = services["anomaly"]["environment"]
    assert set(env) <= _settings_env_names(), set(env) - _settings_env_names()
    assert env["ANOMALY_API_KEYS"].startswith("${ANOMALY_API_KEYS:?")  # required, never defaulted
    values = {k: str(v) for k, v in env.items() if not str(v).startswith("${")}
    settings = Settings(**{k.removeprefix("ANOMALY_").lower(): v for k, v in values.items()}, api_keys=["k"])
    assert settings.store_backend == "redis"
    check_bind(settings)
    # the service reaches Redis by its compose name, once Redis is healthy
    assert httpx.URL(settings.redis_url).host in services
    assert services["anomaly"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "healthcheck" in services["redis"]
    assert "healthcheck" in services["anomaly"]
    published = [p.split(":") for p in services["anomaly"]["ports"]]
    assert [int(container) for _, container in published] == [settings.api_port]


def test_prometheus_scrapes_the_service_metrics_route(live):
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    [target] = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    services = _compose()["services"]
    assert host in services
    assert int(port) == int(services["anomaly"]["environment"]["ANOMALY_API_PORT"])
    assert live.get(job["metrics_path"]).status_code == 200
    assert "deploy/prometheus/prometheus.yml" in " ".join(services["prometheus"]["volumes"])


# --- Grafana -------------------------------------------------------------------------------------


def _dashboard() -> dict:
    return json.loads((ROOT / "deploy/grafana/anomaly.json").read_text())


def _exprs() -> list[str]:
    return [t["expr"] for panel in _dashboard()["panels"] for t in panel["targets"]]


def test_every_dashboard_metric_is_in_a_live_scrape(live):
    headers = {"X-API-Key": KEY}
    # traffic that touches every series: points, an anomaly, a store-less read
    values = [10.0 + 0.1 * (i % 3) for i in range(30)] + [90.0]
    r = live.post("/api/detect/batch", json={"sensor_name": "deploy-s", "values": values}, headers=headers)
    assert r.status_code == 200
    assert any(r.json()["is_anomaly"])
    scrape = live.get("/metrics").text
    samples = {line.split("{")[0].split(" ")[0] for line in scrape.splitlines() if line and line[0] != "#"}
    names = {name for expr in _exprs() for name in re.findall(r"\banomaly_[a-z_]+\b", expr)}
    assert len(names) >= 6
    assert names <= samples, names - samples


def test_dashboard_datasource_is_the_provisioned_one():
    dashboard = _dashboard()
    assert [v["name"] for v in dashboard["templating"]["list"] if v["type"] == "datasource"] == ["datasource"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    provisioned = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    [source] = provisioned["datasources"]
    assert source["type"] == "prometheus"
    assert httpx.URL(source["url"]).host in _compose()["services"]
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/anomaly.yml").read_text())
    mounts = _compose()["services"]["grafana"]["volumes"]
    dashboards_dir = provider["providers"][0]["options"]["path"]
    assert f"./deploy/grafana/anomaly.json:{dashboards_dir}/anomaly.json:ro" in mounts

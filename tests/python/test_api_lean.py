"""``POST /api/batch`` on the lean ASGI path (``api_lean_batch``, the default) and on FastAPI's
route answer the same bytes: the same requests sent to two apps over real HTTP, one with the
lean path and one without, each answer compared byte for byte (status, body, headers)."""

from __future__ import annotations

import json
import types

import httpx
import pytest
from test_api_support import LiveServer

from anomaly_detection import Settings
from anomaly_detection.api import app as app_module
from anomaly_detection.api import create_app

KEY = "lean-path-key"
#: headers an answer must carry alike (uvicorn's date and server headers aside)
HEADERS = (
    "content-type",
    "content-length",
    "www-authenticate",
    "retry-after",
    "idempotent-replayed",
    "connection",
)


def _points(sensor: str, values, start: float = 1000.0, stamps: bool = True) -> list[dict]:
    return [
        {"type": "point", "sensor_name": sensor, "value": v, **({"timestamp": start + i} if stamps else {})}
        for i, v in enumerate(values)
    ]


_WARM = [10.0 + 0.1 * (i % 3) for i in range(20)]


class _Pair:
    """Two live apps of the same settings, ``api_lean_batch`` on and off, and a count of the
    bodies FastAPI's write routes read (the lean path reads none through them)."""

    def __init__(self, apps: dict, clients: dict[bool, httpx.Client], parses: list[int]) -> None:
        self.apps = apps
        self.clients = clients
        self.parses = parses

    def both(self, content=None, headers=None, *, json_body=None, lean_served: bool | None = None):
        """The answers of both apps to the same POST /api/batch; asserts they are equal."""
        answers = {}
        for lean, client in self.clients.items():
            before = self.parses[0]
            r = client.post(
                "/api/batch",
                content=json.dumps(json_body).encode() if json_body is not None else content,
                headers={"content-type": "application/json", **(headers or {})},
            )
            if lean and lean_served is not None:  # did the lean path answer (no FastAPI route)?
                assert (self.parses[0] == before) is lean_served, r.content
            answers[lean] = r
        lean, plain = answers[True], answers[False]
        assert (lean.status_code, lean.content) == (plain.status_code, plain.content)
        for name in HEADERS:
            assert lean.headers.get(name) == plain.headers.get(name), name
        return lean


@pytest.fixture
def pair(monkeypatch, request):
    """The two apps; alerts' ``received_at`` fixed so that their bytes can be compared."""
    monkeypatch.setattr(app_module._JSONBodyRequest, "body", _counting())
    from anomaly_detection.api import alerts

    monkeypatch.setattr(alerts, "time", types.SimpleNamespace(time=lambda: 1_700_000_000.25))
    extra = getattr(request, "param", {})
    base = {"detection_method": "zscore", "min_samples": 5, "window_size": 50, "max_batch_items": 100,
            "max_request_bytes": 16 * 1024, "max_sensors_per_request": 3, **extra}  # fmt: skip
    apps = {lean: create_app(Settings(**base, api_lean_batch=lean)) for lean in (True, False)}
    with (
        LiveServer(apps[True]) as a,
        LiveServer(apps[False]) as b,
        httpx.Client(base_url=a, timeout=10) as ca,
        httpx.Client(base_url=b, timeout=10) as cb,
    ):
        yield _Pair(apps, {True: ca, False: cb}, _PARSES)


_PARSES = [0]


def _counting():
    original = app_module._JSONBodyRequest.body

    async def counted(self):
        _PARSES[0] += 1
        return await original(self)

    return counted


def test_valid_batches_answer_the_same_bytes(pair):
    pair.both(json_body={"metrics": _points("a", _WARM) + _points("b", _WARM)}, lean_served=True)
    # a spike on each sensor: alerts in the answer, byte for byte
    r = pair.both(json_body={"batch_id": "b-1", "metrics": _points("a", [99.0], 2000.0) + _points("b", [-50, 10.1])},
                  lean_served=True)  # fmt: skip
    body = r.json()
    assert [a["sensor_name"] for a in body["anomalies"]] == ["a", "b"]
    assert body["batch_id"] == "b-1"
    # no timestamps (the server's clock: the answer has no alert, so no time in it); under "items"
    pair.both(json_body={"items": _points("a", [10.0, 10.1], stamps=False)}, lean_served=True)
    # integers, a null timestamp, keys in another order, an extra top-level field
    pair.both(json_body={"metrics": [{"value": 10, "sensor_name": "c", "type": "point", "timestamp": None}],
                         "note": "x"}, lean_served=True)  # fmt: skip
    # the windows the two apps hold are the same
    for sensor in ("a", "b", "c"):
        windows = [c.get(f"/api/sensors/{sensor}/window").json() for c in pair.clients.values()]
        assert windows[0]["values"] == windows[1]["values"]
        if sensor != "c":  # c's one point has no timestamp; a's last two neither: the server's clock
            assert windows[0]["timestamps"][:21] == windows[1]["timestamps"][:21]


def test_batches_the_lean_path_hands_on_answer_the_same_bytes(pair):
    cases = [
        b'{"metrics": [{"type": "point", "sensor_name": "a", "value": 1.0},',  # invalid JSON: 422 json_invalid
        b"",  # no body
        b"[]",  # not an object
        b'{"batch_id": 5, "metrics": []}',  # the model refuses it
        b'{"other": []}',  # neither metrics nor items
        b'{"metrics": [{"type": "point", "sensor_name": "a", "value": NaN}]}',  # not finite
        b'{"metrics": [{"type": "point", "sensor_name": "a", "value": true}]}',  # not a number
        b'{"metrics": [{"type": "point", "sensor_name": "a", "value": "1"}]}',  # a string: the model converts it
        b'{"metrics": [{"type": "point", "sensor_name": "a", "value": 1e999}]}',  # inf
        b'{"metrics": [{"type": "point", "sensor_name": "a", "value": 1'
        + b"0" * 400
        + b"}]}",  # beyond float64
        b'{"metrics": [{"type": "point", "sensor_name": "a", "value": 1, "x": 2}]}',  # an extra key
        b'{"metrics": [{"type": "point", "sensor_name": "a\\ud800", "value": 1}]}',  # a lone surrogate
        (  # mixed: the route
            b'{"metrics": [{"type": "metric", "service": "s", "endpoint": "/e", "response_time": 5},'
            b' {"type": "point", "sensor_name": "a", "value": 1.5, "timestamp": 3000}]}'
        ),
    ]
    for content in cases:
        pair.both(content, lean_served=False)
    # answered by the lean path, errors raised while scoring, rendered by the app's handlers
    pair.both(json_body={"metrics": _points("bad:name", [1.0])}, lean_served=True)  # 422
    r = pair.both(json_body={"metrics": _points("a", [1.0] * 101)}, lean_served=True)  # 413: max_batch_items
    assert r.status_code == 413
    four = [p for s in "wxyz" for p in _points(s, [1.0])]
    assert (
        pair.both(json_body={"metrics": four}, lean_served=True).status_code == 413
    )  # max_sensors_per_request
    # other content types: FastAPI's route decides
    for ct in ("application/json; charset=utf-8", "text/plain", "application/vnd.x+json"):
        pair.both(
            json.dumps({"metrics": _points("a", [10.0])}).encode(), {"content-type": ct}, lean_served=False
        )


def test_oversized_and_repeated_requests_answer_the_same_bytes(pair):
    big = {"metrics": _points("a", [10.0] * 60), "note": "x" * 16_000}
    assert len(json.dumps(big)) > 16 * 1024
    assert pair.both(json_body=big).status_code == 413  # the body-size limit, before either path
    body = {"metrics": _points("a", [10.0, 10.1])}
    first = pair.both(json_body=body, headers={"idempotency-key": "k-1"}, lean_served=True)
    repeat = pair.both(json_body=body, headers={"idempotency-key": "k-1"})  # the stored answer
    assert repeat.headers["idempotent-replayed"] == "true"
    assert repeat.content == first.content
    other = pair.both(json_body={"metrics": _points("a", [5.0])}, headers={"idempotency-key": "k-1"})
    assert other.status_code == 422
    for client in pair.clients.values():  # stored once
        assert len(client.get("/api/sensors/a/window").json()["values"]) == 2
    # request metrics: the same counts by route and status
    lines = [
        sorted(x for x in c.get("/metrics").text.splitlines() if x.startswith("anomaly_http_requests_total"))
        for c in pair.clients.values()
    ]
    assert lines[0] == lines[1]
    assert any('status="200"' in x for x in lines[0])


@pytest.mark.parametrize("pair", [{"api_keys": [KEY]}], indirect=True)
def test_api_keys_answer_the_same_bytes(pair):
    body = {"metrics": _points("k", [1.0, 2.0])}
    assert pair.both(json_body=body, lean_served=False).status_code == 401  # no key: FastAPI's 401
    assert pair.both(json_body=body, headers={"x-api-key": "wrong"}, lean_served=False).status_code == 403
    assert (
        pair.both(json_body=body, headers={"authorization": "Basic abc"}, lean_served=False).status_code
        == 401
    )
    assert pair.both(json_body=body, headers={"x-api-key": KEY}, lean_served=True).status_code == 200
    assert (
        pair.both(json_body=body, headers={"authorization": f"Bearer {KEY}"}, lean_served=True).status_code
        == 200
    )
    # invalid JSON without a key: FastAPI parses the body before it checks the key (422)
    assert pair.both(b"{", lean_served=False).status_code == 422


def test_dependency_overrides_turn_the_lean_path_off(pair):
    app = pair.apps[True]
    calls = []

    async def service_override():
        calls.append(1)
        return app.state.anomaly_service

    app.dependency_overrides[app_module.get_service] = service_override
    try:
        pair.both(json_body={"metrics": _points("o", [1.0])}, lean_served=False)
    finally:
        app.dependency_overrides.clear()
    assert calls  # the override ran: FastAPI's route answered
    pair.both(json_body={"metrics": _points("o", [1.0])}, lean_served=True)


def test_redis_store_lean_and_route_store_the_same(redis_server, redis_client):
    """On a real redis-server (two key prefixes), the same batches: the same answers (but for the
    alerts' stream ids and clocks) and the same windows."""
    base = {"store_backend": "redis", "redis_url": redis_server.url, "detection_method": "zscore",
            "min_samples": 5, "window_size": 50}  # fmt: skip
    apps = {
        lean: create_app(Settings(**base, redis_key_prefix=f"lean{int(lean)}", api_lean_batch=lean))
        for lean in (True, False)
    }
    batches = [
        {"metrics": _points("r1", _WARM) + _points("r2", _WARM)},
        {"metrics": _points("r1", [99.0], 2000.0) + _points("r2", [10.0, -40.0], 3000.0)},
        {"metrics": _points("bad name", [1.0])},
    ]
    answers = {}
    with LiveServer(apps[True]) as a, LiveServer(apps[False]) as b:
        for lean, url in ((True, a), (False, b)):
            with httpx.Client(base_url=url, timeout=10) as client:
                answers[lean] = [client.post("/api/batch", json=body) for body in batches]
                windows = [client.get(f"/api/sensors/{s}/window").json() for s in ("r1", "r2")]
                answers[lean].append(windows)
    for lean_r, plain_r in zip(answers[True][:-1], answers[False][:-1], strict=True):
        assert lean_r.status_code == plain_r.status_code
        lean_body, plain_body = lean_r.json(), plain_r.json()
        for body in (lean_body, plain_body):
            for alert in body.get("anomalies", []):
                alert.pop("id"), alert.pop("received_at")
        assert lean_body == plain_body
    assert [r.status_code for r in answers[True][:-1]] == [200, 200, 422]
    assert len(answers[True][1].json()["anomalies"]) == 2
    assert answers[True][-1] == answers[False][-1]
    assert redis_client.exists("lean1:temp:data:r1:queue")
    assert redis_client.exists("lean0:temp:data:r1:queue")

"""The service as a FastAPI user sees it, over real HTTP: dependency overrides through the
exported dependencies, the security schemes, typed responses with examples and documented
errors in OpenAPI, ``warming_up`` in the detect responses."""

from __future__ import annotations

import contextlib

import httpx
import pytest
from fastapi import Header, HTTPException
from servers import RedisServer
from test_api_support import LiveServer

from anomaly_detection import Settings
from anomaly_detection.api import AnomalyService, create_app, get_service, require_write_key
from anomaly_detection.api.models import ErrorResponse

KEY = "fastapi-test-key"
ERROR_REF = "#/components/schemas/ErrorResponse"


def _app(**settings):
    return create_app(Settings(detection_method="zscore", min_samples=5, **settings))


# --- dependency overrides ---------------------------------------------------------------------------


def test_overriding_get_service_reaches_every_route():
    app = _app()
    other = AnomalyService(Settings(detection_method="mad", window_size=7, min_samples=3))
    app.dependency_overrides[get_service] = lambda: other
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        r = http.post("/api/detect", json={"sensor_name": "over-1", "value": 1.0})
        assert r.status_code == 200, r.text
        assert r.json()["method"] == "mad"  # the override's settings, not the app's zscore
        assert http.post("/api/metrics", json={"service": "svc", "response_time": 5}).status_code == 200
        assert (
            http.post("/api/detect/batch", json={"sensor_name": "over-2", "values": [1.0] * 9}).status_code
            == 200
        )
        sensors = http.get("/api/sensors").json()["sensors"]
        assert sensors == sorted(other.detector.sensors())
        assert {"over-1", "over-2", "svc.response_time"} <= set(sensors)
        assert http.get("/api/sensors/over-2/window").json()["values"] == [1.0] * 7  # window_size 7
        assert http.get("/config").json()["window_size"] == 7
        assert http.get("/health").json()["store"]["sensors"] == len(sensors)
        assert "anomaly_points_ingested_total" in http.get("/metrics").text
        # The app's own service saw nothing.
        assert app.state.anomaly_service.detector.sensors() == []
        del app.dependency_overrides[get_service]
        assert http.get("/api/sensors").json()["sensors"] == []


def test_overriding_get_service_with_a_redis_backed_service():
    server = RedisServer().start()
    try:
        app = _app()  # embedded store
        other = AnomalyService(
            Settings(detection_method="zscore", store_backend="redis", redis_url=server.url)
        )
        app.dependency_overrides[get_service] = lambda: other
        with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as http:
            r = http.post("/api/detect/batch", json={"sensor_name": "red-1", "values": [1.0, 2.0, 3.0]})
            assert r.status_code == 200, r.text
            client = server.client()
            assert client.exists("anomaly:temp:data:red-1:queue") == 1
            assert http.get("/api/sensors/red-1/window").json()["values"] == [1.0, 2.0, 3.0]
            assert http.get("/health").json()["redis"] == {"configured": True, "reachable": True}
            client.close()
        assert app.state.anomaly_service.detector.sensors() == []
        other.close()
    finally:
        server.stop()


def test_the_write_key_check_follows_the_overridden_service():
    app = _app()  # no keys
    keyed = AnomalyService(Settings(detection_method="zscore", api_keys=[KEY]))
    app.dependency_overrides[get_service] = lambda: keyed
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        body = {"sensor_name": "k-1", "value": 1.0}
        assert http.post("/api/detect", json=body).status_code == 401
        assert http.post("/api/detect", json=body, headers={"X-API-Key": KEY}).status_code == 200
        assert keyed.detector.sensors() == ["k-1"]


def test_overriding_require_write_key():
    app = _app(api_keys=[KEY])

    async def team_header(x_team: str | None = Header(None)) -> None:
        if x_team != "ops":
            raise HTTPException(403, "only the ops team writes here")

    app.dependency_overrides[require_write_key] = team_header
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        body = {"sensor_name": "t-1", "value": 1.0}
        r = http.post("/api/detect", json=body, headers={"X-API-Key": KEY})  # the key no longer counts
        assert r.status_code == 403
        assert r.json() == {"detail": "only the ops team writes here"}
        assert http.get("/api/sensors").json()["sensors"] == []  # nothing changed
        for path, payload in [("/api/detect", body), ("/api/logs", {"level": "ERROR", "message": "m"}),
                              ("/api/batch", {"metrics": [{"type": "point", "sensor_name": "t-2", "value": 1}]})]:  # fmt: skip
            assert http.post(path, json=payload, headers={"X-Team": "ops"}).status_code == 200, path
        assert http.get("/api/sensors").json()["sensors"] == ["t-1", "t-2"]


# --- security schemes -----------------------------------------------------------------------------


def test_openapi_shows_both_schemes_on_every_write_and_none_on_reads():
    app = _app(api_keys=[KEY])
    with LiveServer(app) as url:
        doc = httpx.get(url + "/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                 "description": schemes["ApiKey"]["description"]}  # fmt: skip
    assert schemes["Bearer"]["type"] == "http"
    assert schemes["Bearer"]["scheme"] == "bearer"
    writes = reads = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method == "post":
                writes += 1
                assert op["security"] == [{"ApiKey": []}, {"Bearer": []}], path  # either one
            else:
                reads += 1
                assert "security" not in op, path
    assert writes == 6
    assert reads >= 8


def test_key_forms_and_status_codes():
    app = _app(api_keys=[KEY, "second"])
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        body = {"sensor_name": "s-1", "value": 1.0}

        def post(headers):
            return http.post("/api/detect", json=body, headers=headers)

        for headers in (
            {},
            {"Authorization": f"Basic {KEY}"},
            {"Authorization": "Bearer"},
            {"X-API-Key": ""},
        ):
            r = post(headers)
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"] == "Bearer"
            assert "X-API-Key" in ErrorResponse.model_validate(r.json()).detail
        for headers in ({"X-API-Key": "nope"}, {"Authorization": "Bearer nope"}, {"X-API-Key": KEY[:-1]}):
            r = post(headers)
            assert r.status_code == 403, headers
            assert r.json() == {"detail": "invalid API key"}
        assert http.get("/api/sensors").json()["sensors"] == []
        assert post({"X-API-Key": KEY}).status_code == 200
        assert post({"Authorization": "Bearer second"}).status_code == 200
        assert post({"authorization": f"bearer {KEY}"}).status_code == 200  # the scheme is case-insensitive
        # X-API-Key is read first: a wrong one is refused even beside a right bearer token.
        assert post({"X-API-Key": "nope", "Authorization": f"Bearer {KEY}"}).status_code == 403
        assert http.get("/api/sensors/s-1/window").json()["stats"]["points_seen"] == 3


# --- typed responses, documented errors -------------------------------------------------------------

#: Error codes each kind of operation must document.
_WRITE_ERRORS = {"401", "403", "409", "413", "422", "503"}


def _resolve(doc, schema):
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_every_operation_declares_its_responses_with_models_and_examples():
    app = _app()
    with LiveServer(app) as url:
        doc = httpx.get(url + "/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]  # one error model for all
    operations = [(p, m, op) for p, ops in doc["paths"].items() for m, op in ops.items()]
    assert len(operations) == 14
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert op.get("description"), where
        ok = op["responses"]["200"]["content"]
        if path in ("/metrics", "/api/alerts/stream"):
            ((media, body),) = ok.items()
            assert media.startswith("text/"), where
            assert body["example"], where
        else:
            ref = ok["application/json"]["schema"].get("$ref")
            assert ref, f"{where}: the 200 answer has no model"
            assert _resolve(doc, {"$ref": ref}).get("examples"), f"{where}: {ref} has no example"
        errors = {code: r for code, r in op["responses"].items() if code != "200"}
        for code, response in errors.items():
            assert response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (where, code)
            assert response["description"], (where, code)
        if method == "post":
            assert set(errors) == _WRITE_ERRORS, where
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in errors, where
    assert {"/api/sensors/{name}/window"} == {p for p, _, op in operations if "404" in op["responses"]}
    error = _resolve(doc, {"$ref": ERROR_REF})
    assert error["examples"]


def test_error_bodies_match_the_documented_model():
    app = _app(api_keys=[KEY], max_request_bytes=1024, max_batch_items=3, max_sensors=1)
    headers = {"X-API-Key": KEY}
    point = {"type": "point", "sensor_name": "e", "value": 1}
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        cases = [
            (401, http.post("/api/detect", json={"sensor_name": "e", "value": 1})),
            (
                403,
                http.post("/api/detect", json={"sensor_name": "e", "value": 1}, headers={"X-API-Key": "x"}),
            ),
            (422, http.post("/api/detect", json={"sensor_name": "e"}, headers=headers)),
            (422, http.post("/api/batch", json={"metrics": [{"type": "nope"}]}, headers=headers)),
            (422, http.get("/api/anomalies", params={"limit": 0})),
            (413, http.post("/api/detect", content=b"{" + b" " * 4000 + b"}", headers=headers)),
            (413, http.post("/api/batch", json={"metrics": [point] * 4}, headers=headers)),
            (404, http.get("/api/sensors/none/window")),
            (200, http.post("/api/detect", json={"sensor_name": "e-1", "value": 1}, headers=headers)),
            (409, http.post("/api/detect", json={"sensor_name": "e-2", "value": 1}, headers=headers)),
        ]
        for expected, r in cases:
            assert r.status_code == expected, (expected, r.text)
            if expected != 200:
                error = ErrorResponse.model_validate(r.json())
                assert error.detail, r.text
                if expected == 422:
                    assert isinstance(error.detail, list)
                    assert all(item.loc and item.msg for item in error.detail)


def test_read_routes_answer_their_models():
    app = _app()
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        http.post(
            "/api/detect/batch", json={"sensor_name": "r-1", "values": [1.0, 1.1, 0.9, 1.0, 1.2, 1.0, 50.0]}
        )
        health = http.get("/health").json()
        assert health["status"] == "ok"
        assert health["redis"] == {"configured": False, "reachable": None}
        assert health["anomalies_count"] == 1
        config = http.get("/config").json()
        assert config["detection_method"] == "zscore"
        assert config["api_keys"] == "<0 configured>"
        assert set(config) == set(Settings.model_fields)
        prints = http.get("/api/fingerprints", params={"limit": 5}).json()
        assert set(prints) == {"items", "feature_names", "status", "note", "collector"}
        page = http.get("/api/anomalies").json()
        assert page["total"] == 1
        assert page["items"][0]["sensor_name"] == "r-1"
        assert page["items"][0]["warming_up"] is False


def test_openapi_examples_omit_the_environment(monkeypatch):
    """The /config example shows defaults: a Redis URL in this process's environment stays out of it."""
    monkeypatch.setenv("ANOMALY_REDIS_URL", "redis://:hunter2@db.internal:6379/0")
    app = create_app(Settings(detection_method="zscore"))
    assert "hunter2" not in str(app.openapi())


# --- warming_up -------------------------------------------------------------------------------------------


def test_detect_responses_carry_warming_up():
    app = _app()  # min_samples 5
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        flags = [http.post("/api/detect", json={"sensor_name": "w-1", "value": 1.0 + 0.1 * (i % 2)}).json()["warming_up"]
                 for i in range(7)]  # fmt: skip
        assert flags == [True] * 5 + [False] * 2
        batch = http.post("/api/detect/batch", json={"sensor_name": "w-2", "values": [1.0, 1.1] * 4}).json()
        assert batch["warming_up"] == [True] * 5 + [False] * 3
        ensemble = create_app(Settings())  # the ensemble learns 300 points before it scores
    with LiveServer(ensemble) as url, httpx.Client(base_url=url, timeout=10) as http:
        batch = http.post("/api/detect/batch", json={"sensor_name": "w-3", "values": [1.0, 1.1] * 160}).json()
        assert batch["warming_up"] == [True] * 300 + [False] * 20


@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_one_minute_series_warm_up_until_the_ensemble_scores_its_likelihoods(store, request):
    # At one minute the ensemble's likelihoods score from the 750th point on: /api/batch, /api/detect,
    # /api/detect/batch and the sensor's stats say so (on main: warming_up false after 300 points).
    minute = [20.0 + 0.1 * (i % 7) for i in range(760)]
    stamps = [1.7e9 + 60.0 * i for i in range(760)]
    if store == "redis":
        server = request.getfixturevalue("redis_server")
        server.client().flushall()
        settings = Settings(store_backend="redis", redis_url=server.url, redis_alerts=False)
        apps = [create_app(settings), create_app(settings)]  # two workers: the second one never scored
    else:
        apps = [create_app(Settings())]
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(LiveServer(app)) for app in apps]
        http, other = (
            stack.enter_context(httpx.Client(base_url=url, timeout=30)) for url in (urls[0], urls[-1])
        )
        points = [{"type": "point", "sensor_name": "m1", "value": v, "timestamp": t}
                  for v, t in zip(minute[:400], stamps[:400])]  # fmt: skip
        assert http.post("/api/batch", json={"metrics": points}).status_code == 200
        for client in (http, other):
            stats = client.get("/api/sensors/m1/window").json()["stats"]
            assert (stats["points_seen"], stats["warming_up"]) == (400, True)
        batch = http.post(
            "/api/detect/batch",
            json={"sensor_name": "m1", "values": minute[400:751], "timestamps": stamps[400:751]},
        ).json()
        assert batch["warming_up"] == [True] * 350 + [False]
        for client in (http, other):
            assert client.get("/api/sensors/m1/window").json()["stats"]["warming_up"] is False
        single = http.post(
            "/api/detect", json={"sensor_name": "m1", "value": minute[751], "timestamp": stamps[751]}
        )
        assert single.json()["warming_up"] is False
        fresh = [other.post("/api/detect", json={"sensor_name": "m2", "value": v, "timestamp": t}).json()["warming_up"]
                 for v, t in zip(minute[:5], stamps[:5])]  # fmt: skip
        assert fresh == [True] * 5


@pytest.mark.parametrize("missing", ["skip"])
def test_a_skipped_missing_value_keeps_warming_up_a_bool(missing):
    app = _app(missing=missing)
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        r = http.post("/api/detect", json={"sensor_name": "m-1", "value": None})
        assert r.status_code == 200, r.text
        assert r.json()["value"] is None
        assert isinstance(r.json()["warming_up"], bool)


# --- schemathesis: generated requests against the live app ---------------------------------------------


def test_schemathesis_finds_every_answer_documented_and_typed():
    """Requests generated from the OpenAPI document, sent over HTTP: no 5xx, every status code
    documented, every body matching its declared schema and content type; a request the schema
    allows is accepted (ST202) and one it forbids refused (ST201), where JSON Schema can say it."""
    schemathesis = pytest.importorskip("schemathesis")  # the test extra has it; CI fails any skip
    from schemathesis import GenerationMode
    from schemathesis.checks import (
        content_type_conformance,
        negative_data_rejection,
        not_a_server_error,
        positive_data_acceptance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    app = _app()
    statuses: dict[str, set[int]] = {}
    with LiveServer(app) as url:
        schema = schemathesis.openapi.from_url(url + "/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) == 14
        for op in operations:
            if op.path == "/api/alerts/stream":  # an endless event stream: test_api reads it
                continue
            where = f"{op.method.upper()} {op.path}"
            exact = [] if where in _SCHEMA_CANNOT_SAY else [positive_data_acceptance]
            statuses[where] = _fuzz(op, [*checks, *exact])
            if op.body or op.query:  # something to get wrong (a path of any text may be a 404)
                _fuzz(op, [*checks, negative_data_rejection], GenerationMode.NEGATIVE, examples=15)
    assert len(statuses) == 13
    for where, codes in statuses.items():
        assert codes, where
    for where in ("GET /health", "GET /config", "GET /api/sensors", "GET /metrics", "GET /api/anomalies"):
        assert 200 in statuses[where], (where, statuses[where])
    assert any(200 in codes for where, codes in statuses.items() if where.startswith("POST"))
    assert any(422 in codes for where, codes in statuses.items() if where.startswith("POST"))


#: Rules of the validation that JSON Schema cannot state, so a request the OpenAPI document
#: allows may be refused (422) there: ``expected_range`` low <= high, as many ``timestamps`` as
#: ``values``, the body of each batch item by its ``type``.
_SCHEMA_CANNOT_SAY = frozenset({"POST /api/business-metrics", "POST /api/detect/batch", "POST /api/batch"})


def _fuzz(operation, checks, mode=None, examples: int = 30) -> set[int]:
    """Run schemathesis' checks on ``examples`` generated requests of one operation (valid by its
    schema unless ``mode`` is negative); the status codes seen."""
    from hypothesis import HealthCheck, given, settings

    seen: set[int] = set()

    @given(case=operation.as_strategy(generation_mode=mode) if mode else operation.as_strategy())
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(timeout=10)
        seen.add(response.status_code)
        case.validate_response(response, checks=checks)

    check()
    return seen


def test_a_mounted_router_honours_the_overrides_of_the_host_app():
    from fastapi import FastAPI

    from anomaly_detection.api import router

    host = FastAPI()
    host.include_router(router, prefix="/anomaly")
    other = AnomalyService(Settings(detection_method="mad", api_keys=[KEY]))
    host.dependency_overrides[get_service] = lambda: other
    try:
        with LiveServer(host) as url, httpx.Client(base_url=url + "/anomaly", timeout=10) as http:
            assert http.post("/api/detect", json={"sensor_name": "m-1", "value": 1.0}).status_code == 401
            r = http.post(
                "/api/detect", json={"sensor_name": "m-1", "value": 1.0}, headers={"X-API-Key": KEY}
            )
            assert r.json()["method"] == "mad"
            assert http.get("/api/sensors").json()["sensors"] == ["m-1"]
        assert not hasattr(host.state, "anomaly_service")  # the router never made a service of its own
    finally:
        other.close()

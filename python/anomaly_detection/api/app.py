"""The FastAPI app (``create_app``) and the router to mount in an existing app (``router``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Security, status
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute, serialize_response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import AfterValidator, ValidationError
from pydantic_core import from_json
from starlette.routing import Match

from anomaly_detection.api.collector import Point, sensor_name_for
from anomaly_detection.api.idempotency import IdempotencyMiddleware
from anomaly_detection.api.metrics import CONTENT_TYPE_LATEST
from anomaly_detection.api.models import (
    SENSOR_NAME_DOC,
    SENSOR_NAME_SCHEMA,
    AnomaliesPage,
    BatchRequest,
    BusinessMetricRequest,
    ConfigResponse,
    DetectBatchRequest,
    DetectBatchResponse,
    DetectRequest,
    DetectResponse,
    ErrorResponse,
    FingerprintsResponse,
    HealthResponse,
    IngestResponse,
    LogRequest,
    MetricRequest,
    SensorList,
    WindowResponse,
    fast_point,
    parse_batch_item,
    point_groups,
)
from anomaly_detection.api.security import (
    BodySizeLimitMiddleware,
    api_key_header,
    bearer_token,
    check_api_key,
    key_of,
    replay_body,
)
from anomaly_detection.api.service import AnomalyService, TooManySensorsError
from anomaly_detection.config.settings import Settings, get_settings
from anomaly_detection.errors import SensorLimitError, StoreUnavailableError
from anomaly_detection.redis.driver import redis_errors

__all__ = ["create_app", "get_service", "require_write_key", "router"]

STATIC_DIR = Path(__file__).parent / "static"
_STATIC_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
_service_lock = threading.Lock()


async def get_service(request: Request) -> AnomalyService:
    """The app's service (every route's dependency); created on first use when the router is
    mounted without ``create_app``. ``app.dependency_overrides[get_service] = ...`` replaces it
    for every route, the write-key check included.

    Async: it runs on the event loop (a sync dependency costs a thread hop per request)."""
    service = getattr(request.app.state, "anomaly_service", None)
    if service is None:
        with _service_lock:
            service = getattr(request.app.state, "anomaly_service", None)
            if service is None:
                service = request.app.state.anomaly_service = AnomalyService(get_settings())
    return service


Service = Annotated[AnomalyService, Depends(get_service)]


async def require_write_key(
    service: Service,
    header_key: Annotated[str | None, Security(api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_token)],
) -> None:
    """Every write's dependency: an API key (``X-API-Key`` or ``Authorization: Bearer``) when the
    service's settings configure keys; 401 without one, 403 with a wrong one. Override it with
    ``app.dependency_overrides[require_write_key]`` to check writes another way."""
    check_api_key(service.settings.api_keys, key_of(header_key, bearer))


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error codes, all with the one error body."""
    return {code: {"model": ErrorResponse, "description": _ERROR_TEXT[code]} for code in codes}


_ERROR_TEXT = {
    401: "No API key (keys are configured: send X-API-Key or Authorization: Bearer).",
    403: "Wrong API key.",
    404: "Not found.",
    409: "The sensor limit (max_sensors) is reached: no new sensor; or a repeat of an Idempotency-Key "
    "whose first request is still being processed (Retry-After).",
    413: "Request body over max_request_bytes, or too many items or sensors in one request.",
    422: "Invalid input: the failing fields (nothing was changed); or an Idempotency-Key used before "
    "for another request.",
    503: "The store (Redis) is unavailable.",
}


#: scope key: ``(body, value)``, the body bytes :class:`LeanBatchMiddleware` parsed and the value,
#: for the route it passes a request on to
_PARSED_BODY = "anomaly_detection.parsed_body"


class _JSONBodyRequest(Request):
    """A request whose JSON body pydantic-core parses (the values ``json.loads`` gives, in about
    half its time for a 1,000-item batch: benchmarks/README.md); a body it refuses (invalid
    JSON, lone surrogates, another encoding than UTF-8) is parsed by ``json.loads``, whose
    value or error (a 422) stands."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            parsed = self.scope.get(_PARSED_BODY)  # the lean path's parse of these bytes, if any
            if parsed is not None and parsed[0] == body:
                self._json = parsed[1]
                return self._json
            try:
                self._json = from_json(body)
            except ValueError:
                try:
                    self._json = json.loads(body)
                except UnicodeDecodeError as e:  # no text at all: FastAPI's 422 of invalid JSON, not a 400
                    raise json.JSONDecodeError(e.reason, body.decode("utf-8", "replace"), e.start) from None
        return self._json


class _JSONBodyRoute(APIRoute):
    """A write route whose JSON body is parsed by :class:`_JSONBodyRequest` (FastAPI's pattern
    of a custom request class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(_JSONBodyRequest(request.scope, request.receive))

        return route_handler


router = APIRouter()
writes = APIRouter(
    dependencies=[Depends(require_write_key)],
    responses=_errors(401, 403, 409, 413, 422, 503),
    route_class=_JSONBodyRoute,
)


@contextlib.contextmanager
def _http_errors(service: AnomalyService):
    """ValueError -> 422, too many sensors in one request -> 413, sensor limit -> 409,
    store unavailable -> 503."""
    try:
        yield
    except TooManySensorsError as e:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(e)) from None
    except SensorLimitError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    except StoreUnavailableError as e:
        service.metrics.store_errors.inc()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(e)) from None
    except (ValueError, TypeError) as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from None
    except redis_errors() as e:
        service.metrics.store_errors.inc()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"Redis: {type(e).__name__}") from None


async def _off_loop(service: AnomalyService, read: Any) -> Any:
    """Run a read in a thread when it talks to Redis, else here."""
    return await asyncio.to_thread(read) if service.redis_client is not None else read()


def _check_batch_size(service: AnomalyService, n: int) -> None:
    limit = service.settings.max_batch_items
    if n > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"too many items: limit is {limit} per request, got {n}"
        )


# --- detection ------------------------------------------------------------------------------


@writes.post("/api/detect", response_model=DetectResponse, tags=["detection"])
async def detect(body: DetectRequest, service: Service) -> dict[str, Any]:
    """Score one point of one sensor and add it to the sensor's window."""
    with _http_errors(service):
        result = await service.detect(body.sensor_name, body.value, body.timestamp)
    return result.to_dict()


@writes.post("/api/detect/batch", response_model=DetectBatchResponse, tags=["detection"])
async def detect_batch(body: DetectBatchRequest, service: Service) -> dict[str, Any]:
    """Score points of one sensor in order (equal to one ``/api/detect`` per point)."""
    _check_batch_size(service, len(body.values))
    with _http_errors(service):
        batch = await service.detect_batch(body.sensor_name, body.values, body.timestamps)
    return batch.to_dict()


# --- the collector ----------------------------------------------------------------------------


async def _ingest(
    service: AnomalyService,
    records: list[tuple[str, Any]],
    batch_id: str | None = None,
    points: list[Point] | None = None,
    n_records: int | None = None,
) -> IngestResponse:
    with _http_errors(service):
        points = [*(points or []), *service.collector.points_of_many(records)]
        sensors, alerts = await service.ingest(points)
        service.collector.accept(records)  # counted and fed to the fingerprints once stored
    for kind, body in records:
        if kind == "business" and body.out_of_range:
            low, high = body.expected_range
            sensor = sensor_name_for("business", body.name)
            alerts.append(service.range_alert(sensor, body.value, body.timestamp, low, high))
    return IngestResponse(
        records=len(records) if n_records is None else n_records,
        points=len(points),
        sensors=sensors,
        anomalies=alerts,
        batch_id=batch_id,
    )


@writes.post("/api/metrics", response_model=IngestResponse, tags=["collector"])
async def post_metrics(body: MetricRequest, service: Service) -> IngestResponse:
    """Application metrics of one service endpoint (nested under ``metrics`` or flat)."""
    return await _ingest(service, [("metric", body)])


@writes.post("/api/business-metrics", response_model=IngestResponse, tags=["collector"])
async def post_business_metrics(body: BusinessMetricRequest, service: Service) -> IngestResponse:
    """A business KPI; a value outside ``expected_range`` raises an alert at once."""
    return await _ingest(service, [("business", body)])


@writes.post("/api/logs", response_model=IngestResponse, tags=["collector"])
async def post_logs(body: LogRequest, service: Service) -> IngestResponse:
    """A log record; ERROR and worse are counted per service and interval (``logs.<service>.error_rate``)."""
    return await _ingest(service, [("log", body)])


async def _plain_batch(
    service: AnomalyService, body: BatchRequest
) -> tuple[list[Any], IngestResponse | None]:
    """The batch's items and, when every item is a plain point, its answer: the points scored
    as one array per sensor, no per-item objects. None (nothing done) for any other batch.
    413 beyond ``max_batch_items``. Shared by the route and :class:`LeanBatchMiddleware`."""
    items = body.raw_items
    _check_batch_size(service, len(items))
    arrays = point_groups(items, time.time())
    if arrays is None:
        return items, None
    with _http_errors(service):
        sensors, alerts = await service.ingest_arrays(arrays)
    service.collector.count("point", len(items))
    return items, IngestResponse(
        records=len(items), points=len(items), sensors=sensors, anomalies=alerts, batch_id=body.batch_id
    )


@writes.post("/api/batch", response_model=IngestResponse, tags=["collector"])
async def post_batch(body: BatchRequest, service: Service) -> IngestResponse:
    """Mixed items (``{"type", "data"}`` or flat); 413 beyond ``max_batch_items``; nothing is
    scored unless every item is valid."""
    items, answer = await _plain_batch(service, body)
    if answer is not None:
        return answer
    records = []
    points = []
    errors = []
    for i, raw in enumerate(items):
        simple = fast_point(raw)
        if simple is not None:
            points.append(Point(*simple, "point"))
            continue
        try:
            kind, record = parse_batch_item(raw)
        except ValidationError as e:
            errors.extend({**err, "loc": ["body", "metrics", i, *err["loc"]]} for err in e.errors(
                include_url=False, include_context=False, include_input=False))  # fmt: skip
        except ValueError as e:
            errors.append({"type": "value_error", "loc": ["body", "metrics", i], "msg": str(e)})
        else:  # points keep their place among points (order matters per sensor)
            if kind == "point":
                points.append(Point(record.sensor_name, record.value, record.timestamp, "point"))
            else:
                records.append((kind, record))
    if errors:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, errors[:50])
    answer = await _ingest(service, records, body.batch_id, points, len(items))
    if points:  # once stored (the collector only sees other records)
        service.collector.count("point", len(points))
    return answer


# --- reading ------------------------------------------------------------------------------------


def _not_nan(value: float | None) -> float | None:
    """A NaN time bound is refused (422): it orders against nothing (Redis refuses it too)."""
    if value is not None and math.isnan(value):
        raise ValueError("expected a number or an infinity, got NaN")
    return value


@router.get("/api/anomalies", response_model=AnomaliesPage, tags=["alerts"], responses=_errors(422, 503))
async def anomalies(
    service: Service,
    sensor: str | None = None,
    start: Annotated[
        float | None, Query(description="Epoch seconds (point timestamp >= start)."), AfterValidator(_not_nan)
    ] = None,
    end: Annotated[
        float | None, Query(description="Epoch seconds (point timestamp <= end)."), AfterValidator(_not_nan)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Recent alerts, newest first: the last ``alert_buffer_size`` of this process, or with
    Redis those of every worker (newest point timestamp first; ids are stream ids). While
    Redis is down, this worker's (its outage alerts reach Redis when it is back)."""
    if service.alert_log is not None:
        with _http_errors(service):
            total, items = await asyncio.to_thread(service.query_alerts, sensor, start, end, limit, offset)
    else:
        total, items = service.hub.query(sensor, start, end, limit, offset)
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get("/api/fingerprints", response_model=FingerprintsResponse, tags=["alerts"], responses=_errors(422))
async def fingerprints(service: Service, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Recent system fingerprints (oldest first) with their forest scores (null during warm-up)."""
    pipeline = service.fingerprints
    status_ = pipeline.status()
    return {
        "items": [scored.to_dict() for scored in pipeline.recent(limit)],
        "feature_names": list(pipeline.detector.names),
        "status": status_,
        "note": f"one fingerprint per {status_['interval']:g} s interval; scores after a warm-up of "
        f"{status_['detector']['warmup']} fingerprints",
        "collector": service.collector.stats(),
    }


@router.get("/api/sensors", response_model=SensorList, tags=["sensors"], responses=_errors(503))
async def sensors(service: Service) -> dict[str, Any]:
    """The names of the sensors with state."""
    with _http_errors(service):
        names = await _off_loop(service, service.detector.sensors)
    return {"count": len(names), "sensors": names}


@router.get(
    "/api/sensors/{name:path}/window", response_model=WindowResponse, tags=["sensors"],
    responses=_errors(404, 422, 503),
)  # fmt: skip
async def sensor_window(
    name: Annotated[str, PathParam(description=SENSOR_NAME_DOC, json_schema_extra=SENSOR_NAME_SCHEMA)],
    service: Service,
) -> dict[str, Any]:
    """The sensor's window (oldest first) and its statistics; 404 if unknown."""

    def read() -> tuple[Any, dict[str, Any] | None]:
        window = service.detector.get_window(name)
        try:
            return window, service.detector.stats(name)
        except KeyError:
            return window, None

    with _http_errors(service):
        window, stats = await _off_loop(service, read)
    if stats is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown sensor {name!r}")
    return {
        "sensor_name": name,
        "values": window.values.tolist(),
        "timestamps": window.timestamps.tolist(),
        "stats": stats,
    }


@router.get(
    "/api/alerts/stream", tags=["alerts"], response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}, "example":
        'id: 7\nevent: anomaly\ndata: {"id": 7, "sensor_name": "pump-1", "value": 35.0, ...}\n\n'}},
        "description": "Server-Sent Events: one `anomaly` event per alert, comments as keep-alives."},
        **_errors(422)},
)  # fmt: skip
async def alert_stream(
    request: Request,
    service: Service,
    last_event_id: Annotated[str | None, Header()] = None,
    since: Annotated[
        str | None,
        Query(
            description="Replay alerts after this id (an integer; with Redis a stream id such as 1700000000000-0)."
        ),
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events, one ``anomaly`` event per alert with its id; a client that
    reconnects with ``Last-Event-ID`` (or ``?since=``) receives what it missed. With Redis
    the events follow the shared alert stream (the alerts of every worker)."""
    given, what = (last_event_id, "Last-Event-ID") if last_event_id is not None else (since, "since")
    if service.alert_log is not None:
        return _event_stream(_redis_events(service, given, what))
    hub = service.hub
    if given is not None:
        try:
            # ASCII digits only: int() also takes "+5", "1_000", blanks and other scripts' digits
            if not (given.isascii() and given.isdigit()):
                raise ValueError(given)
            last = int(given)
        except ValueError:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"{what}: expected an integer >= 0"
            ) from None
        if last > hub.last_id:
            # not an id of this process (one before a restart: ids start again at 1): waiting
            # for ids beyond it would send nothing for as many alerts, so replay what is kept
            last = 0
    else:
        last = hub.last_id
    heartbeat = service.settings.sse_heartbeat_seconds

    async def events() -> AsyncIterator[str]:
        nonlocal last
        wake = hub.subscribe()
        service.metrics.sse_clients.inc()
        try:
            yield f"retry: 1000\n: connected, last id {hub.last_id}\n\n"
            while True:
                items = hub.since(last, limit=500)
                if items:
                    last = items[-1]["id"]
                    yield _sse(items)
                    continue
                wake.clear()
                if hub.last_id > last:
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), heartbeat)
                except TimeoutError:
                    yield ": keep-alive\n\n"
        finally:
            hub.unsubscribe(wake)
            service.metrics.sse_clients.dec()

    return _event_stream(events())


def _event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(alerts: list[dict[str, Any]]) -> str:
    return "".join(f"id: {a['id']}\nevent: anomaly\ndata: {json.dumps(a)}\n\n" for a in alerts)


def _redis_events(service: AnomalyService, given: str | None, what: str) -> AsyncIterator[str]:
    """SSE over the Redis alert stream (XREAD BLOCK on an asyncio client)."""
    from anomaly_detection.api.shared import parse_stream_id, stream_id_order

    log = service.alert_log
    assert log is not None
    try:
        start = None if given is None else ("0-0" if given.strip() == "0" else parse_stream_id(given))
    except ValueError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{what}: {e}") from None
    heartbeat = service.settings.sse_heartbeat_seconds

    async def events() -> AsyncIterator[str]:
        service.metrics.sse_clients.inc()
        try:
            if start is None:
                last = await log.alast_id()
            else:
                last = start
                with contextlib.suppress(*redis_errors()):  # Redis down: the loop below retries
                    newest = await log.alast_id()
                    # an id beyond the newest was never given (made up, or from a flushed Redis):
                    # XREAD would wait silently for ids past it, as long as it is ahead of the clock
                    if stream_id_order(start) > stream_id_order(newest):
                        last = newest
            yield f"retry: 1000\n: connected, last id {last}\n\n"
            while True:
                try:
                    read, alerts = await log.aread(last, heartbeat)
                except redis_errors() as e:
                    service.metrics.store_errors.inc()
                    yield f": redis unavailable ({type(e).__name__}), retrying\n\n"
                    await asyncio.sleep(min(heartbeat, service.settings.redis_retry_interval))
                    continue
                if read == last:
                    yield ": keep-alive\n\n"
                    continue
                last = read
                if alerts:
                    yield _sse(alerts)
        finally:
            service.metrics.sse_clients.dec()

    return events()


@router.get("/health", response_model=HealthResponse, tags=["service"])
async def health(service: Service) -> dict[str, Any]:
    """Store, Redis reachability, degraded flag, uptime, version."""
    return await asyncio.to_thread(service.health) if service.redis_client is not None else service.health()


@router.get(
    "/metrics", tags=["service"], response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}, "example":
        'anomaly_points_ingested_total{source="detect"} 42.0\n'}},
        "description": "Prometheus text exposition (every worker's under serve --workers N)."},
        **_errors(503)},
)  # fmt: skip
async def prometheus_metrics(service: Service) -> Response:
    """Prometheus text exposition."""
    with _http_errors(service):
        service.metrics.sensors.set(len(await _off_loop(service, service.detector.sensors)))
    return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/config", response_model=ConfigResponse, tags=["service"])
async def config(service: Service) -> dict[str, Any]:
    """Effective settings, secrets redacted."""
    return service.public_config()


# --- the dashboard -----------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
async def dashboard() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/static/{name}", include_in_schema=False)
async def static_file(name: str) -> FileResponse:
    if name not in _STATIC_FILES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no static file {name!r}")
    return FileResponse(STATIC_DIR / name, media_type=_STATIC_FILES[name])


router.include_router(writes)


# --- the app ------------------------------------------------------------------------------------


class RequestMetricsMiddleware:
    """Counts requests by method, route template and status (pure ASGI: no body buffering)."""

    def __init__(self, app: Any, service: AnomalyService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status_code = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "<unmatched>"
            self.service.metrics.requests.labels(scope["method"], path, str(status_code)).inc()


class LeanBatchMiddleware:
    """``POST /api/batch`` with a JSON body of plain points, served without FastAPI's routing,
    dependency injection and request objects (pure ASGI, the innermost middleware).

    It takes a request only when FastAPI's route would accept it, checked with the route's
    own parts: the route's ``matches``, ``Content-Type: application/json``, the API-key
    dependency (:func:`require_write_key` with the same ``Security`` objects), the body
    parsed as :class:`_JSONBodyRequest` parses it and validated by :class:`BatchRequest`, and
    every item a plain point (:func:`_plain_batch`, the route's own fast path). Anything else
    (another route or content type, a missing or wrong key, a body the route would refuse,
    a mixed batch, dependency overrides, FastAPI telemetry) goes on to the app untouched,
    with the body replayed, before anything was stored; a mixed batch hands its parse on
    (no second parse). The answer is the route's: its response field serialised as the route
    does (``serialize_response``, JSON bytes), and an ``HTTPException`` of the scoring
    (413, 409, 503, 422) rendered by the app's own exception handlers. The request metrics,
    the body-size limit, CORS and idempotency keys are outer middlewares: they see the same.
    ``Settings.api_lean_batch = False`` leaves every request to FastAPI.
    """

    def __init__(self, app: Any, fastapi_app: FastAPI, route: APIRoute) -> None:
        from fastapi.datastructures import DefaultPlaceholder
        from starlette.middleware.exceptions import ExceptionMiddleware

        self.app = app
        self.fastapi_app = fastapi_app
        self.route = route
        deps = {dep.call for dep in route.dependant.dependencies}
        # the route as create_app builds it; another (extra dependencies, a response class) is
        # left to FastAPI
        self.enabled = (
            route.endpoint is post_batch
            and deps == {require_write_key, get_service}
            and isinstance(route.response_class, DefaultPlaceholder)
            and not fastapi_app.router.dependencies
        )
        # the app's exception handlers as FastAPI's build_middleware_stack passes them on
        handlers = {k: v for k, v in fastapi_app.exception_handlers.items() if k not in (500, Exception)}
        self._exception_middleware = ExceptionMiddleware
        self._handlers = handlers
        self._status = {"status_code": route.status_code} if route.status_code else {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not self.enabled
            or self.fastapi_app.dependency_overrides
            or "fastapi.telemetry" in scope
        ):
            await self.app(scope, receive, send)
            return
        match, child_scope = self.route.matches(scope)
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), None)
        if match is not Match.FULL or content_type != b"application/json":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                await self.app(scope, _repeat(message), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        receive = replay_body(body, receive)
        request = Request(scope, receive)
        try:
            service = await get_service(request)
            await require_write_key(service, await api_key_header(request), await bearer_token(request))
            value = from_json(body)
            batch = BatchRequest.model_validate(value)
        except Exception:  # noqa: BLE001 - nothing done yet: FastAPI's route answers (401, 403, 422, 400)
            await self.app(scope, receive, send)
            return
        scope.update(child_scope)  # the route, as FastAPI's router sets it (request metrics)
        answered = False

        async def answer(scope: Any, receive: Any, send: Any) -> None:
            nonlocal answered
            answered = True  # an exception now is the answer (the app's handlers render it)
            _, response = await _plain_batch(service, batch)
            if response is None:
                answered = False
                return
            route = self.route
            content = await serialize_response(
                field=route.response_field,
                response_content=response,
                include=route.response_model_include,
                exclude=route.response_model_exclude,
                by_alias=route.response_model_by_alias,
                exclude_unset=route.response_model_exclude_unset,
                exclude_defaults=route.response_model_exclude_defaults,
                exclude_none=route.response_model_exclude_none,
                dump_json=True,
            )
            await Response(content=content, media_type="application/json", **self._status)(
                scope, receive, send
            )

        handled = self._exception_middleware(answer, handlers=self._handlers, debug=self.fastapi_app.debug)
        await handled(scope, receive, send)
        if not answered:  # not all plain points: the route parses nothing again
            scope[_PARSED_BODY] = (body, value)
            await self.app(scope, receive, send)


def _repeat(message: dict[str, Any]) -> Callable[[], Coroutine[Any, Any, dict[str, Any]]]:
    async def receive() -> dict[str, Any]:
        return message

    return receive


def create_app(
    settings: Settings | None = None,
    *,
    detector: Any = None,
    redis_client: Any = None,
    fingerprints: Any = None,
) -> FastAPI:
    """The service: every endpoint of ``router``, the dashboard at ``/``, API keys,
    a request size limit, CORS and Prometheus metrics.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to ``get_settings()`` (the ``ANOMALY_*`` environment variables).
    detector : object, optional
        Use this detector instead of creating one from the settings.
    redis_client : redis client, optional
        With ``store_backend="redis"``: the client to use (else created from the settings).
    fingerprints : FingerprintPipeline, optional
        The system-fingerprint pipeline (default: 5-s intervals, warm-up of 60).
    """
    from anomaly_detection import __version__

    settings = settings if settings is not None else get_settings()
    service = AnomalyService(
        settings, detector=detector, redis_client=redis_client, fingerprints=fingerprints
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        flusher = asyncio.create_task(_flush_logs_forever(service))
        try:
            yield
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await service.aclose()
            service.metrics.mark_process_dead()

    app = FastAPI(
        title="anomaly-detection",
        version=__version__,
        description="Real-time anomaly detection for metric and sensor streams.",
        lifespan=lifespan,
        docs_url=None,  # served by _add_swagger_ui from the package's files, not from a CDN
        redoc_url=None,  # the same for ReDoc (_add_redoc)
    )
    _add_swagger_ui(app)
    _add_redoc(app)
    app.state.anomaly_service = service
    app.include_router(router)
    if settings.missing == "raise":
        _document_no_missing_values(app)
    app.add_exception_handler(RequestValidationError, _validation_error)
    if settings.api_lean_batch:  # innermost: every other middleware sees its requests
        batch_route = next(r for r in writes.routes if isinstance(r, APIRoute) and r.endpoint is post_batch)
        app.add_middleware(LeanBatchMiddleware, fastapi_app=app, route=batch_route)
    app.add_middleware(IdempotencyMiddleware, service=service)  # inside CORS and the size limit
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization", "Last-Event-ID"],
        )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestMetricsMiddleware, service=service)
    return app


def _document_no_missing_values(app: FastAPI) -> None:
    """The OpenAPI document of an app under ``missing="raise"``: ``value`` and the items of
    ``values`` are numbers, not null (a null is a 422 there)."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = make().get("components", {}).get("schemas", {})
            for model, field in (("DetectRequest", "value"), ("DetectBatchRequest", "values")):
                prop = schemas.get(model, {}).get("properties", {}).get(field, {})
                prop = prop.get("items", prop)
                kinds = [k for k in prop.get("anyOf", []) if k != {"type": "null"}]
                if len(kinds) == 1:
                    del prop["anyOf"]
                    prop.update(kinds[0])
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


#: Swagger UI's files as the fastapi-swagger package ships them (the ``api`` extra).
_SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def _add_swagger_ui(app: FastAPI) -> None:
    """``/docs``: FastAPI's Swagger UI page, its script and style served by this app from
    the installed ``fastapi-swagger`` package, so that the page works offline."""
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse

    assets = Path(str(files("fastapi_swagger") / "resources"))

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}/docs/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/favicon-32x32.png",
        )

    @app.get("/docs/{name}", include_in_schema=False)
    async def swagger_ui_file(name: str) -> FileResponse:
        if name not in _SWAGGER_FILES:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no Swagger UI file {name!r}")
        return FileResponse(assets / name, media_type=_SWAGGER_FILES[name])


#: ReDoc's files as the fastapi-standalone-docs package ships them (the ``api`` extra).
_REDOC_FILES = {"redoc.standalone.js": "text/javascript", "logo-mini.svg": "image/svg+xml"}


def _add_redoc(app: FastAPI) -> None:
    """``/redoc``: FastAPI's ReDoc page, ReDoc's standalone script served by this app from the
    installed ``fastapi-standalone-docs`` package (MIT; ReDoc itself is MIT), without Google
    Fonts, so that the page works offline. Without that package (it needs Python 3.11) the
    page loads ReDoc from FastAPI's default CDN."""
    from importlib.resources import files

    from fastapi.openapi.docs import get_redoc_html
    from fastapi.responses import HTMLResponse

    try:
        assets: Path | None = Path(str(files("fastapi_standalone_docs") / "static" / "redoc"))
    except ModuleNotFoundError:
        assets = None

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        local = {"redoc_js_url": f"{root}/redoc/redoc.standalone.js"} if assets is not None else {}
        return get_redoc_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - ReDoc",
            redoc_favicon_url=f"{root}/docs/favicon-32x32.png",
            with_google_fonts=False,
            **local,
        )

    @app.get("/redoc/{name}", include_in_schema=False)
    async def redoc_file(name: str) -> FileResponse:
        if assets is None or name not in _REDOC_FILES:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ReDoc file {name!r}")
        return FileResponse(assets / name, media_type=_REDOC_FILES[name])


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with FastAPI's error list, minus the echoed input (it may hold NaN, which JSON
    cannot carry, or data the client would rather not see logged back)."""
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in err.items() if k in ("type", "loc", "msg")} for err in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _flush_logs_forever(service: AnomalyService) -> None:
    """Close the collector's log-rate intervals on time, even when no log arrives."""
    period = min(service.settings.log_rate_interval / 2, 1.0)
    while True:
        await asyncio.sleep(period)
        points = service.collector.flush_logs()
        if service.fingerprints.auto_flush:
            try:
                await asyncio.to_thread(service.fingerprints.flush)
            except Exception:  # noqa: BLE001 - keep flushing; Redis errors are counted
                service.metrics.store_errors.inc()
        if points:
            try:
                await service.ingest(points)
            except Exception:  # noqa: BLE001 - keep flushing; the store reports its own errors
                service.metrics.store_errors.inc()

"""Request and response bodies of the HTTP service (pydantic), with OpenAPI examples.

The collector bodies accept what the original prototype's examples send, both spellings where
it shows two: ``level``/``log_level``, ``metric_name``/``metric_type``, metrics
nested under ``metrics`` or flat, batch items as ``{"type", "data"}`` or flat.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from anomaly_detection import _core
from anomaly_detection.core.validation import as_timestamp, check_sensor_name

__all__ = [
    "AlertModel",
    "AnomaliesPage",
    "ConfigResponse",
    "ErrorItem",
    "ErrorResponse",
    "FingerprintsResponse",
    "HealthResponse",
    "BatchRequest",
    "BusinessMetricRequest",
    "DetectBatchRequest",
    "DetectBatchResponse",
    "DetectRequest",
    "DetectResponse",
    "IngestResponse",
    "LogRequest",
    "MetricRequest",
    "SensorList",
    "WindowResponse",
]

# strict: a JSON true/false is not a number (lax pydantic takes it as 1.0/0.0; the library
# refuses a bool value or timestamp); ints are still numbers.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]
StrictFloat = Annotated[float, Field(strict=True)]
#: An ISO-8601 text timestamp (``datetime.fromisoformat``; documented as RFC 3339 ``date-time``).
IsoTimestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Timestamp = Annotated[
    StrictFloat | IsoTimestamp | None,
    Field(description="Epoch seconds or ISO-8601 (naive = UTC); omitted means now."),
]

LOG_LEVELS = ("DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "FATAL")
#: Levels that count towards a service's error-log rate.
ERROR_LEVELS = frozenset({"ERROR", "CRITICAL", "FATAL"})


#: The sensor-name rule of the core (``_core.check_sensor_name``) as a JSON Schema, for the
#: OpenAPI document only (the core's check gives the error): not "." or "..", none of
#: ``: * ? [ ] { }``, no whitespace, control or invisible character; at most 200 bytes of
#: UTF-8, which ``maxLength`` (characters) bounds only for ASCII names.
SENSOR_NAME_SCHEMA: dict[str, Any] = {
    "minLength": 1,
    "maxLength": 200,
    "pattern": r"^(?!\.\.?$)[^\x00-\x20\x7f-\xa0\xad\u1680\u180e\u2000-\u200f\u2028-\u202f"
    r"\u205f-\u206f\u3000\ufeff\ufff9-\ufffb:*?\[\]{}]+$",
}
SENSOR_NAME_DOC = (
    "No ':', '*', '?', brackets, braces, whitespace or invisible characters; not '.' or '..'; <= 200 bytes."
)


def _one_of_required(*names: str, schema: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``anyOf`` branches: at least one of ``names`` is present and matches ``schema`` (not null)."""
    return [{"required": [n], "properties": {n: schema or {"type": "string"}}} for n in names]


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in word)


#: The log levels the collector takes, in any case, blanks around (``WARN`` and ``ERR`` too).
_LEVELS_ANY_CASE = "|".join(_any_case(w) for w in (*LOG_LEVELS, "WARN", "ERR"))
LEVEL_PATTERN = rf"^\s*({_LEVELS_ANY_CASE})\s*$"


def _timestamp(value: Any) -> float | None:
    return None if value is None else as_timestamp(value)


def _finite_number(value: Any) -> float | None:
    """A float for a JSON number (not a bool), None for anything else; ValueError if not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"expected a finite number, got {value!r}")
    return v


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", str_max_length=10_000)


# --- detection --------------------------------------------------------------------------


class DetectRequest(BaseModel):
    """One point of one sensor."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"sensor_name": "pump-1", "value": 21.5, "timestamp": 1700000000}]},
    )

    sensor_name: str = Field(description=SENSOR_NAME_DOC, json_schema_extra=SENSOR_NAME_SCHEMA)
    value: FiniteFloat | None = Field(
        description="null is a missing value: skipped under ANOMALY_MISSING=skip, a 422 otherwise"
    )
    timestamp: Timestamp = None

    _check_name = field_validator("sensor_name")(lambda cls, v: check_sensor_name(v))
    _check_ts = field_validator("timestamp")(lambda cls, v: _timestamp(v))


class DetectBatchRequest(BaseModel):
    """Points of one sensor, in order."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"sensor_name": "pump-1", "values": [21.5, 21.7, 35.0], "timestamps": [1, 2, 3]}]
        },
    )

    sensor_name: str = Field(description=SENSOR_NAME_DOC, json_schema_extra=SENSOR_NAME_SCHEMA)
    values: list[FiniteFloat | None] = Field(
        min_length=1,
        description="null is a missing value: skipped under ANOMALY_MISSING=skip, a 422 otherwise",
    )
    timestamps: list[StrictFloat | IsoTimestamp] | None = None

    _check_name = field_validator("sensor_name")(lambda cls, v: check_sensor_name(v))

    @field_validator("timestamps")
    @classmethod
    def _check_timestamps(cls, v: list[float | str] | None) -> list[float] | None:
        return None if v is None else [as_timestamp(t) for t in v]

    @model_validator(mode="after")
    def _same_length(self) -> DetectBatchRequest:
        if self.timestamps is not None and len(self.timestamps) != len(self.values):
            raise ValueError(
                f"timestamps: expected {len(self.values)} (as many as values), got {len(self.timestamps)}"
            )
        return self


class DetectResponse(BaseModel):
    """The fields of ``AnomalyResult``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{
                "sensor_name": "pump-1", "value": 35.0, "timestamp": 1700000000.0, "is_anomaly": True,
                "score": 0.97, "deviation": 6.2, "expected": 21.6, "window_count": 100, "threshold": 0.5,
                "method": "ensemble", "warming_up": False,
            }]
        }
    )  # fmt: skip

    sensor_name: str
    value: float | None = Field(
        description="null for a skipped missing value (as score, deviation, expected)"
    )
    timestamp: float
    is_anomaly: bool
    score: float | None
    deviation: float | None
    expected: float | None
    window_count: int
    threshold: float
    method: str
    warming_up: bool = Field(
        description="the detector had learned too few points of this sensor to flag anything yet "
        "(min_samples; 300 for the ensemble, and on series sampled faster than every five minutes until its "
        "likelihoods score: 750 points at one minute): the point was scored on little history"
    )


class DetectBatchResponse(BaseModel):
    """The fields of ``BatchResult``, as lists."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{
                "sensor_name": "pump-1", "method": "zscore", "threshold": 3.0, "values": [21.5, 21.7, 35.0],
                "timestamps": [1.0, 2.0, 3.0], "is_anomaly": [False, False, False],
                "scores": [0.0, 0.0, 0.0], "alert_scores": [0.0, 0.0, 0.0], "deviations": [0.0, 0.0, 0.0],
                "expected": [21.5, 21.5, 21.6], "window_counts": [0, 1, 2], "anomaly_count": 0,
                "warming_up": [True, True, True],
            }]
        }
    )  # fmt: skip

    sensor_name: str
    method: str
    threshold: float
    values: list[float | None]
    timestamps: list[float]
    is_anomaly: list[bool]
    scores: list[float | None] = Field(
        description="rank points (ROC, PR, VUS); null for a skipped missing value"
    )
    alert_scores: list[float | None] = Field(
        description="what the flags are raised on (one alarm per incident)"
    )
    deviations: list[float | None]
    expected: list[float | None]
    window_counts: list[int]
    anomaly_count: int
    warming_up: list[bool] = Field(description="per point, as ``warming_up`` of /api/detect")


# --- the collector (the original prototype's bodies) ----------------------------------------------------

#: Fields of a metric body that never are measurements.
_METRIC_RESERVED = frozenset({"service", "endpoint", "metrics", "timestamp", "type", "tags", "metadata"})


def _some_number_but(names: frozenset[str] | set[str]) -> dict[str, Any]:
    """JSON Schema of an object with a number under some name not in ``names`` nor ending in ``_id``
    (not: every other property is not a number)."""
    return {
        "type": "object",
        "not": {
            "properties": {n: {} for n in sorted(names)},
            "patternProperties": {"_id$": {}},
            "additionalProperties": {"not": {"type": "number"}},
        },
    }


class MetricRequest(_Body):
    """Application metrics of one service endpoint, nested under ``metrics`` or flat.

    Every numeric field becomes a measurement (``status_code`` becomes an error flag:
    1 for 5xx, else 0), except fields named ``*_id``.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service": "payment-service",
                    "endpoint": "POST:/api/payments",
                    "metrics": {"response_time": 150, "status_code": 200, "payload_size": 1024},
                },
                {
                    "service": "user-service",
                    "endpoint": "/api/users",
                    "response_time": 245,
                    "status_code": 200,
                    "timestamp": "2024-01-15T10:30:00Z",
                    "user_id": "user123",
                },
            ],
            # at least one measurement: a number under 'metrics' or a top-level one, not named *_id
            "anyOf": [
                {"required": ["metrics"], "properties": {"metrics": _some_number_but({"timestamp"})}},
                _some_number_but(_METRIC_RESERVED),
            ],
        }
    )

    service: str = Field(min_length=1, max_length=100)
    endpoint: str | None = Field(None, max_length=200)
    metrics: dict[str, Any] | None = None
    timestamp: Timestamp = None
    _found: dict[str, float] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _measurements(self) -> MetricRequest:
        found: dict[str, float] = {}
        nested = dict(self.metrics or {})
        if "timestamp" in nested and self.timestamp is None:
            self.timestamp = nested.pop("timestamp")
        nested.pop("timestamp", None)
        flat = {k: v for k, v in (self.model_extra or {}).items() if k not in _METRIC_RESERVED}
        for name, raw in [*nested.items(), *flat.items()]:
            if name.endswith("_id"):
                continue
            try:
                v = _finite_number(raw)
            except ValueError as e:
                raise ValueError(f"metrics.{name}: {e}") from None
            if v is not None:
                found[name] = v
        if not found:
            raise ValueError(
                "expected at least one numeric measurement (under 'metrics' or as a top-level field)"
            )
        self.timestamp = _timestamp(self.timestamp)
        self._found = found
        return self

    @property
    def measurements(self) -> dict[str, float]:
        return self._found


class BusinessMetricRequest(_Body):
    """A business KPI: ``metric_name`` (or ``metric_type``), ``value``, optional ``expected_range``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "metric_name": "daily_revenue",
                    "value": 45000,
                    "expected_range": [40000, 60000],
                    "metadata": {"currency": "USD", "region": "US-WEST"},
                },
                {
                    "metric_type": "revenue",
                    "value": 15420.5,
                    "currency": "USD",
                    "timestamp": "2024-01-15T10:30:00Z",
                },
            ],
            "anyOf": _one_of_required(
                "metric_name", "metric_type", schema={"type": "string", "minLength": 1}
            ),
        }
    )

    metric_name: str | None = Field(None, min_length=1, max_length=150)
    metric_type: str | None = Field(None, min_length=1, max_length=150)
    value: FiniteFloat
    expected_range: tuple[FiniteFloat, FiniteFloat] | None = None
    timestamp: Timestamp = None
    metadata: dict[str, Any] | None = None

    _check_ts = field_validator("timestamp")(lambda cls, v: _timestamp(v))

    @model_validator(mode="after")
    def _name_and_range(self) -> BusinessMetricRequest:
        if not (self.metric_name or self.metric_type):
            raise ValueError("expected 'metric_name' (or 'metric_type')")
        if self.expected_range is not None and self.expected_range[0] > self.expected_range[1]:
            raise ValueError(
                f"expected_range: expected [low, high] with low <= high, got {self.expected_range}"
            )
        return self

    @property
    def name(self) -> str:
        return self.metric_name or self.metric_type  # type: ignore[return-value]

    @property
    def out_of_range(self) -> bool:
        lo_hi = self.expected_range
        return lo_hi is not None and not (lo_hi[0] <= self.value <= lo_hi[1])


class LogRequest(_Body):
    """One log record: ``level`` (or ``log_level``), ``message``, ``service``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "log_level": "ERROR",
                    "message": "Database connection timeout",
                    "service": "user-service",
                    "context": {"user_id": "12345"},
                },
                {
                    "level": "ERROR",
                    "message": "Database connection timeout",
                    "service": "payment-service",
                    "timestamp": "2024-01-15T10:30:00Z",
                    "trace_id": "trace789",
                    "metadata": {"database": "payment_db", "retry_count": 3},
                },
            ],
            # the level is 'level' unless it is null or empty, then 'log_level'
            "anyOf": [
                {
                    "required": ["level"],
                    "properties": {"level": {"type": "string", "pattern": LEVEL_PATTERN}},
                },
                {
                    "required": ["log_level"],
                    "properties": {
                        "level": {"anyOf": [{"type": "null"}, {"const": ""}]},
                        "log_level": {"type": "string", "pattern": LEVEL_PATTERN},
                    },
                },
            ],
        }
    )

    level: str | None = None
    log_level: str | None = None
    message: str = Field(min_length=1)
    service: str = Field("unknown", min_length=1, max_length=100)
    timestamp: Timestamp = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    _check_ts = field_validator("timestamp")(lambda cls, v: _timestamp(v))

    @model_validator(mode="after")
    def _level(self) -> LogRequest:
        raw = self.level or self.log_level
        if not raw:
            raise ValueError("expected 'level' (or 'log_level')")
        level = raw.strip().upper()
        level = {"WARN": "WARNING", "ERR": "ERROR"}.get(level, level)
        if level not in LOG_LEVELS:
            raise ValueError(f"level: expected one of {', '.join(LOG_LEVELS)}, got {raw!r}")
        self.level = level
        return self

    @property
    def is_error(self) -> bool:
        return self.level in ERROR_LEVELS


class PointItem(DetectRequest):
    """A raw detector point inside a batch."""

    model_config = ConfigDict(extra="ignore")


BatchKind = Literal["metric", "business", "log", "point"]

_KIND_ALIASES: dict[str, BatchKind] = {
    "metric": "metric", "metrics": "metric", "application": "metric", "app": "metric",
    "business": "business", "business_metric": "business", "business-metric": "business", "kpi": "business",
    "log": "log", "logs": "log",
    "point": "point", "sensor": "point", "detect": "point",
}  # fmt: skip

_KIND_MODELS: dict[str, type[BaseModel]] = {
    "metric": MetricRequest,
    "business": BusinessMetricRequest,
    "log": LogRequest,
    "point": PointItem,
}


_POINT_KEYS = frozenset({"type", "sensor_name", "value", "timestamp"})


_NUMBER = (float, int)


def fast_point(raw: Any) -> tuple[str, float, float | None] | None:
    """``(sensor, value, timestamp)`` for a flat point item of plain numbers, else None.

    The common high-volume item skips the model; anything unusual goes through
    :func:`parse_batch_item`. Sensor names are checked later, once per name.
    """
    if type(raw) is not dict or raw.get("type") != "point" or not raw.keys() <= _POINT_KEYS:
        return None
    name, value, ts = raw.get("sensor_name"), raw.get("value"), raw.get("timestamp")
    if type(name) is not str or type(value) not in _NUMBER or (ts is not None and type(ts) not in _NUMBER):
        return None
    try:
        value, ts = float(value), None if ts is None else float(ts)
    except OverflowError:  # an integer beyond float64: the model reports it
        return None
    if not math.isfinite(value) or (ts is not None and not math.isfinite(ts)):
        return None
    return name, value, ts


def point_groups(items: list[Any], now: float) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """float64 ``(values, timestamps)`` per sensor (in order; sensors in order of first
    appearance) when every item is a flat point of plain numbers, else None (the caller takes
    the general path, which also reports the errors).

    A flat point: a dict whose keys are ``type`` (``"point"``), ``sensor_name`` (a str),
    ``value`` (an int or float) and optionally ``timestamp`` (an int, a float or None: ``now``),
    every number finite and within float64. One pass in the bindings (``_core.group_points``:
    ~10x the Python loop it replaces, benchmarks/README.md); sensor names are checked later,
    once per name."""
    return _core.group_points(items, now)


def parse_batch_item(raw: Any) -> tuple[BatchKind, BaseModel]:
    """The kind and validated body of one batch item (``{"type", "data"}`` or flat)."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected an object, got {type(raw).__name__}")  # noqa: TRY004 - a 422, not a bug
    kind_name = raw.get("type")
    if not isinstance(kind_name, str) or kind_name.lower() not in _KIND_ALIASES:
        raise ValueError(f"type: expected one of {sorted(_KIND_ALIASES)}, got {kind_name!r}")
    kind = _KIND_ALIASES[kind_name.lower()]
    data = raw.get("data")
    if isinstance(data, dict):
        body = data
    else:
        body = {k: v for k, v in raw.items() if k != "type"}
    return kind, _KIND_MODELS[kind].model_validate(body)


class BatchRequest(BaseModel):
    """Mixed items under ``metrics`` (or ``items``): application metrics, business metrics, logs, points."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "metrics": [
                        {
                            "type": "application",
                            "service": "api-gateway",
                            "endpoint": "GET:/api/users",
                            "metrics": {"response_time": 89, "status_code": 200},
                        },
                        {"type": "business", "metric_name": "user_registrations", "value": 23},
                        {"type": "log", "log_level": "INFO", "message": "User login", "service": "auth-service"},
                    ]
                },
                {
                    "batch_id": "batch123",
                    "metrics": [
                        {"type": "metric", "data": {"service": "order-service", "endpoint": "/api/orders",
                                                    "response_time": 180, "status_code": 200}},
                        {"type": "business_metric", "data": {"metric_type": "order_value", "value": 299.99}},
                    ],
                },
            ],
            "anyOf": _one_of_required("metrics", "items", schema={"type": "array"}),
        },
    )  # fmt: skip

    batch_id: str | None = Field(None, max_length=200)
    metrics: list[Any] | None = None
    items: list[Any] | None = None

    @model_validator(mode="after")
    def _one_list(self) -> BatchRequest:
        if self.metrics is None and self.items is None:
            raise ValueError("expected a list under 'metrics' (or 'items')")
        return self

    @property
    def raw_items(self) -> list[Any]:
        return [*(self.metrics or []), *(self.items or [])]


class IngestResponse(BaseModel):
    """What the collector accepted."""

    status: Literal["accepted"] = "accepted"
    records: int = Field(description="Records accepted (batch items, or 1).")
    points: int = Field(description="Detector points derived from them.")
    sensors: list[str] = Field(description="Sensor names the points went to.")
    anomalies: list[AlertModel] = Field(description="Alerts raised by these points.")
    batch_id: str | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{
                "status": "accepted", "records": 2, "points": 3, "batch_id": "batch123",
                "sensors": ["payment-service.POST_api_payments.response_time",
                            "payment-service.POST_api_payments.error", "business.daily_revenue"],
                "anomalies": [],
            }]
        }
    )  # fmt: skip


# --- reading ------------------------------------------------------------------------------


class AlertModel(BaseModel):
    """An alert: an anomalous ``AnomalyResult`` plus id, severity and source."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{
                "id": 7, "received_at": 1700000000.2, "sensor_name": "pump-1", "value": 35.0,
                "timestamp": 1700000000.0, "is_anomaly": True, "score": 0.97, "deviation": 6.2,
                "expected": 21.6, "window_count": 100, "threshold": 0.5, "method": "ensemble",
                "warming_up": False, "severity": "critical", "source": "detect",
            }]
        },
    )  # fmt: skip

    #: An integer in this process, a Redis stream id (``<ms>-<seq>``) with Redis.
    id: int | str
    received_at: float
    sensor_name: str
    value: float
    timestamp: float
    score: float
    severity: Literal["warning", "critical"]
    method: str
    source: str


class AnomaliesPage(BaseModel):
    """One page of alerts, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{
                "total": 1, "limit": 100, "offset": 0,
                "items": [AlertModel.model_config["json_schema_extra"]["examples"][0]],  # type: ignore[index]
            }]
        }
    )  # fmt: skip

    total: int = Field(description="Alerts matching the filters (all pages).")
    limit: int
    offset: int
    items: list[AlertModel]


class SensorList(BaseModel):
    """The sensors with state."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"count": 2, "sensors": ["pump-1", "pump-2"]}]})

    count: int
    sensors: list[str]


class WindowResponse(BaseModel):
    """A sensor's window, oldest first, and its statistics."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{
                "sensor_name": "pump-1", "values": [21.5, 21.7, 21.6], "timestamps": [1.0, 2.0, 3.0],
                "stats": {"sensor_name": "pump-1", "method": "zscore", "threshold": 3.0, "points_seen": 3,
                          "anomalies": 0, "window_count": 3, "mean": 21.6, "stddev": 0.1, "min": 21.5,
                          "max": 21.7, "last_timestamp": 3.0, "warming_up": True},
            }]
        }
    )  # fmt: skip

    sensor_name: str
    values: list[float]
    timestamps: list[float]
    stats: dict[str, Any] | None = None


class FingerprintsResponse(BaseModel):
    """Recent system fingerprints (oldest first) with their scores, and the pipeline's status."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{
                "items": [{
                    "start": 1700000000.0, "end": 1700000005.0, "features": {"requests": 120.0},
                    "vector": [120.0], "counts": {"metric": 120}, "score": None, "threshold": None,
                    "is_anomaly": False, "top_features": [], "deviations": {},
                }],
                "feature_names": ["requests"],
                "status": {"interval": 5.0, "open_interval": 1700000005.0, "emitted": 1, "late_events": 0,
                           "rejected_records": 0, "stream": None,
                           "detector": {"fitted": False, "seen": 1, "warmup": 60, "training": 1, "fits": 0,
                                        "loads": 0, "skipped_fits": 0, "threshold": None}},
                "note": "one fingerprint per 5 s interval; scores after a warm-up of 60 fingerprints",
                "collector": {"records": {"metric": 120}, "open_log_buckets": 0},
            }]
        }
    )  # fmt: skip

    items: list[dict[str, Any]] = Field(
        description="Fingerprints: start, end, features, vector, counts, score and threshold (null "
        "during warm-up), is_anomaly, top_features, deviations."
    )
    feature_names: list[str]
    status: dict[str, Any] = Field(
        description="The pipeline: interval, emitted, late events, detector warm-up."
    )
    note: str
    collector: dict[str, Any] = Field(description="Records received by kind, open log-rate buckets.")


class RedisState(BaseModel):
    """Redis as this worker sees it; with ``error`` (the client error's type) when unreachable."""

    model_config = ConfigDict(extra="allow")

    configured: bool
    reachable: bool | None = Field(description="null without Redis")


class HealthResponse(BaseModel):
    """Store, Redis reachability, degraded flag, uptime, version of this worker."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{
                "status": "ok", "degraded": False, "store": {"store": "embedded", "degraded": False, "sensors": 2},
                "redis": {"configured": False, "reachable": None}, "uptime_seconds": 12.5, "version": "0.1.0",
                "anomalies_count": 0, "worker_pid": 4242, "sse_clients": 0,
                "collector": {"records": {"metric": 3}, "open_log_buckets": 0},
            }]
        }
    )  # fmt: skip

    status: Literal["ok", "degraded"]
    degraded: bool
    store: dict[str, Any] = Field(description="The store's own health (kind, degraded, sensors, ...).")
    redis: RedisState
    uptime_seconds: float
    version: str
    anomalies_count: int
    worker_pid: int
    sse_clients: int
    collector: dict[str, Any]


class ErrorItem(BaseModel):
    """One failing field of a request."""

    type: str | None = None
    loc: list[str | int] = Field(description="Where: body, query or path, then the field.")
    msg: str


class ErrorResponse(BaseModel):
    """Every error of the service: a message, or the failing fields (422)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"detail": "invalid API key"},
                {"detail": [{"type": "missing", "loc": ["body", "sensor_name"], "msg": "Field required"}]},
            ]
        }
    )

    detail: str | list[ErrorItem]


def _config_model() -> type[BaseModel]:
    """``/config``: every field of ``Settings``, the secrets replaced by a placeholder."""
    from pydantic import create_model

    from anomaly_detection.config.settings import Settings

    redacted = {"api_keys": str, "redis_password": str | None, "redis_url": str | None}
    fields: dict[str, Any] = {
        name: (redacted.get(name, field.annotation), Field(description=field.description))
        for name, field in Settings.model_fields.items()
    }
    example = Settings.model_construct().model_dump(mode="json")  # the defaults, not the environment
    example.update(api_keys="<0 configured>", redis_password=None, redis_url=None)
    return create_model(
        "ConfigResponse",
        __doc__="The effective settings, secrets redacted (``api_keys`` shows how many are configured).",
        __config__=ConfigDict(json_schema_extra={"examples": [example]}),
        **fields,
    )


ConfigResponse = _config_model()

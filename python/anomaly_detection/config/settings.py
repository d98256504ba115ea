"""Settings read from the environment, validated on creation.

Every field is read from the environment variable of its name in capitals with
the prefix ``ANOMALY_`` (case-insensitive), e.g. ``ANOMALY_WINDOW_SIZE=200`` or
``ANOMALY_REDIS_HOST=redis``; the prefix keeps a host application's own
``WINDOW_SIZE`` or ``REDIS_HOST`` out. A ``.env`` file is read only when asked
for: ``Settings(_env_file=".env")``. Keyword arguments win over the environment;
an unknown one raises ``TypeError`` naming the closest setting.

``Settings`` is the one table of the scoring methods, their default thresholds
and ranges; :meth:`Settings.to_detector_config` and
:meth:`Settings.from_detector_config` convert to and from the C++ core's
``DetectorConfig``, which validates but keeps no defaults of its own.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from anomaly_detection import _core

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ENV_PREFIX",
    "METHODS",
    "REDIS_MAX_DB",
    "REDIS_MAX_TTL",
    "SECRET_FIELDS",
    "THRESHOLD_FIELDS",
    "Settings",
    "check_cluster_database",
    "check_redis_url",
    "get_settings",
    "redis_url_database",
]

#: The longest TTL (seconds) Redis's ``EXPIRE`` takes: it keeps expiry times in
#: milliseconds since the epoch in a signed 64-bit integer (10**15 s leaves room for "now").
REDIS_MAX_TTL = 10**15

#: The largest database number Redis's ``SELECT`` parses (a C int; a server has
#: ``databases`` of them, 16 by default).
REDIS_MAX_DB = 2**31 - 1

#: The prefix of every environment variable that Settings reads.
ENV_PREFIX = "ANOMALY_"

#: The scoring methods of StatisticalAnomalyDetector.
METHODS = ("zscore", "mad", "iqr", "ewma", "cusum", "ensemble")

#: The Settings field that holds each method's threshold.
THRESHOLD_FIELDS = {
    "zscore": "zscore_threshold", "mad": "mad_threshold", "iqr": "iqr_multiplier",
    "ewma": "ewma_threshold", "cusum": "cusum_threshold", "ensemble": "ensemble_threshold",
}  # fmt: skip

#: Settings whose values never appear in an error message, a log or ``repr``.
SECRET_FIELDS = frozenset({"redis_password", "redis_url", "api_keys"})

Method = Literal["zscore", "mad", "iqr", "ewma", "cusum", "ensemble"]


class Settings(BaseSettings):
    """Configuration of the detector, its stores and the HTTP service."""

    # Unknown environment variables under the prefix are ignored (a host may set its own);
    # unknown keyword arguments and attributes are refused by __init__ and __setattr__.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=None,
        env_file_encoding="utf-8",
        extra="ignore",
        validate_assignment=True,
    )

    # --- Redis (the original prototype's names and defaults) ---
    redis_host: str = "localhost"
    redis_port: int = Field(6379, ge=1, le=65535)
    redis_db: int = Field(0, ge=0, le=REDIS_MAX_DB)
    redis_password: str | None = Field(None, repr=False)
    redis_ssl: bool = False
    #: CA bundle that verifies the server's certificate with ``redis_ssl`` (default: the system's).
    redis_ssl_ca_certs: str | None = None
    redis_key_prefix: str = Field("anomaly", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    #: A full URL (``redis://``, ``rediss://``, ``unix://``) overrides host/port/db/password/ssl.
    redis_url: str | None = Field(None, repr=False)
    #: Connect to a Redis Cluster instead of a single node.
    redis_cluster: bool = False
    #: Wrap the sensor part of keys in a hash tag (``{sensor}``) so that all keys of
    #: one sensor live in one Cluster slot.
    redis_hash_tag: bool = False
    redis_socket_timeout: float = Field(2.0, gt=0)
    #: ``fallback``: keep detecting on the embedded store while Redis is down and write
    #: the buffered points back later; ``strict``: raise StoreUnavailableError.
    fallback_policy: Literal["fallback", "strict"] = "fallback"
    #: Points buffered while Redis is down (fallback policy); beyond it detection raises
    #: StoreUnavailableError rather than drop a point.
    fallback_buffer_size: int = Field(1_000_000, ge=1)
    #: Seconds between attempts to reach Redis again while degraded.
    redis_retry_interval: float = Field(1.0, gt=0)
    #: Seconds between the background probes of an unreachable Redis (the circuit
    #: breaker); None: ``redis_retry_interval``.
    redis_probe_interval: float | None = Field(None, gt=0, le=3600)
    #: The HTTP service on a single Redis node awaits its detection requests through a
    #: ``redis.asyncio`` twin of its client on the event loop (no worker thread a request)
    #: instead of running them on worker threads; the breaker, write-back and alert outbox
    #: stay on the sync client either way. Off by default: on the 2 shared cores measured it
    #: was not faster (threads overlap the loop's work with Redis round trips; benchmarks/README.md).
    redis_async_requests: bool = False
    #: With Redis, write each anomaly as an alert (key, channel, stream).
    redis_alerts: bool = True
    #: Alerts kept in the capped alert stream (``XADD MAXLEN ~``).
    alerts_stream_maxlen: int = Field(10_000, ge=1)

    # --- detection ---
    #: The scoring method. The ensemble (the default) needs no tuning but learns for 300
    #: points per sensor before it scores; each method reads its own threshold field
    #: (THRESHOLD_FIELDS), so choosing another method without a threshold gives that
    #: method's conventional one.
    detection_method: Method = "ensemble"
    window_size: int = Field(100, ge=2, le=10_000_000)
    #: No point is flagged before this many points of a sensor were seen.
    min_samples: int = Field(10, ge=2)
    zscore_threshold: float = Field(3.0, gt=0, allow_inf_nan=False)
    mad_threshold: float = Field(3.5, gt=0, allow_inf_nan=False)
    iqr_multiplier: float = Field(1.5, gt=0, allow_inf_nan=False)
    ewma_threshold: float = Field(3.0, gt=0, allow_inf_nan=False)
    ewma_alpha: float = Field(0.3, gt=0, le=1)
    cusum_threshold: float = Field(5.0, gt=0, allow_inf_nan=False)
    cusum_k: float = Field(0.5, ge=0, allow_inf_nan=False)
    #: The ensemble's alarm level on its calibrated score in (0, 1]; 0.5 is a
    #: tail probability of 1e-5 (see docs/ensemble.md).
    ensemble_threshold: float = Field(0.5, gt=0, le=1, allow_inf_nan=False)
    #: One alarm per incident: after an alarm, the ensemble raises none for this many
    #: points (an int, at most 1,000,000), or for this long by the points' timestamps (a
    #: ``timedelta`` or a duration such as ``"30min"``, ``"90s"``, ``"2h"``, ``"1d"``, or
    #: ISO 8601 ``"PT30M"``): its alert scores stay below the threshold; its scores are
    #: untouched.
    alert_cooldown: int | timedelta = 100
    #: Whether points flagged as anomalies enter the window.
    include_anomalies_in_window: bool = True
    #: A missing value (NaN, or None in a list): "raise" (a ValueError) or "skip"
    #: (not scored, changes no state, comes back with is_anomaly False and NaN scores).
    missing: Literal["raise", "skip"] = "raise"
    #: Maximum number of sensors kept (0 = unlimited); beyond it SensorLimitError. A
    #: sensor costs 4-115 KB with the default window (docs/settings.md#memory): 10,000
    #: ensemble sensors are about 1.1 GB.
    max_sensors: int = Field(10_000, ge=0)
    #: How long a sensor lives without updates (seconds): its Redis keys expire, and the
    #: embedded store forgets it lazily (see EmbeddedStore), at the latest when room is needed.
    temp_data_ttl: int = Field(3600, ge=1, le=REDIS_MAX_TTL)

    # --- HTTP service ---
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    #: Keys that writes must present (``X-API-Key`` or ``Authorization: Bearer``);
    #: empty means no authentication. Comma-separated or a JSON list in the env.
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_request_bytes: int = Field(1_048_576, ge=1024)
    max_batch_items: int = Field(10_000, ge=1)
    #: The HTTP service answers the common ``POST /api/batch`` (a JSON body of plain points)
    #: on a lean ASGI path before FastAPI's router, with the same answers (bytes, status codes,
    #: errors); False: FastAPI's route for every request.
    api_lean_batch: bool = True
    #: Distinct sensors one request may write to (413 beyond it): a request cannot fill
    #: ``max_sensors`` on its own.
    max_sensors_per_request: int = Field(500, ge=1)
    #: ``anomaly-detection serve`` binds beyond 127.0.0.1 without ``api_keys`` only when
    #: this is set (or ``--allow-anonymous-writes`` is given).
    allow_anonymous_writes: bool = False
    #: Where the service keeps sensor windows: ``embedded`` (this process) or ``redis``
    #: (the Redis settings above; needed for several workers).
    store_backend: Literal["embedded", "redis"] = "embedded"
    #: Recent alerts kept in memory for ``/api/anomalies`` and SSE replay (``Last-Event-ID``).
    alert_buffer_size: int = Field(10_000, ge=1, le=10_000_000)
    #: Seconds between SSE keep-alive comments.
    #: at least 0.1 s: a keep-alive comment every microsecond would flood the stream's clients
    sse_heartbeat_seconds: float = Field(15.0, ge=0.1, le=3600)
    #: Width (seconds) of the buckets in which ``/api/logs`` counts error logs per service.
    log_rate_interval: float = Field(10.0, gt=0, le=86_400)

    def __init__(self, **values: Any) -> None:
        # pydantic-settings' own options (``_env_file``, ``_env_prefix`` ...) start with "_".
        check_setting_names(type(self), (k for k in values if not k.startswith("_")))
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise redact_secrets(exc) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            check_setting_names(type(self), (name,))
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise redact_secrets(exc) from None

    @model_validator(mode="before")
    @classmethod
    def _method_threshold(cls, data: Any) -> Any:
        # ``threshold=`` is the threshold of the chosen method: it goes to that method's field.
        if not isinstance(data, dict) or "threshold" not in data:
            return data
        data = dict(data)
        threshold = data.pop("threshold")
        method = data.get("detection_method", cls.model_fields["detection_method"].default)
        if method in THRESHOLD_FIELDS:
            data[THRESHOLD_FIELDS[method]] = threshold
        return data  # an unknown method fails on its own field

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, v: object) -> object:
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            parts = [part.strip() for part in text.split(",")]
            if text and not any(parts):
                # " , " would otherwise be no key at all: authentication silently off.
                raise ValueError(f"expected comma-separated non-empty entries, got only separators: {v!r}")
            return [part for part in parts if part]
        return v

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, v: str | None) -> str | None:
        return None if v is None else check_redis_url(v)

    @field_validator("alert_cooldown", mode="before")
    @classmethod
    def _parse_cooldown(cls, v: object) -> object:
        return parse_cooldown(v)

    @field_validator("alert_cooldown")
    @classmethod
    def _check_cooldown(cls, v: int | timedelta) -> int | timedelta:
        return parse_cooldown(v)  # the range again, for what pydantic parsed (ISO 8601 "-PT1M")

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, keys: list[str]) -> list[str]:
        for i, key in enumerate(keys):
            if not key.strip():
                raise ValueError(f"api_keys[{i}]: expected a non-blank key, got {key!r}")
        return keys

    @model_validator(mode="after")
    def _check_cluster(self) -> Settings:
        if self.redis_cluster:
            check_cluster_database(redis_url_database(self.redis_url) if self.redis_url else self.redis_db)
        return self

    @model_validator(mode="after")
    def _check_warmup(self) -> Settings:
        if self.min_samples > self.window_size:
            raise ValueError(
                f"min_samples ({self.min_samples}) must not exceed window_size ({self.window_size})"
            )
        return self

    @property
    def threshold(self) -> float:
        """The threshold of the configured method (setting it sets that method's field)."""
        return getattr(self, THRESHOLD_FIELDS[self.detection_method])

    @threshold.setter
    def threshold(self, value: float) -> None:
        setattr(self, THRESHOLD_FIELDS[self.detection_method], value)

    def replace(self, **changes: Any) -> Settings:
        """A validated copy with ``changes`` applied (``threshold=`` sets the method's own
        field); unknown names raise ``TypeError``, invalid values ``ValueError``."""
        check_setting_names(type(self), changes)
        try:
            return type(self).model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise redact_secrets(exc) from None

    # --- the C++ core's configuration ---

    def to_detector_config(self) -> _core.DetectorConfig:
        """The core's ``DetectorConfig`` for these settings (validated by the core too)."""
        from anomaly_detection import _core

        config = _core.DetectorConfig()
        for field, value in self._detector_fields().items():
            setattr(config, field, value)
        config.validate()
        return config

    @classmethod
    def from_detector_config(cls, config: _core.DetectorConfig, base: Settings | None = None) -> Settings:
        """Settings whose detection fields are those of ``config`` and whose other fields
        are those of ``base`` (default: ``Settings()``); the inverse of
        :meth:`to_detector_config`."""
        base = base if base is not None else cls()
        changes = {name: getattr(config, field) for field, name in _CONFIG_FIELDS.items()}
        changes["threshold"] = config.threshold
        if config.alert_cooldown_seconds > 0:
            changes["alert_cooldown"] = timedelta(seconds=config.alert_cooldown_seconds)
        return base.replace(**changes)

    def _detector_fields(self) -> dict[str, Any]:
        values = {field: getattr(self, name) for field, name in _CONFIG_FIELDS.items()}
        values["threshold"] = self.threshold
        cooldown = self.alert_cooldown
        seconds = cooldown.total_seconds() if isinstance(cooldown, timedelta) else 0.0
        values["alert_cooldown"] = 0 if isinstance(cooldown, timedelta) else cooldown
        values["alert_cooldown_seconds"] = seconds
        return values

    @property
    def alert_cooldown_seconds(self) -> float | None:
        """The cooldown in seconds when it is a duration, None when it is in points."""
        cooldown = self.alert_cooldown
        return cooldown.total_seconds() if isinstance(cooldown, timedelta) else None


#: DetectorConfig attribute -> Settings field (the threshold travels as the method's own).
_CONFIG_FIELDS = {
    "method": "detection_method",
    "window_size": "window_size",
    "min_samples": "min_samples",
    "include_anomalies": "include_anomalies_in_window",
    "ewma_alpha": "ewma_alpha",
    "cusum_k": "cusum_k",
    "max_sensors": "max_sensors",
    "alert_cooldown": "alert_cooldown",
}


def redact_secrets(exc: ValidationError) -> ValidationError:
    """``exc`` with the input of every error of a secret field (SECRET_FIELDS) replaced by
    ``'<redacted>'``: pydantic's message repeats the input (``input_value=...``), which would put a
    password or an API key into logs. The field, the error and its message stay."""
    errors = exc.errors()
    line_errors: list[Any] = []
    redacted = False
    for err in errors:
        line = {"type": err["type"], "loc": err["loc"], "input": err["input"]}
        if "ctx" in err:
            line["ctx"] = err["ctx"]
        if err["loc"] and err["loc"][0] in SECRET_FIELDS:
            line["input"] = "<redacted>"
        elif isinstance(err["input"], dict) and SECRET_FIELDS & err["input"].keys():
            # a model-level error (min_samples > window_size) shows every value given
            line["input"] = {k: "<redacted>" if k in SECRET_FIELDS else v for k, v in err["input"].items()}
        redacted |= line["input"] is not err["input"]
        line_errors.append(line)
    return ValidationError.from_exception_data(exc.title, line_errors) if redacted else exc


def check_redis_url(url: str) -> str:
    """``url`` when redis-py reads it as written, else ``ValueError`` (the one check of a
    Redis URL given by a user: ``Settings.redis_url``, ``redis_client_from_settings(url=)``,
    the CLI's ``--url``). An empty string is no URL (host/port/db are used).

    The scheme must be ``redis://``, ``rediss://`` or ``unix://`` and the port a number;
    the database, from ``?db=N`` or the path ``/N`` of a ``redis://``/``rediss://`` URL,
    a whole number in 0..REDIS_MAX_DB. redis-py took a path that is not a number
    (``redis://host:6379/abc``) for database 0, silently, and sent a negative one to the
    server. The message never repeats the URL, which may hold a password.
    """
    if url:
        redis_url_database(url)
    return url


def redis_url_database(url: str) -> int:
    """The database a non-empty Redis URL names (0 when it names none), or ``ValueError``
    as :func:`check_redis_url` gives it."""
    from urllib.parse import parse_qs, unquote, urlparse

    if not url.lower().startswith(("redis://", "rediss://", "unix://")):
        scheme = url.split("://", 1)[0] if "://" in url else ""
        got = f"the scheme {scheme!r}" if scheme.isalnum() else "no known scheme"
        raise ValueError(f"Redis URL: expected redis://, rediss:// or unix://, got {got}")
    parts = urlparse(url)
    try:
        parts.port  # noqa: B018 (urllib checks the port when it is read)
    except ValueError as exc:
        raise ValueError(f"Redis URL: {exc}") from None
    query = parse_qs(parts.query, keep_blank_values=True).get("db", [])
    path = "" if parts.scheme == "unix" else unquote(parts.path).removeprefix("/").removesuffix("/")
    given = [*query, path] if path else query  # a unix:// path is the socket's; "redis://h/" names none
    for text in given:
        if not (text.isascii() and text.isdigit() and int(text) <= REDIS_MAX_DB):
            raise ValueError(
                f"Redis URL: the database {text!r} is not a whole number in 0..{REDIS_MAX_DB} "
                "(redis://host:port/N or ?db=N)"
            )
    return int(given[0]) if given else 0  # redis-py: the first ?db= wins over the path


def check_cluster_database(database: int) -> None:
    """``ValueError`` unless ``database`` is 0: a Redis Cluster has database 0 only (redis-py
    failed later, at its first command, with an error of its own)."""
    if database != 0:
        raise ValueError(
            f"redis_cluster: a Redis Cluster has database 0 only, got database {database} "
            "(redis_db or the URL's /N or ?db=N)"
        )


#: The longest alert cooldown: in points, and in seconds (the core's limits).
MAX_COOLDOWN_POINTS = 1_000_000
MAX_COOLDOWN_SECONDS = 1e10

_UNIT_SECONDS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)\s*$", re.IGNORECASE)


def parse_cooldown(v: object) -> object:
    """An alert cooldown as ``Settings`` keeps it: an int of points (an int, or a string
    of digits) or a ``timedelta`` (a ``timedelta``, or a string with a unit: ``"30min"``,
    ``"90s"``, ``"1.5h"``, ``"2d"``, ``"1w"``; other strings go to pydantic's ``timedelta``
    parser, so ISO 8601 ``"PT30M"`` works too). Raises ``ValueError`` out of range."""
    if isinstance(v, bool):
        # a ValueError: pydantic reports it as a validation error of the field
        raise ValueError("alert_cooldown: expected points (an int) or a duration, got a bool")  # noqa: TRY004
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError(
                f"alert_cooldown: expected points (an int) or a duration such as '30s', got {v!r}"
            )
        v = int(v)
    if isinstance(v, str):
        text = v.strip()
        if text.isdigit():
            v = int(text)
        elif (match := _DURATION.match(text)) is not None:
            unit = match.group(2).lower()
            if unit not in _UNIT_SECONDS:
                raise ValueError(
                    f"alert_cooldown: unknown unit {match.group(2)!r} in {v!r} (expected s, min, h, d or w)"
                )
            seconds = float(match.group(1)) * _UNIT_SECONDS[unit]
            if not seconds <= MAX_COOLDOWN_SECONDS:  # before timedelta, which overflows (or takes inf)
                raise ValueError(f"alert_cooldown: expected a duration of 0..1e10 seconds, got {text[:40]!r}")
            v = timedelta(seconds=seconds)
        else:
            return v  # pydantic's timedelta parser (ISO 8601, [-][DD]HH:MM:SS) or its error
    if isinstance(v, int) and not 0 <= v <= MAX_COOLDOWN_POINTS:
        raise ValueError(f"alert_cooldown: expected 0..{MAX_COOLDOWN_POINTS} points, got {v}")
    if isinstance(v, timedelta) and not 0 <= v.total_seconds() <= MAX_COOLDOWN_SECONDS:
        raise ValueError(f"alert_cooldown: expected a duration of 0..1e10 seconds, got {v}")
    return v


#: Each method's default threshold (the defaults of the fields in THRESHOLD_FIELDS).
DEFAULT_THRESHOLDS = {m: Settings.model_fields[f].default for m, f in THRESHOLD_FIELDS.items()}


def check_setting_names(cls: type[BaseSettings], names: Iterable[str]) -> None:
    """Raise ``TypeError`` for a name that is not a setting of ``cls``, naming the closest one."""
    known = cls.model_fields.keys() | {"threshold"}
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(str(name), sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise TypeError(f"{cls.__name__}: unknown setting {name!r}{hint}")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, created once (use with FastAPI's ``Depends``)."""
    return Settings()

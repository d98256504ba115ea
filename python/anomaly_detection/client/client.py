"""Sync and async clients of the service, on httpx; the retry policy is tenacity's.

Each call has one deadline (``timeout`` seconds) that covers every retry, so a
caller's request path is never held longer than that. A call is retried only where a
repeat cannot store twice: reads (GET), and writes that carry an ``Idempotency-Key``,
which every write of this client does (one key per logical call, the same on each of its
retries; ``send_batch(..., batch_id=...)`` uses the batch id), so the server stores a
retried write once and answers with its first response. A write without a key
(``request("POST", ...)`` called directly) is only retried when the connection could
not be opened (the request never left). Retries wait with jittered exponential backoff
(``backoff * 2**n`` plus up to ``backoff`` at random) or, on 429/503 with
``Retry-After``, as long as the server asks; they follow connection errors, timeouts,
429 and 5xx (and the server's 409 for a repeat still in flight); other errors are raised
at once. With ``batching=True``, ``send_metric``/``send_business_metric``/``send_log``
only queue the record (bounded; the oldest is dropped when full) and a background
flusher posts the queue to ``/api/batch`` every ``flush_interval`` seconds or when
``batch_size`` records are waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import tenacity
from typing_extensions import Self

__all__ = ["AnomalyClient", "AnomalyClientError", "AsyncAnomalyClient", "new_idempotency_key"]

_log = logging.getLogger(__name__)
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class AnomalyClientError(RuntimeError):
    """A request failed for good (after retries, or with a non-retryable status).

    ``status_code`` is None when no response came (connection error, timeout);
    ``retry_after`` the seconds the server asked to wait (``Retry-After``), if any.
    """

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        detail: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail
        self.retry_after = retry_after
        #: Whether the failure may go away on a retry (the caller decides whether it is safe).
        self.transient = False
        #: Whether the request surely never reached the server (the connection was refused).
        self.unsent = False


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def new_idempotency_key() -> str:
    """A fresh key for one logical write (a UUID4, 32 hex digits)."""
    return uuid.uuid4().hex


def _detect_body(sensor_name: str, value: float, timestamp: Any) -> dict[str, Any]:
    body = {"sensor_name": sensor_name, "value": value}
    if timestamp is not None:
        body["timestamp"] = timestamp
    return body


def _detect_batch_body(sensor_name: str, values: Sequence[float], timestamps: Any) -> dict[str, Any]:
    body = {"sensor_name": sensor_name, "values": list(values)}
    if timestamps is not None:
        body["timestamps"] = list(timestamps)
    return body


def _metric_body(data: Mapping[str, Any] | None, kw: dict[str, Any]) -> dict[str, Any]:
    return {**(data or {}), **kw}


def _business_body(
    name: str | Mapping[str, Any], value: float | None, expected_range: Any, kw: dict[str, Any]
):
    if isinstance(name, Mapping):
        return {**name, **kw}
    if value is None:
        raise ValueError("send_business_metric: expected a value")
    body: dict[str, Any] = {"metric_name": name, "value": value, **kw}
    if expected_range is not None:
        body["expected_range"] = list(expected_range)
    return body


def _log_body(level: str | Mapping[str, Any], message: str | None, service: str | None, kw: dict[str, Any]):
    if isinstance(level, Mapping):
        return {**level, **kw}
    if message is None:
        raise ValueError("send_log: expected a message")
    body: dict[str, Any] = {"level": level, "message": message, **kw}
    if service is not None:
        body["service"] = service
    return body


class _Base:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 2.0,
        max_retries: int = 3,
        backoff: float = 0.05,
        batching: bool = False,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
    ) -> None:
        if timeout <= 0 or backoff < 0 or max_retries < 0:
            raise ValueError("timeout must be > 0, backoff >= 0 and max_retries >= 0")
        if batch_size < 1 or flush_interval <= 0 or max_queue < 1:
            raise ValueError("batch_size and max_queue must be >= 1, flush_interval > 0")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.batching = batching
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._queue: deque[dict[str, Any]] = deque(maxlen=max_queue)
        #: Records dropped because the queue was full or a flush failed for good.
        self.dropped = 0
        self.sent = 0
        self._headers = {"X-API-Key": api_key} if api_key else {}

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}({self.base_url!r}, batching={self.batching})"

    def _enqueue(self, item: dict[str, Any]) -> None:
        if self._http.is_closed:  # no flusher and no final flush would ever send it
            raise RuntimeError("the client is closed: a record queued now would never be sent")
        # Checked now, as an unbatched send is: a value JSON cannot carry (NaN, inf, an
        # object) would otherwise fail the background flush, away from its caller.
        try:
            json.dumps(item, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{item.get('type')} record: expected JSON values: {e}") from e
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(item)

    def _take(self) -> list[dict[str, Any]]:
        items = []
        while self._queue and len(items) < self.batch_size:
            items.append(self._queue.popleft())
        return items

    def _result(self, response: httpx.Response, keyed: bool) -> Any:
        """The decoded body on success; raises AnomalyClientError (``transient`` when a retry
        may help) otherwise."""
        if response.status_code < 400:
            ctype = response.headers.get("content-type", "")
            if not ctype.startswith("application/json"):
                return response.text
            try:
                return response.json()
            except ValueError as e:  # a proxy's page, a cut body: no JSON despite the header
                raise AnomalyClientError(
                    f"{response.request.method} {response.request.url.path}: HTTP {response.status_code}: "
                    f"the body is not JSON ({e})",
                    response.status_code,
                    response.text,
                ) from e
        error = self._error(response)
        # 409 with Retry-After is the server's "a request with this key is still in flight".
        error.transient = response.status_code in _RETRY_STATUS or (
            keyed and response.status_code == 409 and error.retry_after is not None
        )
        raise error

    @staticmethod
    def _transport_error(what: str, exc: httpx.TransportError) -> AnomalyClientError:
        error = AnomalyClientError(f"{what}: {type(exc).__name__}: {exc}")
        error.transient = True
        error.unsent = isinstance(exc, httpx.ConnectError)
        return error

    def _policy(self, method: str, keyed: bool) -> dict[str, Any]:
        """tenacity's arguments for one call: which failures to retry, how long to wait, when to stop."""
        safe = method.upper() in _SAFE_METHODS or keyed

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, AnomalyClientError) and exc.transient and (safe or exc.unsent)

        # backoff * 2**n (n = 0, 1, ...) plus up to backoff at random
        backoff = tenacity.wait_exponential(multiplier=self.backoff, max=self.timeout) + tenacity.wait_random(
            0, self.backoff
        )

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            if isinstance(exc, AnomalyClientError) and exc.retry_after is not None:
                return exc.retry_after
            return backoff(state)

        return {
            "retry": tenacity.retry_if_exception(retryable),
            "wait": wait,
            # never past the deadline: stop when the next pause would end after it
            "stop": tenacity.stop_after_attempt(self.max_retries + 1)
            | tenacity.stop_before_delay(self.timeout),
            "reraise": True,
        }

    def _batch_bodies(self, items: Sequence[Mapping[str, Any]], batch_id: str | None) -> list[dict[str, Any]]:
        bodies = []
        for i in range(0, len(items), self.batch_size):
            body: dict[str, Any] = {"metrics": list(items[i : i + self.batch_size])}
            if batch_id is not None:
                body["batch_id"] = batch_id
            bodies.append(body)
        return bodies

    @staticmethod
    def _batch_keys(batch_id: str | None, n: int) -> list[str]:
        """One idempotency key per request of a batch: the batch id (``<id>.<i>`` when split)."""
        if batch_id is None:
            return [new_idempotency_key() for _ in range(n)]
        return [batch_id] if n == 1 else [f"{batch_id}.{i}" for i in range(n)]

    @staticmethod
    def _error(response: httpx.Response) -> AnomalyClientError:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        # FastAPI's {"detail": ...}; a proxy or gateway may answer any JSON (a list, a string).
        detail = body.get("detail") if isinstance(body, dict) else body
        return AnomalyClientError(
            f"{response.request.method} {response.request.url.path}: HTTP {response.status_code}: {detail}",
            response.status_code,
            detail,
            _retry_after(response),
        )


class AnomalyClient(_Base):
    """Synchronous client (thread-safe; the batching flusher is a daemon thread).

    Parameters
    ----------
    base_url : str
        E.g. ``http://127.0.0.1:8000``.
    api_key : str, optional
        Sent as ``X-API-Key``.
    timeout : float
        Deadline of one call, retries included (seconds).
    max_retries, backoff : int, float
        Retries after the first attempt (only where safe: reads, and writes with their
        ``Idempotency-Key``); sleep ``backoff * 2**n`` plus up to ``backoff`` at random
        between them, or the server's ``Retry-After``.
    batching : bool
        Queue ``send_*`` records and post them to ``/api/batch`` in the background.
    batch_size, flush_interval, max_queue : int, float, int
        Records per batch request, seconds between flushes, queue bound.
    transport : httpx.BaseTransport, optional
        For tests or custom networking.
    """

    def __init__(
        self, base_url: str, api_key: str | None = None, *, transport: Any = None, **options: Any
    ) -> None:
        super().__init__(base_url, api_key, **options)
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers, transport=transport)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._flusher: threading.Thread | None = None
        if self.batching:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="anomaly-client-flush", daemon=True
            )
            self._flusher.start()

    # --- transport ---------------------------------------------------------------------------

    def request(
        self, method: str, path: str, json: Any = None, params: Any = None, idempotency_key: str | None = None
    ) -> Any:
        """One call with retries inside the deadline; the decoded JSON (or text).

        A POST is retried only with an ``idempotency_key`` (sent as ``Idempotency-Key``,
        the same on every attempt) or when its connection was refused."""
        start = time.monotonic()
        deadline = start + self.timeout
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
        what = f"{method} {path}"
        for attempt in tenacity.Retrying(
            sleep=time.sleep, **self._policy(method, idempotency_key is not None)
        ):
            with attempt:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AnomalyClientError(f"{what}: deadline of {self.timeout} s exceeded")
                try:
                    response = self._http.request(
                        method, path, json=json, params=params, headers=headers, timeout=remaining
                    )
                except httpx.TransportError as e:
                    raise self._transport_error(what, e) from e
                return self._result(response, idempotency_key is not None)
        raise AssertionError("unreachable: tenacity re-raises the last failure")  # pragma: no cover

    # --- the API ----------------------------------------------------------------------------

    def send_metric(self, data: Mapping[str, Any] | None = None, **fields: Any) -> Any:
        """Application metrics: ``{"service", "endpoint", "metrics": {...}}`` or flat fields."""
        return self._send("metric", "/api/metrics", _metric_body(data, fields))

    def send_business_metric(
        self, name: str | Mapping[str, Any], value: float | None = None, expected_range: Sequence[float] | None = None,
        **fields: Any,
    ) -> Any:  # fmt: skip
        """A KPI: ``send_business_metric("daily_revenue", 45000, [40000, 60000])`` or a dict body."""
        return self._send(
            "business", "/api/business-metrics", _business_body(name, value, expected_range, fields)
        )

    def send_log(
        self,
        level: str | Mapping[str, Any],
        message: str | None = None,
        service: str | None = None,
        **fields: Any,
    ) -> Any:
        """A log record: ``send_log("ERROR", "Database timeout", "user-service")`` or a dict body."""
        return self._send("log", "/api/logs", _log_body(level, message, service, fields))

    def send_batch(self, items: Sequence[Mapping[str, Any]], batch_id: str | None = None) -> list[Any]:
        """Post ``items`` (``{"type", ...}``) now, in requests of ``batch_size``; the responses."""
        bodies = self._batch_bodies(items, batch_id)
        return [
            self.request("POST", "/api/batch", json=body, idempotency_key=key)
            for body, key in zip(bodies, self._batch_keys(batch_id, len(bodies)))
        ]

    def detect(self, sensor_name: str, value: float, timestamp: Any = None) -> dict[str, Any]:
        body = _detect_body(sensor_name, value, timestamp)
        return self.request("POST", "/api/detect", json=body, idempotency_key=new_idempotency_key())

    def detect_batch(
        self, sensor_name: str, values: Sequence[float], timestamps: Any = None
    ) -> dict[str, Any]:
        body = _detect_batch_body(sensor_name, values, timestamps)
        return self.request("POST", "/api/detect/batch", json=body, idempotency_key=new_idempotency_key())

    def anomalies(self, **params: Any) -> dict[str, Any]:
        return self.request("GET", "/api/anomalies", params=params)

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/health")

    health_check = health  # the original prototype's name

    # --- batching ---------------------------------------------------------------------------

    def _send(self, kind: str, path: str, body: dict[str, Any]) -> Any:
        if not self.batching:
            return self.request("POST", path, json=body, idempotency_key=new_idempotency_key())
        with self._lock:
            self._enqueue({"type": kind, **body})
            full = len(self._queue) >= self.batch_size
        if full:
            self._wake.set()
        return None

    def flush(self) -> int:
        """Post everything queued now; the number of records sent."""
        sent = 0
        while True:
            with self._lock:
                items = self._take()
            if not items:
                return sent
            try:
                self.request(
                    "POST", "/api/batch", json={"metrics": items}, idempotency_key=new_idempotency_key()
                )
            except Exception as e:  # noqa: BLE001 - counted and logged: the flusher thread must live on
                self.dropped += len(items)
                _log.warning("anomaly client: dropped %d records: %s", len(items), e)
            else:
                sent += len(items)
                self.sent += len(items)

    def _flush_loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Flush what is queued and close the connection pool."""
        self._closed = True
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join(timeout=self.timeout + 1)
        self.flush()
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncAnomalyClient(_Base):
    """The asyncio twin of :class:`AnomalyClient` (same parameters; ``await`` each call).

    With ``batching=True`` the flusher is a task started on first use; ``await aclose()``
    (or ``async with``) flushes and stops it.
    """

    def __init__(
        self, base_url: str, api_key: str | None = None, *, transport: Any = None, **options: Any
    ) -> None:
        super().__init__(base_url, api_key, **options)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self._headers, transport=transport)
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._closing = False

    async def request(
        self, method: str, path: str, json: Any = None, params: Any = None, idempotency_key: str | None = None
    ) -> Any:
        """One call with retries inside the deadline (see :meth:`AnomalyClient.request`)."""
        start = time.monotonic()
        deadline = start + self.timeout
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
        what = f"{method} {path}"
        async for attempt in tenacity.AsyncRetrying(
            sleep=asyncio.sleep, **self._policy(method, idempotency_key is not None)
        ):
            with attempt:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AnomalyClientError(f"{what}: deadline of {self.timeout} s exceeded")
                try:
                    response = await self._http.request(
                        method, path, json=json, params=params, headers=headers, timeout=remaining
                    )
                except httpx.TransportError as e:
                    raise self._transport_error(what, e) from e
                return self._result(response, idempotency_key is not None)
        raise AssertionError("unreachable: tenacity re-raises the last failure")  # pragma: no cover

    async def send_metric(self, data: Mapping[str, Any] | None = None, **fields: Any) -> Any:
        return await self._send("metric", "/api/metrics", _metric_body(data, fields))

    async def send_business_metric(
        self, name: str | Mapping[str, Any], value: float | None = None, expected_range: Sequence[float] | None = None,
        **fields: Any,
    ) -> Any:  # fmt: skip
        return await self._send(
            "business", "/api/business-metrics", _business_body(name, value, expected_range, fields)
        )

    async def send_log(
        self,
        level: str | Mapping[str, Any],
        message: str | None = None,
        service: str | None = None,
        **fields: Any,
    ) -> Any:
        return await self._send("log", "/api/logs", _log_body(level, message, service, fields))

    async def send_batch(self, items: Sequence[Mapping[str, Any]], batch_id: str | None = None) -> list[Any]:
        bodies = self._batch_bodies(items, batch_id)
        return [
            await self.request("POST", "/api/batch", json=body, idempotency_key=key)
            for body, key in zip(bodies, self._batch_keys(batch_id, len(bodies)))
        ]

    async def detect(self, sensor_name: str, value: float, timestamp: Any = None) -> dict[str, Any]:
        body = _detect_body(sensor_name, value, timestamp)
        return await self.request("POST", "/api/detect", json=body, idempotency_key=new_idempotency_key())

    async def detect_batch(
        self, sensor_name: str, values: Sequence[float], timestamps: Any = None
    ) -> dict[str, Any]:
        body = _detect_batch_body(sensor_name, values, timestamps)
        return await self.request(
            "POST", "/api/detect/batch", json=body, idempotency_key=new_idempotency_key()
        )

    async def anomalies(self, **params: Any) -> dict[str, Any]:
        return await self.request("GET", "/api/anomalies", params=params)

    async def health(self) -> dict[str, Any]:
        return await self.request("GET", "/health")

    health_check = health  # the original prototype's name, as on AnomalyClient

    async def _send(self, kind: str, path: str, body: dict[str, Any]) -> Any:
        if not self.batching:
            return await self.request("POST", path, json=body, idempotency_key=new_idempotency_key())
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._flush_loop())
        self._enqueue({"type": kind, **body})
        if len(self._queue) >= self.batch_size and self._wake is not None:
            self._wake.set()
        return None

    async def flush(self) -> int:
        sent = 0
        while items := self._take():
            try:
                await self.request(
                    "POST", "/api/batch", json={"metrics": items}, idempotency_key=new_idempotency_key()
                )
            except Exception as e:  # noqa: BLE001, PERF203 - a failed batch is dropped, the rest still go
                self.dropped += len(items)
                _log.warning("anomaly client: dropped %d records: %s", len(items), e)
            else:
                sent += len(items)
                self.sent += len(items)
        return sent

    async def _flush_loop(self) -> None:
        assert self._wake is not None
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            await self.flush()

    async def aclose(self) -> None:
        """Flush what is queued and close the connection pool.

        A flush in progress is let finish (each request ends within its deadline), not
        cancelled: a cancelled flush would lose the records it had taken from the queue,
        counted neither as sent nor as dropped (and maybe stored by the server)."""
        self._closing = True
        if self._task is not None:
            assert self._wake is not None
            self._wake.set()
            await self._task
            self._task = None
        await self.flush()
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

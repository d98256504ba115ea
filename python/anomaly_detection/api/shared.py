"""Alerts shared by every worker through Redis (``store_backend="redis"``).

With several worker processes the in-memory :class:`~anomaly_detection.api.alerts.AlertHub`
of one process only sees its own alerts. With Redis the service writes every alert
once, with the writer of :mod:`anomaly_detection.redis.alerts` (stream, key, index, channel;
the stream id is the alert's ``id``). Given the detector's store as its breaker, it writes through
that module's :class:`~anomaly_detection.redis.alerts.RedisAlertSink`: an alert raised while
Redis is down is held (bounded, drops counted) and delivered once by the store's background
write-back when Redis is back, so every worker then sees it.

``GET /api/alerts/stream`` follows the stream with ``XREAD BLOCK`` on a
``redis.asyncio`` client (never blocking the event loop), so a Server-Sent Events
client sees the alerts of every worker, and ``Last-Event-ID`` (a stream id)
replays what it missed while the stream still holds it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from anomaly_detection.api.models import AlertModel
from anomaly_detection.redis.alerts import AlertWriter, Breaker, RedisAlertSink
from anomaly_detection.redis.client import async_client_like
from anomaly_detection.redis.codec import text as _text

__all__ = ["RedisAlertLog", "parse_stream_id", "stream_id_order"]

_STREAM_ID = re.compile(r"^[0-9]{1,20}(-[0-9]{1,20})?$")
_READ_CHUNK = 500
#: The largest part of a Redis stream id (an unsigned 64-bit integer): XREAD refuses more.
_MAX_ID_PART = 2**64 - 1
_log = logging.getLogger(__name__)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def alert_document(raw: Any, alert_id: str) -> dict[str, Any] | None:
    """The alert stored as ``raw`` (JSON) with its ``id``, or None, logged, when it is not one
    (corrupt bytes, another program's value, a document without an alert's fields, NaN):
    one bad entry is skipped, never a 500 for the page or a stream of invalid JSON."""
    try:
        doc = json.loads(raw, parse_constant=_no_constant)
        if not isinstance(doc, dict):
            raise ValueError(f"a JSON {type(doc).__name__}, not an object")  # noqa: TRY004
        doc = {**doc, "id": alert_id}
        AlertModel.model_validate(doc)
    # pydantic's ValidationError and UnicodeDecodeError included; RecursionError: nested 100,000 deep
    except (TypeError, ValueError, RecursionError) as exc:
        _log.warning("alert %s skipped: not an alert document (%s)", alert_id, str(exc).splitlines()[0][:200])
        return None
    return doc


def parse_stream_id(text: str) -> str:
    """A Redis stream id (``<ms>-<seq>`` or ``<ms>``); ValueError otherwise."""
    text = text.strip()
    if not _STREAM_ID.match(text) or any(int(part) > _MAX_ID_PART for part in text.split("-")):
        raise ValueError(
            f"expected a stream id like 1700000000000-0 (parts of at most {_MAX_ID_PART}), got {text[:45]!r}"
        )
    return text if "-" in text else f"{text}-0"


def stream_id_order(stream_id: str) -> tuple[int, int]:
    """A stream id (``<ms>-<seq>`` or ``<ms>``) as a key that orders ids as Redis does."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


class RedisAlertLog:
    """Writes the service's alerts to Redis and reads them back for every worker.

    Parameters
    ----------
    client : redis.Redis or redis.cluster.RedisCluster
        A synchronous client (alerts are written in the detecting thread).
    settings : Settings
        Key prefix, hash tags, ``alerts_stream_maxlen``, ``alert_buffer_size``.
    breaker : Breaker, optional
        The detector's store (:class:`~anomaly_detection.stores.redis.RedisStore`, sync client):
        alerts then go through a :class:`~anomaly_detection.redis.alerts.RedisAlertSink`, held
        while its breaker is open and delivered once by its write-back (``alerts_held``,
        ``alerts_delivered``, ``alerts_dropped`` in its ``health()["write_back"]``).
    """

    def __init__(self, client: Any, settings: Any, breaker: Breaker | None = None) -> None:
        self.client = client
        self.settings = settings
        self.writer = AlertWriter(client, settings, index_size=settings.alert_buffer_size)
        self.keys = self.writer.keys
        self.stream = self.writer.stream
        #: The outbox of alerts raised while Redis is down (None without a breaker).
        self.sink = (
            None if breaker is None else RedisAlertSink(client, settings, breaker=breaker, writer=self.writer)
        )
        self._aclient: Any = None

    # --- writing ------------------------------------------------------------------

    def publish(self, alert: Mapping[str, Any]) -> dict[str, Any] | None:
        """Append ``alert`` to the stream, store and index it, publish it; returns it with its
        ``id``. With a breaker: None when the alert was held for delivery when Redis is back
        (or dropped, the outbox being full); without, a Redis error is raised."""
        if self.sink is None:
            return self.writer.write(alert)
        return self.sink.send(alert, wait=True)

    # --- reading: /api/anomalies ----------------------------------------------------

    def query(
        self,
        sensor: str | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Newest first (by the point's timestamp), filtered by sensor and timestamp in [start, end]."""
        index = self.keys.alerts_index()
        low = "-inf" if start is None else repr(float(start))
        high = "+inf" if end is None else repr(float(end))
        if sensor is None:
            total = int(self.client.zcount(index, low, high))
            if offset >= total:  # past the end (Redis refuses an offset beyond its 64-bit integers)
                return total, []
            ids = self.client.zrevrangebyscore(index, high, low, start=offset, num=limit)
            return total, self._load(ids)
        matched: list[dict[str, Any]] = []
        position = 0
        while True:  # every alert in range is read to filter by sensor (the index holds a bounded number)
            ids = self.client.zrevrangebyscore(index, high, low, start=position, num=_READ_CHUNK)
            if not ids:
                break
            position += len(ids)
            matched.extend(a for a in self._load(ids) if a.get("sensor_name") == sensor)
        return len(matched), matched[offset : offset + limit]

    def _load(self, ids: list[Any]) -> list[dict[str, Any]]:
        if not ids:
            return []
        texts = [_text(alert_id) for alert_id in ids]
        good = [t for t in texts if _STREAM_ID.match(t)]
        if len(good) < len(texts):  # the index holds stream ids: anything else is not ours
            _log.warning("alert index: %d members that are not stream ids skipped", len(texts) - len(good))
        pipe = self.client.pipeline(transaction=False)
        for alert_id in good:
            pipe.get(self.keys.alert(alert_id))
        out = []
        for alert_id, raw in zip(good, pipe.execute(raise_on_error=False)):
            if raw is None:  # expired
                continue
            if isinstance(raw, Exception):  # another program's key of another type (WRONGTYPE)
                _log.warning("alert %s skipped: %s", alert_id, raw)
                continue
            doc = alert_document(raw, alert_id)
            if doc is not None:
                out.append(doc)
        return out

    def count(self) -> int:
        """Alerts currently held by the stream."""
        return int(self.client.xlen(self.stream))

    # --- reading: SSE ------------------------------------------------------------------

    def aclient(self) -> Any:
        """The ``redis.asyncio`` client of this process (created on first use)."""
        if self._aclient is None:
            block = self.settings.sse_heartbeat_seconds
            self._aclient = async_client_like(
                self.client, self.settings, block + self.settings.redis_socket_timeout
            )
        return self._aclient

    async def alast_id(self) -> str:
        """The id of the newest alert in the stream (``0-0`` when empty)."""
        newest = await self.aclient().xrevrange(self.stream, count=1)
        return _text(newest[0][0]) if newest else "0-0"

    async def aread(self, last_id: str, block_seconds: float) -> tuple[str, list[dict[str, Any]]]:
        """(the last id read, the alerts after ``last_id`` oldest first), waiting up to
        ``block_seconds`` for one; entries that are not alerts are passed over."""
        reply = await self.aclient().xread(
            {self.stream: last_id}, count=_READ_CHUNK, block=max(1, int(block_seconds * 1000))
        )
        out = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                last_id = _text(entry_id)
                raw = fields.get(b"alert", fields.get("alert"))
                doc = None if raw is None else alert_document(raw, last_id)
                if doc is not None:
                    out.append(doc)
        return last_id, out

    async def aclose(self) -> None:
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None

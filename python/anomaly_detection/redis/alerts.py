"""Alerts in Redis, written in one place, and the one severity rule.

An alert is written once (:class:`AlertWriter`) in this layout:

- appended to the capped stream ``anomaly:stream:alerts`` (``XADD MAXLEN ~``, field
  ``alert``, JSON) that consumer groups read, including what arrived while they were
  offline; the stream id (``<ms>-<seq>``) is the alert's ``id``;
- stored under ``anomaly:alerts:<id>`` (7-day TTL) and indexed by the point's timestamp
  (:meth:`AnomalyRedisManager.list_alerts`, ``GET /api/anomalies``);
- published on the channel ``anomaly:channel:alerts`` for live listeners.

An alert written with a ``delivery_id`` is delivered once: the stream entry and the
message on the channel are added by one script that first looks for the alert's delivery
mark (``anomaly:delivered:{anomaly:stream:alerts}:<delivery id>``, 7-day TTL), so that a
delivery retried after its reply was lost adds nothing; storing and indexing are the same
writes again. On a single node that one script also stores and indexes the alert (one call
an alert, pipelined: one round trip for a batch of alerts); on a Cluster, where the alert's
key (named by its stream id) is in no slot known beforehand, they follow it. :class:`RedisAlertSink` gives each alert an id, holds the alerts raised while
the store's circuit breaker is open (bounded, counting what it drops) and delivers them
when Redis is back.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from anomaly_detection.redis import scripts
from anomaly_detection.redis.codec import dumps, text
from anomaly_detection.redis.driver import (
    Batch,
    Driver,
    Script,
    Steps,
    command,
    down_errors,
    on_fork_in_child,
)
from anomaly_detection.redis.keys import AnomalyRedisTTL
from anomaly_detection.redis.manager import AnomalyRedisManager, alert_score

__all__ = ["AlertWriter", "Breaker", "RedisAlertSink", "alert_from_result", "alert_record", "severity_of"]

_log = logging.getLogger(__name__)


def severity_of(deviation: float, threshold: float) -> str:
    """``critical`` when the deviation is at least twice the threshold that flags it, else ``warning``.

    The one severity rule of every alert: a detector's (its deviation and threshold), a
    business metric's (how far outside its expected range), a fingerprint's (its largest
    robust deviation).
    """
    return "critical" if abs(deviation) >= 2.0 * threshold else "warning"


def alert_record(kind: str, deviation: float, threshold: float, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The document of every alert: ``type`` (``anomaly``, ``fingerprint``, ``expected_range``),
    ``severity`` by the one rule from ``deviation`` and ``threshold``, then ``fields`` (with at
    least ``sensor_name``, ``method`` and the point's ``timestamp``). A NaN or an infinity
    among the fields (a deviation that overflowed) is None: JSON, which the alert is stored
    and streamed as, has neither."""
    alert = {"type": kind, "severity": severity_of(deviation, threshold), **fields}
    for name, x in alert.items():
        if isinstance(x, float) and x - x != 0.0:  # NaN or +-inf
            alert[name] = None
    return alert


def alert_from_result(result: Any, alert_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """The document of an alert for an anomalous ``AnomalyResult``, with the ``extra`` fields
    (such as ``source``); the writer gives the id unless ``alert_id`` is passed."""
    alert = alert_record("anomaly", result.deviation, result.threshold, {**result.to_dict(), **extra})
    return alert if alert_id is None else {"id": alert_id, **alert}


def _document(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The document ``alert`` is written as: ``received_at`` now unless it has one, and no ``id``
    (the stream gives it)."""
    doc = {"received_at": time.time(), **alert}
    doc.pop("id", None)
    return doc


class AlertWriter:
    """Writes alerts (any JSON mapping with a ``timestamp``) in the layout above.

    Parameters
    ----------
    client : redis.Redis or redis.cluster.RedisCluster
        A synchronous client (alerts are written in the detecting thread).
    settings : Settings
        Key prefix, hash tags and ``alerts_stream_maxlen``.
    index_size : int
        How many alert ids the time index keeps.
    """

    def __init__(self, client: Any, settings: Any, index_size: int = 10_000) -> None:
        self.client = client
        self.manager = AnomalyRedisManager(client, settings, alerts_index_size=index_size)
        self.keys = self.manager.keys
        self.stream = self.keys.alerts_stream()
        self.maxlen = settings.alerts_stream_maxlen
        self._deliver = client.register_script(scripts.DELIVER_ALERT)
        self._deliver_store = client.register_script(scripts.DELIVER_STORE_ALERT)
        self._alert_prefix = self.keys.alert("x")[:-1]  # the alert's key is this and its stream id
        self._driver = Driver(client)

    def write(self, alert: Mapping[str, Any], *, delivery_id: str | None = None) -> dict[str, Any]:
        """Append, store, index and publish ``alert``; returns it with its ``id`` and ``received_at``.

        With ``delivery_id`` (a valid key part, unique to this alert) the alert is appended
        and published once however often it is written: write it again after a failure,
        with the same document (its ``received_at`` included) and id.
        """
        doc = _document(alert)
        payload = dumps(doc)
        channel = self.keys.alerts_channel()
        if delivery_id is None:
            stream_id = text(
                self.client.xadd(self.stream, {"alert": payload}, maxlen=self.maxlen, approximate=True)
            )
            stored = {"id": stream_id, **doc}
            self.manager.store_alert(stream_id, stored, timestamp=doc.get("timestamp"))
            self.client.publish(channel, dumps(stored))
            return stored
        if self._driver.is_cluster:
            return self._driver.run(self._once_steps(doc, payload, delivery_id))  # type: ignore[no-any-return]
        keys, args = self._deliver_args(doc, payload, delivery_id, alert_score(doc))
        return {"id": text(self._driver.run(self._one_step(keys, args))[0]), **doc}

    def _one_step(self, keys: list[str], args: list[Any]) -> Steps[Any]:
        return (yield Script(self._deliver_store, keys, args))  # type: ignore[no-any-return]

    def deliver_many(self, items: list[tuple[str, dict[str, Any]]], driver: Driver | None = None) -> Any:
        """:meth:`write` of each ``(delivery id, alert)`` with its delivery id, in order: the
        stream ids, in one round trip for all on a single node (one script an alert that also
        stores and indexes it, pipelined); on a Cluster, whose pipelines refuse EVALSHA, op by
        op (the delivery script, then the storing and indexing).
        Through ``driver`` if given (a ``redis.asyncio`` client to the same server: a coroutine
        of the ids is returned)."""
        driver = driver or self._driver
        if driver.is_cluster:
            steps = self._each_once_steps(items)
        else:
            steps = self._many_once_steps(items)
        return driver.run(steps)

    def _each_once_steps(self, items: list[tuple[str, dict[str, Any]]]) -> Steps[list[str]]:
        ids = []
        for delivery_id, alert in items:
            doc = _document(alert)
            ids.append((yield from self._once_steps(doc, dumps(doc), delivery_id))["id"])
        return ids

    def _many_once_steps(self, items: list[tuple[str, dict[str, Any]]]) -> Steps[list[str]]:
        from redis.exceptions import NoScriptError

        ops = []
        sha = self._deliver_store.sha
        for delivery_id, alert in items:  # every document checked before anything is sent
            doc = _document(alert)
            keys, args = self._deliver_args(doc, dumps(doc), delivery_id, alert_score(doc))
            ops.append(command("evalsha", sha, len(keys), *keys, *args))
        try:
            replies = yield Batch(tuple(ops), transaction=False)
        except NoScriptError:  # a new server (restart, SCRIPT FLUSH): none ran; a repeat adds nothing
            yield command("script_load", self._deliver_store.script)
            replies = yield Batch(tuple(ops), transaction=False)
        return [text(reply[0]) for reply in replies]

    def _once_steps(self, doc: dict[str, Any], payload: str, delivery_id: str) -> Steps[dict[str, Any]]:
        """The delivery of ``doc`` once (its JSON ``payload``): the script appends and publishes
        it unless its delivery mark says it was, then it is stored and indexed."""
        keys, args = self._deliver_args(doc, payload, delivery_id)
        stream_id = text((yield Script(self._deliver, keys, args))[0])
        stored = {"id": stream_id, **doc}
        yield from self.manager.store_alert.steps(
            self.manager, stream_id, stored, timestamp=doc.get("timestamp")
        )
        return stored

    def _deliver_args(
        self, doc: dict[str, Any], payload: str, delivery_id: str, score: float | None = None
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the delivery script (scripts.DELIVER_ALERT) for ``doc`` (its JSON
        ``payload``) with ``delivery_id``; with ``score`` (its time in the index), those of the
        script that also stores and indexes it (scripts.DELIVER_STORE_ALERT)."""
        # '{"id":"",...}': the script puts the stream id in. A document without an id (every
        # one _document makes) and its payload, dumps(doc), give it without a second dumps.
        if "id" not in doc and doc and payload.startswith("{"):
            message = '{"id":"",' + payload[1:]
        else:
            message = dumps({"id": "", **doc})
        cut = len('{"id":"')
        keys = [self.stream, self.keys.alert_delivery(delivery_id)]
        args = [self.maxlen, payload, AnomalyRedisTTL.ALERTS, self.keys.alerts_channel(), message[:cut],
                message[cut:]]  # fmt: skip
        if score is not None:
            keys.append(self.keys.alerts_index())
            args += [self._alert_prefix, repr(score), self.manager.alerts_index_size]
        return keys, args


class Breaker(Protocol):
    """What :class:`RedisAlertSink` needs of a store's circuit breaker
    (:class:`~anomaly_detection.stores.redis.RedisStore` is one)."""

    @property
    def degraded(self) -> bool: ...

    def trip(self, exc: BaseException) -> None: ...

    def add_recovery_task(
        self, task: Callable[[], bool], report: Callable[[], dict[str, int]] | None = None
    ) -> None: ...


class RedisAlertSink:
    """An alert listener (``detector.add_alert_listener(sink)``) that writes alerts to Redis.

    Parameters
    ----------
    redis_client : redis.Redis or redis.cluster.RedisCluster
    settings : Settings
        Key prefix, hash tags and ``alerts_stream_maxlen``.
    breaker : Breaker, optional
        The detector's store. With it, each alert gets a delivery id and is delivered once;
        while the breaker is open (Redis down) alerts are held, in order, and the store's
        background write-back delivers them when Redis is back (after the points); a write
        that fails opens the breaker. Without it, an alert is written at once (an error is
        raised to the detector, which logs it).
    outbox_size : int, optional
        Alerts held at most (:attr:`OUTBOX_SIZE`; about 1 KB each); beyond it a new alert is
        dropped and counted (``alerts_dropped`` in the store's ``health()["write_back"]``).
    writer : AlertWriter, optional
        The writer to use (the HTTP service's, with its index size); one is made otherwise.
    """

    #: Default ``outbox_size``.
    OUTBOX_SIZE = 10_000
    #: Held alerts delivered together (one round trip for all on a single node).
    DELIVERY_CHUNK = 100

    def __init__(
        self,
        redis_client: Any,
        settings: Any,
        *,
        breaker: Breaker | None = None,
        outbox_size: int | None = None,
        writer: AlertWriter | None = None,
    ) -> None:
        self.writer = AlertWriter(redis_client, settings) if writer is None else writer
        self.keys = self.writer.keys
        self.breaker = breaker
        self.outbox_size = self.OUTBOX_SIZE if outbox_size is None else int(outbox_size)
        if self.outbox_size < 0:
            raise ValueError(f"outbox_size: expected >= 0, got {outbox_size}")
        #: (delivery id, alert) of the alerts not yet delivered, oldest first.
        self.outbox: deque[tuple[str, dict[str, Any]]] = deque()
        self.dropped = 0
        self.delivered = 0
        self._hold_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one deliverer at a time, so the order is kept
        self._down = down_errors()
        self._new_delivery_ids()
        if breaker is not None:
            breaker.add_recovery_task(self.flush, self.outbox_counts)
        on_fork_in_child(self)

    def _after_fork_in_child(self) -> None:
        """A forked child holds no alerts (those held before the fork are the parent's to
        deliver) and has locks of its own."""
        self.outbox = deque()
        self._hold_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._new_delivery_ids()  # the parent's would name the parent's alerts

    def _new_delivery_ids(self) -> None:
        """Delivery ids of this sink's alerts: 32 hex digits, a random part of 80 bits drawn
        once per sink (and process) and a count (a ``uuid4`` per alert cost ~2 us)."""
        self._delivery_prefix = uuid.uuid4().hex[:20]
        self._delivery_count = itertools.count()

    def __call__(self, result: Any) -> dict[str, Any] | None:
        """Write the alert of ``result``: returned with its id when written now; None when
        held (Redis down, or another thread is delivering held alerts) or dropped."""
        return self.send(alert_from_result(result))

    def send(self, alert: Mapping[str, Any], *, wait: bool = False) -> dict[str, Any] | None:
        """Write ``alert`` (any alert document): returned with its ``id`` and ``received_at``
        when written now; None when held for the write-back (the breaker is open, or a write
        failed and opened it) or dropped (the outbox is full). With ``wait``, a thread that
        finds another one delivering waits for it (then its alert is written, or held because
        Redis failed meanwhile); without, it leaves its alert to that thread."""
        if self.breaker is None:
            return self.writer.write(alert)
        held = self._hold({"received_at": time.time(), **alert})
        if held is None or self.breaker.degraded:
            return None
        self._deliver(wait=wait, recovering=False)
        return held if "id" in held else None

    def hold(self, alert: Mapping[str, Any]) -> dict[str, Any] | None:
        """Queue ``alert`` for delivery without writing it (no I/O: an event loop's caller then
        awaits :meth:`adeliver`); the queued document, which gets its ``id`` once delivered, or
        None if the outbox is full (counted). Needs a breaker."""
        return self._hold({"received_at": time.time(), **alert})

    def deliver(self) -> None:
        """Deliver the held alerts now, oldest first, each once (after :meth:`hold` of several:
        one round trip on a single node for up to :attr:`DELIVERY_CHUNK` of them), as :meth:`send`
        with ``wait`` does: a thread that finds another one delivering waits for it; stops once
        the breaker is open (the write-back delivers the rest); a Redis failure opens it."""
        self._deliver(wait=True, recovering=False)

    async def adeliver(self, driver: Driver) -> None:
        """Deliver the held alerts through ``driver`` (a ``redis.asyncio`` client), oldest first,
        each once, as :meth:`send` with ``wait`` does: one deliverer at a time (the lock shared
        with the write-back's thread, polled, never blocking the event loop); stops once the
        breaker is open (the write-back delivers the rest); a Redis failure opens it."""
        while self.outbox:
            if self.breaker is not None and self.breaker.degraded:
                return
            if not self._flush_lock.acquire(blocking=False):
                await asyncio.sleep(0.0005)  # another caller or the write-back is delivering
                continue
            try:
                while self.outbox:
                    if self.breaker is not None and self.breaker.degraded:
                        return
                    items = self._oldest()
                    self._delivered(items, await self.writer.deliver_many(items, driver))
            except self._down as exc:
                if self.breaker is not None and not self.breaker.degraded:
                    self.breaker.trip(exc)
                return
            finally:
                self._flush_lock.release()

    def _hold(self, alert: dict[str, Any]) -> dict[str, Any] | None:
        """Queue ``alert`` (its ``id``, if any, is left to the stream); the queued document,
        which gets its ``id`` once delivered, or None if the outbox is full (counted)."""
        alert.pop("id", None)
        with self._hold_lock:
            if len(self.outbox) >= self.outbox_size:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    _log.warning("alert outbox full (%d): %d alerts dropped", self.outbox_size, self.dropped)
                return None
            self.outbox.append((f"{self._delivery_prefix}{next(self._delivery_count):012x}", alert))
            return alert

    def flush(self) -> bool:
        """Deliver the held alerts, oldest first, each once; whether none is left (a Redis
        failure stops it and opens the breaker). The store's write-back calls it."""
        self._deliver(wait=True, recovering=True)
        return not self.outbox

    def _deliver(self, wait: bool, recovering: bool) -> None:
        """Deliver held alerts, each getting its stream ``id``. Without ``wait``, leave them
        to whoever is delivering now (it delivers what is held before it stops). A caller
        (not ``recovering``) stops once the breaker is open: the write-back delivers the rest."""
        while self.outbox:
            if not self._flush_lock.acquire(blocking=wait):
                return
            try:
                while self.outbox:
                    if not recovering and self.breaker is not None and self.breaker.degraded:
                        return
                    items = self._oldest()
                    self._delivered(items, self.writer.deliver_many(items))
            except self._down as exc:
                if self.breaker is not None and not self.breaker.degraded:
                    self.breaker.trip(exc)
                return
            finally:
                self._flush_lock.release()

    def _oldest(self) -> list[tuple[str, dict[str, Any]]]:
        """The oldest held alerts, at most :attr:`DELIVERY_CHUNK` (copied under the lock that
        callers append under: a deque iterated while another thread appends raises)."""
        with self._hold_lock:
            return list(itertools.islice(self.outbox, self.DELIVERY_CHUNK))

    def _delivered(self, items: list[tuple[str, dict[str, Any]]], ids: list[str]) -> None:
        """The first ``len(items)`` alerts of the outbox were delivered with ``ids`` (only the
        deliverer, holding the flush lock, takes from the outbox)."""
        for (_, alert), stream_id in zip(items, ids):
            alert["id"] = stream_id
            self.outbox.popleft()
            self.delivered += 1

    def outbox_counts(self) -> dict[str, int]:
        """Alerts held, delivered from the outbox and dropped so far."""
        return {
            "alerts_held": len(self.outbox),
            "alerts_delivered": self.delivered,
            "alerts_dropped": self.dropped,
        }

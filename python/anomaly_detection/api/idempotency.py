"""``Idempotency-Key`` on writes: a repeated POST is not stored again and gets the first response.

A POST with an ``Idempotency-Key`` header (1-200 bytes, no ``:``, glob characters, braces or
whitespace, e.g. a UUID) is processed once per key: the key is claimed in the service's
idempotency store (this process's memory, or Redis for every worker) before the request
runs, and the response is stored under it before it is sent. A repeat of the same request

- after the first was answered gets the stored response again (with
  ``Idempotent-Replayed: true``) and stores nothing;
- while the first is still being processed waits for its response (up to ``wait`` seconds),
  then gets 409 with ``Retry-After: 1``;
- with a different body or path under the same key gets 422.

A response other than 2xx releases the key (nothing was stored, by the API's rules for bad
input), so a retry is processed anew. Writes that fail authentication are passed on
untouched (the app answers 401/403), so a stored response is only ever given to a writer.
When the Redis of the store cannot be reached (or the store's circuit breaker is open), the key
is claimed in this process's memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Any

from fastapi import HTTPException

from anomaly_detection.api.security import check_api_key, presented_key, replay_body
from anomaly_detection.errors import StoreUnavailableError
from anomaly_detection.redis.driver import down_errors
from anomaly_detection.redis.keys import check_key_part
from anomaly_detection.stores.idempotency import Claim, MemoryIdempotencyStore, StoredResponse

__all__ = ["IdempotencyMiddleware"]

_log = logging.getLogger(__name__)
HEADER = b"idempotency-key"


def _outage_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean Redis cannot be reached (connection, timeout, a Cluster without a
    master for the slot); any other error of the store is a bug."""
    try:
        return (StoreUnavailableError, *down_errors())
    except ImportError:  # no redis-py: the store is this process's memory
        return (StoreUnavailableError, OSError)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def _send_json(send: Any, status: int, detail: str, extra: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await _send(send, StoredResponse(status, "application/json", body), list(extra))


async def _send(send: Any, response: StoredResponse, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [
        (b"content-type", response.content_type.encode("latin-1")),
        (b"content-length", str(len(response.body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


class IdempotencyMiddleware:
    """Pure ASGI; put it inside the body-size limit (it reads the whole body, as that one does).

    Parameters
    ----------
    app : ASGI app
    service : AnomalyService
        Its ``idempotency`` store and its settings (API keys).
    wait : float
        Seconds a repeat waits for the first request's response before answering 409.
    """

    def __init__(self, app: Any, service: Any, wait: float = 5.0) -> None:
        self.app = app
        self.service = service
        self.wait = wait
        self._local = MemoryIdempotencyStore()  # while the service's Redis is unreachable

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        key = _header(scope, HEADER) if scope["type"] == "http" and scope["method"] == "POST" else None
        if key is None:
            await self.app(scope, receive, send)
            return
        try:
            check_api_key(self.service.settings.api_keys, presented_key(_headers(scope)))
        except HTTPException:
            await self.app(scope, receive, send)  # the app answers 401 / 403
            return
        try:
            check_key_part(key, "Idempotency-Key")
        except ValueError as e:
            await _send_json(send, 422, str(e))
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        digest = hashlib.sha256(b"\0".join([scope["path"].encode(), body])).hexdigest()

        # With the store's circuit breaker open, Redis is not tried per request (a stalled one
        # would hold each write for the socket timeout): keys stay in this process meanwhile.
        store = self._local if self.service.store_degraded() else self.service.idempotency
        deadline = time.monotonic() + self.wait
        while True:
            claim, store = await self._claim(store, key, digest)
            if claim.state == "claimed":
                break
            if claim.state == "done":
                assert claim.response is not None
                await _send(send, claim.response, [(b"idempotent-replayed", b"true")])
                return
            if claim.state == "mismatch":
                await _send_json(
                    send, 422, "Idempotency-Key was already used for a different request (path or body)"
                )
                return
            if time.monotonic() >= deadline:
                await _send_json(
                    send, 409, "a request with this Idempotency-Key is still being processed",
                    [(b"retry-after", b"1")],
                )  # fmt: skip
                return
            await asyncio.sleep(0.05)

        response, headers = await self._process(scope, receive, body, store, key, digest)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _claim(self, store: Any, key: str, digest: str) -> tuple[Claim, Any]:
        if store is self._local:
            return await store.claim(key, digest), store
        try:
            return await store.claim(key, digest), store
        except Exception as e:  # noqa: BLE001 - either way the key is claimed in this process's memory
            if isinstance(e, _outage_errors()):
                _log.warning(
                    "idempotency keys: Redis unavailable (%s); keys of this worker only", type(e).__name__
                )
            else:  # not an outage: a bug, logged with its traceback
                _log.exception(
                    "idempotency keys: the idempotency store failed unexpectedly (%s); keys of this worker only",
                    type(e).__name__,
                )
            self.service.metrics.store_errors.inc()
            return await self._local.claim(key, digest), self._local

    async def _process(
        self, scope: Any, receive: Any, body: bytes, store: Any, key: str, digest: str
    ) -> tuple[StoredResponse, list[tuple[bytes, bytes]]]:
        """Run the app with the body read above; store its response (2xx) or release the key.
        The response is stored before a byte of it is sent: a client that loses the connection
        now gets it on its retry."""
        status, content_type, parts, headers = 500, "application/json", [], []

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status, content_type, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                for name, value in headers:
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        try:
            await self.app(scope, replay_body(body, receive), capture)
        except BaseException:
            await self._settle(store, key, digest, None)
            raise
        response = StoredResponse(status, content_type, b"".join(parts))
        await self._settle(store, key, digest, response if 200 <= status < 300 else None)
        return response, headers

    async def _settle(self, store: Any, key: str, digest: str, response: StoredResponse | None) -> None:
        try:
            if response is None:
                await store.release(key, digest)
            else:
                await store.complete(key, digest, response)
        except Exception as e:  # noqa: BLE001 - the response still goes out; the key expires
            _log.warning("idempotency keys: could not record %s (%s)", key, type(e).__name__)
            self.service.metrics.store_errors.inc()

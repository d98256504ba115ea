"""API keys for writes and a request size limit.

A key is read by FastAPI's own security classes (``APIKeyHeader`` for ``X-API-Key``,
``HTTPBearer`` for ``Authorization: Bearer <key>``), so OpenAPI shows both schemes.
Keys are compared with ``hmac.compare_digest`` against every configured key, so
the time taken does not tell how much of a key was right. Keys are never logged.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import HTTPException, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

__all__ = [
    "BodySizeLimitMiddleware",
    "api_key_header",
    "bearer_token",
    "check_api_key",
    "key_of",
    "presented_key",
    "replay_body",
]

#: ``X-API-Key: <key>`` (OpenAPI scheme ``ApiKey``). ``auto_error=False``: the service decides
#: (401 without a key, 403 with a wrong one, nothing needed when no keys are configured).
api_key_header = APIKeyHeader(
    name="X-API-Key", scheme_name="ApiKey", auto_error=False,
    description="One of ANOMALY_API_KEYS; needed by every write when keys are configured.",
)  # fmt: skip
#: ``Authorization: Bearer <key>`` (OpenAPI scheme ``Bearer``), the same keys.
bearer_token = HTTPBearer(
    scheme_name="Bearer", auto_error=False,
    description="One of ANOMALY_API_KEYS as a bearer token (the same keys as X-API-Key).",
)  # fmt: skip


def key_of(header_key: str | None, bearer: HTTPAuthorizationCredentials | None) -> str | None:
    """The presented key: ``X-API-Key`` first, else the bearer token (None if neither)."""
    if header_key:
        return header_key
    if bearer is not None and bearer.credentials.strip():
        return bearer.credentials.strip()
    return None


def presented_key(headers: Any) -> str | None:
    """The key from ``X-API-Key`` or ``Authorization: Bearer <key>``, if any."""
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def check_api_key(keys: Sequence[str], given: str | None) -> None:
    """Nothing when no keys are configured or ``given`` is one; else 401 (none) or 403 (wrong)."""
    if not keys:
        return
    if given is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given_bytes = given.encode()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(given_bytes, key.encode())
    if not ok:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid API key")


def replay_body(body: bytes, receive: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI ``receive`` for a middleware that has read the whole body: the body first, in
    one message, then whatever ``receive`` brings (a disconnect)."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BodySizeLimitMiddleware:
    """413 for request bodies over ``max_bytes`` (by Content-Length, or while streaming)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._reject(send, declared)
                    return
        # Read the body here (bounded) so that a chunked body over the limit is refused too.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay_body(b"".join(chunks), receive), send)

    async def _reject(self, send: Any, size: int) -> None:
        payload = json.dumps({
            "detail": f"request body too large: limit is {self.max_bytes} bytes, got at least {size}"
        }).encode()  # fmt: skip
        await send({
            "type": "http.response.start", "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                        (b"connection", b"close")],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": payload})

"""The app served by uvicorn on a free 127.0.0.1 port, in a thread (shared by the API,
client and dashboard tests; holds no tests itself)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable

import uvicorn
from servers import HOST, free_port


class LiveServer:
    """``with LiveServer(app) as url:`` serves ``app`` over real HTTP until the block ends."""

    def __init__(self, app) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        config = uvicorn.Config(app, host=HOST, port=self.port, log_level="warning", lifespan="on", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def sse_events(
    lines: Iterable[str], n: int, id_type: Callable = str, on_connected: Callable | None = None
) -> list:
    """The first n events ``{"id", "data"}`` of Server-Sent Events ``lines``; ``on_connected()``
    is called at the server's ``: connected`` comment."""
    events = []
    current: dict = {}
    for line in lines:
        if line.startswith(": connected") and on_connected is not None:
            on_connected()
        if line.startswith("id: "):
            current["id"] = id_type(line[4:])
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and "id" in current:
            events.append(current)
            current = {}
            if len(events) == n:
                break
    return events

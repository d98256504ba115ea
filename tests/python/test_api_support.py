"""The app served by uvicorn on a free 127.0.0.1 port, in a thread (shared by the API,
client and dashboard tests; holds no tests itself)."""

from __future__ import annotations

import threading
import time

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

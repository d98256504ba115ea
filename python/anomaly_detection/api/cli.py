"""The ``serve`` and ``demo`` subcommands (wired into ``anomaly-detection`` by cli.py)."""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["add_api_parsers", "check_bind", "is_loopback", "main", "server_stack"]


def _settings(args: argparse.Namespace) -> Any:
    from anomaly_detection.config.settings import Settings

    if args.env_file is not None:
        # Into this process's environment, so that uvicorn's workers (which build their
        # settings from the environment) see the same values; variables already set win,
        # as they do over a .env in pydantic-settings.
        from dotenv import load_dotenv

        if not Path(args.env_file).is_file():
            raise SystemExit(f"--env-file: no such file: {args.env_file}")
        load_dotenv(args.env_file, override=False)
    overrides = {k: v for k, v in (("api_host", args.host), ("api_port", args.port)) if v is not None}
    if getattr(args, "allow_anonymous_writes", False):
        overrides["allow_anonymous_writes"] = True
    return Settings(**overrides)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1 or ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # another host name: it may resolve to any interface
        return False


def check_bind(settings: Any) -> None:
    """Refuse to serve writes without keys to anything but this machine (SystemExit)."""
    if is_loopback(settings.api_host) or settings.api_keys or settings.allow_anonymous_writes:
        return
    raise SystemExit(
        f"anomaly-detection: refusing to bind {settings.api_host} without ANOMALY_API_KEYS: anyone who "
        "reaches it could write (and create sensors); set keys, bind 127.0.0.1, or pass "
        "--allow-anonymous-writes (ANOMALY_ALLOW_ANONYMOUS_WRITES=1) if that is intended"
    )


def server_stack() -> str:
    """The event loop and HTTP parser uvicorn picks here (``loop="auto"``, ``http="auto"``): uvloop
    and httptools when installed (the ``api`` extra installs ``uvicorn[standard]``, which brings
    them), else asyncio's loop and h11 (pure Python, slower: benchmarks/README.md)."""
    from importlib.util import find_spec

    loop = "uvloop" if sys.platform not in ("win32", "cygwin") and find_spec("uvloop") else "asyncio"
    return f"{loop} + {'httptools' if find_spec('httptools') else 'h11'}"


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(args)
    check_bind(settings)
    if args.workers > 1 and settings.store_backend != "redis":
        print(
            "warning: several workers on the embedded store each keep their own sensors and alerts; "
            "set ANOMALY_STORE_BACKEND=redis for one shared view",
            file=sys.stderr,
        )
    # Workers import the app through the factory; host/port reach them through the env.
    os.environ["ANOMALY_API_HOST"], os.environ["ANOMALY_API_PORT"] = settings.api_host, str(settings.api_port)
    # Several workers: prometheus-client's multiprocess mode, in a folder of our own (unless one
    # is given), so that one scrape of /metrics counts every worker's requests.
    metrics_dir = None
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="anomaly-detection-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    print(
        f"anomaly-detection: serving on http://{settings.api_host}:{settings.api_port}/ (uvicorn, {server_stack()})",
        file=sys.stderr,
    )
    try:
        uvicorn.run(
            "anomaly_detection.api.app:create_app", factory=True, host=settings.api_host,
            port=settings.api_port, workers=args.workers, log_level=args.log_level, loop="auto", http="auto",
        )  # fmt: skip
    finally:
        if metrics_dir is not None:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import uvicorn

    from anomaly_detection.api.app import create_app
    from anomaly_detection.api.demo import TrafficGenerator

    settings = _settings(args)
    check_bind(settings)
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.api_host, port=settings.api_port, log_level=args.log_level, ws="none"
        )
    )
    thread = threading.Thread(target=server.run, name="demo-server", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            print("demo: the server did not start (is the port free?)", file=sys.stderr)
            return 1
        time.sleep(0.05)
    url = f"http://{settings.api_host}:{settings.api_port}"
    key = settings.api_keys[0] if settings.api_keys else None
    traffic = TrafficGenerator(url, api_key=key, rate=args.rate, incident_every=args.incident_every,
                               first_incident=args.first_incident).start()  # fmt: skip
    print(
        f"demo: dashboard at {url}/  (an incident every {args.incident_every:g} s; Ctrl-C to stop)",
        file=sys.stderr,
    )
    try:
        deadline = time.monotonic() + args.duration if args.duration else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        traffic.stop()
        server.should_exit = True
        thread.join(timeout=10)
    service = app.state.anomaly_service
    print(
        f"demo: {traffic.ticks} ticks, {len(traffic.incidents)} incidents injected, "
        f"{len(service.detector.sensors())} sensors, {service.hub.total} alerts",
    )
    return 0


def _number(kind: str) -> Any:
    """An argparse type: a finite float > 0 (``positive``), >= 0 (``non-negative``), or an
    int >= 1 (``count``), so NaN, inf and out-of-range values are refused before the server
    binds its port (``float('nan') <= 0`` is false: a NaN rate ran the traffic unthrottled)."""

    def parse(text: str) -> float:
        try:
            value = int(text) if kind == "count" else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        low_ok = value >= 1 if kind == "count" else (value > 0 if kind == "positive" else value >= 0)
        if not (math.isfinite(value) and low_ok):
            wanted = {"count": "an integer >= 1", "positive": "a finite number > 0"}.get(
                kind, "a finite number >= 0"
            )
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    parse.__name__ = kind  # argparse names the type in its messages
    return parse


def add_api_parsers(subparsers: Any) -> None:
    """Add ``serve`` and ``demo`` to an argparse subparsers object."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", help="interface to bind (default: ANOMALY_API_HOST, 127.0.0.1)")
    common.add_argument("--port", type=int, help="port (default: ANOMALY_API_PORT, 8000)")
    common.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    common.add_argument(
        "--allow-anonymous-writes", action="store_true",
        help="bind beyond 127.0.0.1 although no ANOMALY_API_KEYS are set (anyone reaching it may write)",
    )  # fmt: skip
    common.add_argument(
        "--env-file",
        metavar="PATH",
        help="read ANOMALY_* settings from this .env file (none is read by default)",
    )

    serve = subparsers.add_parser("serve", parents=[common], help="run the HTTP service (FastAPI on uvicorn)")
    serve.add_argument(
        "--workers", type=_number("count"), default=1, help="worker processes (use Redis for more than one)"
    )
    serve.set_defaults(func=_cmd_serve)

    demo = subparsers.add_parser(
        "demo", parents=[common], help="the service plus generated traffic with injected incidents"
    )
    demo.add_argument("--rate", type=_number("positive"), default=5.0, help="ticks of traffic per second")
    demo.add_argument(
        "--incident-every", type=_number("positive"), default=15.0, help="seconds between incidents"
    )
    demo.add_argument(
        "--first-incident",
        type=_number("non-negative"),
        default=8.0,
        help="seconds before the first incident",
    )
    demo.add_argument(
        "--duration",
        type=_number("non-negative"),
        default=0,
        help="stop after this many seconds (0: until Ctrl-C)",
    )
    demo.set_defaults(func=_cmd_demo)


def main(argv: list[str] | None = None) -> int:
    """``python -m anomaly_detection.api.cli serve|demo ...`` (the same as ``anomaly-detection``)."""
    parser = argparse.ArgumentParser(prog="anomaly-detection")
    add_api_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""The HTTP service: ``create_app(settings)`` or ``router`` to mount in an existing FastAPI app.

>>> from anomaly_detection.api import create_app
>>> app = create_app()                     # uvicorn can serve it: uvicorn.run(app)

Needs the ``api`` extra (``pip install 'anomaly-detection-core[api]'``). The names below are
imported on first use, so that ``anomaly_detection.api.cli`` (and with it the package's
command line) works on an installation without FastAPI.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "AnomalyService", "Collector", "create_app", "get_service", "require_write_key", "router", "sensor_name_for",
]  # fmt: skip

_HOME = {
    "create_app": "app", "get_service": "app", "require_write_key": "app", "router": "app",
    "Collector": "collector", "sensor_name_for": "collector", "AnomalyService": "service",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'anomaly_detection.api' has no attribute {name!r}")
    try:
        module = import_module(f"anomaly_detection.api.{_HOME[name]}")
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"{exc}: the HTTP service needs the api extra: pip install 'anomaly-detection-core[api]'"
        ) from exc
    return getattr(module, name)

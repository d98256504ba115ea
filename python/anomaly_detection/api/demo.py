"""Traffic for ``anomaly-detection demo``: sensors, services, business metrics and logs,
with an incident injected every few seconds, so that alerts show in the dashboard
within a minute of starting (on the embedded store)."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from typing import Any

from anomaly_detection.client import AnomalyClient

__all__ = ["TrafficGenerator"]

_log = logging.getLogger(__name__)

INCIDENTS = ("temperature_spike", "latency_surge", "error_burst", "pressure_drop", "revenue_dip")


class TrafficGenerator:
    """Posts realistic traffic to a running service through the client SDK, in a thread.

    Parameters
    ----------
    base_url : str
    api_key : str, optional
    rate : float
        Ticks per second; each tick sends one reading per sensor and service.
    incident_every : float
        Seconds between injected incidents (the first comes after ``first_incident``).
    seed : int
    history : int
        Ticks of past traffic (timestamped ``1 / rate`` apart, ending now) sent before
        the live traffic, so that the default method, the ensemble, has finished its
        300-point warm-up when the first incident comes.
    """

    def __init__(
        self, base_url: str, api_key: str | None = None, rate: float = 5.0, incident_every: float = 15.0,
        first_incident: float = 8.0, seed: int = 7, history: int = 400,
    ) -> None:  # fmt: skip
        if not (math.isfinite(rate) and rate > 0 and math.isfinite(incident_every) and incident_every > 0):
            raise ValueError("rate and incident_every must be finite and > 0")
        self.client = AnomalyClient(base_url, api_key=api_key, timeout=5.0)
        self.rate = rate
        self.incident_every = incident_every
        self.first_incident = first_incident
        self.rng = random.Random(seed)
        self.history = history
        self.incidents: list[tuple[float, str]] = []
        self.ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)

    def start(self) -> TrafficGenerator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.client.close()

    def _backfill(self) -> None:
        """Post ``history`` quiet ticks with past timestamps (no logs: those are counted on arrival)."""
        now = time.time()
        items: list[dict[str, Any]] = []
        for i in range(self.history):
            stamp = now - (self.history - i) / self.rate
            tick = self._tick(i / self.rate - self.history / self.rate, None)
            items.extend({**item, "timestamp": stamp} for item in tick if item["type"] != "log")
        try:
            self.client.send_batch(items)
        except Exception as e:  # noqa: BLE001 - a demo without history still runs
            _log.warning("demo traffic: history not sent: %s", e)

    def _run(self) -> None:
        if self.history:
            self._backfill()
        start = time.monotonic()
        next_incident = start + self.first_incident
        active: tuple[str, float] | None = None
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_incident:
                kind = INCIDENTS[len(self.incidents) % len(INCIDENTS)]
                self.incidents.append((time.time(), kind))
                active = (kind, now + 2.0)
                next_incident = now + self.incident_every
            if active and now > active[1]:
                active = None
            try:
                self.client.send_batch(self._tick(now - start, active[0] if active else None))
            except Exception as e:  # noqa: BLE001 - the demo keeps going while the server restarts
                _log.debug("demo traffic: %s", e)
            self.ticks += 1
            self._stop.wait(max(0.0, 1.0 / self.rate - (time.monotonic() - now)))

    def _tick(self, t: float, incident: str | None) -> list[dict[str, Any]]:
        g = self.rng.gauss
        temperature = 70 + 3 * math.sin(t / 30) + g(0, 0.4)
        pressure = 4.2 + g(0, 0.05)
        if incident == "temperature_spike":
            temperature += 25
        if incident == "pressure_drop":
            pressure -= 1.5
        latency = self.rng.lognormvariate(math.log(120), 0.15) * (8 if incident == "latency_surge" else 1)
        status = 500 if self.rng.random() < 0.01 else 200
        revenue = 1000 + 50 * math.sin(t / 20) + g(0, 10)
        if incident == "revenue_dip":
            revenue *= 0.4
        items: list[dict[str, Any]] = [
            {"type": "point", "sensor_name": "plant.boiler.temperature", "value": round(temperature, 3)},
            {"type": "point", "sensor_name": "plant.boiler.pressure", "value": round(pressure, 4)},
            {"type": "point", "sensor_name": "plant.pump.vibration", "value": round(abs(g(1.0, 0.05)), 4)},
            {"type": "application", "service": "checkout", "endpoint": "POST:/api/orders",
             "metrics": {"response_time": round(latency, 1), "status_code": status}},
            {"type": "application", "service": "search", "endpoint": "GET:/api/search",
             "metrics": {"response_time": round(self.rng.lognormvariate(math.log(40), 0.2), 1), "status_code": 200}},
            {"type": "business", "metric_name": "revenue_per_minute", "value": round(revenue, 2),
             "expected_range": [600, 1400]},
            {"type": "log", "level": "INFO", "message": "order placed", "service": "checkout"},
        ]  # fmt: skip
        errors = 30 if incident == "error_burst" else (1 if self.rng.random() < 0.05 else 0)
        items += [
            {"type": "log", "level": "ERROR", "message": "payment gateway timeout", "service": "checkout"}
        ] * errors
        return items

"""A labelled proxy for operational web-service KPIs (page views, request rates, latencies).

The synthetic kinds of :mod:`anomaly_detection.evaluation.synthetic` are clean sines with
one kind of anomaly each. Operational KPI corpora (the AIOps-challenge KPIs that TSB-AD
calls IOPS, its WSD subset, Yahoo S5 A1) look different, and this generator follows their
public descriptions, not their data::

    from anomaly_detection.evaluation.synthetic_kpi import make_kpi_series, make_kpi_suite
    s = make_kpi_series(seed=0)
    s.values, s.timestamps, s.labels   # float64, epoch seconds (with gaps), 0/1 per point
    s.incidents                        # ((start, end, kind), ...): labelled segments [start, end)

Each series, drawn from its seed:

- **sampling** one minute (two series in three; two to three weeks, 20,000-30,000
  points) or five minutes (six to nine weeks, 12,000-18,000 points);
- **a daily cycle** of one of five shapes (``PROFILES``): ``sine``, ``business``
  (a plateau in office hours with a lunch dip), ``evening`` (a morning bump and a larger
  evening peak, consumer traffic), ``batch`` (a low base with a sharp nightly job) and
  ``flat`` (no cycle: a stationary KPI), its peak hour drawn;
- **a weekly effect**: on most series the weekend runs at 40-100% of a weekday's level,
  with a smooth change at midnight;
- **a slow drift**: a growth or decline of up to 30% over the series times a slow random
  walk in the log level;
- **noise that scales with the level** (multiplicative, Student-t with 4 degrees of
  freedom: heavier tails than Gaussian, so unlabelled jitter ranks high too) plus an AR(1)
  local wander, or Poisson counts for low-volume KPIs;
- **missing points**: 0-1% of the rows dropped in runs of 1-10 (and on one series in
  three one gap of 1-3 hours): the timestamps have holes, the values do not (as the CSVs
  of those corpora store them);
- **anomalies** (``ANOMALY_KINDS``) at a rate of 1-5% of the points, none in the first
  two days, labelled as segments: ``spike`` (1-5 points up or down by 4-10 local noise
  sds: relative to the cycle at that hour, often inside the series' global range),
  ``dip`` (a drop of 20-70% of the expected value for 5-60 minutes: a partial outage),
  ``level_shift`` (a step of 15-40% of the level for 1-8 hours), ``outage`` (the value
  near zero for 3-30 points: data loss or a full outage), ``variance`` (the noise three
  to six times larger for 30-120 minutes) and ``flat_peak`` (the daily rise fails: the
  value held at its level before the rise for 1-3 hours; only on cyclic profiles).

Every quantity is drawn from ``numpy.random.default_rng([seed, 15])``: one seed, one
series, on every machine with the same NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ANOMALY_KINDS", "PROFILES", "KpiSeries", "make_kpi_series", "make_kpi_suite"]

PROFILES = ("sine", "business", "evening", "batch", "flat")
ANOMALY_KINDS = ("spike", "dip", "level_shift", "outage", "variance", "flat_peak")

_START = 1.7e9 - (1.7e9 % 86_400)  # a midnight UTC (2023-11-14)
_CLEAN_DAYS = 2


@dataclass(frozen=True)
class KpiSeries:
    seed: int
    profile: str
    step: float  # seconds between rows (before the missing ones were dropped)
    values: np.ndarray
    timestamps: np.ndarray
    labels: np.ndarray
    incidents: tuple[tuple[int, int, str], ...]  # [start, end) in row positions, kind

    @property
    def name(self) -> str:
        return f"kpi_{self.seed:02d}_{self.profile}_{int(self.step)}s"

    @property
    def anomaly_rate(self) -> float:
        return float(self.labels.mean())


def _bump(h: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A smooth periodic bump over the hour of day ``h`` (0-24), peak 1 at ``centre``."""
    d = (h - centre + 12) % 24 - 12
    return np.exp(-0.5 * (d / width) ** 2)


def _daily(profile: str, h: np.ndarray, peak: float) -> np.ndarray:
    """The daily shape in [0, 1] at hour ``h``."""
    if profile == "sine":
        return 0.5 + 0.5 * np.cos(2 * np.pi * (h - peak) / 24)
    if profile == "business":
        up = 1 / (1 + np.exp(-(h - 8.5) * 2.5))
        down = 1 / (1 + np.exp((h - 18.5) * 2.0))
        return np.clip(up * down - 0.25 * _bump(h, 12.5, 0.6), 0, 1)
    if profile == "evening":
        return np.clip(0.55 * _bump(h, peak - 10, 1.8) + _bump(h, peak, 2.2), 0, 1)
    if profile == "batch":
        return _bump(h, peak, 0.5)
    return np.zeros_like(h)  # flat


def make_kpi_series(seed: int = 0) -> KpiSeries:
    """One KPI-like series with its labelled anomalies (see the module's description)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    rng = np.random.default_rng([int(seed), 15])
    profile = PROFILES[int(rng.integers(len(PROFILES)))]
    step = 60.0 if rng.random() < 2 / 3 else 300.0
    per_day = int(86_400 / step)
    days = int(rng.integers(14, 22)) if step == 60 else int(rng.integers(42, 64))
    n = days * per_day
    t = np.arange(n)
    hour = (t * step / 3600.0) % 24
    weekday = (
        int(_START // 86_400) + (t * step) // 86_400 + 3
    ) % 7  # 0 = Monday (day 0 of the epoch a Thursday)

    # expected value: level x (floor + amplitude x shape) x weekend x drift
    level = float(np.exp(rng.uniform(np.log(20), np.log(5_000))))
    floor = rng.uniform(0.15, 0.6)
    peak = rng.uniform(11, 22) if profile != "batch" else rng.uniform(0, 5)
    shape = _daily(profile, hour, peak)
    weekend_factor = rng.uniform(0.4, 1.0) if rng.random() < 0.75 else 1.0
    weekend = weekday >= 5
    wk = np.where(weekend, weekend_factor, 1.0)
    kernel = np.ones(max(per_day // 24, 1)) / max(per_day // 24, 1)  # an hour's smoothing
    wk = np.convolve(np.r_[np.full(len(kernel), wk[0]), wk], kernel, mode="same")[len(kernel) :]
    growth = rng.uniform(-0.3, 0.3) * t / n
    walk = np.cumsum(rng.normal(0, 0.02 / np.sqrt(per_day), n))  # ~2% a day in log level
    drift = np.exp(growth + walk - walk.mean())
    expected = level * (floor + (1 - floor) * shape) * wk * drift

    # noise: multiplicative t(4) plus an AR(1) wander, or Poisson counts at low volume
    cv = rng.uniform(0.02, 0.08)
    phi = rng.uniform(0.6, 0.95)
    wander = np.zeros(n)
    e = rng.normal(0, cv * np.sqrt(1 - phi**2), n)
    for i in range(1, n):  # 30k points: a few ms
        wander[i] = phi * wander[i - 1] + e[i]
    counts = level < 200 and rng.random() < 0.5
    if counts:
        values = rng.poisson(expected * (1 + wander).clip(0.05)).astype(np.float64)
        sigma = np.sqrt(np.maximum(expected, 1.0))
    else:
        jitter = rng.standard_t(4, n) / np.sqrt(2)  # unit variance
        values = expected * (1 + wander + cv * jitter)
        sigma = cv * expected * np.sqrt(2)

    labels = np.zeros(n, dtype=np.int8)
    incidents: list[tuple[int, int, str]] = []
    kinds = [k for k in ANOMALY_KINDS if profile != "flat" or k != "flat_peak"]
    weights = np.array([{"spike": 3.0, "dip": 2.0, "level_shift": 1.0}.get(k, 1.0) for k in kinds])
    rate = rng.uniform(0.01, 0.05)
    minutes = step / 60.0
    for _ in range(200):
        if labels.mean() >= rate:
            break
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        if kind == "spike":
            length = int(rng.integers(1, 6))
        elif kind == "dip":
            length = max(int(rng.uniform(5, 60) / minutes), 1)
        elif kind == "level_shift":
            length = max(int(rng.uniform(60, 480) / minutes), 2)
        elif kind == "outage":
            length = int(rng.integers(3, 31))
        elif kind == "variance":
            length = max(int(rng.uniform(30, 120) / minutes), 6)
        else:
            length = max(int(rng.uniform(60, 180) / minutes), 2)
        if kind == "flat_peak":  # start where the daily shape climbs
            slope = np.diff(shape[:per_day], append=shape[0])
            rise = np.flatnonzero(slope > 0.5 * slope.max())  # the steep part of the rise
            day = int(rng.integers(_CLEAN_DAYS, days - 1))
            start = day * per_day + int(rise[int(rng.integers(len(rise)))]) if len(rise) else -1
        else:
            start = int(rng.integers(_CLEAN_DAYS * per_day, n - length - 1))
        end = start + length
        if (
            start < _CLEAN_DAYS * per_day
            or end >= n
            or labels[max(start - per_day // 24, 0) : end + per_day // 24].any()
        ):
            continue  # keep an hour of normal data between incidents
        span = slice(start, end)
        sign = -1.0 if rng.random() < 0.6 else 1.0
        if kind == "spike":
            values[span] = values[span] + sign * rng.uniform(4, 10) * sigma[span]  # noise kept
        elif kind == "dip":
            values[span] = values[span] * (1 - rng.uniform(0.2, 0.7))
        elif kind == "level_shift":
            values[span] = values[span] * (1 + sign * rng.uniform(0.15, 0.4))
        elif kind == "outage":
            values[span] = np.abs(rng.normal(0, 0.01, length)) * level
        elif kind == "variance":
            values[span] = expected[span] + (values[span] - expected[span]) * rng.uniform(3, 6)
        else:  # flat_peak: held near the value before the rise
            values[span] = values[start - 1] * (1 + cv * rng.standard_normal(length))
        labels[span] = 1
        incidents.append((start, end, kind))
    values = np.maximum(values, 0.0)  # KPIs are counts, rates, durations

    # missing rows: short runs (0-1% of the points), and on one series in three an hour-long gap
    keep = np.ones(n, dtype=bool)
    for _ in range(int(rng.uniform(0, 0.01) * n / 5)):
        s = int(rng.integers(0, n - 10))
        keep[s : s + int(rng.integers(1, 11))] = False
    if rng.random() < 1 / 3:
        s = int(rng.integers(_CLEAN_DAYS * per_day, n - per_day))
        keep[s : s + int(rng.uniform(1, 3) * 3600 / step)] = False
    keep[0] = True
    position = np.cumsum(keep) - 1  # row position after the drop, for every original index
    kept_incidents = []
    for start, end, kind in incidents:
        inside = np.flatnonzero(keep[start:end])
        if len(inside):  # an incident wholly in a gap is gone (its labels with it)
            kept_incidents.append(
                (int(position[start + inside[0]]), int(position[start + inside[-1]]) + 1, kind)
            )
    kept_incidents.sort()
    return KpiSeries(
        seed=int(seed),
        profile=profile,
        step=step,
        values=values[keep],
        timestamps=_START + step * t[keep],
        labels=labels[keep],
        incidents=tuple(kept_incidents),
    )


def make_kpi_suite(seeds: int = 30) -> list[KpiSeries]:
    """Series for seeds 0 .. ``seeds`` - 1."""
    return [make_kpi_series(seed) for seed in range(seeds)]

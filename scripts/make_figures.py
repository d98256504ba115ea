"""Draw the README's pictures into docs/img/.

    PYTHONPATH=python python scripts/make_figures.py [--data ../shared/data] [--results benchmarks/RESULTS.md]

- ``incident.png``: NAB's machine_temperature_system_failure series, the labelled anomaly
  windows, and the points the ``ensemble`` detector flags (whole series, and the failure zoomed);
- ``incident_traffic.png``: the same for realTraffic/speed_7578, a category that was held out when
  the leave-one-category-out protocol chose the default's design (docs/evaluation.md);
- ``benchmark_ratios.png``: how many times faster than its peer the package is, one bar per
  comparison of the "Speed against the peers" table in ``benchmarks/RESULTS.md``
  (written by ``python -m benchmarks``).
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.evaluation import NabCorpus

ROOT = Path(__file__).resolve().parents[1]
NAME = "realKnownCause/machine_temperature_system_failure.csv"
TRAFFIC = "realTraffic/speed_7578.csv"


def incident(data: Path, out: Path, name: str = NAME, zoom_window: int = 2, margin: int = 1500,
             unit: str = "temperature", zoom_title: str = "") -> None:  # fmt: skip
    series = NabCorpus.load(data / "nab", files=[name]).files[name]
    seconds = series.timestamps.astype("datetime64[s]").astype(np.float64)
    result = StatisticalAnomalyDetector(detection_method="ensemble").detect_batch(
        "series", series.values, seconds
    )
    flagged = np.flatnonzero(result.is_anomaly)
    times = series.timestamps.astype("datetime64[s]").astype("O")
    windows = series.window_rows
    # The zoom: one labelled window, with a margin either side.
    left, right = windows[zoom_window]
    lo, hi = max(0, left - margin), min(len(series) - 1, right + margin)

    fig, (full, zoom) = plt.subplots(2, 1, figsize=(11, 6.2), height_ratios=[1, 1.15])
    for ax, (a, b) in ((full, (0, len(series) - 1)), (zoom, (lo, hi))):
        ax.plot(times[a : b + 1], series.values[a : b + 1], lw=0.7, color="#4c72b0", label=unit)
        for i, (wl, wr) in enumerate(windows):
            if wr >= a and wl <= b:
                ax.axvspan(times[wl], times[wr], color="#f0a35e", alpha=0.3, lw=0,
                           label="labelled anomaly window" if i == 0 or ax is zoom else None)  # fmt: skip
        shown = flagged[(flagged >= a) & (flagged <= b)]
        ax.scatter(times[shown], series.values[shown], s=36, color="#c9252c", zorder=3, edgecolor="white",
                   linewidth=0.6, label="flagged by the ensemble detector")  # fmt: skip
        ax.set_ylabel(unit)
        ax.grid(alpha=0.25)
    hits = sum(bool(np.any((flagged >= wl) & (flagged <= wr))) for wl, wr in windows)
    full.set_title(
        f"NAB {name.split('/')[1][:-4]}: {len(series):,} points, {hits} of {len(windows)} labelled "
        f"windows caught, {len(flagged)} points flagged",
        fontsize=11,
    )
    zoom.set_title(zoom_title, fontsize=10)
    handles, labels = zoom.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    zoom.legend(unique.values(), unique.keys(), loc="lower left", fontsize=9, framealpha=0.9)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")


def read_ratios(results: Path) -> list[tuple[str, float, str]]:
    """(label, ratio, target) per row of the speed table of RESULTS.md."""
    rows, inside = [], False
    for line in results.read_text().splitlines():
        if line.startswith("## "):
            inside = line.strip() == "## Speed against the peers"
            continue
        if not inside or not line.startswith("| ") or line.startswith("| bench") or "---" in line:
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        ratio = re.search(r"([\d.]+)x", cells[4])
        if ratio:
            rows.append((f"{cells[0]}: {cells[1]}", float(ratio.group(1)), cells[6]))
    if not rows:
        raise ValueError(
            f"{results}: no rows in a '## Speed against the peers' table (run python -m benchmarks)"
        )
    return rows


def short(label: str) -> str:
    label = re.sub(r" \(.*?\)", "", label).replace("\\|", "|")
    label = label.replace("vs DataSketches ", "vs ").replace(
        "vs pure-Python deque detector", "vs pure Python"
    )
    return label if len(label) <= 62 else label[:59] + "..."


def target_of(text: str) -> float | None:
    """The ratio a ``>= 10x`` target cell asks for (None when the row has no ratio target)."""
    found = re.search(r">=\s*([\d.]+)\s*x", text)
    return float(found.group(1)) if found else None


def ratios_chart(results: Path, out: Path) -> None:
    rows = read_ratios(results)
    labels = [short(label) for label, _, _ in rows]
    values = np.array([v for _, v, _ in rows])
    targets = [target_of(t) for _, _, t in rows]
    # green: at or above its target (or faster than the peer when there is none); amber: faster
    # than the peer but short of the target; red: the peer is faster.
    colors = [
        "#c9252c" if v < 1 else "#e0a030" if t is not None and v < t else "#3a923a"
        for v, t in zip(values, targets)
    ]
    fig, ax = plt.subplots(figsize=(10, 0.36 * len(rows) + 1.6))
    y = np.arange(len(rows))[::-1]
    ax.barh(y, values, color=colors, height=0.65)
    ax.set_xscale("log")
    ax.axvline(1, color="black", lw=0.9)
    for yi, v, t in zip(y, values, targets):
        ax.text(v * 1.08, yi, f"{v:,.0f}x" if v >= 100 else f"{v:.3g}x", va="center", fontsize=8.5)
        if t is not None:
            ax.plot([t, t], [yi - 0.42, yi + 0.42], color="black", lw=1.6)
    ax.plot([], [], color="black", lw=1.6, label="target of the issue (where one is set)")
    ax.legend(loc="lower right", fontsize=8.5, framealpha=0.9)
    ax.set_yticks(y, labels, fontsize=8.5)
    ax.set_xlim(min(0.1, values.min() / 2), values.max() * 4)
    ax.set_xlabel(
        "times faster than the peer, same data, same run (log scale; left of 1: the peer is faster)"
    )
    mode = "quick" if "Mode: quick" in results.read_text() else "full"
    fig.suptitle(f"Speed against the peers (benchmarks/RESULTS.md, {mode} run, medians)", fontsize=11)
    ax.grid(axis="x", which="both", alpha=0.25)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("ANOMALY_DATA_DIR") or str(ROOT.parent / "shared" / "data")
    parser.add_argument("--data", type=Path, default=Path(default_data), help="the shared data folder")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--only", choices=("incident", "ratios"), help="draw one picture")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "incident"):
        incident(
            args.data,
            args.out / "incident.png",
            zoom_title="the failure, zoomed: the first flag falls inside the window, before the collapse",
        )
        incident(args.data, args.out / "incident_traffic.png", name=TRAFFIC, zoom_window=1, margin=150,
                 unit="speed", zoom_title="one labelled window, zoomed (realTraffic was held out when the "
                 "design was chosen)")  # fmt: skip
    if args.only in (None, "ratios"):
        ratios_chart(args.results, args.out / "benchmark_ratios.png")


if __name__ == "__main__":
    main()

"""The ``anomaly-detection`` command line."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_detection.config.settings import METHODS, THRESHOLD_FIELDS

__all__ = ["main"]


# The optional extra each command needs beyond the base install.
_EXTRAS = {"serve": "api", "demo": "api", "health": "redis", "migrate-keys": "redis", "detect": "plot"}


def _sensor_name(column: str) -> str:
    """A valid sensor name from a CSV column header."""
    return re.sub(r"[:*?\[\]{}\s]+", "_", column.strip()) or "value"


def _read_csv(
    path: Path, timestamp_column: str | None, missing: str = "skip"
) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
            rows = list(reader)
        except StopIteration:
            raise ValueError(f"{path}: empty file, expected a header row") from None
        except csv.Error as exc:  # a field beyond the csv module's limit, a NUL byte ...
            raise ValueError(f"{path}: unreadable CSV at data row {reader.line_num - 1}: {exc}") from None
    if len(header) < 2:
        raise ValueError(f"{path}: expected a timestamp column and at least one value column, got {header}")
    if timestamp_column and timestamp_column not in header:
        raise ValueError(
            f"{path}: no column {timestamp_column!r} (--timestamp-column); the header is {header}"
        )
    ts_index = header.index(timestamp_column) if timestamp_column else 0
    sensors: dict[str, int] = {}
    for j, name in enumerate(header):  # one sensor a column: two columns of one name would mix
        if j != ts_index and (first := sensors.setdefault(_sensor_name(name), j)) != j:
            raise ValueError(
                f"{path}: columns {header[first]!r} and {name!r} are both the sensor "
                f"{_sensor_name(name)!r}; rename one"
            )
    raw_ts = [row[ts_index] if len(row) > ts_index else "" for row in rows]
    from anomaly_detection.core.validation import as_timestamp

    try:
        timestamps = np.array([float(t) for t in raw_ts])
    except ValueError:
        timestamps = np.array([as_timestamp(t) for t in raw_ts])
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        if j == ts_index:
            continue
        col = np.full(len(rows), np.nan)
        for i, row in enumerate(rows):
            if j < len(row) and row[j].strip():
                with contextlib.suppress(ValueError):  # non-numeric cells are missing values
                    col[i] = float(row[j])
            if missing == "raise" and not np.isfinite(col[i]):
                cell = row[j] if j < len(row) else ""
                raise ValueError(
                    f"{path}: data row {i + 1}, column {name!r}: missing or non-numeric value {cell!r} "
                    "(--missing skip leaves such cells out)"
                )
        columns[name] = col
    return raw_ts, timestamps, columns


def _rounded(x: float) -> float | None:
    """Six decimals; None (JSON null, an empty CSV cell) for NaN or an infinity (a deviation
    whose distance from the mean overflows), which JSON cannot hold."""
    return round(float(x), 6) if np.isfinite(x) else None


def _cmd_detect(args: argparse.Namespace) -> int:
    from anomaly_detection import Settings, StatisticalAnomalyDetector

    overrides: dict[str, Any] = {}
    if args.method:
        overrides["detection_method"] = args.method
    if args.window_size is not None:  # 0 is refused by Settings, not ignored
        overrides["window_size"] = args.window_size
    if args.min_samples is not None:
        overrides["min_samples"] = args.min_samples
    method = args.method or Settings().detection_method
    if args.threshold is not None:
        overrides[THRESHOLD_FIELDS[method]] = args.threshold
    detector = StatisticalAnomalyDetector(**overrides)

    raw_ts, timestamps, columns = _read_csv(Path(args.file), args.timestamp_column, args.missing)
    started = time.perf_counter()
    flagged: list[dict[str, Any]] = []
    per_sensor: dict[str, tuple[int, int, int]] = {}
    series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for column, values in columns.items():
        sensor = _sensor_name(column)
        rows = np.flatnonzero(np.isfinite(values))
        if rows.size == 0:
            per_sensor[sensor] = (0, 0, len(values))
            continue
        result = detector.detect_batch(sensor, values[rows], timestamps[rows])
        per_sensor[sensor] = (rows.size, result.anomaly_count, len(values) - rows.size)
        series[sensor] = (rows, values[rows], result.is_anomaly)
        for k in result.anomaly_indices if not args.all else range(len(result)):
            i = int(rows[k])
            flagged.append({
                "row": i + 1, "timestamp": raw_ts[i], "sensor": sensor, "value": float(values[i]),
                "is_anomaly": bool(result.is_anomaly[k]), "score": _rounded(result.scores[k]),
                "deviation": _rounded(result.deviations[k]), "expected": _rounded(result.expected[k]),
            })  # fmt: skip
    elapsed = time.perf_counter() - started
    flagged.sort(key=lambda r: (r["row"], r["sensor"]))

    out = open(args.output, "w", newline="") if args.output else sys.stdout  # noqa: SIM115
    try:
        if args.format == "json":
            json.dump(flagged, out, indent=2)
            out.write("\n")
        else:
            fields = ["row", "timestamp", "sensor", "value", "is_anomaly", "score", "deviation", "expected"]
            writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows(flagged)
    finally:
        if out is not sys.stdout:
            out.close()

    total = sum(n for n, _, _ in per_sensor.values())
    anomalies = sum(a for _, a, _ in per_sensor.values())
    err = sys.stderr
    print(
        f"{args.file}: {len(raw_ts)} rows, {len(per_sensor)} sensor(s), {total} points, {anomalies} anomalies "
        f"({detector.method}, window {detector.settings.window_size}, threshold {detector.threshold}) "
        f"in {elapsed * 1000:.1f} ms",
        file=err,
    )
    for sensor, (n, a, skipped) in per_sensor.items():
        extra = f", {skipped} empty/non-numeric skipped" if skipped else ""
        print(f"  {sensor:<24} {n:>9} points {a:>7} anomalies{extra}", file=err)
    if args.plot:
        _plot(series, timestamps, args.plot, Path(args.file).name)
        print(f"plot written to {args.plot}", file=err)
    return 0


def _plot(series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], timestamps: np.ndarray,
          path: str, title: str) -> None:  # fmt: skip
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'anomaly-detection-core[plot]'") from None
    from datetime import datetime, timezone

    fig, axes = plt.subplots(len(series) or 1, 1, figsize=(11, 2.6 * max(1, len(series))), squeeze=False)
    for ax, (sensor, (rows, values, flags)) in zip(axes[:, 0], series.items()):
        when = [datetime.fromtimestamp(t, tz=timezone.utc) for t in timestamps[rows]]
        ax.plot(when, values, lw=0.8, color="#3b6ea8", label=sensor)
        idx = np.flatnonzero(flags)
        ax.scatter([when[i] for i in idx], values[idx], color="#d62728", s=18, zorder=3, label="anomaly")
        ax.set_ylabel(sensor)
        ax.legend(loc="upper left", fontsize=8)
    axes[0, 0].set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anomaly-detection", description="Real-time anomaly detection for metric and sensor streams."
    )
    from anomaly_detection import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("detect", help="flag anomalies in a CSV of timestamp,value[,value...]")
    p.add_argument("file", help="CSV with a header; first column timestamps, the others one sensor each")
    p.add_argument(
        "--method", choices=METHODS, help="scoring method (default: ANOMALY_DETECTION_METHOD or ensemble)"
    )
    p.add_argument("--window-size", type=int, help="points in each sensor's window")
    p.add_argument("--threshold", type=float, help="threshold of the method")
    p.add_argument("--min-samples", type=int, help="warm-up: no anomaly before this many points")
    p.add_argument("--timestamp-column", help="name of the timestamp column (default: the first)")
    p.add_argument(
        "--missing",
        choices=("skip", "raise"),
        default="skip",
        help="an empty, NaN or non-numeric cell: leave it out (default; counted in the summary) or stop "
        "with an error naming its row and column",
    )
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="output format (default csv)")
    p.add_argument("-o", "--output", help="write the rows here instead of stdout")
    p.add_argument("--all", action="store_true", help="write every row with its score, not only anomalies")
    p.add_argument("--plot", metavar="PNG", help="draw the series with anomalies marked")
    p.set_defaults(func=_cmd_detect)

    from anomaly_detection.api.cli import add_api_parsers
    from anomaly_detection.bench_cli import add_bench_parser
    from anomaly_detection.evaluation.cli import add_evaluate_parser
    from anomaly_detection.utils.redis_cli import add_redis_parsers

    add_api_parsers(sub)
    add_evaluate_parser(sub)
    add_redis_parsers(sub)
    add_bench_parser(sub)
    return parser


def _pipe_closed() -> int:
    """The reader of stdout went away (``... | head``): stop quietly, as Unix tools do.
    stdout is pointed at devnull so the interpreter's flush at exit does not fail again
    (Python's "Note on SIGPIPE"); the code is the one of a process ended by SIGPIPE."""
    with contextlib.suppress(OSError, ValueError):  # stdout with no file descriptor (captured)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 128 + 13  # 141, as a shell reports a command ended by SIGPIPE


def main(argv: list[str] | None = None) -> int:
    from anomaly_detection.redis.driver import redis_errors

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a reader that closed the pipe shows here, not at exit
        return code
    except BrokenPipeError:
        return _pipe_closed()
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get(args.command, "test")
        print(
            f"anomaly-detection {args.command}: error: {exc.name} is not installed; "
            f"pip install 'anomaly-detection-core[{extra}]'",
            file=sys.stderr,
        )
        return 2
    except (ValueError, OSError) as exc:
        print(f"anomaly-detection {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except redis_errors() as exc:
        if args.command not in ("health", "migrate-keys"):
            raise
        print(f"anomaly-detection {args.command}: Redis unavailable: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

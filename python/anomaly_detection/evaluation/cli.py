"""``anomaly-detection evaluate``: score a detector on NAB, TSB-AD series or ADBench.

The ways to run it::

    anomaly-detection evaluate --nab DIR --scores SCORES_DIR   # score existing results
    anomaly-detection evaluate --nab DIR [--out OUT] [--set method=mad ...]  # run the detector
    anomaly-detection evaluate --adbench DIR [--estimator forest|sklearn] [--seeds 0 1 2]
    anomaly-detection evaluate --tsbad DIR [--scores SCORES_DIR] [--json]   # TSB-AD's metrics

Wiring into the main command line takes two lines::

    add_evaluate_parser(subparsers)          # registers "evaluate"
    ...
    if args.command == "evaluate": return run_evaluate(args)   # or args.func(args)

The module also runs on its own: ``python -m anomaly_detection.evaluation.cli``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from anomaly_detection.evaluation.adbench import (
    AdbenchTable,
    anomaly_scores,
    run_adbench,
    sklearn_isolation_forest,
)
from anomaly_detection.evaluation.nab import (
    PROFILE_NAMES,
    NabCorpus,
    NabResult,
    load_scores_dir,
    score_all_profiles,
    write_results_csv,
)
from anomaly_detection.evaluation.tsbad import (
    TSBAD_METRIC_NAMES,
    TsbadMetrics,
    load_tsbad_dir,
    load_tsbad_scores,
    read_tsbad_timestamps,
    tsbad_metrics,
)

__all__ = [
    "DetectorFactory",
    "EstimatorFactory",
    "add_evaluate_parser",
    "build_parser",
    "default_detector_factory",
    "default_estimator_factory",
    "main",
    "run_detector_on_corpus",
    "run_evaluate",
]

#: ``factory(**settings_overrides)`` -> an object with
#: ``detect_batch(sensor_name, values, timestamps)`` whose result has ``.scores`` (and ``.alert_scores``).
DetectorFactory = Callable[..., Any]
#: ``factory(seed)`` -> an unfitted scikit-learn-style outlier detector.
EstimatorFactory = Callable[[int], Any]

_DESCRIPTION = (
    "Score a detector on labelled data: NAB time series, TSB-AD series (TSB-AD's metrics) "
    "or ADBench tabular sets."
)


# --- factories -----------------------------------------------------------------------------------


def default_detector_factory(**overrides: Any) -> Any:
    """The project's ``StatisticalAnomalyDetector`` with settings overrides."""
    try:
        from anomaly_detection import StatisticalAnomalyDetector  # type: ignore[attr-defined]
    except ImportError as exc:  # the facade or its native core is missing
        raise RuntimeError(f"the project's detector is not available ({exc})") from exc
    return StatisticalAnomalyDetector(**overrides)


def default_estimator_factory(name: str) -> EstimatorFactory:
    """``"forest"``: the project's ``IsolationForest`` (scikit-learn's contract);
    ``"sklearn"``: scikit-learn's, the README's reference."""
    if name == "sklearn":
        try:
            import sklearn  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(
                "scikit-learn is not installed (pip install 'anomaly-detection-core[bench]')"
            ) from exc
        return sklearn_isolation_forest
    if name == "forest":
        try:
            from anomaly_detection import IsolationForest  # type: ignore[attr-defined]
        except ImportError as exc:
            raise RuntimeError(f"the project's IsolationForest is not available ({exc})") from exc

        def forest(seed: int) -> Any:
            return IsolationForest(n_estimators=100, random_state=seed)

        return forest
    raise ValueError(f"unknown estimator {name!r}")


# --- argument parsing ----------------------------------------------------------------------------


def _configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--nab", metavar="DIR", type=Path, help="a corpus in NAB's layout (data/, labels/)")
    src.add_argument("--adbench", metavar="DIR", type=Path, help="a folder of ADBench .npz sets")
    src.add_argument(
        "--tsbad",
        metavar="DIR",
        type=Path,
        help="a folder of TSB-AD CSVs (a value column and a Label column), scored with TSB-AD's metrics",
    )
    nab = p.add_argument_group("NAB")
    nab.add_argument(
        "--scores",
        metavar="DIR",
        type=Path,
        help="score these per-file results (<category>/<file>.csv with an anomaly_score column; "
        "with --tsbad, the data files' relative names) instead of running the detector",
    )
    nab.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=Path("nab_results"),
        help="where the detector's NAB-format results go (default: %(default)s)",
    )
    nab.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="overrides",
        help="a detector setting, e.g. --set detection_method=mad (repeatable; VALUE is parsed as JSON "
        "when it can be)",
    )
    nab.add_argument(
        "--profile",
        choices=[*PROFILE_NAMES, "all"],
        default="all",
        help="the cost profile(s) to score (default: all three)",
    )
    nab.add_argument(
        "--baseline",
        choices=["auto", "nab", "corpus"],
        default="auto",
        help="null detector of the normalisation: 'nab' = NAB's stored full-corpus null (what NAB's runner "
        "and the published tables use), 'corpus' = detect nothing on these files; 'auto' = 'nab' for NAB "
        "files, else 'corpus' (default)",
    )
    nab.add_argument(
        "--files",
        metavar="GLOB",
        action="append",
        help="only the corpus files matching GLOB, e.g. 'realKnownCause/*' (repeatable: any of them)",
    )
    ad = p.add_argument_group("ADBench")
    ad.add_argument(
        "--estimator",
        choices=["forest", "sklearn"],
        default="forest",
        help="the project's IsolationForest (default) or scikit-learn's",
    )
    ad.add_argument("--seeds", metavar="N", type=int, nargs="+", default=[0, 1, 2], help="default: 0 1 2")
    p.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=run_evaluate)
    return p


def add_evaluate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``evaluate`` subcommand on an ``add_subparsers()`` object."""
    p = subparsers.add_parser("evaluate", help=_DESCRIPTION, description=_DESCRIPTION)
    return _configure(p)


def build_parser(prog: str = "anomaly-detection evaluate") -> argparse.ArgumentParser:
    return _configure(argparse.ArgumentParser(prog=prog, description=_DESCRIPTION))


def _parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set: expected KEY=VALUE, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return out


# --- progress ------------------------------------------------------------------------------------


class _Progress:
    """A one-line progress bar on a terminal; plain lines otherwise; nothing when disabled."""

    def __init__(self, stream: TextIO, enabled: bool, label: str) -> None:
        self.stream, self.enabled, self.label = stream, enabled, label
        self.tty = enabled and hasattr(stream, "isatty") and stream.isatty()

    def __call__(self, done: int, total: int, item: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            width = 24
            filled = int(width * done / total) if total else width
            bar = "#" * filled + "." * (width - filled)
            end = "\n" if done >= total else ""
            self.stream.write(f"\r{self.label} [{bar}] {done}/{total} {item[:60]:<60}{end}")
        else:
            self.stream.write(f"{self.label} {done}/{total} {item}\n")
        self.stream.flush()


# --- NAB -----------------------------------------------------------------------------------------


def _epoch_seconds(ts: np.ndarray) -> np.ndarray:
    return ts.astype("datetime64[ns]").astype(np.int64) / 1e9


def run_detector_on_corpus(
    corpus: NabCorpus,
    detector_factory: DetectorFactory,
    overrides: dict[str, Any] | None = None,
    *,
    out_dir: Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    alerts: bool = True,
) -> dict[str, np.ndarray]:
    """Run a fresh detector over each file in order and return its scores by file;
    with ``out_dir``, also write NAB-format results (``<out>/<category>/<file>.csv``).

    NAB counts alarms, so by default these are the result's ``alert_scores`` (one
    alarm per incident) where it has them; ``alerts=False`` takes ``scores``, which
    rank points (for ROC, PR and VUS curves)."""
    scores: dict[str, np.ndarray] = {}
    total = len(corpus)
    for i, (name, f) in enumerate(corpus.files.items()):
        if progress is not None:
            progress(i, total, name)
        detector = detector_factory(**(overrides or {}))
        sensor = Path(name).stem
        result = detector.detect_batch(sensor, f.values, _epoch_seconds(f.timestamps))
        s = getattr(result, "alert_scores", None) if alerts else None
        s = np.asarray(getattr(result, "scores", result) if s is None else s, dtype=np.float64)
        if s.shape != (len(f),):
            raise ValueError(f"{name}: the detector returned {s.shape} scores for {len(f)} rows")
        scores[name] = s
        if out_dir is not None:
            write_results_csv(out_dir / name, f.timestamps, f.values, s, f.window_mask())
    if progress is not None:
        progress(total, total, "done")
    return scores


def _fmt(x: float, spec: str = ".2f") -> str:
    return "-" if not math.isfinite(x) else format(x, spec)


def _print_nab(results: dict[str, NabResult], corpus: NabCorpus, source: str, out: TextIO) -> None:
    first = next(iter(results.values()))
    out.write(
        f"NAB corpus {corpus.root} ({len(corpus)} files, {corpus.n_windows} windows); scores: {source}\n"
    )
    null_note = {
        "nab": "NAB's stored full-corpus null (116 windows), as NAB's runner reports",
        "corpus": "the null detector on these files",
    }.get(first.baseline, f"a null detector on {first.baseline}")
    out.write(f"normalised against {null_note}\n\n")
    out.write(
        f"{'profile':<20}  {'score':>7}  {'vs null here':>12}  {'raw':>8}  {'threshold':>10}  TP/FN/FP\n"
    )
    out.writelines(
        f"{name:<20}  {_fmt(r.score):>7}  {_fmt(r.score_vs_corpus_null):>12}  {r.raw:8.3f}  "
        f"{_fmt(r.threshold, '.6g'):>10}  {r.tp}/{r.fn}/{r.fp}\n"
        for name, r in results.items()
    )
    shown = results.get("standard", first)
    out.write(f"\nper file ({shown.profile}, threshold {_fmt(shown.threshold, '.6g')}):\n")
    out.write(shown.table() + "\n")


def _run_nab(
    args: argparse.Namespace, detector_factory: DetectorFactory | None, out: TextIO, err: TextIO
) -> int:
    corpus = NabCorpus.load(args.nab)
    if args.files:
        names = [n for n in corpus.files if any(fnmatch.fnmatch(n, g) for g in args.files)]
        if not names:
            raise ValueError(f"--files {' '.join(args.files)!r} matches no corpus file")
        corpus = NabCorpus({n: corpus.files[n] for n in names}, corpus.profiles, corpus.root)
    progress = _Progress(err, not args.no_progress, "nab")
    if args.scores is not None:
        if args.overrides:
            raise ValueError("--set applies to the detector; it has no effect with --scores")
        scores = load_scores_dir(args.scores, corpus)
        source = str(args.scores)
    else:
        factory = detector_factory or default_detector_factory
        overrides = _parse_overrides(args.overrides)
        scores = run_detector_on_corpus(corpus, factory, overrides, out_dir=args.out, progress=progress)
        source = f"the detector {overrides or ''} (results in {args.out})".replace("  ", " ")
    profiles = PROFILE_NAMES if args.profile == "all" else (args.profile,)
    results = score_all_profiles(corpus, scores, profiles, baseline=args.baseline)
    if args.json:
        json.dump(
            {name: (round(r.score, 4) if math.isfinite(r.score) else None) for name, r in results.items()},
            out,
        )
        out.write("\n")
    else:
        _print_nab(results, corpus, source, out)
    return 0


# --- TSB-AD --------------------------------------------------------------------------------------


def _tsbad_detector_scores(
    values: np.ndarray,
    factory: DetectorFactory,
    overrides: dict[str, Any],
    timestamps: np.ndarray | None = None,
) -> np.ndarray:
    # a fresh detector per file; with the file's timestamps when it has a timestamp column
    result = factory(**overrides).detect_batch("series", values, timestamps)
    return np.asarray(getattr(result, "scores", result), dtype=np.float64)


def _tsbad_file(name: str, labels: np.ndarray, scores: np.ndarray, values: np.ndarray) -> TsbadMetrics:
    try:
        return tsbad_metrics(labels, scores, values=values)
    except ValueError as exc:  # say which file
        raise ValueError(f"{name}: {exc}") from None


def _print_tsbad(results: dict[str, TsbadMetrics], means: dict[str, float], source: str, out: TextIO) -> None:
    out.write(f"TSB-AD metrics on {len(results)} files; scores: {source}\n\n")
    width = max(len("mean"), *(len(name) for name in results))
    out.write(
        f"{'file':<{width}}  {'window':>6}  " + "  ".join(f"{m:>10}" for m in TSBAD_METRIC_NAMES) + "\n"
    )
    for name, r in results.items():
        row = r.to_dict()
        out.write(
            f"{name:<{width}}  {r.window:>6}  "
            + "  ".join(f"{row[m]:>10.4f}" for m in TSBAD_METRIC_NAMES)
            + "\n"
        )
    out.write(
        f"{'mean':<{width}}  {'':>6}  " + "  ".join(f"{means[m]:>10.4f}" for m in TSBAD_METRIC_NAMES) + "\n"
    )


def _run_tsbad(
    args: argparse.Namespace, detector_factory: DetectorFactory | None, out: TextIO, err: TextIO
) -> int:
    series = load_tsbad_dir(args.tsbad)
    if args.scores is not None:
        if args.overrides:
            raise ValueError("--set applies to the detector; it has no effect with --scores")
        scores = load_tsbad_scores(args.scores, {name: len(v) for name, (v, _) in series.items()})
        source = str(args.scores)
    else:
        factory = detector_factory or default_detector_factory
        overrides = _parse_overrides(args.overrides)
        stamps = {name: read_tsbad_timestamps(Path(args.tsbad) / name) for name in series}
        for name, ts in stamps.items():
            if ts is not None and len(ts) != len(series[name][0]):
                raise ValueError(f"{name}: {len(ts)} timestamps for {len(series[name][0])} values")
        progress = _Progress(err, not args.no_progress, "tsbad")
        scores = {}
        for i, (name, (values, _)) in enumerate(series.items()):
            progress(i, len(series), name)
            scores[name] = _tsbad_detector_scores(values, factory, overrides, stamps[name])
        progress(len(series), len(series), "done")
        source = f"the detector {overrides or ''}".rstrip()
    results = {
        name: _tsbad_file(name, labels, scores[name], values) for name, (values, labels) in series.items()
    }
    means = {m: float(np.mean([r.to_dict()[m] for r in results.values()])) for m in TSBAD_METRIC_NAMES}
    if args.json:
        json.dump({"files": {name: r.to_dict() for name, r in results.items()}, "mean": means}, out)
        out.write("\n")
    else:
        _print_tsbad(results, means, source, out)
    return 0


# --- ADBench -------------------------------------------------------------------------------------


def _print_adbench(table: AdbenchTable, label: str, out: TextIO) -> None:
    out.write(
        f"ADBench with {label}: mean ROC-AUC {table.mean_roc_auc:.3f}, mean PR-AUC {table.mean_pr_auc:.3f}\n\n"
    )
    out.write(table.to_markdown() + "\n")


def _run_adbench(
    args: argparse.Namespace, estimator_factory: EstimatorFactory | None, out: TextIO, err: TextIO
) -> int:
    factory = estimator_factory or default_estimator_factory(args.estimator)
    label = (
        "the given estimator"
        if estimator_factory
        else {
            "forest": "the project's IsolationForest",
            "sklearn": "scikit-learn's IsolationForest",
        }[args.estimator]
    )
    progress = _Progress(err, not args.no_progress, "adbench")
    table = run_adbench(factory, args.adbench, args.seeds, scorer=anomaly_scores, progress=progress)
    if args.json:
        body = {
            "roc_auc": round(table.mean_roc_auc, 4),
            "pr_auc": round(table.mean_pr_auc, 4),
            "datasets": {
                d["dataset"]: {"roc_auc": round(d["roc_auc"], 4), "pr_auc": round(d["pr_auc"], 4)}
                for d in table.per_dataset()
            },
        }
        json.dump(body, out)
        out.write("\n")
    else:
        _print_adbench(table, label, out)
    return 0


# --- entry points --------------------------------------------------------------------------------


def run_evaluate(
    args: argparse.Namespace,
    *,
    detector_factory: DetectorFactory | None = None,
    estimator_factory: EstimatorFactory | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Carry out ``evaluate`` for parsed arguments; 0 on success, 1 on an error
    (reported on stderr). The factories replace the project's detector (NAB) or
    forest (ADBench)."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        if args.nab is not None:
            return _run_nab(args, detector_factory, out, err)
        if args.tsbad is not None:
            return _run_tsbad(args, detector_factory, out, err)
        return _run_adbench(args, estimator_factory, out, err)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        err.write(f"anomaly-detection evaluate: error: {exc}\n")
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_evaluate(args)


if __name__ == "__main__":
    sys.exit(main())

"""TSB-AD's metrics on the NAB corpus: our default detector next to TSB-AD's Sub-PCA and POLY.

    python -m benchmarks.tsbad_nab [--nab DIR] [--scores NAME=DIR ...] [--no-tsbad] [--write FILE] [--json]

For each NAB file with at least one labelled window (a point is anomalous
inside a window of ``labels/combined_windows.json``), VUS-PR, VUS-ROC and
AUC-PR (:mod:`anomaly_detection.evaluation.tsbad`, the window from the series'
period as TSB-AD chooses it), per file and the mean over files, for:

a. our default detector: a fresh ``StatisticalAnomalyDetector()`` per file,
   ``detect_batch`` over the whole series with its timestamps, its raw
   ``scores`` (streaming and causal: each score sees only the past);
b. TSB-AD's Sub-PCA and POLY through the ``TSB-AD`` package's
   ``model_wrapper.run_Sub_PCA`` / ``run_POLY`` with the hyper-parameters of
   its ``HP_list.Optimal_Uni_algo_HP_dict`` (offline: they see the whole
   series), min-max scaled as TSB-AD's runner does. Optional; install with::

       pip install --no-deps TSB-AD==1.5
       pip install scipy scikit-learn statsmodels pandas arch hurst

   (not torch: TSB-AD's ``utils.utility`` imports ``torch.nn`` for a helper
   these two methods never call; without torch an empty placeholder stands in
   for that one import and is removed right after). Without the package the
   rows are skipped with a message;
c. any folder of NAB-format results, ``--scores NAME=DIR`` (``<category>/<file>.csv``
   or NAB's ``<category>/<detector>_<file>.csv`` with an ``anomaly_score`` column),
   e.g. NAB's stored detectors in ``<nab>/anchor_scores/<detector>``.

Prints a summary and a per-file table in markdown (``--write FILE`` also saves them).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine

from anomaly_detection.evaluation import NabCorpus, average_precision, load_scores_dir, sliding_window, vus
from anomaly_detection.evaluation.cli import default_detector_factory, run_detector_on_corpus

METRICS = ("VUS-PR", "VUS-ROC", "AUC-PR")
TSBAD_METHODS = ("Sub_PCA", "POLY")
TSBAD_INSTALL = (
    "pip install --no-deps TSB-AD==1.5 && pip install scipy scikit-learn statsmodels pandas arch hurst"
)


def _default_data() -> Path:
    root = Path(
        os.environ.get("ANOMALY_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data")
    )
    return root / "nab"


def load_tsbad_wrappers() -> tuple[Any, dict[str, dict[str, Any]], str]:
    """TSB-AD's ``model_wrapper`` module, its ``Optimal_Uni_algo_HP_dict`` and its
    version; raises ``ImportError`` with the install line when it is missing."""
    try:
        # the libraries TSB-AD's models import, loaded before any placeholder exists
        for name in ("scipy.stats", "sklearn.decomposition", "statsmodels.tsa.stattools", "pandas", "arch"):
            importlib.import_module(name)
        importlib.import_module("hurst")
        spec_version = importlib.metadata.version("TSB-AD")
    except (ImportError, importlib.metadata.PackageNotFoundError) as exc:
        raise ImportError(f"TSB-AD or a library it needs is missing ({exc}); {TSBAD_INSTALL}") from exc
    placeholder = importlib.util.find_spec("torch") is None
    if placeholder:
        torch = types.ModuleType("torch")
        torch.nn = types.ModuleType("torch.nn")  # type: ignore[attr-defined]
        sys.modules["torch"], sys.modules["torch.nn"] = torch, torch.nn  # type: ignore[attr-defined]
    try:
        wrappers = importlib.import_module("TSB_AD.model_wrapper")
        for model in ("POLY", "PCA"):
            importlib.import_module(f"TSB_AD.models.{model}")
        hp = importlib.import_module("TSB_AD.HP_list").Optimal_Uni_algo_HP_dict
    except ImportError as exc:
        raise ImportError(f"TSB-AD's model wrappers do not import ({exc}); {TSBAD_INSTALL}") from exc
    finally:
        if placeholder:  # other libraries look for torch in sys.modules: take it out again
            del sys.modules["torch"], sys.modules["torch.nn"]
    return wrappers, hp, spec_version


def tsbad_scores(
    corpus: NabCorpus, names: list[str], wrappers: Any, hp: dict, method: str
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The method's scores per file, min-max scaled as TSB-AD's runner does, and
    the files where it failed or gave non-finite scores: those are scored as a
    constant (no ranking at all), so that every mean is over the same files."""
    run = getattr(wrappers, f"run_{method}")
    out, failed = {}, []
    for name in names:
        values = corpus.files[name].values.reshape(-1, 1).astype(np.float64)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = np.asarray(run(values, **hp[method]), dtype=np.float64)
        except Exception as exc:  # noqa: BLE001 - TSB-AD's runner also turns a failure into a message
            failed.append(f"{name} ({type(exc).__name__}: {exc})")
            s = np.zeros(len(values))
        if not np.isfinite(s).all():
            failed.append(f"{name} (non-finite scores)")
            s = np.zeros(len(values))
        span = s.max() - s.min()
        out[name] = (s - s.min()) / span if span > 0 else np.zeros_like(s)
    return out, failed


def score_files(
    corpus: NabCorpus, scores: dict[str, np.ndarray], windows: dict[str, int]
) -> dict[str, dict[str, float]]:
    out = {}
    for name, window in windows.items():
        y, s = corpus.files[name].window_mask(), scores[name]
        roc, pr = vus(y, s, window)
        out[name] = {"VUS-PR": pr, "VUS-ROC": roc, "AUC-PR": average_precision(y, s)}
    return out


def check_reference(corpus: NabCorpus, scores: dict[str, np.ndarray], windows: dict[str, int]) -> str:
    """Our VUS-PR, VUS-ROC and AUC-PR against TSB-AD's own evaluation code on
    the same scores and windows: the largest difference, and the time each takes."""
    from TSB_AD.evaluation.basic_metrics import basic_metricor, generate_curve

    worst, ours_s, ref_s = 0.0, 0.0, 0.0
    for name, window in windows.items():
        y, s = corpus.files[name].window_mask().astype(int), scores[name]
        start = time.perf_counter()
        roc, pr = vus(y, s, window)
        ap = average_precision(y, s)
        ours_s += time.perf_counter() - start
        start = time.perf_counter()
        *_, ref_roc, ref_pr = generate_curve(y, s, window, "opt", 250)
        ref_ap = basic_metricor().metric_PR(y, s)
        ref_s += time.perf_counter() - start
        worst = max(worst, abs(roc - ref_roc), abs(pr - ref_pr), abs(ap - ref_ap))
    return (
        f"Reference check on our scores, {len(windows)} files: largest difference in VUS-PR, VUS-ROC or "
        f"AUC-PR from TSB-AD's evaluation code {worst:.1e}; time {ours_s:.2f} s (ours) vs {ref_s:.1f} s "
        f"(TSB-AD), {ref_s / ours_s:.0f}x."
    )


def _timed(fn: Callable[[], dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nab", type=Path, default=_default_data(), help="the NAB corpus (default: %(default)s)")
    p.add_argument("--scores", metavar="NAME=DIR", action="append", default=[], help="NAB-format results")
    p.add_argument("--no-tsbad", action="store_true", help="skip TSB-AD's Sub-PCA and POLY")
    p.add_argument(
        "--check-reference",
        action="store_true",
        help="also compute the metrics of our scores with TSB-AD's own evaluation code (slow): "
        "largest difference and time",
    )
    p.add_argument("--write", type=Path, help="also write the markdown here")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the means")
    args = p.parse_args(argv)

    corpus = NabCorpus.load(args.nab)
    windows = {n: sliding_window(f.values) for n, f in corpus.files.items() if f.window_mask().any()}
    skipped = sorted(set(corpus.files) - set(windows))
    rows: dict[str, tuple[dict[str, dict[str, float]], str]] = {}
    notes: list[str] = []

    labelled = NabCorpus({n: corpus.files[n] for n in windows}, corpus.profiles, corpus.root)
    scores, secs = _timed(lambda: run_detector_on_corpus(labelled, default_detector_factory, alerts=False))
    rows["ours (default, streaming)"] = (score_files(corpus, scores, windows), f"{secs:.1f}")
    if args.check_reference:
        print("checking the metrics against TSB-AD's evaluation code ...", file=sys.stderr)
        notes.append(check_reference(corpus, scores, windows))

    tsbad_version = None
    if not args.no_tsbad:
        try:
            wrappers, hp, tsbad_version = load_tsbad_wrappers()
        except ImportError as exc:
            notes.append(f"TSB-AD's Sub-PCA and POLY skipped: {exc}")
            print(notes[-1], file=sys.stderr)
        else:
            for method in TSBAD_METHODS:
                print(f"running TSB-AD {method} on {len(windows)} files ...", file=sys.stderr)
                start = time.perf_counter()
                scores, failed = tsbad_scores(corpus, list(windows), wrappers, hp, method)
                secs = time.perf_counter() - start
                if failed:
                    notes.append(
                        f"TSB-AD {method} failed on {len(failed)} file(s), scored as constant: "
                        + "; ".join(failed)
                    )
                label = f"TSB-AD {method.replace('_', '-')} {json.dumps(hp[method])} (offline)"
                rows[label] = (score_files(corpus, scores, windows), f"{secs:.1f}")
    for item in args.scores:
        name, sep, folder = item.partition("=")
        if not sep:
            p.error(f"--scores: expected NAME=DIR, got {item!r}")
        rows[name] = (score_files(corpus, load_scores_dir(folder, corpus), windows), "-")

    means = {
        label: {m: float(np.mean([r[m] for r in per_file.values()])) for m in METRICS}
        for label, (per_file, _) in rows.items()
    }
    summary = markdown_table(
        ["detector", *[f"mean {m}" for m in METRICS], "seconds (scores)"],
        [[label, *[f"{means[label][m]:.3f}" for m in METRICS], secs] for label, (_, secs) in rows.items()],
    )
    labels = list(rows)
    per_file = markdown_table(
        ["file", "window", *[f"{label.split(' {')[0]} VUS-PR / VUS-ROC / AUC-PR" for label in labels]],
        [
            [
                name,
                windows[name],
                *[" / ".join(f"{rows[label][0][name][m]:.3f}" for m in METRICS) for label in labels],
            ]
            for name in windows
        ],
    )
    versions = f"TSB-AD {tsbad_version}" if tsbad_version else "TSB-AD not installed"
    text = "\n".join(
        [
            f"## TSB-AD metrics on NAB ({len(windows)} files with labelled windows)",
            "",
            f"Machine: {machine()}; {versions}; numpy {np.__version__}.",
            f"Files without a labelled window (metrics undefined), left out: {', '.join(skipped) or 'none'}.",
            *[f"Note: {n}" for n in notes],
            "",
            summary,
            "",
            per_file,
            "",
        ]
    )
    print(text)
    if args.write:
        args.write.write_text(text)
    if args.json:
        print(json.dumps({"bench": "tsbad_nab", "files": len(windows), "means": means}))
    return 0


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    lines = [headers, ["---"] * len(headers), *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)


if __name__ == "__main__":
    sys.exit(main())

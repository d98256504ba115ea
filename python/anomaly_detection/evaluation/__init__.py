"""Measure detectors on labelled data.

* :mod:`~anomaly_detection.evaluation.nab`: the Numenta Anomaly Benchmark
  protocol (windows, probation, scaled sigmoid, cost profiles, corpus-wide
  threshold, normalisation), reproducing NAB's published scores.
* :mod:`~anomaly_detection.evaluation.metrics`: point, point-adjusted and event
  precision/recall/F1; ROC-AUC and average precision.
* :mod:`~anomaly_detection.evaluation.tsbad`: TSB-AD's metrics (AUC-PR, AUC-ROC,
  VUS-PR, VUS-ROC, range-based F1, point-adjusted F1), equal to its reference
  implementation, and ``evaluate --tsbad`` over a folder of its CSVs.
* :mod:`~anomaly_detection.evaluation.adbench`: the ADBench tabular harness for
  any scikit-learn-style outlier detector.
* :mod:`~anomaly_detection.evaluation.cli`: ``anomaly-detection evaluate``.

With the labelled data beside the project (tested in ``tests/python/test_evaluation_nab.py``)::

    from anomaly_detection.evaluation import NabCorpus, load_scores_dir, score_corpus
    corpus = NabCorpus.load("../shared/data/nab")
    scores = load_scores_dir("../shared/data/nab/anchor_scores/numenta", corpus)
    round(score_corpus(corpus, scores, "standard").score, 2)      # 86.28
"""

from anomaly_detection.evaluation.adbench import (
    AdbenchRow,
    AdbenchSet,
    AdbenchTable,
    anomaly_scores,
    evaluate_scores,
    load_adbench,
    run_adbench,
    sklearn_isolation_forest,
)
from anomaly_detection.evaluation.loco import LocoResult, categories, leave_one_category_out
from anomaly_detection.evaluation.metrics import (
    PRF,
    average_precision,
    event_prf,
    point_adjust,
    point_adjusted_prf,
    point_prf,
    roc_auc,
    segments,
)
from anomaly_detection.evaluation.nab import (
    NAB_V11_FILES,
    NAB_V11_WINDOWS,
    PROFILE_NAMES,
    PROFILES,
    CostProfile,
    FileScore,
    NabCorpus,
    NabFile,
    NabResult,
    derive_windows,
    load_profiles,
    load_scores_dir,
    optimize_threshold,
    probation_length,
    read_nab_csv,
    scaled_sigmoid,
    score_all_profiles,
    score_corpus,
    write_results_csv,
)
from anomaly_detection.evaluation.tsbad import (
    TSBAD_METRIC_NAMES,
    TsbadMetrics,
    pa_f1,
    range_f1,
    range_prf,
    sliding_window,
    tsbad_metrics,
    vus,
    vus_pr,
    vus_roc,
)

__all__ = [
    "LocoResult",
    "categories",
    "leave_one_category_out",
    "NAB_V11_FILES",
    "NAB_V11_WINDOWS",
    "PRF",
    "PROFILES",
    "PROFILE_NAMES",
    "TSBAD_METRIC_NAMES",
    "AdbenchRow",
    "AdbenchSet",
    "AdbenchTable",
    "CostProfile",
    "FileScore",
    "NabCorpus",
    "NabFile",
    "NabResult",
    "TsbadMetrics",
    "anomaly_scores",
    "average_precision",
    "derive_windows",
    "evaluate_scores",
    "event_prf",
    "load_adbench",
    "load_profiles",
    "load_scores_dir",
    "optimize_threshold",
    "pa_f1",
    "point_adjust",
    "point_adjusted_prf",
    "point_prf",
    "probation_length",
    "range_f1",
    "range_prf",
    "read_nab_csv",
    "roc_auc",
    "run_adbench",
    "scaled_sigmoid",
    "score_all_profiles",
    "score_corpus",
    "segments",
    "sklearn_isolation_forest",
    "sliding_window",
    "tsbad_metrics",
    "vus",
    "vus_pr",
    "vus_roc",
    "write_results_csv",
]

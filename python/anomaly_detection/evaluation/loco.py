"""Leave-one-category-out scoring on NAB: a figure that was not tuned on its test.

NAB's own score picks the threshold that is best on the very files it scores.
Here each category is scored with what was chosen *without* it: among the
candidate configurations, the one (and its threshold) with the best raw score
on the other categories; the held-out raw scores are then summed and
normalised as NAB normalises the whole corpus::

    from anomaly_detection.evaluation import NabCorpus, leave_one_category_out
    corpus = NabCorpus.load("../shared/data/nab")
    result = leave_one_category_out(corpus, {"default": scores, "mad": other_scores})
    result.score, result.picks      # normalised score; per category: (candidate, threshold, raw)

With one candidate this measures only how well the threshold carries over from
six categories to the seventh; with several, it also measures the choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from anomaly_detection.evaluation.nab import NabCorpus, score_corpus

__all__ = ["LocoResult", "categories", "leave_one_category_out"]


def categories(corpus: NabCorpus) -> list[str]:
    """The corpus's categories (the first part of each file's name), sorted."""
    return sorted({name.split("/", 1)[0] for name in corpus.files})


def _subset(corpus: NabCorpus, names: list[str]) -> NabCorpus:
    return NabCorpus({n: corpus.files[n] for n in names}, corpus.profiles, corpus.root)


@dataclass(frozen=True)
class LocoResult:
    """Held-out scores: ``score`` is normalised on the whole corpus's scale."""

    profile: str
    score: float
    raw: float
    #: per held-out category: (chosen candidate, threshold chosen without it, held-out raw score)
    picks: dict[str, tuple[str, float, float]]


def leave_one_category_out(
    corpus: NabCorpus,
    candidates: Mapping[str, Mapping[str, np.ndarray]],
    profile: str = "standard",
) -> LocoResult:
    """Score each category with the candidate and threshold chosen on the others.

    ``candidates`` maps a name to scores by file (as :func:`score_corpus` takes).
    """
    if not candidates:
        raise ValueError("candidates: expected at least one set of scores")
    cats = categories(corpus)
    if len(cats) < 2:
        raise ValueError("leave-one-category-out needs at least two categories")
    picks: dict[str, tuple[str, float, float]] = {}
    total = 0.0
    for held_out in cats:
        train = _subset(corpus, [n for n in corpus.files if not n.startswith(held_out + "/")])
        test = _subset(corpus, [n for n in corpus.files if n.startswith(held_out + "/")])
        fitted = {
            name: score_corpus(train, {n: scores[n] for n in train.files}, profile)
            for name, scores in candidates.items()
        }
        best = max(fitted, key=lambda name: fitted[name].raw)
        threshold = fitted[best].threshold
        held = score_corpus(test, {n: candidates[best][n] for n in test.files}, profile, threshold=threshold)
        picks[held_out] = (best, threshold, held.raw)
        total += held.raw
    whole = score_corpus(corpus, next(iter(candidates.values())), profile)
    score = 100.0 * (total - whole.null) / (whole.perfect - whole.null)
    return LocoResult(profile, score, total, picks)

"""The NAB scorer: the README's anchor table, NAB's own windows, and a slow
reference implementation of the protocol on random corpora."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anomaly_detection.evaluation import (
    NAB_V11_FILES,
    PROFILE_NAMES,
    PROFILES,
    NabCorpus,
    NabFile,
    derive_windows,
    load_scores_dir,
    optimize_threshold,
    probation_length,
    read_nab_csv,
    scaled_sigmoid,
    score_all_profiles,
    score_corpus,
    write_results_csv,
)

# NAB's published results table for the whole corpus, 58 files (standard,
# reward_low_FP_rate, reward_low_FN_rate): ../shared/data/README.md.
ANCHORS = {
    "ARTime": (74.85, 65.15, 80.36),
    "numenta": (70.10, 63.12, 74.32),
    "contextOSE": (69.90, 66.98, 73.18),
    "earthgeckoSkyline": (58.20, 46.20, 63.80),
    "knncad": (57.99, 43.41, 64.81),
    "relativeEntropy": (54.64, 47.60, 58.84),
    "randomCutForest": (51.72, 38.36, 59.75),
    "windowedGaussian": (39.65, 20.87, 47.41),
}
# The published figures are rounded to two decimals.
TOLERANCE = 0.0051
# NAB's own optimiser, rerun today on numenta's stored scores, finds a slightly
# better low-FP threshold than the published table (63.21, not 63.12); so does
# ours, since our search is exact. Every other figure matches to the rounding.
BETTER_THAN_PUBLISHED = {("numenta", "reward_low_FP_rate"): 63.21}

# The same scorer on the 18 "easy" files (artificialNoAnomaly,
# artificialWithAnomaly, realKnownCause), standard profile, NAB's scale.
EASY_CATEGORIES = ("artificialNoAnomaly", "artificialWithAnomaly", "realKnownCause")
EASY_ANCHORS = {"ARTime": 88.34, "numenta": 86.28, "windowedGaussian": 68.82}

# NAB v1.1 ships one window that is not centred on its label (the first of
# this file starts an hour after its label): the labeller cannot derive it.
WINDOW_NOT_FROM_LABEL = {"realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv"}


@pytest.fixture(scope="module")
def nab_dir(shared_data):
    return shared_data / "nab"


@pytest.fixture(scope="module")
def corpus(nab_dir):
    return NabCorpus.load(nab_dir)


@pytest.fixture(scope="module")
def anchor_results(corpus, nab_dir):
    cache = {}

    def get(detector):
        if detector not in cache:
            scores = load_scores_dir(nab_dir / "anchor_scores" / detector, corpus)
            cache[detector] = score_all_profiles(corpus, scores)
        return cache[detector]

    return get


def test_corpus_loads_the_shared_files(corpus):
    assert len(corpus) == 58
    assert corpus.n_windows == 116
    assert corpus.is_nab_subset
    assert set(corpus.profiles) == set(PROFILE_NAMES)
    assert corpus.profiles == PROFILES  # profiles.json holds NAB's three
    nyc = corpus.files["realKnownCause/nyc_taxi.csv"]
    assert len(nyc) == 10320
    assert nyc.probation == 750
    assert nyc.window_rows.shape == (5, 2)
    assert nyc.window_mask().sum() == 5 * 207


@pytest.mark.parametrize("detector", sorted(ANCHORS))
def test_reproduces_the_anchor_table(anchor_results, detector):
    results = anchor_results(detector)
    got = [results[p].score for p in PROFILE_NAMES]
    for profile, expected in zip(PROFILE_NAMES, ANCHORS[detector], strict=True):
        expected = BETTER_THAN_PUBLISHED.get((detector, profile), expected)
        assert results[profile].score == pytest.approx(expected, abs=TOLERANCE), (detector, profile, got)


@pytest.mark.parametrize("detector", sorted(EASY_ANCHORS))
def test_reproduces_the_easy_subset(corpus, nab_dir, detector):
    easy = NabCorpus.load(nab_dir, files=[n for n in corpus.files if n.startswith(EASY_CATEGORIES)])
    assert len(easy) == 18
    scores = load_scores_dir(nab_dir / "anchor_scores" / detector, easy)
    assert score_corpus(easy, scores, "standard").score == pytest.approx(
        EASY_ANCHORS[detector], abs=TOLERANCE
    )


def test_threshold_search_can_pick_the_top_score(corpus):
    # one detection, at the very top score, is the best threshold: it must be found
    scores = {name: np.zeros(len(f)) for name, f in corpus.files.items()}
    name, f = next((n, f) for n, f in corpus.files.items() if len(f.window_rows))
    scores[name][f.window_rows[0, 0]] = 1.0
    result = score_corpus(corpus, scores, "standard")
    assert result.threshold == 1.0
    assert result.tp == 1


def test_corpus_baseline_is_against_detecting_nothing_here(corpus, nab_dir):
    scores = load_scores_dir(nab_dir / "anchor_scores" / "numenta", corpus)
    nab = score_corpus(corpus, scores, "standard", baseline="nab")
    own = score_corpus(corpus, scores, "standard", baseline="corpus")
    assert nab.score == pytest.approx(70.10, abs=TOLERANCE)
    assert own.score == pytest.approx(70.10, abs=TOLERANCE)  # on the whole corpus both nulls are one
    assert nab.score_vs_corpus_null == pytest.approx(own.score)
    assert nab.raw == own.raw
    assert nab.threshold == own.threshold
    assert (nab.null, own.null, own.perfect) == (-116.0, -116.0, 116.0)
    # on a subset the two scales differ: detecting nothing on the 18 easy files
    # is 0 against them and 64.54 on NAB's scale
    easy = NabCorpus.load(nab_dir, files=[n for n in corpus.files if n.startswith(EASY_CATEGORIES)])
    silent = {name: np.zeros(len(f)) for name, f in easy.files.items()}
    assert score_corpus(easy, silent, baseline="corpus").score == pytest.approx(0.0)
    assert score_corpus(easy, silent, baseline="nab").score == pytest.approx(100 * 91 / 141)  # 64.54
    assert score_corpus(easy, silent).threshold == math.inf


def test_per_file_scores_add_up_to_the_optimum(corpus, nab_dir):
    scores = load_scores_dir(nab_dir / "anchor_scores" / "ARTime", corpus)
    for profile in PROFILE_NAMES:
        threshold, raw = optimize_threshold(corpus, scores, profile)
        result = score_corpus(corpus, scores, profile)
        assert result.threshold == threshold
        assert result.raw == pytest.approx(raw, abs=1e-9)
        assert sum(f.score for f in result.files) == pytest.approx(raw, abs=1e-9)
        assert result.tp + result.fn == corpus.n_windows
        # no other threshold does better
        for t in np.quantile(np.concatenate(list(scores.values())), [0.5, 0.9, 0.99, 0.999]):
            assert score_corpus(corpus, scores, profile, threshold=float(t)).raw <= raw + 1e-9


def test_threshold_search_is_fast(corpus, nab_dir):
    scores = load_scores_dir(nab_dir / "anchor_scores" / "randomCutForest", corpus)  # 81k distinct scores
    t0 = time.perf_counter()
    score_all_profiles(corpus, scores)
    assert time.perf_counter() - t0 < 2.0


def test_windows_derived_from_labels_match_nabs(corpus, nab_dir):
    labels = json.loads((nab_dir / "labels" / "combined_labels.json").read_text())
    for name, f in corpus.files.items():
        if name not in WINDOW_NOT_FROM_LABEL:
            assert derive_windows(f.timestamps, labels[name]) == f.windows, name


def test_corpus_without_window_file_derives_windows(tmp_path, nab_dir):
    (tmp_path / "data" / "realKnownCause").mkdir(parents=True)
    (tmp_path / "labels").mkdir()
    name = "realKnownCause/rogue_agent_key_hold.csv"
    (tmp_path / "data" / name).write_bytes((nab_dir / "data" / name).read_bytes())
    labels = json.loads((nab_dir / "labels" / "combined_labels.json").read_text())
    (tmp_path / "labels" / "combined_labels.json").write_text(json.dumps({name: labels[name]}))
    derived = NabCorpus.load(tmp_path)
    official = NabCorpus.load(nab_dir, files=[name])
    np.testing.assert_array_equal(derived.files[name].window_rows, official.files[name].window_rows)


def test_load_scores_dir_layouts(tmp_path, corpus, nab_dir):
    src = nab_dir / "anchor_scores" / "numenta"
    expected = load_scores_dir(src, corpus)
    # NAB's own naming: <category>/<detector>_<file>.csv with extra columns
    for name, f in corpus.files.items():
        category, base = name.split("/")
        write_results_csv(
            tmp_path / category / f"numenta_{base}", f.timestamps, f.values, expected[name], f.window_mask()
        )
    got = load_scores_dir(tmp_path, corpus)
    assert got.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
    (tmp_path / "realKnownCause" / "numenta_nyc_taxi.csv").unlink()
    with pytest.raises(FileNotFoundError, match="nyc_taxi"):
        load_scores_dir(tmp_path, corpus)
    with pytest.raises(ValueError, match="no scores"):
        score_corpus(corpus, {})


def test_results_csv_round_trip(tmp_path):
    ts = np.array(["2014-01-01 00:00:00", "2014-01-01 00:05:00"], dtype="datetime64[ns]")
    path = tmp_path / "cat" / "f.csv"
    write_results_csv(path, ts, np.array([1.0, 2.5]), np.array([0.1, 0.123456789012345]), np.array([0, 1]))
    assert path.read_text().splitlines()[0] == "timestamp,value,anomaly_score,label"
    assert path.read_text().splitlines()[1].startswith("2014-01-01 00:00:00,")
    cols = read_nab_csv(path)
    np.testing.assert_array_equal(cols["timestamp"], ts)
    np.testing.assert_array_equal(cols["anomaly_score"], [0.1, 0.123456789012345])  # full precision
    np.testing.assert_array_equal(cols["label"], [0, 1])


def test_scores_of_the_wrong_length_are_rejected(corpus):
    scores = {name: np.zeros(len(f)) for name, f in corpus.files.items()}
    scores["realKnownCause/nyc_taxi.csv"] = np.zeros(5)
    with pytest.raises(ValueError, match="5 scores for 10320 rows"):
        score_corpus(corpus, scores)


def test_protocol_constants():
    assert probation_length(4032) == 604
    assert probation_length(5000) == 750
    assert probation_length(22695) == 750
    assert float(scaled_sigmoid(-1.0)) == pytest.approx(0.98661, abs=1e-5)
    assert float(scaled_sigmoid(0.0)) == 0.0
    assert float(scaled_sigmoid(3.0)) == -1.0
    assert float(scaled_sigmoid(-0.5)) == pytest.approx(0.84828, abs=1e-5)


def test_unknown_profile_and_baseline(corpus):
    scores = {name: np.zeros(len(f)) for name, f in corpus.files.items()}
    with pytest.raises(ValueError, match="unknown NAB profile"):
        score_corpus(corpus, scores, "lenient")
    with pytest.raises(ValueError, match="baseline"):
        score_corpus(corpus, scores, baseline="zero")


def test_nab_file_list_is_the_v11_corpus():
    assert len(NAB_V11_FILES) == 58
    assert "realKnownCause/nyc_taxi.csv" in NAB_V11_FILES


# --- against a slow reference of the protocol ----------------------------------------------------


def _reference_file_score(n, windows, scores, threshold, tp_w, fp_w, fn_w):
    """The protocol, row by row: windows are inclusive (left, right) rows."""
    start = min(math.floor(0.15 * n), 750)
    sig = lambda x: -1.0 if x >= 3.0 else 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0
    total, counted = 0.0, 0
    for left, right in windows:
        if right < start:
            continue
        counted += 1
        width = right - left + 1
        first = next((i for i in range(max(left, start), right + 1) if scores[i] >= threshold), None)
        if first is None:
            total -= fn_w
        else:
            total += tp_w * sig(-(right - first + 1) / width) / sig(-1.0)
    for i in range(start, n):
        if scores[i] < threshold or any(a <= i <= b for a, b in windows):
            continue
        before = [(a, b) for a, b in windows if b < i]
        if not before:
            total -= fp_w
        else:
            a, b = before[-1]
            total += fp_w * sig((i - b) / max(b - a, 1))
    return total, counted


@st.composite
def small_corpora(draw):
    files = {}
    for k in range(draw(st.integers(1, 3))):
        n = draw(st.integers(20, 120))
        cuts = sorted(draw(st.lists(st.integers(0, n - 1), min_size=0, max_size=6, unique=True)))
        windows = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
        levels = draw(st.sampled_from([3, 10, 1000]))
        scores = draw(st.lists(st.integers(0, levels), min_size=n, max_size=n))
        files[f"cat/f{k}.csv"] = (n, windows, np.array(scores, dtype=float) / levels)
    return files


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_corpora(), st.sampled_from(PROFILE_NAMES))
def test_matches_a_slow_reference_on_random_corpora(files, profile_name):
    profile = PROFILES[profile_name]
    nab_files, scores = {}, {}
    for name, (n, windows, s) in files.items():
        ts = np.datetime64("2020-01-01T00:00") + np.arange(n) * np.timedelta64(5, "m")
        nab_files[name] = NabFile(name, ts, np.zeros(n), ts[:0], [(ts[a], ts[b]) for a, b in windows])
        scores[name] = s
    corpus = NabCorpus(nab_files)
    weights = (profile.tp_weight, profile.fp_weight, profile.fn_weight)

    def reference_total(threshold):
        parts = [_reference_file_score(n, w, s, threshold, *weights) for n, w, s in files.values()]
        return sum(p[0] for p in parts), sum(p[1] for p in parts)

    candidates = [math.inf, *sorted({float(v) for _, _, s in files.values() for v in s})]
    best = max(reference_total(t)[0] for t in candidates)
    result = score_corpus(corpus, scores, profile, baseline="corpus")
    assert result.raw == pytest.approx(best, abs=1e-9)
    assert reference_total(result.threshold)[0] == pytest.approx(best, abs=1e-9)
    windows = reference_total(math.inf)[1]
    if windows:
        null, perfect = -profile.fn_weight * windows, profile.tp_weight * windows
        assert result.score == pytest.approx(100 * (best - null) / (perfect - null))
    else:
        assert math.isnan(result.score)
    # any fixed threshold agrees too
    t = float(np.median(np.concatenate(list(scores.values()))))
    assert score_corpus(corpus, scores, profile, threshold=t).raw == pytest.approx(reference_total(t)[0])


def test_timestamps_that_step_back_are_taken_in_file_order():
    # NAB's machine_temperature file repeats an hour; windows are found by row order.
    base = np.datetime64("2020-01-01T00:00")
    minutes = [0, 5, 10, 15, 10, 15, 20, 25, 30, 35]
    ts = base + np.array(minutes) * np.timedelta64(1, "m")
    f = NabFile("x/y.csv", ts, np.zeros(10), ts[:0], [(ts[6], ts[8])])
    np.testing.assert_array_equal(f.window_rows, [[6, 8]])
    g = NabFile("x/z.csv", ts, np.zeros(10), ts[:0], [(ts[1], ts[3])])
    np.testing.assert_array_equal(g.window_rows, [[1, 3]])

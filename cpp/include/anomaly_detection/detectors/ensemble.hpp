// The "ensemble" method: several base detectors on one stream, each turned
// into an anomaly likelihood (as Numenta's), combined by their maximum. One
// configuration for every series; every choice was made with
// leave-one-category-out on the 58 NAB files (docs/evaluation.md).
//
// Per point x_t (all statistics are of the past only):
//   base statistics ("features"), each a raw score in [0, 1]:
//     value     |x - mean| / sd, exponentially weighted (span 1,000 points)
//     diff      the same for x_t - x_{t-1}
//     season    the same for x_t - (the value one day earlier, by time,
//               interpolated between the two points around it; none across a
//               gap wider than an hour or two intervals), so irregular sampling
//               and gaps do not shift the day; off when the first 50 timestamps
//               give fewer than 4 or more than 50,000 points a day. The value a
//               week earlier replaces the day's as the reference where it
//               explains the series better: once its residuals have been seen
//               for a week, while their mean square (EW over two weeks) is below
//               0.3 x the daily residuals' over the same points, until it is no
//               longer below theirs; the feature's likelihood starts afresh at
//               each change (at most 1,500 points a day: a week is kept)
//     spatial   1 when x leaves the range seen so far by more than 5% of it
//     markov    1 - P(bin of x | bin of x_{t-1}): first-order transitions
//               between 50 bins of the 1%-99% range of the first 300 points
//               (trained on those 300 points, then on every point)
//     level     |fast mean - mean| / sd: the EW mean over about 10 points
//               against the value's EW mean and sd (a shift of level)
//     context   1 - P(bin of x | bins of x_{t-2}, x_{t-1}): second-order
//               transitions between 10 bins of the same range (a new shape);
//               first-order ones for a context seen fewer than 5 times
//     shape     1 - the best match of the window of the last 8 means of 4 points
//               against at most 16 fuzzy-ART categories (detectors/fuzzy_art.hpp:
//               a second model family, after ARTime), on the context range
//               widened by half of it on each side
//     scale     a change of scale: log(EW mean |x_t - x_{t-1}| over about 25
//               points / the same over 1,000), its z against its own EW mean and sd
//               (a burst of roughness or a quieting that no single point shows)
//     cusum     Page's two-sided CUSUM of the value's z (against the value's EW mean
//               and sd), each z clipped at +-2 (Huber: a spike counts as two sd),
//               drift 0.5, both sums reset when one passes 10 (a small sustained shift)
//     polyres   a local-forecast residual (after TSB-AD's POLY): x_t against the least-squares
//               line through the previous w points evaluated one step ahead (a fixed linear
//               filter: one dot product a point), w = 8, 16 and 32; each residual's z against
//               its own EW mean and sd (span 1,000); the largest of the three
//   z-type features become 1 - exp(-min(z, 20) / 3) (level: of z / 2; cusum: of its sum).
//   likelihood of each feature (from the point its own statistics exist on):
//     the mean of its last 5 raw scores against the
//     mean and sd (floor 0.02) of those means over the last 2,000 points (once
//     there are 150 of them);
//     -log10 of the Gaussian upper tail probability.
//   statistic = the largest of the features' -log10 tail probabilities, each
//   divided by its weight (diff 2.5, season 1.6, polyres 1.6, the others 1). From the 300th
//   point on, a value within 0.1 x the range so far of the values' EW mean counts for
//   nothing in the value, diff and polyres features (ARTime's chomp, made causal).
// A clear outlier (beyond the range so far by more than half of it) also gets
// half the -log10 tail of its z (a z of about 6.4 reaches the alarm): during the
// first 300 points a robust z against the median and MAD of the points so far,
// after them a z against the values' EW mean and sd.
//
// score (ranks points): of the larger of the point's statistic and the recent
//   likelihoods' fading by 0.5% a point (the warm-up's counts for its point only): statistic / 10 up to 0.5 (a tail
//   probability of 1e-5), then 1 - 0.5 exp(-(statistic - 5) / 5), never tying at the top.
// alert_score (the alarm logic, on the point's own min(statistic / 10, 1)):
//   halved unless it beats every such score of the last three days (600 points
//   while the period is unknown): a continuing incident is not a new one; after
//   an alarm (alert score >= threshold) the next `cooldown` alert scores (or, with a
//   cooldown in seconds, those of the points less than that many seconds after it by
//   their timestamps) are capped at 0.9 x threshold.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "anomaly_detection/detectors/fuzzy_art.hpp"
#include "anomaly_detection/io/bytes.hpp"

namespace anomaly_detection {

/// The fixed parameters of the ensemble (one configuration for all series).
struct EnsembleParams {
    static constexpr double kBaseSpan = 1000;          // EW mean/sd of value, diff, season residual
    static constexpr size_t kShort = 5;                // short-term average of raw scores
    static constexpr size_t kLong = 2000;              // distribution of the averages
    static constexpr size_t kLearn = 300;              // points before the transition models score
    static constexpr size_t kLikelihoodMin = 150;      // averages a feature's likelihood needs before it scores;
    static constexpr size_t kReferencePeriod = 288;    // ... and the first as many points counted in time above this
                                                       //     many points a day (5 min), up to kLong
    static constexpr size_t kWarmupMin = 10;           // points before the warm-up's robust z scores
    static constexpr double kWarmupMargin = 0.5;       // ... of a point beyond the range so far by this much
    static constexpr size_t kRecord = 600;             // alarm logic: a new incident beats this many scores ...
    static constexpr int64_t kRecordDays = 3;          // ... or this many days' once the period is known,
    static constexpr size_t kRecordMin = 50;           //     but at least this many
    static constexpr size_t kRecordMax = 30'000;       //     and at most this many
    static constexpr uint64_t kCooldown = 100;         // alarm logic: points capped after an alarm
    static constexpr size_t kMaxCooldown = 1'000'000;  // largest alarm cooldown, in points
    static constexpr double kMaxCooldownSecs = 1e10;   // ... in seconds
    static constexpr size_t kPeriodProbe = 50;         // timestamps used to find the daily period first
    static constexpr size_t kIntervalBlock = 64;       // ... then re-estimated from each block of this many intervals
    static constexpr double kPeriodShift = 1.5;        // ... and changed when it moves by more than this factor
    static constexpr size_t kMaxPeriod = 50'000;
    static constexpr size_t kMaxLag = kMaxPeriod + 1;  // points kept for the seasonal lag
    static constexpr double kSeasonGap = 3600;         // seconds: a wider gap a day ago leaves no reference
    static constexpr double kWeekRatio = 0.3;          // weekly reference: its mean square below this x the daily
    static constexpr double kWeekFitWeeks = 2;         // ... both EW over this many weeks of points
    static constexpr size_t kMaxWeekPeriod = 1'500;    // ... for at most this many points a day
    static constexpr size_t kMaxWeekLag = 10'501;      // points kept for the weekly lag (a week)
    static constexpr size_t kUntimedBuffer = 4'096;    // untimed points: the last values the period estimate sees
    static constexpr uint64_t kUntimedFirst = 256;     // ... first estimated at this many points,
    static constexpr double kUntimedGrowth = 1.5;      // ... again each time the count grows by this factor
    static constexpr double kUntimedStrength = 0.3;    // ... the autocorrelation peak it needs
    static constexpr double kUntimedHarmonic = 0.6;    // ... a divisor lag's peak with this share of it is the period
    static constexpr int kBins = 50;                   // markov bins over the 1%-99% range
    static constexpr int kContextBins = 10;            // context (second-order) bins over the same range
    static constexpr uint64_t kContextMinSeen = 5;     // a context seen less often backs off to first order
    static constexpr double kLevelSpan = 10;           // EW span of the level feature's fast mean
    static constexpr double kLevelGain = 0.5;          // its z is halved before saturation
    static constexpr double kCap = 20.0;               // z cap
    static constexpr double kMinSd = 0.02;             // floor of the likelihood's sd
    static constexpr double kSpatialMargin = 0.05;
    static constexpr double kScale = 10.0;      // -log10(tail) / kScale = score
    static constexpr double kRankDecay = 0.99;  // the score's memory of recent statistics, per point at
                                                // five minutes or finer; as fast in time when coarser
    static constexpr double kDamp = 0.5;
    static constexpr double kHoldCap = 0.9;
    static constexpr double kShapeWiden = 0.5;   // the shape feature's range: the learning range widened by this
    static constexpr double kScaleShort = 25;    // scale feature: short EW span of |x_t - x_{t-1}|
    static constexpr double kCusumDrift = 0.5;   // cusum feature: drift (k), in sd
    static constexpr double kCusumReset = 10.0;  // ... both sums restart when one passes this (h)
    static constexpr double kCusumClip = 2.0;    // ... each point's z clipped at +- this
    static constexpr double kChomp = 0.1;        // value, diff, polyres: no outlier this near the mean (x range)
    static constexpr size_t kFeatures = 11;
    static constexpr size_t kFeaturesV2 = 7;  // features kept by checkpoint layouts 2 to 4
    // Each feature's -log10 tail probability is divided by its weight before the maximum:
    // differences and seasonal residuals are noisier (their alarms were mostly false on NAB).
    static constexpr double kWeight[kFeatures] = {1.0, 2.5, 1.6, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.6};
};

/// ARTime's "chomp", made causal (issue 15): `value` lies within kChomp x the range so far
/// (`hi - lo`, the past's max - min) of the values' EW mean `mean`. There the value and
/// difference detectors count for nothing (strict: a flat past chomps nothing).
inline bool near_centre(double value, double mean, double lo, double hi) {
    return std::fabs(value - mean) < EnsembleParams::kChomp * (hi - lo);
}

/// Output of one ensemble step.
struct EnsembleStep {
    double score = 0.0;        ///< in [0, 1]: ranks points (the point and its recent past)
    double alert_score = 0.0;  ///< the point's own score with the alarm logic (record gate, cooldown)
    double statistic = 0.0;    ///< the point's -log10 of the smallest feature tail probability
    double expected = 0.0;     ///< EW mean of the values
};

/// Exponentially weighted mean and variance, warm-started as a plain average.
struct EwMoments {
    uint64_t n = 0;
    double mean = 0.0;
    double var = 0.0;
    void push(double x, double span) {
        ++n;
        const double a = std::max(1.0 / static_cast<double>(n), 2.0 / (span + 1.0));
        const double d = x - mean;
        mean += a * d;
        var = (1.0 - a) * (var + a * d * d);
    }
    /// `push`, except that moments it would leave non-finite (values whose squares overflow, near
    /// the largest double) start afresh: the state stays one a checkpoint can hold.
    void push_finite(double x, double span) {
        push(x, span);
        if (!std::isfinite(mean) || !std::isfinite(var)) *this = EwMoments();
    }
    double sd() const { return var > 0 ? std::sqrt(var) : 0.0; }
};

/// Sum and sum of squares over the last `capacity` values.
class WindowSums {
   public:
    explicit WindowSums(size_t capacity = 1) : buf_(capacity, 0.0) {}
    void push(double x);
    size_t size() const { return size_; }
    double mean() const { return size_ ? s1_ / static_cast<double>(size_) : 0.0; }
    double sd() const;
    void serialize(io::ByteWriter& w) const;
    void deserialize(io::ByteReader& r, const char* what);

   private:
    void recompute();
    std::vector<double> buf_;
    size_t head_ = 0, size_ = 0, since_recompute_ = 0;
    double s1_ = 0.0, s2_ = 0.0;
};

/// Maximum of the last `span` values (monotonic deque).
class SlidingMax {
   public:
    explicit SlidingMax(size_t span = 1) : span_(span) {}
    /// A new span; values older than it leave.
    void set_span(size_t span);
    /// Max of the values in the window; requires !empty().
    double max() const { return q_.front().second; }
    bool empty() const { return q_.empty(); }
    void push(double x);
    void serialize(io::ByteWriter& w) const;
    void deserialize(io::ByteReader& r, const char* what);

   private:
    size_t span_;
    uint64_t t_ = 0;
    std::deque<std::pair<uint64_t, double>> q_;
};

/// Counts of which bin followed which context (a bin, or a pair of bins).
class Transitions {
   public:
    /// Novelty of `next` after `context`: 1 - its share of what followed the
    /// context (neighbouring bins count half); 1 for a context never seen.
    double novelty(int64_t context, int64_t next) const;
    /// How often `context` was seen.
    uint64_t seen(int64_t context) const;
    void learn(int64_t context, int64_t next);
    void serialize(io::ByteWriter& w) const;
    void deserialize(io::ByteReader& r);

   private:
    struct Context {
        uint64_t total = 0;
        std::unordered_map<int64_t, uint64_t> next;
    };
    std::unordered_map<int64_t, Context> contexts_;
};

/// The change features (checkpoint layout 5 on): a change of scale and a robust CUSUM.
/// Self-contained: fed each point with the previous value and the value's moments (of the
/// points before it), it gives both raw statistics.
struct ChangeStats {
    uint64_t diffs = 0;             // absolute differences seen
    double fast = 0.0, slow = 0.0;  // EW mean |x_t - x_{t-1}| over kScaleShort and kBaseSpan points
    EwMoments ratio;                // of log(fast / slow)
    double up = 0.0, down = 0.0;    // the CUSUM's sums, in [0, kCusumReset]

    struct Step {
        bool scale_ready = false, cusum_ready = false;
        double scale_z = 0.0;  // |log ratio - its mean| / its sd
        double cusum = 0.0;    // the larger CUSUM sum
    };
    /// `has_prev`: `prev` is the previous value; `moments`: the value's, before this point.
    Step update(double value, double prev, bool has_prev, const EwMoments& moments);
    void serialize(io::ByteWriter& w) const;
    void deserialize(io::ByteReader& r, uint64_t seen);
};

/// The local-forecast residual feature (checkpoint layout 7 on; issue 15, POLY's idea made
/// causal): x_t against the least-squares line through the previous w points, evaluated one
/// step ahead, for each w of kWindows. For a given w that forecast is a fixed linear filter of
/// the last w values (`filter`), so a point costs one dot product per scale. Each scale's
/// residual is a z against its own EW mean and sd (span kBaseSpan) of the past residuals; the
/// feature's raw statistic is the largest z of the scales that have one.
struct PolyResidual {
    static constexpr size_t kScales = 3;
    static constexpr size_t kWindows[kScales] = {8, 16, 32};
    static constexpr size_t kMaxWindow = 32;

    /// The weights h (oldest first) with forecast = sum_i h[i] x_{t-w+i}: row 0 of the
    /// pseudo-inverse of the degree-1 Vandermonde matrix of the positions -w .. -1.
    static std::vector<double> filter(size_t w);

    size_t count = 0;              // values held in `last` (at most kMaxWindow)
    double last[kMaxWindow] = {};  // the last values, oldest first
    EwMoments residuals[kScales];  // of each scale's past residuals

    struct Step {
        bool ready = false;  // some scale had a z
        double z = 0.0;      // the largest z of the scales
    };
    /// Scores `value` against the past (`floor`: the smallest sd a z divides by), then learns it.
    Step update(double value, double floor);
    void serialize(io::ByteWriter& w) const;
    void deserialize(io::ByteReader& r, uint64_t seen);
};

class EnsembleState {
   public:
    /// `threshold` in (0, 1]: the alarm level that starts the cooldown;
    /// `cooldown`: points after an alarm whose alert score stays below it; or, when
    /// `cooldown_seconds` > 0 (then `cooldown` must be 0), the points whose timestamp is
    /// less than that many seconds after the alarm's.
    explicit EnsembleState(double threshold, uint64_t cooldown = EnsembleParams::kCooldown,
                           double cooldown_seconds = 0.0);

    EnsembleStep update(double value, double timestamp);

    uint64_t seen() const { return seen_; }
    int64_t period() const { return period_; }
    /// The state's own point count from which its points are scored by all its detectors (its
    /// warm-up over): kLearn, or later where the likelihoods' warm-up in time lasted longer (at
    /// one minute: 750); UINT64_MAX while the likelihoods are not live yet. Where they went
    /// live is not in the checkpoint: a state restored live answers kLearn (its own later
    /// points are past that point either way).
    uint64_t live_from() const {
        return likelihoods_live_ ? std::max<uint64_t>(EnsembleParams::kLearn, live_since_) : UINT64_MAX;
    }
    double threshold() const { return threshold_; }

    void serialize(io::ByteWriter& w) const;
    /// `layout`: the checkpoint version the bytes are of: 1 (registry snapshot
    /// version 2) lacks the level and context features (they start afresh), 1 and 2
    /// the time of the last alarm (a cooldown in seconds starts afresh), 1 to 3 the
    /// running estimate of the sampling interval (it starts from their period), 1 to 4
    /// the shape feature (it starts afresh on the range of their bins) and the scale and
    /// cusum features (they start afresh), 1 to 5 the period estimate of untimed points (their
    /// timestamps are used as they come), 1 to 6 the polyres feature (it starts afresh) and the
    /// end of the likelihoods' warm-up (over once 150 points were seen, as they scored then).
    static EnsembleState deserialize(io::ByteReader& r, double threshold, uint64_t cooldown, double cooldown_seconds,
                                     int layout);

    /// A checkpoint of its own: versioned, checksummed bytes (family
    /// ensemble_checkpoint), as a shared store keeps it beside a sensor's window.
    std::string to_bytes() const;
    /// Restores a checkpoint for an ensemble alarming at `threshold`; throws
    /// std::invalid_argument ("possible corruption: ...") on corrupt bytes.
    static EnsembleState from_bytes(std::string_view bytes, double threshold,
                                    uint64_t cooldown = EnsembleParams::kCooldown, double cooldown_seconds = 0.0);
    uint64_t cooldown() const { return cooldown_; }
    double cooldown_seconds() const { return cooldown_seconds_; }

   private:
    struct Feature {
        Feature() : short_(EnsembleParams::kShort), long_(EnsembleParams::kLong), record(EnsembleParams::kRecord) {}
        WindowSums short_, long_;
        SlidingMax record;  // unused since checkpoint version 1's scores; kept (empty) in the bytes
    };
    double markov(double value);
    double context(double value);
    size_t record_span() const;
    size_t likelihood_warmup() const;
    double rank_decay();
    double warmup_statistic(double value) const;
    double warmup_step_statistic(double value) const;
    std::optional<double> lagged(std::deque<std::pair<double, double>>& lag, double timestamp, double seconds) const;
    bool keeps_week() const {
        return period_ < 0 || (period_ > 0 && period_ <= static_cast<int64_t>(EnsembleParams::kMaxWeekPeriod));
    }
    void start_season();
    void track_interval(double timestamp);
    void set_period(int64_t period);
    int64_t bin(double value) const;

    double threshold_;
    uint64_t cooldown_;
    double cooldown_seconds_;
    uint64_t seen_ = 0;
    double prev_ = 0.0;
    double lo_ = 0.0, hi_ = 0.0;
    EwMoments value_, diff_, season_;
    std::vector<double> learn_values_;           // first kLearn values (dropped after)
    std::vector<double> learn_times_;            // first kPeriodProbe timestamps (dropped after)
    int64_t period_ = -1;                        // -1 unknown yet, 0 none
    std::deque<std::pair<double, double>> lag_;  // (timestamp, value) of about the last day
    double resolution_ = 0.0;                    // markov bin width, 0 until learned
    double bin_origin_ = 0.0;                    // markov bins start at the 1% quantile of the learning values
    bool has_prev_bin_ = false;
    int64_t prev_bin_ = 0;
    Transitions transitions_;
    double level_ = 0.0;                              // the level feature's fast EW mean
    double rank_ = 0.0;                               // the statistic behind the score: recent ones fade
    double rank_decay_ = EnsembleParams::kRankDecay;  // its fading a point, for the period below
    int64_t rank_decay_period_ = -1;                  // (derived from period_, not kept)
    mutable size_t warm_steps_ = 0;                   // the learning steps the warm-up's step z is
    mutable double warm_step_median_ = 0.0;           // ... measured against, their median and
    mutable double warm_step_spread_ = 0.0;           // ... robust spread (derived, not kept)
    double resolution2_ = 0.0;                        // context bin width, 0 until learned
    uint8_t context_count_ = 0;                       // bins in the context so far (at most 2)
    int64_t context_bins_[2] = {0, 0};                // the last two context bins, oldest first
    Transitions contexts_;                            // after the last two context bins
    Transitions contexts1_;                           // after the last one (the back-off)
    Feature features_[EnsembleParams::kFeatures];
    SlidingMax recent_;
    uint64_t hold_ = 0;
    bool has_alarm_time_ = false;  // the timestamp of the last alarm (a cooldown in seconds)
    double alarm_time_ = 0.0;
    // The weekly reference (checkpoint version 3 on).
    std::deque<std::pair<double, double>> week_lag_;  // (timestamp, value) of about the last week
    EwMoments week_;                                  // the residuals against a week earlier
    double fit_day_ = 0.0, fit_week_ = 0.0;           // EW mean squares of both residuals, same points
    uint64_t fit_n_ = 0;                              // points with both residuals
    bool weekly_ = false;                             // the seasonal feature's reference is the week's
    // The running estimate of the sampling interval (checkpoint version 4 on).
    bool timed_ = false;  // last_time_ holds the previous point's timestamp
    double last_time_ = 0.0;
    std::vector<double> intervals_;  // the current block's intervals (fewer than kIntervalBlock)
    // The shape feature (checkpoint version 5 on).
    FuzzyArt shape_;
    void start_shape();
    // The change features' statistics (checkpoint version 5 on).
    ChangeStats change_;
    // The period of untimed points (checkpoint version 6 on): while the points come untimed
    // (batches without timestamps), they are stamped a day / the period estimated from their
    // values apart; once the timestamps move twice in a row, they are shifted by offset_.
    bool untimed_ = true;                                     // no clock seen yet
    double raw_last_ = 0.0;                                   // the last timestamp as given
    bool moved_ = false;                                      // ... and the last one moved (a new batch?)
    double offset_ = 0.0;                                     // added to the given timestamps once they move
    double step_ = 0.0;                                       // seconds between untimed points (0: no period found yet)
    uint64_t next_estimate_ = EnsembleParams::kUntimedFirst;  // the count at the next estimate
    std::vector<double> untimed_values_;                      // the last kUntimedBuffer values, a ring
    size_t untimed_head_ = 0;                                 // ... its oldest when full
    double stamp(double value, double timestamp);
    // The polyres feature's state (checkpoint version 7 on).
    PolyResidual poly_;
    // The likelihoods' warm-up in time is over for good (checkpoint version 7 on): a series whose
    // sampling speeds up later, or a checkpoint from before the warm-up, does not enter it again.
    bool likelihoods_live_ = false;
    uint64_t live_since_ = 0;  // the point at which they went live in this object (not in the checkpoint)
};

}  // namespace anomaly_detection

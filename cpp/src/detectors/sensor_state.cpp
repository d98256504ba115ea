#include "anomaly_detection/detectors/sensor_state.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#if ANOMALY_HAVE_LIBMVEC
#include <emmintrin.h>
#endif

namespace anomaly_detection {

namespace {
constexpr double kInvSqrt2 = 0.70710678118654752440;
// Normal-consistency constants: MAD = 0.6745 sigma, IQR = 1.349 sigma.
constexpr double kMadScale = 0.6745;
constexpr double kIqrSigma = 1.349;

// A window whose spread is zero (a flat line) still needs a finite scale: any
// departure from it is then a very large, but finite, deviation.
double floor_scale(double scale, double centre) {
    const double floor = 1e-12 * std::max(1.0, std::fabs(centre));
    return scale > floor ? scale : floor;
}
}  // namespace

#if ANOMALY_HAVE_LIBMVEC
// erf of two lanes at once from glibc's vector math library (libmvec, x86-64,
// glibc >= 2.35), the SSE2 variant every x86-64 CPU runs: 2.4x the throughput of
// scalar erf. Each lane's result depends on that lane's input alone, so one point
// scored alone (the other lane a copy) equals the same point scored in a batch.
extern "C" __m128d _ZGVbN2v_erf(__m128d);

double normal_score(double z) { return _mm_cvtsd_f64(_ZGVbN2v_erf(_mm_set1_pd(std::fabs(z) * kInvSqrt2))); }

void normal_scores(const double* z, double factor, double* out, size_t n) {
    const __m128d sign = _mm_set1_pd(-0.0), f = _mm_set1_pd(factor), r = _mm_set1_pd(kInvSqrt2);
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        const __m128d x = _mm_mul_pd(_mm_andnot_pd(sign, _mm_mul_pd(_mm_loadu_pd(z + i), f)), r);
        _mm_storeu_pd(out + i, _ZGVbN2v_erf(x));
    }
    for (; i < n; ++i) out[i] = normal_score(factor * z[i]);
}
#else
double normal_score(double z) { return std::erf(std::fabs(z) * kInvSqrt2); }

void normal_scores(const double* z, double factor, double* out, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = normal_score(factor * z[i]);
}
#endif

SensorState::SensorState(const DetectorConfig& config)
    : config_(config), values_(config.window_size), timestamps_(config.window_size) {
    cusum_.k = config.cusum_k;
    if (needs_order_statistics(config.method)) order_.emplace(config.window_size);
    if (config.method == Method::ensemble)
        ensemble_.emplace(config.threshold, config.alert_cooldown, config.alert_cooldown_seconds);
}

Detection SensorState::update(double value, double timestamp) { return step<true>(value, timestamp); }

Detection SensorState::update_unscored(double value, double timestamp) { return step<false>(value, timestamp); }

template <bool Scored>
Detection SensorState::step(double value, double timestamp) {
    // Without the ensemble, the score is normal_score(score_of) and nothing else reads it.
    const auto score = [](double score_of) { return Scored ? normal_score(score_of) : score_of; };
    Detection d;
    d.value = value;
    d.timestamp = timestamp;
    d.window_count = values_.size();
    d.expected = value;
    const size_t n = values_.size();
    const double lambda = config_.ewma_alpha;
    double next_ewma = ewma_started_ ? ewma_step(ewma_stat_, value, lambda) : value;
    Cusum next_cusum = cusum_;

    if (ensemble_) {  // the ensemble scores from its first point on
        const EnsembleStep e = ensemble_->update(value, timestamp);
        d.score = e.score;
        d.alert_score = e.alert_score;
        d.deviation = e.statistic;
        d.expected = e.expected;
    } else if (n >= 2) {
        switch (config_.method) {
            case Method::zscore: {
                const double mean = moments_.mean();
                d.expected = mean;
                d.deviation = (value - mean) / floor_scale(moments_.stddev(), mean);
                d.score = score(d.deviation);
                break;
            }
            case Method::mad: {
                const double median = order_->median();
                d.expected = median;
                d.deviation = kMadScale * (value - median) / floor_scale(order_->mad(), median);
                d.score = score(d.deviation);
                break;
            }
            case Method::iqr: {
                const double q1 = order_->quantile(0.25), q3 = order_->quantile(0.75);
                const double median = order_->median();
                const double iqr = floor_scale(q3 - q1, median);
                d.expected = median;
                d.deviation = value > q3 ? (value - q3) / iqr : value < q1 ? (value - q1) / iqr : 0.0;
                d.score = score((value - median) / (iqr / kIqrSigma));
                break;
            }
            case Method::ewma: {
                const double mean = moments_.mean();
                const double sigma = floor_scale(moments_.stddev(), mean) * std::sqrt(lambda / (2.0 - lambda));
                d.expected = mean;
                d.deviation = (next_ewma - mean) / sigma;
                d.score = score(d.deviation);
                break;
            }
            case Method::cusum: {
                const double mean = moments_.mean();
                d.expected = mean;
                next_cusum.update((value - mean) / floor_scale(moments_.stddev(), mean));
                d.deviation = next_cusum.statistic();
                // Scaled so that the threshold h maps to the score of 3 sigma.
                d.score = score((3.0 / config_.threshold) * d.deviation);
                break;
            }
            case Method::ensemble:
                break;  // scored above
        }
    }
    if (!ensemble_) d.alert_score = d.score;
    const bool beyond = ensemble_ ? d.alert_score >= config_.threshold : std::fabs(d.deviation) > config_.threshold;
    d.is_anomaly = seen_ >= config_.min_samples && beyond;

    ++seen_;
    if (d.is_anomaly) ++anomalies_;
    if (!d.is_anomaly || config_.include_anomalies) {
        ewma_stat_ = next_ewma;
        ewma_started_ = true;
        cusum_ = next_cusum;
        if (d.is_anomaly && config_.method == Method::cusum) cusum_.reset();
        push(value, timestamp);
    }
    return d;
}

template <typename Window>
void SensorState::on_collapse(const Window& window) {
    if (ewma_started_) ewma_stat_ = ewma_over(window, config_.ewma_alpha);
    cusum_.reset();
}

void SensorState::push(double value, double timestamp) {
    if (push_window(value, timestamp) == RollingMoments::Step::collapsed) on_collapse(values_);
}

RollingMoments::Step SensorState::push_window(double value, double timestamp) {
    const bool evicting = values_.full();
    const double evicted = evicting ? values_.front() : 0.0;
    const size_t slot = values_.next_slot();  // == front slot when full
    if (order_) {
        if (evicting) {
            order_->replace(slot, value);
        } else {
            order_->insert(slot, value);
        }
    }
    values_.push(value);
    timestamps_.push(timestamp);
    return moments_.update(value, evicting ? &evicted : nullptr, values_);
}

namespace {
// The window in the middle of a batch: the last `count` values of the ring (the
// window before the batch) followed by the batch's first `pushed` values.
struct BatchWindow {
    const RingBuffer<double>& ring;
    const double* values;
    size_t capacity;
    size_t pushed = 0;
    size_t count = ring.size();
    size_t size() const { return count; }
    double operator[](size_t j) const {
        const size_t k = ring.size() + pushed - count + j;
        return k < ring.size() ? ring[k] : values[k - ring.size()];
    }
    void advance() {
        ++pushed;
        if (count < capacity) ++count;
    }
};
}  // namespace

void SensorState::update_batch(const double* values, const double* timestamps, size_t n, const BatchOutput& out) {
    const Method m = config_.method;
    if (config_.include_anomalies && (m == Method::zscore || m == Method::ewma || m == Method::cusum))
        return update_batch_moments(values, timestamps, n, out);
    if (ensemble_) {
        for (size_t i = 0; i < n; ++i) {
            const Detection d = update(values[i], timestamps[i]);
            out.is_anomaly[i] = d.is_anomaly;
            out.scores[i] = d.score;
            if (out.alert_scores) out.alert_scores[i] = d.alert_score;
            out.deviations[i] = d.deviation;
            out.expected[i] = d.expected;
            out.window_counts[i] = d.window_count;
        }
        return;
    }
    if (config_.include_anomalies && (m == Method::iqr || m == Method::mad)) {
        // Every point enters the window and nothing of the score reads the moments or the
        // EWMA statistic: they advance in one pass of their own (the kernel of the
        // z-score batch), then each point is scored on the order statistics and pushed.
        advance_moments(values, n);
        const double h = config_.threshold;
        const uint64_t min_samples = config_.min_samples;
        for (size_t i = 0; i < n; ++i) {
            const double value = values[i];
            const size_t count = values_.size();
            double expected = value, deviation = 0.0, score_of = 0.0;
            if (count >= 2) {
                if (m == Method::iqr) {
                    const double q1 = order_->quantile(0.25), q3 = order_->quantile(0.75);
                    const double median = order_->median();
                    const double iqr = floor_scale(q3 - q1, median);
                    expected = median;
                    deviation = value > q3 ? (value - q3) / iqr : value < q1 ? (value - q1) / iqr : 0.0;
                    score_of = (value - median) / (iqr / kIqrSigma);
                } else {
                    const double median = order_->median();
                    expected = median;
                    deviation = kMadScale * (value - median) / floor_scale(order_->mad(), median);
                    score_of = deviation;
                }
            }
            const bool flagged = seen_ >= min_samples && std::fabs(deviation) > h;
            ++seen_;
            anomalies_ += flagged;
            out.is_anomaly[i] = flagged;
            out.scores[i] = score_of;
            out.deviations[i] = deviation;
            out.expected[i] = expected;
            out.window_counts[i] = count;
            const size_t slot = values_.next_slot();
            if (values_.full()) {
                order_->replace(slot, value);
            } else {
                order_->insert(slot, value);
            }
            values_.push(value);
            timestamps_.push(timestamps[i]);
        }
        normal_scores(out.scores, 1.0, out.scores, n);
        if (out.alert_scores) std::copy(out.scores, out.scores + n, out.alert_scores);
        return;
    }
    // The scores in one vectorised pass after the loop (normal_scores computes each lane
    // as normal_score does, so they are equal).
    for (size_t i = 0; i < n; ++i) {
        const Detection d = update_unscored(values[i], timestamps[i]);
        out.is_anomaly[i] = d.is_anomaly;
        out.scores[i] = d.score;
        out.deviations[i] = d.deviation;
        out.expected[i] = d.expected;
        out.window_counts[i] = d.window_count;
    }
    normal_scores(out.scores, 1.0, out.scores, n);
    if (out.alert_scores) std::copy(out.scores, out.scores + n, out.alert_scores);
}

// Every point enters the window, so the window at point i is a slice of the ring
// and the batch, and the work splits into passes: (1) the running sums in order,
// recording the mean and spread update would see before each point (and the EWMA
// statistic); (2) deviations, each point independent of the others; (3) for
// CUSUM, its recursion; (4) scores and flags. Each pass does update's arithmetic
// in update's order, so the results are equal to a loop of update.
void SensorState::update_batch_moments(const double* values, const double* timestamps, size_t n,
                                       const BatchOutput& out) {
    const size_t cap = config_.window_size;
    const size_t r = values_.size();
    const double lambda = config_.ewma_alpha;
    const Method method = config_.method;
    double* const mean = out.expected;
    double* const dev = out.deviations;  // the spread, until pass 2 turns it into the deviation
    double* const chart = out.scores;    // the EWMA statistic, until pass 4 scores the point
    std::vector<size_t> collapses;       // points after which a glitch left the window
    BatchWindow window{values_, values, cap};
    double stat = ewma_stat_;
    bool started = ewma_started_;
    const bool keep_chart = method == Method::ewma;  // the others score without it
    auto before = [&](size_t i, double m, double spread) {
        mean[i] = m;
        dev[i] = spread;
        // Every method keeps the EWMA statistic (it is part of the saved state).
        stat = started ? ewma_step(stat, values[i], lambda) : values[i];
        started = true;
        if (keep_chart) chart[i] = stat;
    };
    auto after = [&](size_t i, RollingMoments::Step step, const auto& w) {
        if (step != RollingMoments::Step::collapsed) return;
        stat = ewma_over(w, lambda);
        collapses.push_back(i);
    };
    // From point `cap` on, the window before each point is the `cap` batch values before
    // it: the kernel reads them in place (the same arithmetic, fewer instructions).
    const size_t in_place = std::min(n, cap);
    moments_.update_many(values, in_place, window, cap, before, after);
    if (n > in_place) moments_.update_many_contiguous(values, in_place, n, cap, before, after);
    ewma_stat_ = stat;
    ewma_started_ = started;

    // Points scored against fewer than two values: expected is the value itself.
    const size_t first = std::min(n, r >= 2 ? size_t{0} : 2 - r);
    for (size_t i = 0; i < first; ++i) {
        mean[i] = values[i];
        dev[i] = 0.0;
        chart[i] = 0.0;
    }
    if (method == Method::ewma) {
        const double chart_scale = std::sqrt(lambda / (2.0 - lambda));
        for (size_t i = first; i < n; ++i)
            dev[i] = (chart[i] - mean[i]) / (floor_scale(RollingMoments::spread_stddev(dev[i]), mean[i]) * chart_scale);
    } else {
        for (size_t i = first; i < n; ++i)
            dev[i] = (values[i] - mean[i]) / floor_scale(RollingMoments::spread_stddev(dev[i]), mean[i]);
    }

    const double h = config_.threshold;
    const uint64_t min_samples = config_.min_samples;
    uint64_t anomalies = 0;
    if (method == Method::cusum) {
        auto next_collapse = collapses.begin();
        for (size_t i = 0; i < n; ++i) {
            if (i >= first) {
                cusum_.update(dev[i]);
                dev[i] = cusum_.statistic();
            }
            const bool flagged = seen_ + i >= min_samples && std::fabs(dev[i]) > h;
            if (flagged) cusum_.reset();
            if (next_collapse != collapses.end() && *next_collapse == i) {
                cusum_.reset();
                ++next_collapse;
            }
            anomalies += flagged;
            out.is_anomaly[i] = flagged;
        }
        normal_scores(dev + first, 3.0 / h, out.scores + first, n - first);
    } else {
        // No flag before min_samples; after it, a test of |deviation| alone.
        const size_t warm = seen_ >= min_samples ? 0 : std::min<uint64_t>(n, min_samples - seen_);
        std::fill(out.is_anomaly, out.is_anomaly + warm, false);
        for (size_t i = warm; i < n; ++i) {
            const bool flagged = std::fabs(dev[i]) > h;
            anomalies += flagged;
            out.is_anomaly[i] = flagged;
        }
        normal_scores(dev + first, 1.0, out.scores + first, n - first);
    }
    const size_t growing = std::min(n, r < cap ? cap - r : size_t{0});  // points before the window is full
    for (size_t i = 0; i < growing; ++i) out.window_counts[i] = r + i;
    std::fill(out.window_counts + growing, out.window_counts + n, uint64_t{cap});
    if (out.alert_scores) std::copy(out.scores, out.scores + n, out.alert_scores);  // no alarm logic here
    seen_ += n;
    anomalies_ += anomalies;
    // The window keeps the batch's last points (their timestamps only now).
    for (size_t i = n > cap ? n - cap : 0; i < n; ++i) {
        values_.push(values[i]);
        timestamps_.push(timestamps[i]);
    }
}

void SensorState::advance_moments(const double* values, size_t n) {
    const size_t cap = config_.window_size;
    const double lambda = config_.ewma_alpha;
    BatchWindow window{values_, values, cap};
    double stat = ewma_stat_;
    bool started = ewma_started_;
    bool collapsed = false;
    auto before = [&](size_t i, double, double) {
        stat = started ? ewma_step(stat, values[i], lambda) : values[i];
        started = true;
    };
    auto after = [&](size_t, RollingMoments::Step step, const auto& w) {
        if (step != RollingMoments::Step::collapsed) return;
        stat = ewma_over(w, lambda);
        collapsed = true;
    };
    const size_t in_place = std::min(n, cap);
    moments_.update_many(values, in_place, window, cap, before, after);
    if (n > in_place) moments_.update_many_contiguous(values, in_place, n, cap, before, after);
    ewma_stat_ = stat;
    ewma_started_ = started;
    if (collapsed) cusum_.reset();  // the only change to CUSUM's sums outside its own method
}

void SensorState::window(std::vector<double>& values, std::vector<double>& timestamps) const {
    values.resize(values_.size());
    timestamps.resize(values_.size());
    for (size_t i = 0; i < values_.size(); ++i) {
        values[i] = values_[i];
        timestamps[i] = timestamps_[i];
    }
}

SensorSummary SensorState::summary() const {
    SensorSummary s;
    s.points_seen = seen_;
    s.anomalies = anomalies_;
    s.window_count = values_.size();
    s.mean = moments_.mean();
    s.stddev = moments_.stddev();
    if (!values_.empty()) {
        s.min = std::numeric_limits<double>::infinity();
        s.max = -s.min;
        for (size_t i = 0; i < values_.size(); ++i) {
            s.min = std::min(s.min, values_[i]);
            s.max = std::max(s.max, values_[i]);
        }
        s.last_timestamp = timestamps_[values_.size() - 1];
    }
    return s;
}

void SensorState::serialize(io::ByteWriter& w) const {
    w.put<uint64_t>(seen_);
    w.put<uint64_t>(anomalies_);
    w.put<uint8_t>(ewma_started_ ? 1 : 0);
    w.put<double>(ewma_stat_);
    w.put<double>(cusum_.pos);
    w.put<double>(cusum_.neg);
    const auto m = moments_.raw();
    w.put<uint64_t>(m.n);
    w.put<uint64_t>(m.evictions);
    w.put<double>(m.shift);
    w.put<double>(m.s1);
    w.put<double>(m.s2);
    w.put<int32_t>(m.scale_exponent);  // since registry format 3
    w.put<uint64_t>(values_.size());
    for (size_t i = 0; i < values_.size(); ++i) w.put<double>(values_[i]);
    for (size_t i = 0; i < values_.size(); ++i) w.put<double>(timestamps_[i]);
    if (ensemble_) ensemble_->serialize(w);
}

SensorState SensorState::deserialize(io::ByteReader& r, const DetectorConfig& config, uint16_t version) {
    SensorState s(config);
    s.seen_ = r.get<uint64_t>("points seen");
    s.anomalies_ = r.get<uint64_t>("anomaly count");
    s.ewma_started_ = r.get_flag("ewma flag");
    s.ewma_stat_ = r.get<double>("ewma statistic");
    s.cusum_.pos = r.get<double>("cusum S+");
    s.cusum_.neg = r.get<double>("cusum S-");
    RollingMoments::Raw m{};
    m.n = r.get<uint64_t>("moments count");
    m.evictions = r.get<uint64_t>("moments evictions");
    m.shift = r.get<double>("moments shift");
    m.s1 = r.get<double>("moments sum");
    m.s2 = r.get<double>("moments sum of squares");
    m.scale_exponent = version >= 3 ? r.get<int32_t>("moments scale") : 0;  // older formats had no scale
    const auto count = r.get<uint64_t>("window count");
    if (count > config.window_size)
        io::corruption("window count: expected at most " + std::to_string(config.window_size) + ", got " +
                       std::to_string(count));
    if (s.anomalies_ > s.seen_ || count > s.seen_) io::corruption("counters: inconsistent");
    if (!std::isfinite(s.ewma_stat_) || !(s.cusum_.pos >= 0) || !(s.cusum_.neg >= 0) || !std::isfinite(s.cusum_.pos) ||
        !std::isfinite(s.cusum_.neg))
        io::corruption("ewma/cusum state: expected finite values");
    std::vector<double> values(count), timestamps(count);
    r.get_array(values.data(), count, "window values");
    r.get_array(timestamps.data(), count, "window timestamps");
    for (size_t i = 0; i < count; ++i) {
        if (!std::isfinite(values[i]) || !std::isfinite(timestamps[i]))
            io::corruption("window: expected finite values");
        s.push_window(values[i], timestamps[i]);
    }
    if (m.evictions > config.window_size || !s.moments_.set_raw(m, s.values_))
        io::corruption("rolling moments: inconsistent with the window");
    if (config.method == Method::ensemble) {
        s.ensemble_.emplace(EnsembleState::deserialize(r, config.threshold, config.alert_cooldown,
                                                       config.alert_cooldown_seconds,
                                                       version >= 6   ? 5
                                                       : version >= 5 ? 4
                                                       : version >= 4 ? 3
                                                       : version >= 3 ? 2
                                                                      : 1));
        if (s.ensemble_->seen() != s.seen_) io::corruption("ensemble: inconsistent with the sensor's counters");
    }
    return s;
}

SensorState SensorState::from_window(const DetectorConfig& config, const double* values, const double* timestamps,
                                     size_t n, uint64_t seen) {
    return from_checkpoint(config, values, timestamps, n, seen, std::nullopt, 0);
}

SensorState SensorState::from_checkpoint(const DetectorConfig& config, const double* values, const double* timestamps,
                                         size_t n, uint64_t seen, std::optional<EnsembleState>&& checkpoint,
                                         uint64_t checkpoint_seen, bool* exact) {
    SensorState s(config);
    const size_t first = n > config.window_size ? n - config.window_size : 0;
    const uint64_t count = n - first;
    const bool ensemble = config.method == Method::ensemble;
    // A checkpoint helps when the window still holds every point after it.
    const bool resume = ensemble && checkpoint && checkpoint->seen() <= checkpoint_seen && checkpoint_seen <= seen &&
                        seen - checkpoint_seen <= count;
    const uint64_t replayed_from = resume ? n - (seen - checkpoint_seen) : first;
    // The ensemble learns from every point, flagged or not: it is always replayed.
    const bool replay = config.method == Method::ewma || config.method == Method::cusum || ensemble;
    if (resume) s.ensemble_ = std::move(checkpoint);
    // Replayed points are scored again only for the running statistics (and CUSUM's
    // reset after an alarm), with the warm-up counter they had the first time.
    s.seen_ = seen >= count ? seen - count : 0;
    for (size_t i = first; i < n; ++i) {
        if (!std::isfinite(values[i]) || !std::isfinite(timestamps[i]))
            throw std::invalid_argument("window: expected finite values and timestamps");
        if (resume && i < replayed_from) {
            s.push_window(values[i], timestamps[i]);  // before the checkpoint: the window only
            ++s.seen_;
        } else if (replay && (config.include_anomalies || ensemble)) {
            s.update(values[i], timestamps[i]);
        } else {
            s.push_window(values[i], timestamps[i]);
        }
    }
    s.seen_ = std::max(seen, count);
    s.anomalies_ = 0;
    if (exact) *exact = !ensemble || resume || seen <= count;
    return s;
}

void detect_after_window(const DetectorConfig& config, const double* window_values, const double* window_timestamps,
                         size_t n, uint64_t seen, const double* values, const double* timestamps, size_t m,
                         const BatchOutput& out) {
    std::optional<EnsembleState> none;
    detect_after_checkpoint(config, window_values, window_timestamps, n, seen, values, timestamps, m, none, 0, out);
}

bool detect_after_checkpoint(const DetectorConfig& config, const double* window_values, const double* window_timestamps,
                             size_t n, uint64_t seen, const double* values, const double* timestamps, size_t m,
                             std::optional<EnsembleState>& ensemble, uint64_t checkpoint_seen, const BatchOutput& out) {
    config.validate();
    for (size_t i = 0; i < m; ++i)
        if (!std::isfinite(values[i]) || !std::isfinite(timestamps[i]))
            throw std::invalid_argument("values[" + std::to_string(i) + "]: expected finite numbers");
    for (size_t i = 0; i < n; ++i)
        if (!std::isfinite(window_values[i]) || !std::isfinite(window_timestamps[i]))
            throw std::invalid_argument("window: expected finite values and timestamps");
    if (ensemble && ensemble->threshold() != config.threshold)
        throw std::invalid_argument("checkpoint: made for threshold " + std::to_string(ensemble->threshold()) +
                                    ", expected " + std::to_string(config.threshold));
    if (ensemble && ensemble->cooldown() != config.alert_cooldown)
        throw std::invalid_argument("checkpoint: made for alert_cooldown " + std::to_string(ensemble->cooldown()) +
                                    ", expected " + std::to_string(config.alert_cooldown));
    if (ensemble && ensemble->cooldown_seconds() != config.alert_cooldown_seconds)
        throw std::invalid_argument("checkpoint: made for alert_cooldown_seconds " +
                                    std::to_string(ensemble->cooldown_seconds()) + ", expected " +
                                    std::to_string(config.alert_cooldown_seconds));
    bool exact = true;
    SensorState state = SensorState::from_checkpoint(config, window_values, window_timestamps, n, seen,
                                                     std::move(ensemble), checkpoint_seen, &exact);
    state.update_batch(values, timestamps, m, out);
    ensemble = state.release_ensemble();
    return exact;
}

}  // namespace anomaly_detection

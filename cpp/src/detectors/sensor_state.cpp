#include "anomaly_detection/detectors/sensor_state.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#if ANOMALY_HAVE_LIBMVEC || (defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)))
#include <immintrin.h>
#endif

#include "anomaly_detection/portable.hpp"

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

// (a - b) / scale for finite a and b and a finite scale > 0. Where a - b overflows (a and b
// of opposite signs near the largest double), the ratio of the halved operands, which
// cannot: a number where the difference would give an infinity. The batch kernels' lanes
// (deviations_avx2) do the same.
double scaled_difference(double a, double b, double scale) {
    const double d = a - b;
    return std::fabs(d) <= std::numeric_limits<double>::max() ? d / scale : (0.5 * a - 0.5 * b) / (0.5 * scale);
}

// The IQR deviation and score of a finite value when a distance to it and the quartiles'
// spread both overflow (inf / inf is NaN: -DBL_MAX and DBL_MAX in the window): the same
// ratios on halved operands, which cannot overflow.
void iqr_halved(double value, double q1, double q3, double median, double& deviation, double& score) {
    const double iqr = floor_scale(0.5 * q3 - 0.5 * q1, 0.5 * median);
    deviation = value > q3 ? (0.5 * value - 0.5 * q3) / iqr : value < q1 ? (0.5 * value - 0.5 * q1) / iqr : 0.0;
    score = (0.5 * value - 0.5 * median) / (iqr / kIqrSigma);
}
}  // namespace

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ANOMALY_X86_AVX2 1  // AVX2 variants of the batch passes, chosen at run time
#define ANOMALY_TARGET_AVX2 __attribute__((target("avx2")))
#endif

namespace {
// Whether this CPU runs the AVX2 variants (asked once, after the program's constructors,
// as __builtin_cpu_supports requires).
[[maybe_unused]] bool use_avx2() {
#if ANOMALY_X86_AVX2
    static const bool avx2 = portable::cpu_has_avx2();
    return avx2;
#else
    return false;
#endif
}
}  // namespace

#if ANOMALY_HAVE_LIBMVEC
// erf from glibc's vector math library (libmvec, x86-64, glibc >= 2.35): four lanes
// with AVX2 where the CPU has it, else two with SSE2. Each lane's result depends on
// that lane's input alone, and one point scored alone (normal_score) goes through the
// same variant as a batch (normal_scores), so both give the same bits on a machine.
// (The two variants may differ in the last bit on a few inputs: 25 of 20 M measured.)
extern "C" __m128d _ZGVbN2v_erf(__m128d);
#if ANOMALY_X86_AVX2
extern "C" ANOMALY_TARGET_AVX2 __m256d _ZGVdN4v_erf(__m256d);

namespace {
ANOMALY_TARGET_AVX2 double normal_score_avx2(double z) {
    return _mm256_cvtsd_f64(_ZGVdN4v_erf(_mm256_set1_pd(std::fabs(z) * kInvSqrt2)));
}

ANOMALY_TARGET_AVX2 void normal_scores_avx2(const double* z, double factor, double* out, size_t n) {
    const __m256d sign = _mm256_set1_pd(-0.0), f = _mm256_set1_pd(factor), r = _mm256_set1_pd(kInvSqrt2);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m256d x = _mm256_mul_pd(_mm256_andnot_pd(sign, _mm256_mul_pd(_mm256_loadu_pd(z + i), f)), r);
        _mm256_storeu_pd(out + i, _ZGVdN4v_erf(x));
    }
    for (; i < n; ++i) out[i] = normal_score_avx2(factor * z[i]);
}
}  // namespace
#endif

double normal_score(double z) {
#if ANOMALY_X86_AVX2
    if (use_avx2()) return normal_score_avx2(z);
#endif
    return _mm_cvtsd_f64(_ZGVbN2v_erf(_mm_set1_pd(std::fabs(z) * kInvSqrt2)));
}

void normal_scores(const double* z, double factor, double* out, size_t n) {
#if ANOMALY_X86_AVX2
    if (use_avx2()) return normal_scores_avx2(z, factor, out, n);
#endif
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

#if ANOMALY_X86_AVX2
#define ANOMALY_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ANOMALY_ALWAYS_INLINE inline
#endif

namespace {
// The batch passes after the running sums, over one block of points (each point on its
// own, so they vectorise: with AVX2 where the CPU has it, four lanes; the bits are the
// same either way, as every operation is an IEEE add, multiply, divide or sqrt, and
// neither variant contracts them into fused multiply-adds).

// dev[i] from the spread pass 1 left in it: (x[i] - mean[i]) / scale, where x is the
// value (z-score, CUSUM) or the EWMA statistic, whose scale is the chart's.
template <bool Chart>
ANOMALY_ALWAYS_INLINE void deviations_body(const double* x, const double* mean, double* dev, double chart_scale,
                                           size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
        const double scale = floor_scale(RollingMoments::spread_stddev(dev[i]), mean[i]);
        dev[i] = scaled_difference(x[i], mean[i], Chart ? scale * chart_scale : scale);
    }
}

// flags[i] = |dev[i]| > h; returns how many are set.
ANOMALY_ALWAYS_INLINE uint64_t flags_body(const double* dev, bool* flags, double h, size_t b, size_t e) {
    uint64_t count = 0;
    for (size_t i = b; i < e; ++i) {
        const bool flagged = std::fabs(dev[i]) > h;
        count += flagged;
        flags[i] = flagged;
    }
    return count;
}

#if ANOMALY_X86_AVX2
// deviations_body in four lanes, written out (the compiler leaves the loop scalar): the
// same operations on each lane (a max_pd is floor_scale's and std::max's comparison).
ANOMALY_TARGET_AVX2 void deviations_avx2(bool chart, const double* x, const double* mean, double* dev,
                                         double chart_scale, size_t b, size_t e) {
    const __m256d zero = _mm256_setzero_pd(), sign = _mm256_set1_pd(-0.0), one = _mm256_set1_pd(1.0);
    const __m256d tiny = _mm256_set1_pd(1e-12), cs = _mm256_set1_pd(chart_scale);
    const __m256d half = _mm256_set1_pd(0.5), largest = _mm256_set1_pd(std::numeric_limits<double>::max());
    size_t i = b;
    for (; i + 4 <= e; i += 4) {
        const __m256d spread = _mm256_loadu_pd(dev + i), m = _mm256_loadu_pd(mean + i);
        // spread_stddev: sqrt of a variance (>= 0), else minus the spread is the deviation
        const __m256d sd = _mm256_blendv_pd(_mm256_xor_pd(spread, sign), _mm256_sqrt_pd(spread),
                                            _mm256_cmp_pd(spread, zero, _CMP_GE_OQ));
        const __m256d floor = _mm256_mul_pd(tiny, _mm256_max_pd(_mm256_andnot_pd(sign, m), one));
        __m256d scale = _mm256_max_pd(sd, floor);
        if (chart) scale = _mm256_mul_pd(scale, cs);
        const __m256d v = _mm256_loadu_pd(x + i), diff = _mm256_sub_pd(v, m);
        __m256d r = _mm256_div_pd(diff, scale);
        // scaled_difference: lanes whose difference overflowed take the halved operands
        const __m256d over = _mm256_cmp_pd(_mm256_andnot_pd(sign, diff), largest, _CMP_GT_OQ);
        if (_mm256_movemask_pd(over))
            r = _mm256_blendv_pd(r,
                                 _mm256_div_pd(_mm256_sub_pd(_mm256_mul_pd(half, v), _mm256_mul_pd(half, m)),
                                               _mm256_mul_pd(half, scale)),
                                 over);
        _mm256_storeu_pd(dev + i, r);
    }
    chart ? deviations_body<true>(x, mean, dev, chart_scale, i, e)
          : deviations_body<false>(x, mean, dev, chart_scale, i, e);
}

ANOMALY_TARGET_AVX2 uint64_t flags_avx2(const double* dev, bool* flags, double h, size_t b, size_t e) {
    return flags_body(dev, flags, h, b, e);
}
#endif

void deviations(bool chart, const double* x, const double* mean, double* dev, double chart_scale, size_t b, size_t e) {
#if ANOMALY_X86_AVX2
    if (use_avx2()) return deviations_avx2(chart, x, mean, dev, chart_scale, b, e);
#endif
    chart ? deviations_body<true>(x, mean, dev, chart_scale, b, e)
          : deviations_body<false>(x, mean, dev, chart_scale, b, e);
}

uint64_t flags(const double* dev, bool* flags, double h, size_t b, size_t e) {
#if ANOMALY_X86_AVX2
    if (use_avx2()) return flags_avx2(dev, flags, h, b, e);
#endif
    return flags_body(dev, flags, h, b, e);
}

// The IQR method's deviation and score of points [b, e) from the quartiles and median
// its serial pass left: q1 in dev, q3 in score, the median in `median`.
ANOMALY_ALWAYS_INLINE void iqr_body(const double* x, double* dev, double* score, const double* median, size_t b,
                                    size_t e) {
    for (size_t i = b; i < e; ++i) {
        const double q1 = dev[i], q3 = score[i], value = x[i], m = median[i];
        const double iqr = floor_scale(q3 - q1, m);
        dev[i] = value > q3 ? (value - q3) / iqr : value < q1 ? (value - q1) / iqr : 0.0;
        score[i] = (value - m) / (iqr / kIqrSigma);
        if (std::isnan(dev[i]) || std::isnan(score[i])) iqr_halved(value, q1, q3, m, dev[i], score[i]);
    }
}

#if ANOMALY_X86_AVX2
// iqr_body in four lanes: both divisions of the deviation's branches become one (the
// quartile it is taken from chosen per lane), masked to +0 between the quartiles.
ANOMALY_TARGET_AVX2 void iqr_avx2(const double* x, double* dev, double* score, const double* median, size_t b,
                                  size_t e) {
    const __m256d sign = _mm256_set1_pd(-0.0), one = _mm256_set1_pd(1.0), tiny = _mm256_set1_pd(1e-12);
    const __m256d sigma = _mm256_set1_pd(kIqrSigma);
    size_t i = b;
    for (; i + 4 <= e; i += 4) {
        const __m256d q1 = _mm256_loadu_pd(dev + i), q3 = _mm256_loadu_pd(score + i);
        const __m256d value = _mm256_loadu_pd(x + i), m = _mm256_loadu_pd(median + i);
        const __m256d floor = _mm256_mul_pd(tiny, _mm256_max_pd(_mm256_andnot_pd(sign, m), one));
        const __m256d iqr = _mm256_max_pd(_mm256_sub_pd(q3, q1), floor);
        const __m256d above = _mm256_cmp_pd(value, q3, _CMP_GT_OQ), below = _mm256_cmp_pd(value, q1, _CMP_LT_OQ);
        const __m256d d = _mm256_div_pd(_mm256_sub_pd(value, _mm256_blendv_pd(q1, q3, above)), iqr);
        const __m256d dv = _mm256_and_pd(d, _mm256_or_pd(above, below));
        const __m256d sc = _mm256_div_pd(_mm256_sub_pd(value, m), _mm256_div_pd(iqr, sigma));
        _mm256_storeu_pd(dev + i, dv);
        _mm256_storeu_pd(score + i, sc);
        const int nan =
            _mm256_movemask_pd(_mm256_or_pd(_mm256_cmp_pd(dv, dv, _CMP_UNORD_Q), _mm256_cmp_pd(sc, sc, _CMP_UNORD_Q)));
        if (nan != 0) {  // rare: an overflowing spread (iqr_body's fix-up, lane by lane)
            alignas(32) double lo[4], hi[4];
            _mm256_store_pd(lo, q1);
            _mm256_store_pd(hi, q3);
            for (size_t k = 0; k < 4; ++k)
                if ((nan >> k) & 1) iqr_halved(x[i + k], lo[k], hi[k], median[i + k], dev[i + k], score[i + k]);
        }
    }
    iqr_body(x, dev, score, median, i, e);
}
#endif

void iqr_scores(const double* x, double* dev, double* score, const double* median, size_t b, size_t e) {
#if ANOMALY_X86_AVX2
    if (use_avx2()) return iqr_avx2(x, dev, score, median, b, e);
#endif
    iqr_body(x, dev, score, median, b, e);
}

// Points per block of the z-score/EWMA/CUSUM batch: the block's values, means, spreads
// and scores (4 KB each) stay in L1 from the running sums to the scores.
constexpr size_t kBlock = 512;
// Points per finiteness check of that batch (16 blocks): 128 KB of values and timestamps
// read in one burst, then in L2 for the blocks' passes. A check per block (8 KB bursts)
// left the C++ kernel 4-5% slower than a separate pass over the whole batch; 8,192 and
// 16,384 points measured the same as that pass with reused outputs, 3% faster with fresh ones.
constexpr size_t kCheck = 8192;

// Whether values and timestamps [b, e) are all finite, branch-free: x * 0 is +-0 for a
// finite x and NaN otherwise, so the OR of those bits has every exponent bit set just
// when some entry is not finite. Run on a block just before the kernel's first pass over
// it, it brings the block into L1 for that pass (no pass of its own over the batch).
ANOMALY_ALWAYS_INLINE bool all_finite_body(const double* values, const double* timestamps, size_t b, size_t e) {
    double bits = 0.0;
    for (size_t i = b; i < e; ++i) bits += values[i] * 0.0 + timestamps[i] * 0.0;  // NaN sticks
    return bits == bits;
}

#if ANOMALY_X86_AVX2
ANOMALY_TARGET_AVX2 bool all_finite_avx2(const double* values, const double* timestamps, size_t b, size_t e) {
    const __m256d zero = _mm256_setzero_pd();
    __m256d bits0 = zero, bits1 = zero;
    size_t i = b;
    for (; i + 8 <= e; i += 8) {
        bits0 = _mm256_or_pd(bits0, _mm256_or_pd(_mm256_mul_pd(_mm256_loadu_pd(values + i), zero),
                                                 _mm256_mul_pd(_mm256_loadu_pd(timestamps + i), zero)));
        bits1 = _mm256_or_pd(bits1, _mm256_or_pd(_mm256_mul_pd(_mm256_loadu_pd(values + i + 4), zero),
                                                 _mm256_mul_pd(_mm256_loadu_pd(timestamps + i + 4), zero)));
    }
    const __m256d bits = _mm256_or_pd(bits0, bits1);
    // Ordered-equal to itself in every lane: no NaN among the products.
    return _mm256_movemask_pd(_mm256_cmp_pd(bits, bits, _CMP_ORD_Q)) == 0xF &&
           all_finite_body(values, timestamps, i, e);
}
#endif

bool all_finite(const double* values, const double* timestamps, size_t b, size_t e) {
#if ANOMALY_X86_AVX2
    if (use_avx2()) return all_finite_avx2(values, timestamps, b, e);
#endif
    return all_finite_body(values, timestamps, b, e);
}

// A value in an error message as Python prints a float64: nan, inf, -inf.
std::string non_finite_text(double x) {
    if (std::isnan(x)) return "nan";
    return x > 0 ? "inf" : "-inf";
}

// The error for the first entry of [b, e) that is not finite (there must be one).
[[noreturn]] void throw_non_finite(const double* values, const double* timestamps, size_t b, size_t e,
                                   const std::string& what) {
    for (size_t i = b; i < e; ++i) {
        if (!std::isfinite(values[i]))
            throw std::invalid_argument(what + "values[" + std::to_string(i) + "]: expected a finite number, got " +
                                        non_finite_text(values[i]));
        if (!std::isfinite(timestamps[i]))
            throw std::invalid_argument(what + "timestamps[" + std::to_string(i) + "]: expected a finite number, got " +
                                        non_finite_text(timestamps[i]));
    }
    throw std::logic_error("throw_non_finite: every entry is finite");
}
}  // namespace

void check_finite_batch(const double* values, const double* timestamps, size_t n, const std::string& what) {
    // In chunks, so that a bad entry early in a long batch is found early.
    constexpr size_t kChunk = 4096;
    for (size_t b = 0; b < n; b += kChunk) {
        const size_t e = std::min(n, b + kChunk);
        if (!all_finite(values, timestamps, b, e)) throw_non_finite(values, timestamps, b, e, what);
    }
}

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
                d.deviation = scaled_difference(value, mean, floor_scale(moments_.stddev(), mean));
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
                double z = (value - median) / (iqr / kIqrSigma);
                if (std::isnan(d.deviation) || std::isnan(z)) iqr_halved(value, q1, q3, median, d.deviation, z);
                d.score = score(z);
                break;
            }
            case Method::ewma: {
                const double mean = moments_.mean();
                const double sigma = floor_scale(moments_.stddev(), mean) * std::sqrt(lambda / (2.0 - lambda));
                d.expected = mean;
                d.deviation = scaled_difference(next_ewma, mean, sigma);
                d.score = score(d.deviation);
                break;
            }
            case Method::cusum: {
                const double mean = moments_.mean();
                d.expected = mean;
                next_cusum.update(scaled_difference(value, mean, floor_scale(moments_.stddev(), mean)));
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

    seen_ = io::count_up(seen_, 1);
    if (d.is_anomaly) anomalies_ = io::count_up(anomalies_, 1);
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
    push_values(value, timestamp);
    return moments_.update(value, evicting ? &evicted : nullptr, values_);
}

void SensorState::push_values(double value, double timestamp) {
    if (order_) {
        const size_t slot = values_.next_slot();  // == front slot when full
        if (values_.full()) {
            order_->replace(slot, value);
        } else {
            order_->insert(slot, value);
        }
    }
    values_.push(value);
    timestamps_.push(timestamp);
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

void SensorState::update_batch(const double* values, const double* timestamps, size_t n, const BatchOutput& out,
                               bool check_inputs) {
    const Method m = config_.method;
    if (config_.include_anomalies && (m == Method::zscore || m == Method::ewma || m == Method::cusum))
        return update_batch_moments(values, timestamps, n, out, check_inputs);
    if (check_inputs) check_finite_batch(values, timestamps, n, "");
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
        if (m == Method::iqr) return update_batch_iqr(values, timestamps, n, out);
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
            seen_ = io::count_up(seen_, 1);
            anomalies_ = io::count_up(anomalies_, flagged ? 1 : 0);
            out.is_anomaly[i] = flagged;
            out.scores[i] = score_of;
            out.deviations[i] = deviation;
            out.expected[i] = expected;
            out.window_counts[i] = count;
            push_values(value, timestamps[i]);
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

// IQR with every point entering the window, after advance_moments: per block, a serial
// pass reads each point's quartiles and median and pushes the point; then the
// deviations, scores and flags of the block in lanes (iqr_scores, flags). The same
// operations as update, so the results are equal.
void SensorState::update_batch_iqr(const double* values, const double* timestamps, size_t n, const BatchOutput& out) {
    const size_t r = values_.size();
    const size_t first = std::min(n, r >= 2 ? size_t{0} : 2 - r);  // points scored against two values or more
    const uint64_t min_samples = config_.min_samples;
    const size_t warm = seen_ >= min_samples ? 0 : std::min<uint64_t>(n, min_samples - seen_);
    double* const q1 = out.deviations;  // until iqr_scores turns them into deviations
    double* const q3 = out.scores;      // and scores
    uint64_t anomalies = 0;
    for (size_t b = 0; b < n; b += kBlock) {
        const size_t e = std::min(n, b + kBlock);
        for (size_t i = b; i < e; ++i) {
            const double value = values[i];
            const size_t count = values_.size();
            out.window_counts[i] = count;
            if (count >= 2) {
                q1[i] = order_->quantile(0.25);
                q3[i] = order_->quantile(0.75);
                out.expected[i] = order_->median();
            } else {
                q1[i] = 0.0;
                q3[i] = 0.0;
                out.expected[i] = value;
            }
            push_values(value, timestamps[i]);
        }
        iqr_scores(values, q1, q3, out.expected, std::max(b, std::min(e, first)), e);
        const size_t f = std::max(b, std::min(e, warm));
        std::fill(out.is_anomaly + b, out.is_anomaly + f, false);
        anomalies += flags(out.deviations, out.is_anomaly, config_.threshold, f, e);
        normal_scores(out.scores + b, 1.0, out.scores + b, e - b);
    }
    seen_ = io::count_up(seen_, n);
    anomalies_ = io::count_up(anomalies_, anomalies);
    if (out.alert_scores) std::copy(out.scores, out.scores + n, out.alert_scores);
}

// Every point enters the window, so the window at point i is a slice of the ring
// and the batch, and the work splits into passes: (1) the running sums in order,
// recording the mean and spread update would see before each point (and the EWMA
// statistic); (2) deviations, each point independent of the others; (3) for
// CUSUM, its recursion; (4) scores and flags. Each pass does update's arithmetic
// in update's order, so the results are equal to a loop of update.
void SensorState::update_batch_moments(const double* values, const double* timestamps, size_t n, const BatchOutput& out,
                                       bool check_inputs) {
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
    // Points scored against fewer than two values: expected is the value itself.
    const size_t first = std::min(n, r >= 2 ? size_t{0} : 2 - r);
    const double chart_scale = std::sqrt(lambda / (2.0 - lambda));
    const double h = config_.threshold;
    const uint64_t min_samples = config_.min_samples;
    // No flag before min_samples; after it, a test of |deviation| alone.
    const size_t warm = seen_ >= min_samples ? 0 : std::min<uint64_t>(n, min_samples - seen_);
    uint64_t anomalies = 0;
    size_t next_collapse = 0;
    // Passes 2 to 4 over the points [b, e) that pass 1 has just gone through.
    auto rest = [&](size_t b, size_t e) {
        const size_t d = std::max(b, std::min(e, first));  // the first point with a deviation
        for (size_t i = b; i < d; ++i) {
            mean[i] = values[i];
            dev[i] = 0.0;
            chart[i] = 0.0;
        }
        deviations(method == Method::ewma, method == Method::ewma ? chart : values, mean, dev, chart_scale, d, e);
        if (method == Method::cusum) {
            Cusum cusum = cusum_;  // in registers: the stores to the outputs might alias a member
            for (size_t i = b; i < e; ++i) {
                if (i >= first) {
                    cusum.update(dev[i]);
                    dev[i] = cusum.statistic();
                }
                const bool flagged = seen_ + i >= min_samples && std::fabs(dev[i]) > h;
                if (flagged) cusum.reset();
                if (next_collapse < collapses.size() && collapses[next_collapse] == i) {
                    cusum.reset();
                    ++next_collapse;
                }
                anomalies += flagged;
                out.is_anomaly[i] = flagged;
            }
            cusum_ = cusum;
            normal_scores(dev + d, 3.0 / h, out.scores + d, e - d);
        } else {
            const size_t f = std::max(b, std::min(e, warm));
            std::fill(out.is_anomaly + b, out.is_anomaly + f, false);
            anomalies += flags(dev, out.is_anomaly, h, f, e);
            normal_scores(dev + d, 1.0, out.scores + d, e - d);
        }
    };
    // From point `cap` on, the window before each point is the `cap` batch values before
    // it: the kernel reads them in place (the same arithmetic, fewer instructions). Each
    // block goes through every pass before the next one starts.
    // With check_inputs, each stretch of kCheck points is checked just before pass 1 reads
    // it (so that it is in L2 for that pass); what the passes have changed by then, the
    // running sums and CUSUM's, is put back before the error is thrown: a bad batch changes
    // nothing.
    const RollingMoments moments_before = moments_;
    const Cusum cusum_before = cusum_;
    auto check = [&](size_t b, size_t e) {
        if (!check_inputs || all_finite(values, timestamps, b, e)) return;
        moments_ = moments_before;
        cusum_ = cusum_before;
        throw_non_finite(values, timestamps, b, e, "");
    };
    const size_t in_place = std::min(n, cap);
    check(0, in_place);
    moments_.update_many(values, in_place, window, cap, before, after);
    rest(0, in_place);
    size_t checked = in_place;
    for (size_t b = in_place; b < n; b += kBlock) {
        const size_t e = std::min(n, b + kBlock);
        if (e > checked) {
            const size_t upto = std::min(n, b + kCheck);
            check(b, upto);
            checked = upto;
        }
        moments_.update_many_contiguous(values, b, e, cap, before, after);
        rest(b, e);
    }
    ewma_stat_ = stat;
    ewma_started_ = started;

    const size_t growing = std::min(n, r < cap ? cap - r : size_t{0});  // points before the window is full
    for (size_t i = 0; i < growing; ++i) out.window_counts[i] = r + i;
    std::fill(out.window_counts + growing, out.window_counts + n, uint64_t{cap});
    if (out.alert_scores) std::copy(out.scores, out.scores + n, out.alert_scores);  // no alarm logic here
    seen_ = io::count_up(seen_, n);
    anomalies_ = io::count_up(anomalies_, anomalies);
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

uint64_t SensorState::live_from() const {
    if (!ensemble_) return config_.min_samples;
    const uint64_t own = ensemble_->live_from();
    if (own == UINT64_MAX) return own;
    return std::max<uint64_t>(config_.min_samples, own + (seen_ - std::min(seen_, ensemble_->seen())));
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
    if (s.seen_ > io::kMaxPointCount) io::corruption("points seen: beyond 2^53");
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
                                                       version >= 8   ? 7
                                                       : version >= 7 ? 6
                                                       : version >= 6 ? 5
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
    state.update_batch(values, timestamps, m, out, /*check_inputs=*/false);  // checked above
    ensemble = state.release_ensemble();
    return exact;
}

}  // namespace anomaly_detection

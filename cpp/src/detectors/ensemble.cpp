#include "anomaly_detection/detectors/ensemble.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>

#include "anomaly_detection/stats/quantile.hpp"

namespace anomaly_detection {

namespace {
using P = EnsembleParams;
// Version 2 added the level and context features; version 3 the time of the last alarm
// (a cooldown in seconds) and the weekly reference; version 4 the running estimate of the
// sampling interval; version 5 the shape, scale and cusum features; version 6 the period
// estimate of untimed points; version 7 the polyres feature. Versions 1 to 6 still load (what
// they lack starts afresh).
constexpr uint16_t kCheckpointVersion = 7;
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kSecondsPerDay = 86400.0;
constexpr double kSecondsPerWeek = 7 * kSecondsPerDay;
enum Feature : size_t {
    f_value = 0,
    f_diff = 1,
    f_season = 2,
    f_spatial = 3,
    f_markov = 4,
    f_level = 5,
    f_context = 6,
    f_shape = 7,
    f_scale = 8,
    f_cusum = 9,
    f_poly = 10
};
static_assert(f_context + 1 == EnsembleParams::kFeaturesV2 && f_poly + 1 == EnsembleParams::kFeatures);
constexpr int64_t kContextBinLimit = 1000;  // context bins beyond the range are clamped to +-this

int64_t context_key(const int64_t (&bins)[2]) {
    return (bins[0] + kContextBinLimit) * 4 * kContextBinLimit + (bins[1] + kContextBinLimit);
}

// -log10 of the standard normal upper tail probability at z.
double neg_log10_tail(double z) {
    const double q = std::max(0.5 * std::erfc(z * kInvSqrt2), 1e-300);
    return -std::log10(q);
}

double saturate(double z) { return 1.0 - std::exp(-std::min(z, P::kCap) / 3.0); }

// The ranking score of a statistic (-log10 of a tail probability): linear up to the
// alarm level (5 -> 0.5), then rising towards 1 without ever tying.
double rank_score(double statistic) {
    const double half = 0.5 * P::kScale;
    return statistic <= half ? statistic / P::kScale : 1.0 - 0.5 * std::exp(-(statistic - half) / half);
}

// Linear-interpolated quantile of sorted values (NumPy's default).
double quantile_sorted(const std::vector<double>& v, double q) {
    return linear_quantile(v.size(), q, [&v](size_t k) { return v[k]; });
}

void put_ew(io::ByteWriter& w, const EwMoments& m) {
    w.put<uint64_t>(m.n);
    w.put<double>(m.mean);
    w.put<double>(m.var);
}

EwMoments get_ew(io::ByteReader& r, const char* what) {
    EwMoments m;
    m.n = r.get<uint64_t>(what);
    m.mean = r.get<double>(what);
    m.var = r.get<double>(what);
    if (!std::isfinite(m.mean) || !std::isfinite(m.var) || m.var < 0)
        io::corruption(std::string(what) + ": expected finite moments");
    return m;
}

double get_finite(io::ByteReader& r, const char* what) {
    const double x = r.get<double>(what);
    if (!std::isfinite(x)) io::corruption(std::string(what) + ": expected a finite value");
    return x;
}
}  // namespace

// --- WindowSums --------------------------------------------------------------

void WindowSums::push(double x) {
    if (size_ == buf_.size()) {
        const double old = buf_[head_];
        s1_ -= old;
        s2_ -= old * old;
        buf_[head_] = x;
        head_ = head_ + 1 == buf_.size() ? 0 : head_ + 1;
    } else {
        size_t slot = head_ + size_;
        if (slot >= buf_.size()) slot -= buf_.size();
        buf_[slot] = x;
        ++size_;
    }
    s1_ += x;
    s2_ += x * x;
    // Exact sums again now and then: rounding errors of the running sums never accumulate.
    if (++since_recompute_ >= 8 * buf_.size() + 64) recompute();
}

void WindowSums::recompute() {
    s1_ = s2_ = 0.0;
    for (size_t i = 0; i < size_; ++i) {
        size_t slot = head_ + i;
        if (slot >= buf_.size()) slot -= buf_.size();
        s1_ += buf_[slot];
        s2_ += buf_[slot] * buf_[slot];
    }
    since_recompute_ = 0;
}

double WindowSums::sd() const {
    if (size_ < 2) return 0.0;
    const double m = s1_ / static_cast<double>(size_);
    const double v = s2_ / static_cast<double>(size_) - m * m;
    return v > 0 ? std::sqrt(v) : 0.0;
}

void WindowSums::serialize(io::ByteWriter& w) const {
    w.put<uint64_t>(size_);
    w.put<uint64_t>(since_recompute_);
    for (size_t i = 0; i < size_; ++i) {
        size_t slot = head_ + i;
        if (slot >= buf_.size()) slot -= buf_.size();
        w.put<double>(buf_[slot]);
    }
    w.put<double>(s1_);
    w.put<double>(s2_);
}

void WindowSums::deserialize(io::ByteReader& r, const char* what) {
    const auto n = r.get<uint64_t>(what);
    const auto since = r.get<uint64_t>(what);
    if (n > buf_.size() || since > 8 * buf_.size() + 64) io::corruption(std::string(what) + ": bad window size");
    head_ = 0;
    size_ = n;
    // Scores (update() pushes them in [0, kCap], their averages within rounding of it), their sums
    // within the window's bounds: a window of larger values loaded, but its running sums could
    // overflow later (a snapshot the library then wrote and refused).
    const double cap = 2.0 * P::kCap;
    for (size_t i = 0; i < n; ++i) {
        buf_[i] = get_finite(r, what);
        if (!(std::fabs(buf_[i]) <= cap)) io::corruption(std::string(what) + ": expected scores within the cap");
    }
    s1_ = get_finite(r, what);
    s2_ = get_finite(r, what);
    // Sums no window of such values gives are refused: the mean of a short window is pushed
    // into the long one, so a short window's sum beyond n * cap (n + 1 before) put a mean
    // beyond the cap there, and the snapshot written after it was refused (found by the fuzzer).
    const double bound = static_cast<double>(n) * cap;
    if (!(std::fabs(s1_) <= bound && std::fabs(s2_) <= bound * cap))
        io::corruption(std::string(what) + ": sums out of range");
    since_recompute_ = since;
}

// --- SlidingMax --------------------------------------------------------------

void SlidingMax::push(double x) {
    while (!q_.empty() && q_.back().second <= x) q_.pop_back();
    q_.emplace_back(t_, x);
    ++t_;
    while (t_ - q_.front().first > span_) q_.pop_front();  // entries are older than t_: no overflow
}

void SlidingMax::set_span(size_t span) {
    span_ = span;
    while (!q_.empty() && t_ - q_.front().first > span_) q_.pop_front();
}

void SlidingMax::serialize(io::ByteWriter& w) const {
    w.put<uint64_t>(t_);
    w.put<uint64_t>(q_.size());
    for (const auto& [t, x] : q_) {
        w.put<uint64_t>(t);
        w.put<double>(x);
    }
}

void SlidingMax::deserialize(io::ByteReader& r, const char* what) {
    t_ = r.get<uint64_t>(what);
    const auto n = r.get<uint64_t>(what);
    // t_ counts the values pushed: far below 2^62 for any real stream, so it never wraps.
    if (t_ > (uint64_t{1} << 62)) io::corruption(std::string(what) + ": bad count");
    if (n > span_ || n > t_) io::corruption(std::string(what) + ": bad size");
    q_.clear();
    for (uint64_t i = 0; i < n; ++i) {
        const auto t = r.get<uint64_t>(what);
        const double x = get_finite(r, what);
        if (t >= t_ || t_ - t > span_ || (!q_.empty() && (t <= q_.back().first || x >= q_.back().second)))
            io::corruption(std::string(what) + ": inconsistent entries");
        q_.emplace_back(t, x);
    }
}

// --- Transitions -------------------------------------------------------------

double Transitions::novelty(int64_t context, int64_t next) const {
    const auto it = contexts_.find(context);
    if (it == contexts_.end() || it->second.total == 0) return 1.0;
    const Context& ctx = it->second;
    auto count = [&](int64_t k) {
        const auto found = ctx.next.find(k);
        return found == ctx.next.end() ? 0.0 : static_cast<double>(found->second);
    };
    const double hit = count(next) + 0.5 * (count(next - 1) + count(next + 1));
    return 1.0 - std::min(hit / static_cast<double>(ctx.total), 1.0);
}

uint64_t Transitions::seen(int64_t context) const {
    const auto it = contexts_.find(context);
    return it == contexts_.end() ? 0 : it->second.total;
}

void Transitions::learn(int64_t context, int64_t next) {
    Context& ctx = contexts_[context];
    ++ctx.total;
    ++ctx.next[next];
}

void Transitions::serialize(io::ByteWriter& w) const {
    // Sorted: equal states give equal bytes, whatever the hash tables' history
    // (a restored checkpoint and the process that wrote it must agree byte for byte).
    std::vector<int64_t> keys;
    keys.reserve(contexts_.size());
    for (const auto& kv : contexts_) keys.push_back(kv.first);
    std::sort(keys.begin(), keys.end());
    w.put<uint64_t>(contexts_.size());
    std::vector<std::pair<int64_t, uint64_t>> next;
    for (const int64_t key : keys) {
        const Context& ctx = contexts_.at(key);
        next.assign(ctx.next.begin(), ctx.next.end());
        std::sort(next.begin(), next.end());
        w.put<int64_t>(key);
        w.put<uint64_t>(ctx.total);
        w.put<uint64_t>(next.size());
        for (const auto& [to, count] : next) {
            w.put<int64_t>(to);
            w.put<uint64_t>(count);
        }
    }
}

void Transitions::deserialize(io::ByteReader& r) {
    contexts_.clear();
    const auto nctx = r.get<uint64_t>("ensemble transitions");
    if (nctx > r.remaining() / 24) io::corruption("ensemble transitions: count exceeds the data");
    for (uint64_t i = 0; i < nctx; ++i) {
        const auto from = r.get<int64_t>("ensemble transition");
        Context ctx;
        ctx.total = r.get<uint64_t>("ensemble transition total");
        const auto nn = r.get<uint64_t>("ensemble transition count");
        if (nn > r.remaining() / 16) io::corruption("ensemble transition count: exceeds the data");
        uint64_t sum = 0;
        for (uint64_t j = 0; j < nn; ++j) {
            const auto to = r.get<int64_t>("ensemble transition target");
            const auto c = r.get<uint64_t>("ensemble transition count");
            if (c > (uint64_t{1} << 62) || sum > (uint64_t{1} << 62)) io::corruption("ensemble transitions: bad count");
            sum += c;
            ctx.next[to] = c;
        }
        if (sum != ctx.total || ctx.next.size() != nn) io::corruption("ensemble transitions: inconsistent totals");
        if (!contexts_.emplace(from, std::move(ctx)).second) io::corruption("ensemble transitions: duplicate");
    }
}

// --- ChangeStats -------------------------------------------------------------

ChangeStats::Step ChangeStats::update(double value, double prev, bool has_prev, const EwMoments& moments) {
    Step out;
    // Page's CUSUM on the value's z against the moments of the past, each z clipped
    // (a spike adds at most kCusumClip sd): a small shift that lasts adds up.
    if (moments.n >= 2 && moments.var > 0) {
        const double z = std::clamp((value - moments.mean) / std::sqrt(moments.var), -P::kCusumClip, P::kCusumClip);
        up = std::max(0.0, up + z - P::kCusumDrift);
        down = std::max(0.0, down - z - P::kCusumDrift);
        out.cusum = std::max(up, down);
        out.cusum_ready = true;
        if (up > P::kCusumReset || down > P::kCusumReset) up = down = 0.0;
    }
    // The scale: the short EW mean absolute difference (this point's included) against the
    // long one, as a log ratio; its z against the ratio's own moments.
    const double d = has_prev ? std::fabs(value - prev) : 0.0;
    if (std::isfinite(d) && has_prev) {  // (a jump beyond the largest double is not learned)
        ++diffs;
        const double n = static_cast<double>(diffs);
        fast += std::max(1.0 / n, 2.0 / (P::kScaleShort + 1.0)) * (d - fast);
        slow += std::max(1.0 / n, 2.0 / (P::kBaseSpan + 1.0)) * (d - slow);
        if (n >= P::kScaleShort && slow > 0) {
            const double eps = 1e-3 * slow;
            const double r = std::log((fast + eps) / (slow + eps));
            if (ratio.n >= 2) {
                out.scale_z = std::fabs(r - ratio.mean) / std::max(ratio.sd(), 1e-9);
                out.scale_ready = true;
            }
            ratio.push_finite(r, P::kBaseSpan);
        }
    }
    return out;
}

void ChangeStats::serialize(io::ByteWriter& w) const {
    w.put<uint64_t>(diffs);
    w.put<double>(fast);
    w.put<double>(slow);
    put_ew(w, ratio);
    w.put<double>(up);
    w.put<double>(down);
}

void ChangeStats::deserialize(io::ByteReader& r, uint64_t seen) {
    diffs = r.get<uint64_t>("ensemble change count");
    fast = get_finite(r, "ensemble change scale");
    slow = get_finite(r, "ensemble change scale");
    ratio = get_ew(r, "ensemble change ratio moments");
    up = get_finite(r, "ensemble cusum");
    down = get_finite(r, "ensemble cusum");
    if (diffs > seen || ratio.n > diffs || fast < 0 || slow < 0 || !(up >= 0 && up <= P::kCusumReset) ||
        !(down >= 0 && down <= P::kCusumReset))
        io::corruption("ensemble change features: out of range");
}

// --- PolyResidual ------------------------------------------------------------

std::vector<double> PolyResidual::filter(size_t w) {
    // The least-squares line through (s_i, x_i), s_i = i - w for i = 0 .. w-1, evaluated at
    // s = 0: mean(x) + slope * (0 - mean(s)), a linear function of the x_i.
    const double n = static_cast<double>(w);
    const double mean_s = -(n + 1.0) / 2.0;
    const double sxx = n * (n * n - 1.0) / 12.0;
    std::vector<double> h(w);
    for (size_t i = 0; i < w; ++i) {
        const double ds = static_cast<double>(i) - n - mean_s;
        h[i] = 1.0 / n - ds * mean_s / sxx;
    }
    return h;
}

namespace {
struct PolyFilters {
    double h[PolyResidual::kScales][PolyResidual::kMaxWindow] = {};
    PolyFilters() {
        for (size_t k = 0; k < PolyResidual::kScales; ++k) {
            const std::vector<double> f = PolyResidual::filter(PolyResidual::kWindows[k]);
            std::copy(f.begin(), f.end(), h[k]);
        }
    }
};
const PolyFilters& poly_filters() {
    static const PolyFilters filters;
    return filters;
}
}  // namespace

PolyResidual::Step PolyResidual::update(double value, double floor) {
    Step out;
    const PolyFilters& f = poly_filters();
    for (size_t k = 0; k < kScales; ++k) {
        const size_t w = kWindows[k];
        if (count < w) continue;
        const double* x = last + (count - w);
        double forecast = 0.0;
        for (size_t i = 0; i < w; ++i) forecast += f.h[k][i] * x[i];
        const double r = value - forecast;
        if (!std::isfinite(r)) continue;  // (values near the largest double)
        EwMoments& m = residuals[k];
        if (m.n >= 2) {
            out.z = std::max(out.z, std::fabs(r - m.mean) / std::max(m.sd(), floor));
            out.ready = true;
        }
        m.push_finite(r, EnsembleParams::kBaseSpan);
    }
    if (count < kMaxWindow) {
        last[count++] = value;
    } else {
        std::copy(last + 1, last + kMaxWindow, last);
        last[kMaxWindow - 1] = value;
    }
    return out;
}

void PolyResidual::serialize(io::ByteWriter& w) const {
    w.put<uint64_t>(count);
    w.put_array(last, count);
    for (const EwMoments& m : residuals) put_ew(w, m);
}

void PolyResidual::deserialize(io::ByteReader& r, uint64_t seen) {
    const auto n = r.get<uint64_t>("ensemble polyres count");
    if (n > kMaxWindow || n > seen) io::corruption("ensemble polyres count: out of range");
    count = static_cast<size_t>(n);
    for (size_t i = 0; i < count; ++i) last[i] = get_finite(r, "ensemble polyres values");
    for (EwMoments& m : residuals) {
        m = get_ew(r, "ensemble polyres moments");
        if (m.n > seen) io::corruption("ensemble polyres moments: count out of range");
    }
}

// --- EnsembleState -----------------------------------------------------------

EnsembleState::EnsembleState(double threshold, uint64_t cooldown, double cooldown_seconds)
    : threshold_(threshold), cooldown_(cooldown), cooldown_seconds_(cooldown_seconds), recent_(P::kRecord) {
    if (cooldown > P::kMaxCooldown)
        throw std::invalid_argument("alert_cooldown: expected at most " + std::to_string(P::kMaxCooldown) + " points");
    if (!(std::isfinite(cooldown_seconds) && cooldown_seconds >= 0 && cooldown_seconds <= P::kMaxCooldownSecs))
        throw std::invalid_argument("alert_cooldown_seconds: expected 0..1e10 seconds");
    if (cooldown_seconds > 0 && cooldown > 0)
        throw std::invalid_argument("alert_cooldown: in points or in seconds, not both");
    learn_values_.reserve(P::kLearn);
    learn_times_.reserve(P::kPeriodProbe);
}

namespace {
// Points a day at the median of `dts` (reordered), or 0 (no season) outside 4..kMaxPeriod.
int64_t period_of(std::vector<double>& dts) {
    const size_t mid = dts.size() / 2;
    std::nth_element(dts.begin(), dts.begin() + static_cast<std::ptrdiff_t>(mid), dts.end());
    const double dt = dts[mid];
    if (dt > 0 && kSecondsPerDay / dt >= 4 && kSecondsPerDay / dt <= static_cast<double>(P::kMaxPeriod))
        return static_cast<int64_t>(std::llround(kSecondsPerDay / dt));
    return 0;
}

// The period of `x` in points, from its autocorrelation (linear trend removed): the highest
// peak past the first zero crossing, up to half the length, of at least kUntimedStrength,
// or its shortest divisor lag (a tenth to a half) whose peak holds kUntimedHarmonic of it
// (a day, not the week that also peaks), repeated from that lag until none does; 0 when
// there is none.
int64_t acf_period(const std::vector<double>& x) {
    constexpr size_t kMinLag = 4;
    const size_t n = x.size();
    if (n < 4 * kMinLag) return 0;
    const double nd = static_cast<double>(n);
    const double tm = (nd - 1.0) / 2.0;
    double xm = 0.0, sxy = 0.0, sxx = 0.0;
    for (double v : x) xm += v;
    xm /= nd;
    for (size_t i = 0; i < n; ++i) {
        const double dt = static_cast<double>(i) - tm;
        sxy += dt * (x[i] - xm);
        sxx += dt * dt;
    }
    const double slope = sxy / sxx;
    std::vector<double> c(n);
    double var = 0.0;
    for (size_t i = 0; i < n; ++i) {
        c[i] = x[i] - xm - slope * (static_cast<double>(i) - tm);
        var += c[i] * c[i];
    }
    if (!(var > 0.0) || !std::isfinite(var)) return 0;
    const size_t max_lag = n / 2;
    std::vector<double> acf(max_lag + 1);
    for (size_t k = 0; k <= max_lag; ++k) {
        double sum = 0.0;
        for (size_t i = 0; i + k < n; ++i) sum += c[i] * c[i + k];
        acf[k] = sum / var * nd / static_cast<double>(n - k);  // unbiased: n - k products
    }
    size_t start = kMinLag;
    while (start <= max_lag && acf[start] >= 0.0) ++start;
    if (start + 1 >= max_lag) return 0;
    std::vector<size_t> peaks;
    for (size_t j = start; j + 1 <= max_lag; ++j)
        if (acf[j] > acf[j - 1] && acf[j] >= acf[j + 1]) peaks.push_back(j);
    if (peaks.empty()) return 0;
    size_t best = peaks[0];
    for (size_t j : peaks)
        if (acf[j] > acf[best]) best = j;
    if (acf[best] < P::kUntimedStrength) return 0;
    // The shortest divisor lag that peaks high enough, and again from there until none does:
    // in a buffer of many short cycles the highest peak can lie tens of cycles out, and one
    // step of at most ten left three or four of them (an hourly day estimated as 72 points).
    size_t period = best;
    for (bool reduced = true; reduced;) {
        reduced = false;
        for (size_t k = 10; k >= 2 && !reduced; --k) {
            const double lag = static_cast<double>(period) / static_cast<double>(k);
            if (lag < static_cast<double>(start)) continue;
            const size_t lo = std::max<size_t>(static_cast<size_t>(lag * 0.9), 1);
            const size_t hi = std::min(static_cast<size_t>(std::ceil(lag * 1.1)) + 1, max_lag + 1);
            size_t j = lo;
            for (size_t i = lo; i < hi; ++i)
                if (acf[i] > acf[j]) j = i;
            if (j < period && acf[j] >= P::kUntimedHarmonic * acf[best] &&
                std::binary_search(peaks.begin(), peaks.end(), j)) {
                period = j;
                reduced = true;
            }
        }
    }
    return static_cast<int64_t>(period);
}
}  // namespace

// The timestamp the detectors see. While the points come untimed (batches without
// timestamps: every point of a batch stamped the same "now"), they are spaced a day / the
// period estimated from their values (none until one is found: intervals 0, as given). A
// timestamp that moves once (the next untimed batch, stamped another now) keeps them
// untimed; once the given timestamps move twice in a row (a clock), or from a stream's
// first point on, they are used from then on, shifted to follow on (by 0 for a stream timed
// from its start: its timestamps are used as given).
double EnsembleState::stamp(double value, double timestamp) {
    if (!untimed_) return timestamp + offset_;
    if (seen_ == 0) {
        raw_last_ = timestamp;
    } else if (timestamp == raw_last_) {
        moved_ = false;
    } else if (seen_ > 1 && !moved_) {  // the first point of another untimed batch, perhaps
        moved_ = true;
        raw_last_ = timestamp;
    } else {
        untimed_ = false;
        moved_ = false;
        offset_ = last_time_ - raw_last_;
        untimed_values_.clear();
        untimed_values_.shrink_to_fit();
        untimed_head_ = 0;
        return timestamp + offset_;
    }
    if (seen_ == next_estimate_) {
        std::vector<double> ordered(untimed_values_.begin() + static_cast<std::ptrdiff_t>(untimed_head_),
                                    untimed_values_.end());
        ordered.insert(ordered.end(), untimed_values_.begin(),
                       untimed_values_.begin() + static_cast<std::ptrdiff_t>(untimed_head_));
        const int64_t period = acf_period(ordered);
        if (period > 0) step_ = kSecondsPerDay / static_cast<double>(period);  // none keeps the last
        next_estimate_ = static_cast<uint64_t>(static_cast<double>(next_estimate_) * P::kUntimedGrowth);
    }
    if (untimed_values_.size() < P::kUntimedBuffer) {
        untimed_values_.push_back(value);
    } else {
        untimed_values_[untimed_head_] = value;
        untimed_head_ = (untimed_head_ + 1) % P::kUntimedBuffer;
    }
    return seen_ == 0 ? timestamp : last_time_ + step_;
}

void EnsembleState::start_season() {
    std::vector<double> dts;
    for (size_t i = 1; i < learn_times_.size(); ++i) dts.push_back(learn_times_[i] - learn_times_[i - 1]);
    set_period(period_of(dts));
    learn_times_.clear();
    learn_times_.shrink_to_fit();
}

// The period follows the sampling: each block of kIntervalBlock intervals gives a median,
// and the period moves only when that median's moves by more than kPeriodShift (so a
// regular series, jitter and gaps included, keeps the one its first points gave).
void EnsembleState::track_interval(double timestamp) {
    intervals_.push_back(timestamp - last_time_);
    if (intervals_.size() < P::kIntervalBlock) return;
    const int64_t period = period_of(intervals_);
    intervals_.clear();
    const bool moved = period == 0 || period_ == 0
                           ? period != period_
                           : static_cast<double>(std::max(period, period_)) >
                                 P::kPeriodShift * static_cast<double>(std::min(period, period_));
    if (moved) set_period(period);
}

// The structures sized by the period follow it; the lags, kept by time, stay.
void EnsembleState::set_period(int64_t period) {
    period_ = period;
    recent_.set_span(record_span());
    if (period_ == 0) lag_.clear();
    if (!keeps_week()) {
        week_lag_.clear();
        week_lag_.shrink_to_fit();
        if (weekly_) {
            weekly_ = false;
            features_[f_season] = Feature();  // another reference: its likelihood starts afresh
        }
    }
}

// The value `seconds` before `timestamp` in `lag`, interpolated between the points around
// it (older points leave `lag`); none when the kept points do not reach back that far or
// leave a gap there.
std::optional<double> EnsembleState::lagged(std::deque<std::pair<double, double>>& lag, double timestamp,
                                            double seconds) const {
    const double ago = timestamp - seconds;
    while (lag.size() >= 2 && lag[1].first <= ago) lag.pop_front();
    if (period_ <= 0 || lag.empty() || !(lag.front().first <= ago)) return std::nullopt;
    const double tolerance = std::max(P::kSeasonGap, 2.0 * kSecondsPerDay / static_cast<double>(period_));
    const auto& [t0, v0] = lag.front();
    if (lag.size() == 1) return ago - t0 <= tolerance ? std::optional<double>(v0) : std::nullopt;
    const auto& [t1, v1] = lag[1];
    if (t1 - t0 > tolerance) return std::nullopt;
    return v0 + (v1 - v0) * (ago - t0) / (t1 - t0);
}

size_t EnsembleState::record_span() const {
    if (period_ <= 0) return P::kRecord;
    return std::clamp(static_cast<size_t>(P::kRecordDays * period_), P::kRecordMin, P::kRecordMax);
}

// The points since the start before any likelihood scores: none beyond each detector's own
// kLikelihoodMin averages on series sampled every five minutes or less often (the sampling
// the design was chosen on: 150 points are 12.5 hours there); more often, as many points as
// 150 make at five minutes (12.5 hours), up to the long window. At one minute 150 points
// were 2.5 hours: the first daily rise and peak then scored as news (issue 15,
// scripts/kpi_one_minute.py). Detectors that start later (the seasonal one, a day in) keep
// their 150 averages.
size_t EnsembleState::likelihood_warmup() const {
    if (period_ <= static_cast<int64_t>(P::kReferencePeriod)) return 0;
    const double scaled = static_cast<double>(P::kLikelihoodMin) * static_cast<double>(period_) /
                          static_cast<double>(P::kReferencePeriod);
    return std::min(static_cast<size_t>(std::lround(scaled)), P::kLong);
}

// The score's memory: 1% a point at five minutes or finer (the sampling it was chosen on:
// kReferencePeriod points a day or more), as fast in time at coarser sampling (hourly: 0.99^12
// a point), so that an hour's fade is not twelve hours on hourly points.
double EnsembleState::rank_decay() {
    if (period_ != rank_decay_period_) {
        rank_decay_period_ = period_;
        rank_decay_ =
            period_ > 0 && period_ < static_cast<int64_t>(P::kReferencePeriod)
                ? std::pow(P::kRankDecay, static_cast<double>(P::kReferencePeriod) / static_cast<double>(period_))
                : P::kRankDecay;
    }
    return rank_decay_;
}

int64_t EnsembleState::bin(double value) const {
    const double b = std::floor((value - bin_origin_) / resolution_);
    constexpr double kLimit = 1e15;
    return static_cast<int64_t>(std::clamp(b, -kLimit, kLimit));
}

double EnsembleState::markov(double value) {
    if (seen_ < P::kLearn) return 0.0;
    if (resolution_ == 0.0) {
        std::vector<double> v = learn_values_;
        std::sort(v.begin(), v.end());
        double mean = 0.0;
        for (double x : v) mean += x;
        mean /= static_cast<double>(v.size());
        if (!std::isfinite(mean)) {  // the sum of values near DBL_MAX overflowed: each divided first
            mean = 0.0;
            for (double x : v) mean += x / static_cast<double>(v.size());
        }
        bin_origin_ = quantile_sorted(v, 0.01);  // bins do not depend on the values' offset
        // finite values 2 DBL_MAX apart: the range saturates (the bins and the shape range stay finite)
        const double range = std::min(quantile_sorted(v, 0.99) - bin_origin_, std::numeric_limits<double>::max());
        const double floor = 1e-12 * std::max(1.0, std::fabs(mean));
        resolution_ = std::max(range / P::kBins, floor);
        resolution2_ = std::max(range / P::kContextBins, floor);
        start_shape();
        for (double x : learn_values_) shape_.update(x);  // the shape model learns the first points too
        // The transitions of the learning period train both models: no first-transition surprise.
        for (double x : learn_values_) {
            const int64_t b = bin(x);
            if (has_prev_bin_) transitions_.learn(prev_bin_, b);
            has_prev_bin_ = true;
            prev_bin_ = b;
            context(x);
        }
        learn_values_.clear();
        learn_values_.shrink_to_fit();
    }
    const int64_t b = bin(value);
    double z = 0.0;
    if (has_prev_bin_) {
        z = transitions_.novelty(prev_bin_, b);
        transitions_.learn(prev_bin_, b);
    }
    has_prev_bin_ = true;
    prev_bin_ = b;
    return z;
}

// The shape feature's range: the markov bins' (the 1%-99% range of the learning values),
// widened by half of it on each side.
void EnsembleState::start_shape() {
    // saturated at +-DBL_MAX: a learning range near the largest double widens past it
    constexpr double kLargest = std::numeric_limits<double>::max();
    const double range = resolution_ * P::kBins;
    shape_.set_range(std::max(bin_origin_ - P::kShapeWiden * range, -kLargest),
                     std::min((1.0 + 2.0 * P::kShapeWiden) * range, kLargest));
}

// Novelty of the value's bin after the last two (10 bins of the learning range; after
// the last one while that pair is rare), then learns it.
double EnsembleState::context(double value) {
    const double raw = std::floor((value - bin_origin_) / resolution2_);
    const auto b = static_cast<int64_t>(
        std::clamp(raw, static_cast<double>(-kContextBinLimit), static_cast<double>(kContextBinLimit)));
    double z = 0.0;
    if (context_count_ == 2) {
        const int64_t key = context_key(context_bins_);
        const int64_t last = context_bins_[1];
        z = contexts_.seen(key) >= P::kContextMinSeen ? contexts_.novelty(key, b) : contexts1_.novelty(last, b);
        contexts_.learn(key, b);
        contexts1_.learn(last, b);
    } else {
        ++context_count_;
    }
    context_bins_[0] = context_bins_[1];
    context_bins_[1] = b;
    return z;
}

// -log10 of the tail probability of the robust z of `value` against the points so far
// (median, MAD; the mean absolute deviation when half the points are equal), halved;
// 0 unless the value leaves the range so far by more than half of it.
namespace {
// The median of `v` and a robust scale around it: 1.4826 x the MAD, or 1.2533 x the mean
// absolute deviation where the MAD is 0 (each the normal sd for normal data; 0 for a constant
// `v`). `v` is reordered.
std::pair<double, double> robust_location_scale(std::vector<double>& v) {
    const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    const double median = *mid;
    double mean_abs = 0.0;
    for (double& x : v) {
        x = std::fabs(x - median);
        mean_abs += x;
    }
    mean_abs /= static_cast<double>(v.size());
    std::nth_element(v.begin(), mid, v.end());
    double scale = 1.4826 * *mid;
    if (scale == 0.0) scale = 1.2533 * mean_abs;
    return {median, scale};
}
}  // namespace

double EnsembleState::warmup_statistic(double value) const {
    const size_t n = learn_values_.size();
    if (n < P::kWarmupMin) return 0.0;
    // Only a point well outside everything seen so far: a daily wave still
    // unfolding in the first hours reaches new values, but not by half its range.
    const auto [lo, hi] = std::minmax_element(learn_values_.begin(), learn_values_.end());
    const double margin = P::kWarmupMargin * (*hi - *lo);
    if (value <= *hi + margin && value >= *lo - margin) return 0.0;
    std::vector<double> v = learn_values_;
    const auto [median, spread] = robust_location_scale(v);
    const double z = std::fabs(value - median) / std::max(spread, 1e-12 * std::max(1.0, std::fabs(median)));
    return 0.5 * neg_log10_tail(std::min(z, 37.0));
}

// While the first kLearn points are learned, the ranking score also sees a step far outside
// the steps so far: a spike inside the range, which neither the young likelihoods nor the
// clear-outlier rule score yet (on a short hourly series that is weeks). A robust z of the
// step against the median and MAD of the earlier steps, on the warm-up's half scale, at most
// 0.9 x the alarm level's score (as the hold caps alert scores): it ranks the point, it never
// raises an alarm.
// The earlier steps are the first 10, 15, 22, 33, ... (x 1.5) of them, as many as there are: their
// median and MAD are computed a dozen times in the 300 points, not at each (a function of the
// count alone, so a restored state gives the same).
double EnsembleState::warmup_step_statistic(double value) const {
    const size_t n = learn_values_.size();
    if (n <= P::kWarmupMin) return 0.0;
    size_t m = P::kWarmupMin;
    while (m * 3 / 2 <= n - 1) m = m * 3 / 2;
    if (m != warm_steps_) {
        std::vector<double> steps(m);
        for (size_t i = 0; i < m; ++i) steps[i] = learn_values_[i + 1] - learn_values_[i];
        std::tie(warm_step_median_, warm_step_spread_) = robust_location_scale(steps);
        warm_steps_ = m;
    }
    const double scale = std::max(warm_step_spread_, 1e-12 * std::max(1.0, std::fabs(value)));
    const double z = std::fabs(value - learn_values_.back() - warm_step_median_) / scale;
    if (std::isnan(z)) return 0.0;                     // steps beyond the largest double: no scale
    const double cap = P::kHoldCap * 0.5 * P::kScale;  // a score of 0.9 x the alarm level (0.45)
    if (!std::isfinite(z)) return cap;                 // a step beyond the largest double
    return std::min(0.5 * neg_log10_tail(std::min(z, 37.0)), cap);
}

EnsembleStep EnsembleState::update(double value, double given_timestamp) {
    const double timestamp = stamp(value, given_timestamp);
    const uint64_t t = seen_;
    if (t == P::kPeriodProbe) start_season();
    if (timed_ && period_ >= 0) track_interval(timestamp);
    timed_ = true;
    last_time_ = timestamp;
    double z[P::kFeatures] = {};
    const double floor = 1e-9 * std::max(1.0, std::fabs(value_.mean));
    if (value_.n >= 2) z[f_value] = std::fabs(value - value_.mean) / std::max(value_.sd(), floor);
    const double d = t > 0 ? value - prev_ : 0.0;
    if (diff_.n >= 2) z[f_diff] = std::fabs(d - diff_.mean) / std::max(diff_.sd(), floor);
    // The seasonal residual: against the value a day earlier, or a week earlier where
    // that explains the series better (decided on the residuals' mean squares).
    const auto day = lagged(lag_, timestamp, kSecondsPerDay);
    const auto week = keeps_week() ? lagged(week_lag_, timestamp, kSecondsPerWeek) : std::nullopt;
    const double day_residual = day ? value - *day : 0.0;
    const double week_residual = week ? value - *week : 0.0;
    if (week && fit_n_ >= 7 * static_cast<uint64_t>(period_)) {
        const bool weekly = weekly_ ? fit_week_ < fit_day_ : fit_week_ < P::kWeekRatio * fit_day_;
        if (weekly != weekly_) {
            weekly_ = weekly;
            features_[f_season] = Feature();  // another reference: its likelihood starts afresh
        }
    }
    const bool has_residual = weekly_ ? week.has_value() : day.has_value();
    const EwMoments& moments = weekly_ ? week_ : season_;
    const double residual = weekly_ ? week_residual : day_residual;
    if (has_residual && moments.n >= 2)
        z[f_season] = std::fabs(residual - moments.mean) / std::max(moments.sd(), floor);
    level_ += std::max(1.0 / static_cast<double>(value_.n + 1), 2.0 / (P::kLevelSpan + 1.0)) * (value - level_);
    if (!std::isfinite(level_)) level_ = value;  // (a step beyond the largest double)
    const bool has_level = value_.n >= 2 && value_.var > 0;
    if (has_level) z[f_level] = P::kLevelGain * std::fabs(level_ - value_.mean) / std::max(value_.sd(), floor);
    const double span = hi_ - lo_;
    if (t > 10 && span > 0 && (value > hi_ + P::kSpatialMargin * span || value < lo_ - P::kSpatialMargin * span))
        z[f_spatial] = 1.0;
    // A clear outlier is scored on its own, whatever the likelihoods make of it: while
    // they learn, by a robust z over the points so far; after, by its z against the
    // values' mean and sd, for a point beyond every value seen by half their range.
    double warmup = 0.0, warmup_step = 0.0;
    if (t < P::kLearn) {
        warmup = warmup_statistic(value);
        warmup_step = warmup_step_statistic(value);
    } else if (span > 0 && (value > hi_ + P::kWarmupMargin * span || value < lo_ - P::kWarmupMargin * span)) {
        const double z = std::fabs(value - value_.mean) / std::max(value_.sd(), floor);
        warmup = 0.5 * neg_log10_tail(std::min(z, 37.0));
    }
    if (t < P::kLearn) learn_values_.push_back(value);
    if (t < P::kPeriodProbe) learn_times_.push_back(timestamp);
    z[f_markov] = markov(value);
    if (t >= P::kLearn) z[f_context] = context(value);
    if (t >= P::kLearn) z[f_shape] = shape_.update(value);
    const ChangeStats::Step change = change_.update(value, prev_, t > 0, value_);
    z[f_scale] = change.scale_z;
    z[f_cusum] = change.cusum;
    const PolyResidual::Step poly = poly_.update(value, floor);
    z[f_poly] = poly.z;

    // ARTime's "chomp", made causal (issue 15): a value this close to the values' EW mean,
    // against the range seen so far, is no outlier for the value, difference and polyres
    // detectors (their likelihoods still learn it): on bursty series such points raised most
    // false alarms.
    const bool near_mean = t >= P::kLearn && near_centre(value, value_.mean, lo_, hi_);

    // A detector enters its likelihood once its own statistics exist (the seasonal
    // one only a period after the start): no alarm from a detector starting up.
    const bool ready[P::kFeatures] = {value_.n >= 2,
                                      diff_.n >= 2,
                                      has_residual && moments.n >= 2,
                                      t > 10,
                                      t >= P::kLearn,
                                      has_level,
                                      t >= P::kLearn,
                                      t >= P::kLearn && shape_.scored(),
                                      change.scale_ready,
                                      change.cusum_ready,
                                      poly.ready};
    double best = 0.0;
    const bool warming = !likelihoods_live_ && t < likelihood_warmup();
    if (!likelihoods_live_ && !warming && period_ >= 0 && t >= P::kLikelihoodMin) {
        likelihoods_live_ = true;
        live_since_ = t;
    }
    for (size_t f = 0; f < P::kFeatures; ++f) {
        if (!ready[f]) continue;
        Feature& ft = features_[f];
        const bool z_type = f <= f_season || f == f_level || f == f_scale || f == f_cusum || f == f_poly;
        const double raw = z_type ? saturate(z[f]) : std::min(z[f], P::kCap);
        ft.short_.push(raw);
        const double avg = ft.short_.mean();
        double s = 0.0;
        if (ft.long_.size() >= P::kLikelihoodMin && !warming) {
            const double lz = (avg - ft.long_.mean()) / std::max(ft.long_.sd(), P::kMinSd);
            if (lz > 0) s = neg_log10_tail(lz);
        }
        ft.long_.push(avg);
        if (near_mean && (f == f_value || f == f_diff || f == f_poly)) s = 0.0;
        best = std::max(best, s / P::kWeight[f]);
    }

    EnsembleStep out;
    const double statistic = std::max(best, warmup);
    out.statistic = statistic;
    out.expected = value_.n ? value_.mean : value;
    // The score ranks: the point's statistic or the recent likelihoods', fading by 1%
    // a point (the warm-up's robust z and its step's, on few points, count for their own
    // point only; the step's for the score alone).
    rank_ = std::max(best, rank_decay() * rank_);
    out.score = rank_score(std::max({rank_, warmup, warmup_step}));
    // The alarm logic, on the point's own statistic: one alarm per incident.
    const double score = std::min(statistic / P::kScale, 1.0);
    double alert = score;
    const double previous_max = recent_.empty() ? 0.0 : recent_.max();
    recent_.push(score);
    if (!(score > previous_max)) alert *= P::kDamp;
    if (hold_ > 0) {
        --hold_;
        alert = std::min(alert, threshold_ * P::kHoldCap);
    } else if (cooldown_seconds_ > 0 && has_alarm_time_ && timestamp - alarm_time_ < cooldown_seconds_) {
        alert = std::min(alert, threshold_ * P::kHoldCap);  // (a timestamp before the alarm's is held too)
    } else if (alert >= threshold_) {
        hold_ = cooldown_;
        has_alarm_time_ = true;
        alarm_time_ = timestamp;
    }
    out.alert_score = alert;

    // (push_finite: values near the largest double leave no state a checkpoint refuses)
    value_.push_finite(value, P::kBaseSpan);
    if (t > 0) diff_.push_finite(d, P::kBaseSpan);
    if (day) season_.push_finite(day_residual, P::kBaseSpan);
    if (week) {
        week_.push_finite(week_residual, P::kBaseSpan);
        if (day) {  // the two references compared on the same points
            ++fit_n_;
            const double a = std::max(1.0 / static_cast<double>(fit_n_),
                                      2.0 / (P::kWeekFitWeeks * 7.0 * static_cast<double>(period_) + 1.0));
            fit_day_ += a * (day_residual * day_residual - fit_day_);
            fit_week_ += a * (week_residual * week_residual - fit_week_);
            if (!std::isfinite(fit_day_) || !std::isfinite(fit_week_)) {  // (squares that overflow)
                fit_n_ = 0;
                fit_day_ = fit_week_ = 0.0;
            }
        }
    }
    if (period_ != 0) {  // unknown yet, or daily
        lag_.emplace_back(timestamp, value);
        if (lag_.size() > P::kMaxLag) lag_.pop_front();
    }
    if (keeps_week()) {
        week_lag_.emplace_back(timestamp, value);
        static_assert(P::kMaxWeekLag == 7 * P::kMaxWeekPeriod + 1);
        if (week_lag_.size() > P::kMaxWeekLag) week_lag_.pop_front();
    }
    prev_ = value;
    if (t == 0) lo_ = hi_ = value;
    lo_ = std::min(lo_, value);
    hi_ = std::max(hi_, value);
    seen_ = io::count_up(seen_, 1);
    return out;
}

// --- serialisation -----------------------------------------------------------

void EnsembleState::serialize(io::ByteWriter& w) const {
    w.put<uint64_t>(seen_);
    w.put<double>(prev_);
    w.put<double>(lo_);
    w.put<double>(hi_);
    put_ew(w, value_);
    put_ew(w, diff_);
    put_ew(w, season_);
    w.put<uint64_t>(learn_values_.size());
    w.put_array(learn_values_.data(), learn_values_.size());
    w.put<uint64_t>(learn_times_.size());
    w.put_array(learn_times_.data(), learn_times_.size());
    w.put<int64_t>(period_);
    w.put<uint64_t>(lag_.size());
    for (const auto& [when, v] : lag_) {
        w.put<double>(when);
        w.put<double>(v);
    }
    w.put<double>(resolution_);
    w.put<double>(bin_origin_);
    w.put<uint8_t>(has_prev_bin_ ? 1 : 0);
    w.put<int64_t>(prev_bin_);
    transitions_.serialize(w);
    for (size_t f = 0; f < f_level; ++f) {
        features_[f].short_.serialize(w);
        features_[f].long_.serialize(w);
        features_[f].record.serialize(w);
    }
    recent_.serialize(w);
    w.put<uint64_t>(hold_);
    // layout 2 on
    w.put<double>(level_);
    w.put<double>(rank_);
    w.put<double>(resolution2_);
    w.put<uint8_t>(context_count_);
    w.put<int64_t>(context_bins_[0]);
    w.put<int64_t>(context_bins_[1]);
    contexts_.serialize(w);
    contexts1_.serialize(w);
    for (size_t f = f_level; f < P::kFeaturesV2; ++f) {
        features_[f].short_.serialize(w);
        features_[f].long_.serialize(w);
    }
    // layout 3 on
    w.put<uint8_t>(has_alarm_time_ ? 1 : 0);
    w.put<double>(alarm_time_);
    w.put<uint8_t>(weekly_ ? 1 : 0);
    put_ew(w, week_);
    w.put<double>(fit_day_);
    w.put<double>(fit_week_);
    w.put<uint64_t>(fit_n_);
    w.put<uint64_t>(week_lag_.size());
    for (const auto& [when, v] : week_lag_) {
        w.put<double>(when);
        w.put<double>(v);
    }
    // layout 4 on
    w.put<uint8_t>(timed_ ? 1 : 0);
    w.put<double>(last_time_);
    w.put<uint64_t>(intervals_.size());
    w.put_array(intervals_.data(), intervals_.size());
    // layout 5 on
    shape_.serialize(w);
    features_[f_shape].short_.serialize(w);
    features_[f_shape].long_.serialize(w);
    change_.serialize(w);
    for (size_t f = f_scale; f <= f_cusum; ++f) {
        features_[f].short_.serialize(w);
        features_[f].long_.serialize(w);
    }
    // layout 6 on
    w.put<uint8_t>(untimed_ ? (moved_ ? 2 : 1) : 0);  // 2: untimed, the last timestamp moved
    w.put<double>(raw_last_);
    w.put<double>(offset_);
    w.put<double>(step_);
    w.put<uint64_t>(next_estimate_);
    w.put<uint64_t>(untimed_values_.size());  // oldest first
    w.put_array(untimed_values_.data() + untimed_head_, untimed_values_.size() - untimed_head_);
    w.put_array(untimed_values_.data(), untimed_head_);
    // layout 7 on
    poly_.serialize(w);
    features_[f_poly].short_.serialize(w);
    features_[f_poly].long_.serialize(w);
    w.put<uint8_t>(likelihoods_live_ ? 1 : 0);
}

EnsembleState EnsembleState::deserialize(io::ByteReader& r, double threshold, uint64_t cooldown,
                                         double cooldown_seconds, int layout) {
    EnsembleState s(threshold, cooldown, cooldown_seconds);
    s.seen_ = r.get<uint64_t>("ensemble points seen");
    if (s.seen_ > io::kMaxPointCount) io::corruption("ensemble points seen: beyond 2^53");
    // before layout 7 the likelihoods scored from their 150th point on, whatever the sampling
    s.likelihoods_live_ = s.seen_ >= P::kLikelihoodMin;
    s.untimed_ = s.seen_ == 0;  // layouts 1 to 5 after points: timestamps used as they come, as they were
    s.prev_ = get_finite(r, "ensemble previous value");
    s.lo_ = get_finite(r, "ensemble minimum");
    s.hi_ = get_finite(r, "ensemble maximum");
    s.value_ = get_ew(r, "ensemble value moments");
    s.diff_ = get_ew(r, "ensemble difference moments");
    s.season_ = get_ew(r, "ensemble seasonal moments");
    const auto nv = r.get<uint64_t>("ensemble learning values");
    if (nv != (s.seen_ <= P::kLearn ? s.seen_ : 0)) io::corruption("ensemble learning values: inconsistent count");
    s.learn_values_.resize(nv);
    r.get_array(s.learn_values_.data(), nv, "ensemble learning values");
    const auto nt = r.get<uint64_t>("ensemble learning timestamps");
    if (nt != (s.seen_ <= P::kPeriodProbe ? s.seen_ : 0))
        io::corruption("ensemble learning timestamps: inconsistent count");
    s.learn_times_.resize(nt);
    r.get_array(s.learn_times_.data(), nt, "ensemble learning timestamps");
    s.period_ = r.get<int64_t>("ensemble period");
    if (s.period_ < -1 || s.period_ > static_cast<int64_t>(P::kMaxPeriod) ||
        (s.period_ == -1) != (s.seen_ <= P::kPeriodProbe))
        io::corruption("ensemble period: out of range");
    const auto nl = r.get<uint64_t>("ensemble lag count");
    if (layout < 2) {  // the last period's values without their times: the seasonal lag starts afresh
        if (nl > static_cast<uint64_t>(std::max<int64_t>(s.period_, 0)) || nl > r.remaining() / 8)
            io::corruption("ensemble lag count: exceeds the period");
        for (uint64_t i = 0; i < nl; ++i) get_finite(r, "ensemble lag values");
    } else {
        if (nl > P::kMaxLag || nl > r.remaining() / 16 || (s.period_ == 0 && nl != 0) || nl > s.seen_)
            io::corruption("ensemble lag count: out of range");
        for (uint64_t i = 0; i < nl; ++i) {
            const double when = get_finite(r, "ensemble lag times");
            s.lag_.emplace_back(when, get_finite(r, "ensemble lag values"));
        }
    }
    s.resolution_ = r.get<double>("ensemble resolution");
    if (!std::isfinite(s.resolution_) || s.resolution_ < 0 || (s.resolution_ > 0) != (s.seen_ > P::kLearn))
        io::corruption("ensemble resolution: expected >= 0");
    s.bin_origin_ = get_finite(r, "ensemble bin origin");
    const auto has_prev = r.get<uint8_t>("ensemble markov flag");
    if (has_prev > 1) io::corruption("ensemble markov flag: expected 0 or 1");
    s.has_prev_bin_ = has_prev == 1;
    s.prev_bin_ = r.get<int64_t>("ensemble previous bin");
    if (s.resolution_ > 0) s.start_shape();  // layouts 1 to 4: the shape feature starts afresh on these bins
    s.transitions_.deserialize(r);
    for (size_t f = 0; f < f_level; ++f) {
        s.features_[f].short_.deserialize(r, "ensemble short window");
        s.features_[f].long_.deserialize(r, "ensemble long window");
        s.features_[f].record.deserialize(r, "ensemble record window");
    }
    // Layout 1 kept the last 300 scores; the span now follows the period.
    s.recent_ = SlidingMax(std::max(s.record_span(), layout < 2 ? size_t{300} : size_t{0}));
    s.recent_.deserialize(r, "ensemble recent scores");
    s.recent_.set_span(s.record_span());
    s.hold_ = r.get<uint64_t>("ensemble hold");
    if (s.hold_ > P::kMaxCooldown) io::corruption("ensemble hold: out of range");
    s.hold_ = std::min(s.hold_, cooldown);  // a checkpoint made with a longer cooldown
    const bool learned = s.seen_ > P::kLearn;
    if (layout < 2) {  // the level and context features start afresh
        s.level_ = s.value_.mean;
        s.resolution2_ = learned ? s.resolution_ * P::kBins / P::kContextBins : 0.0;
        return s;
    }
    s.level_ = get_finite(r, "ensemble level");
    s.rank_ = get_finite(r, "ensemble rank");
    if (s.rank_ < 0) io::corruption("ensemble rank: expected >= 0");
    s.resolution2_ = r.get<double>("ensemble context resolution");
    if (!std::isfinite(s.resolution2_) || s.resolution2_ < 0 || (s.resolution2_ > 0) != learned)
        io::corruption("ensemble context resolution: expected >= 0");
    s.context_count_ = r.get<uint8_t>("ensemble context count");
    if (s.context_count_ > 2) io::corruption("ensemble context count: expected at most 2");
    for (int64_t& b : s.context_bins_) {
        b = r.get<int64_t>("ensemble context bins");
        if (b < -kContextBinLimit || b > kContextBinLimit) io::corruption("ensemble context bins: out of range");
    }
    s.contexts_.deserialize(r);
    s.contexts1_.deserialize(r);
    for (size_t f = f_level; f < P::kFeaturesV2; ++f) {
        s.features_[f].short_.deserialize(r, "ensemble short window");
        s.features_[f].long_.deserialize(r, "ensemble long window");
    }
    if (layout < 3) return s;  // no alarm time nor weekly reference: they start afresh
    const auto has_alarm = r.get<uint8_t>("ensemble alarm flag");
    if (has_alarm > 1) io::corruption("ensemble alarm flag: expected 0 or 1");
    s.has_alarm_time_ = has_alarm == 1;
    s.alarm_time_ = get_finite(r, "ensemble alarm time");
    const auto weekly = r.get<uint8_t>("ensemble weekly flag");
    if (weekly > 1) io::corruption("ensemble weekly flag: expected 0 or 1");
    s.weekly_ = weekly == 1;
    s.week_ = get_ew(r, "ensemble weekly moments");
    s.fit_day_ = get_finite(r, "ensemble daily fit");
    s.fit_week_ = get_finite(r, "ensemble weekly fit");
    if (s.fit_day_ < 0 || s.fit_week_ < 0) io::corruption("ensemble fits: expected >= 0");
    s.fit_n_ = r.get<uint64_t>("ensemble fit count");
    const auto nw = r.get<uint64_t>("ensemble weekly lag count");
    if (s.fit_n_ > s.seen_ || nw > P::kMaxWeekLag || nw > r.remaining() / 16 || nw > s.seen_ ||
        (!s.keeps_week() && (nw != 0 || s.weekly_)))
        io::corruption("ensemble weekly lag: out of range");
    for (uint64_t i = 0; i < nw; ++i) {
        const double when = get_finite(r, "ensemble weekly lag times");
        s.week_lag_.emplace_back(when, get_finite(r, "ensemble weekly lag values"));
    }
    if (layout < 4) return s;  // the interval estimate starts from the period they found
    const auto timed = r.get<uint8_t>("ensemble timed flag");
    // (0 after points too, in a state restored from an older layout: its next interval is skipped)
    if (timed > 1 || (timed == 1 && s.seen_ == 0)) io::corruption("ensemble timed flag: inconsistent");
    s.timed_ = timed == 1;
    s.last_time_ = get_finite(r, "ensemble last timestamp");
    const auto ni = r.get<uint64_t>("ensemble interval count");
    if (ni >= P::kIntervalBlock || ni > s.seen_ || (s.period_ < 0 && ni != 0))
        io::corruption("ensemble interval count: expected fewer than " + std::to_string(P::kIntervalBlock) + ", got " +
                       std::to_string(ni));
    s.intervals_.resize(ni);
    r.get_array(s.intervals_.data(), ni, "ensemble intervals");
    for (double dt : s.intervals_)
        if (std::isnan(dt)) io::corruption("ensemble intervals: expected numbers");
    if (layout < 5) return s;  // the shape feature starts afresh (its range set above)
    s.shape_.deserialize(r);
    if (s.shape_.has_range() != learned) io::corruption("ensemble shape range: inconsistent with the bins");
    s.features_[f_shape].short_.deserialize(r, "ensemble short window");
    s.features_[f_shape].long_.deserialize(r, "ensemble long window");
    s.change_.deserialize(r, s.seen_);
    for (size_t f = f_scale; f <= f_cusum; ++f) {
        s.features_[f].short_.deserialize(r, "ensemble short window");
        s.features_[f].long_.deserialize(r, "ensemble long window");
    }
    if (layout < 6) return s;  // (and the polyres feature starts afresh)
    const auto untimed = r.get<uint8_t>("ensemble untimed flag");
    if (untimed > 2) io::corruption("ensemble untimed flag: expected 0, 1 or 2");
    s.untimed_ = untimed >= 1;
    s.moved_ = untimed == 2;
    s.raw_last_ = get_finite(r, "ensemble last given timestamp");
    s.offset_ = get_finite(r, "ensemble timestamp offset");
    s.step_ = get_finite(r, "ensemble untimed step");
    if (s.step_ < 0 || (s.step_ > 0 && kSecondsPerDay / s.step_ < 4))
        io::corruption("ensemble untimed step: out of range");
    s.next_estimate_ = r.get<uint64_t>("ensemble next estimate");
    if (s.next_estimate_ < P::kUntimedFirst) io::corruption("ensemble next estimate: out of range");
    const auto nu = r.get<uint64_t>("ensemble untimed values");
    if (nu > P::kUntimedBuffer || nu > s.seen_ || (!s.untimed_ && nu != 0) ||
        (s.untimed_ && nu != std::min<uint64_t>(s.seen_, P::kUntimedBuffer)))
        io::corruption("ensemble untimed values: inconsistent count");
    s.untimed_values_.resize(nu);
    r.get_array(s.untimed_values_.data(), nu, "ensemble untimed values");
    for (double v : s.untimed_values_)
        if (!std::isfinite(v)) io::corruption("ensemble untimed values: expected finite values");
    if (layout < 7) return s;  // the polyres feature starts afresh
    s.poly_.deserialize(r, s.seen_);
    s.features_[f_poly].short_.deserialize(r, "ensemble short window");
    s.features_[f_poly].long_.deserialize(r, "ensemble long window");
    const auto live = r.get<uint8_t>("ensemble likelihoods live");
    if (live > 1 || (live == 1 && s.seen_ < P::kLikelihoodMin))
        io::corruption("ensemble likelihoods live: expected 0, or 1 after 150 points");
    s.likelihoods_live_ = live == 1;
    return s;
}

std::string EnsembleState::to_bytes() const {
    io::ByteWriter w;
    serialize(w);
    return io::seal(io::Family::ensemble_checkpoint, kCheckpointVersion, w.str());
}

EnsembleState EnsembleState::from_bytes(std::string_view bytes, double threshold, uint64_t cooldown,
                                        double cooldown_seconds) {
    if (!(threshold > 0.0 && threshold <= 1.0))
        throw std::invalid_argument("threshold: expected a score in (0, 1], got " + std::to_string(threshold));
    uint16_t version = 0;
    io::ByteReader r(io::unseal(bytes, io::Family::ensemble_checkpoint, kCheckpointVersion, &version));
    EnsembleState s = deserialize(r, threshold, cooldown, cooldown_seconds, version);
    r.expect_end("ensemble checkpoint");
    return s;
}

}  // namespace anomaly_detection

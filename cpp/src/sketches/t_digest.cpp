#include "anomaly_detection/sketches/t_digest.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "anomaly_detection/io/bytes.hpp"

namespace anomaly_detection {

namespace {
constexpr uint16_t kVersion = 1;
constexpr double kPi = 3.14159265358979323846;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr size_t kBulkThreshold = 4096;
constexpr size_t kBulkChunk = size_t{1} << 16;
constexpr size_t kSeedChunk = 4096;     // values sorted exactly before gap counting starts
constexpr size_t kMinGapCentroids = 8;  // fewer centroids than this: sort instead

// a + (b - a) * num / den, also when b - a overflows (a and b near -DBL_MAX and +DBL_MAX).
inline double lerp(double a, double b, double num, double den) {
    const double step = (b - a) * num;
    if (std::isfinite(step)) return a + step / den;
    const double t = num / den;
    return std::min(std::max(a * (1.0 - t) + b * t, std::min(a, b)), std::max(a, b));
}

// (x - a) / (b - a) for a <= x <= b, also when the differences overflow.
inline double fraction(double x, double a, double b) {
    const double d = b - a;
    if (std::isfinite(d)) return (x - a) / d;
    return (x / 2 - a / 2) / (b / 2 - a / 2);
}

void check_compression(double c) {
    if (!(c >= 10.0 && c <= 10000.0))
        throw std::invalid_argument("compression: expected a number in [10, 10000], got " + std::to_string(c));
}
}  // namespace

TDigest::TDigest(double compression)
    : compression_(compression),
      buffer_capacity_(0),
      min_(std::numeric_limits<double>::infinity()),
      max_(-std::numeric_limits<double>::infinity()) {
    check_compression(compression);
    buffer_capacity_ = static_cast<size_t>(compression * 5);
    buffer_.reserve(buffer_capacity_);
}

double TDigest::min() const { return empty() ? kNaN : min_; }
double TDigest::max() const { return empty() ? kNaN : max_; }

size_t TDigest::memory_bytes() const {
    return (centroids_.capacity() + buffer_.capacity()) * sizeof(Centroid) + sizeof(*this);
}

namespace {

// x - x == 0 fails exactly for NaN and +-inf: a branch-free (vectorised) pass finds a
// run clean; check_entries names the bad entry only when there is one.
bool all_finite(const double* values, size_t n) {
    bool bad = false;
    for (size_t i = 0; i < n; ++i) bad |= !(values[i] - values[i] == 0.0);
    return !bad;
}

void check_entries(const double* values, const double* weights, size_t n, size_t offset = 0) {
    for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(values[i]))
            throw std::invalid_argument("values[" + std::to_string(offset + i) + "]: expected a finite number, got " +
                                        std::to_string(values[i]));
        // a subnormal weight halves to 0 (a quantile divided by it was NaN): the smallest normal double at least
        if (weights && !(std::isfinite(weights[i]) && weights[i] >= std::numeric_limits<double>::min()))
            throw std::invalid_argument("weights[" + std::to_string(offset + i) +
                                        "]: expected a finite positive number of at least 2.2250738585072014e-308, "
                                        "got " +
                                        std::to_string(weights[i]));
    }
}

// The digest's total weight after adding `more`; invalid_argument when it would overflow (a
// digest whose total is inf could not be saved and loaded again).
double checked_total(double total, double more) {
    const double sum = total + more;
    if (!std::isfinite(sum))
        throw std::invalid_argument("weights: the total weight would exceed the largest double (1.8e308)");
    return sum;
}

}  // namespace

void TDigest::add(const double* values, const double* weights, size_t n) {
    if (!weights && n >= kBulkThreshold) {
        // Checked chunk by chunk while the chunk is in cache; add_bulk undoes the batch
        // when a chunk holds a bad value.
        add_bulk(values, n);
        return;
    }
    check_entries(values, weights, n);
    if (weights) {  // refused before anything changes
        double total = total_weight_ + buffer_weight_;
        for (size_t i = 0; i < n; ++i) total = checked_total(total, weights[i]);
    }
    for (size_t i = 0; i < n; ++i) {
        const double w = weights ? weights[i] : 1.0;
        buffer_.push_back({values[i], w});
        buffer_weight_ += w;
        min_ = std::min(min_, values[i]);
        max_ = std::max(max_, values[i]);
        if (buffer_.size() >= buffer_capacity_) flush();
    }
}

namespace {

// Doubles as unsigned keys with the same order (flip the sign bit of positives, every bit of negatives).
inline uint64_t order_key(double v) {
    uint64_t u;
    std::memcpy(&u, &v, 8);
    return (u >> 63) ? ~u : (u | 0x8000000000000000ULL);
}

inline double from_order_key(uint64_t k) {
    const uint64_t u = (k >> 63) ? (k & 0x7fffffffffffffffULL) : ~k;
    double v;
    std::memcpy(&v, &u, 8);
    return v;
}

// LSD radix sort, 11 bits a pass; passes where every key shares the digit are skipped
// (the sign and exponent bits of real data mostly do).
void radix_sort(std::vector<uint64_t>& keys, std::vector<uint64_t>& scratch) {
    constexpr int kBits = 11;
    constexpr size_t kBuckets = size_t{1} << kBits;
    scratch.resize(keys.size());
    std::vector<size_t> count(kBuckets);
    for (int shift = 0; shift < 64; shift += kBits) {
        std::fill(count.begin(), count.end(), 0);
        for (uint64_t k : keys) ++count[(k >> shift) & (kBuckets - 1)];
        if (count[(keys.front() >> shift) & (kBuckets - 1)] == keys.size()) continue;
        size_t sum = 0;
        for (auto& c : count) {
            const size_t c0 = c;
            c = sum;
            sum += c0;
        }
        for (uint64_t k : keys) scratch[count[(k >> shift) & (kBuckets - 1)]++] = k;
        keys.swap(scratch);
    }
}

}  // namespace

void TDigest::add_sorted_chunk(const double* values, size_t m) {
    std::vector<uint64_t> keys(m), scratch;
    for (size_t i = 0; i < m; ++i) keys[i] = order_key(values[i]);
    radix_sort(keys, scratch);
    min_ = std::min(min_, from_order_key(keys.front()));
    max_ = std::max(max_, from_order_key(keys.back()));
    std::vector<Centroid> merged;
    merged.reserve(m + centroids_.size());
    size_t c = 0;
    for (size_t i = 0; i < m; ++i) {
        const double v = from_order_key(keys[i]);
        while (c < centroids_.size() && centroids_[c].mean <= v) merged.push_back(centroids_[c++]);
        merged.push_back({v, 1.0});
    }
    merged.insert(merged.end(), centroids_.begin() + static_cast<std::ptrdiff_t>(c), centroids_.end());
    total_weight_ += static_cast<double>(m);
    fold_sorted(merged, total_weight_);
    centroids_.swap(merged);
}

namespace {

/// Maps a value to the gap between centroid means it falls in: bucket j holds the values
/// in [bounds[j - 1], bounds[j]) (bucket 0 those below the first mean, bucket n those at
/// or above the last). A monotone map of the value to one of a few thousand cells gives
/// the first candidate gap, then a fixed number of branch-free steps finds the gap.
class GapIndex {
   public:
    explicit GapIndex(const std::vector<TDigest::Centroid>& centroids) {
        const size_t n = centroids.size();
        bounds_.resize(n + 1);
        for (size_t i = 0; i < n; ++i) bounds_[i] = centroids[i].mean;
        bounds_[n] = std::numeric_limits<double>::infinity();  // sentinel: no finite value reaches it
        cells_ = 256;
        while (cells_ < 8 * (n + 1) && cells_ < 4096) cells_ *= 2;
        // Two monotone maps: linear in the value, or linear in the order key (log-like, for
        // heavy tails). Keep the one whose fullest cell holds fewer boundaries.
        lo_ = bounds_[0];
        const double span = bounds_[n - 1] - lo_;
        scale_ = span > 0 && std::isfinite(span) ? static_cast<double>(cells_) / span : 0.0;
        key_lo_ = order_key(bounds_[0]);
        const uint64_t key_span = order_key(bounds_[n - 1]) - key_lo_;
        shift_ = 0;
        while (shift_ < 63 && (key_span >> shift_) >= cells_) ++shift_;
        std::vector<uint32_t> by_value(cells_ + 1, 0), by_key(cells_ + 1, 0);
        for (size_t i = 0; i < n; ++i) {
            ++by_value[linear_cell(bounds_[i])];
            ++by_key[key_cell(bounds_[i])];
        }
        const uint32_t max_value = *std::max_element(by_value.begin(), by_value.end());
        const uint32_t max_key = *std::max_element(by_key.begin(), by_key.end());
        by_key_ = scale_ == 0.0 || max_key < max_value;
        steps_ = by_key_ ? max_key : max_value;
        // start_[c]: boundaries in cells before c, all below any value of cell c.
        auto& occupancy = by_key_ ? by_key : by_value;
        start_.resize(cells_);
        uint32_t sum = 0;
        for (size_t c = 0; c < cells_; ++c) {
            start_[c] = sum;
            sum += occupancy[c];
        }
    }

    size_t gaps() const { return bounds_.size(); }
    double bound(size_t j) const { return bounds_[j]; }
    bool fast() const { return steps_ <= 8; }

    bool by_key() const { return by_key_; }

    template <int Steps, bool ByKey>
    size_t gap(double x) const {
        size_t j = start_[ByKey ? key_cell(x) : linear_cell(x)];
        for (int s = 0; s < Steps; ++s) j += bounds_[j] <= x;
        return j;
    }
    size_t gap_any(double x) const {
        if (steps_ == 0) return by_key_ ? gap<0, true>(x) : gap<0, false>(x);
        if (!fast())
            return static_cast<size_t>(std::upper_bound(bounds_.begin(), bounds_.end() - 1, x) - bounds_.begin());
        size_t j = start_[by_key_ ? key_cell(x) : linear_cell(x)];
        for (uint32_t s = 0; s < steps_; ++s) j += bounds_[j] <= x;
        return j;
    }
    uint32_t steps() const { return steps_; }

   private:
    size_t linear_cell(double x) const {
        // Written so that NaN (checked for after the count) lands in cell 0, never in a cast.
        double c = (x - lo_) * scale_;
        c = c > 0.0 ? c : 0.0;
        const double last = static_cast<double>(cells_ - 1);
        return static_cast<size_t>(c < last ? c : last);
    }
    size_t key_cell(double x) const {
        const uint64_t k = order_key(x);
        return k < key_lo_ ? 0 : std::min<uint64_t>((k - key_lo_) >> shift_, cells_ - 1);
    }

    std::vector<double> bounds_;
    std::vector<uint32_t> start_;
    size_t cells_ = 0;
    double lo_ = 0.0, scale_ = 0.0;
    uint64_t key_lo_ = 0;
    unsigned shift_ = 0;
    bool by_key_ = false;
    uint32_t steps_ = 0;
};

// Returns false when a value is NaN or infinite (x - x == 0 fails exactly for those).
// Returns false when a value is NaN or infinite (x - x == 0 fails exactly for those).
template <int Steps, bool ByKey>
bool count_gaps(const GapIndex& index, const double* values, size_t m, double* count, double* sum, double& lo,
                double& hi) {
    bool bad = false;
    for (size_t i = 0; i < m; ++i) {
        const double x = values[i];
        const size_t j = index.gap<Steps, ByKey>(x);
        count[j] += 1.0;
        sum[j] += x;
        lo = std::min(lo, x);
        hi = std::max(hi, x);
        bad |= !(x - x == 0.0);
    }
    return !bad;
}

template <int Steps>
bool count_gaps(const GapIndex& index, const double* values, size_t m, double* count, double* sum, double& lo,
                double& hi) {
    if (index.by_key()) return count_gaps<Steps, true>(index, values, m, count, sum, lo, hi);
    return count_gaps<Steps, false>(index, values, m, count, sum, lo, hi);
}

}  // namespace

bool TDigest::add_bucketed_chunk(const double* values, size_t m) {
    // Every value is counted into the gap between two centroid means it falls in, and each
    // gap joins the merge as one weighted point at the mean of its values. A gap whose
    // weight would be too big for one centroid where it lands (the tails, where centroids
    // hold a few points, or a batch unlike what came before) is merged value by value,
    // sorted, as the plain merging digest does.
    const GapIndex index(centroids_);
    const size_t gaps = index.gaps();
    std::vector<double> count(gaps, 0.0), sum(gaps, 0.0);
    double lo = min_, hi = max_;
    bool finite = true;
    switch (index.fast() ? index.steps() : 9) {
        case 0:
            finite = count_gaps<0>(index, values, m, count.data(), sum.data(), lo, hi);
            break;
        case 1:
            finite = count_gaps<1>(index, values, m, count.data(), sum.data(), lo, hi);
            break;
        case 2:
            finite = count_gaps<2>(index, values, m, count.data(), sum.data(), lo, hi);
            break;
        case 3:
            finite = count_gaps<3>(index, values, m, count.data(), sum.data(), lo, hi);
            break;
        case 4:
            finite = count_gaps<4>(index, values, m, count.data(), sum.data(), lo, hi);
            break;
        default:
            if (!all_finite(values, m)) return false;
            for (size_t i = 0; i < m; ++i) {
                const double x = values[i];
                const size_t j = index.gap_any(x);
                count[j] += 1.0;
                sum[j] += x;
                lo = std::min(lo, x);
                hi = std::max(hi, x);
            }
    }
    if (!finite) return false;  // nothing of the chunk applied yet
    min_ = lo;
    max_ = hi;
    const double total = total_weight_ + static_cast<double>(m);
    std::vector<char> exact(gaps, 0);
    bool interior_exact = false;
    size_t prefix = 0, suffix = gaps;  // gaps [0, prefix) and [suffix, gaps) are exact
    double so_far = 0.0;
    for (size_t j = 0; j < gaps; ++j) {
        if (count[j] > 0.0) {
            const double q0 = so_far / total;
            const double room = total * (q_limit(q0) - q0);
            exact[j] = !(count[j] <= room) || !std::isfinite(sum[j]);
        }
        so_far += count[j] + (j + 1 < gaps ? centroids_[j].weight : 0.0);
    }
    while (prefix < gaps && (exact[prefix] || count[prefix] == 0.0)) ++prefix;
    while (suffix > prefix && (exact[suffix - 1] || count[suffix - 1] == 0.0)) --suffix;
    for (size_t j = prefix; j < suffix; ++j) interior_exact |= exact[j] != 0;
    std::vector<double> singles;
    if (prefix > 0 || suffix < gaps || interior_exact) {
        // Values of the exact gaps; the prefix and suffix are value ranges, so no lookup.
        const double below = prefix > 0 ? index.bound(prefix - 1) : -std::numeric_limits<double>::infinity();
        const double from = suffix < gaps ? index.bound(suffix - 1) : std::numeric_limits<double>::infinity();
        for (size_t i = 0; i < m; ++i) {
            const double x = values[i];
            if (x < below || x >= from || (interior_exact && exact[index.gap_any(x)])) singles.push_back(x);
        }
        std::sort(singles.begin(), singles.end());
    }
    std::vector<Centroid> merged;
    merged.reserve(2 * gaps + singles.size());
    size_t s = 0;
    for (size_t j = 0; j < gaps; ++j) {
        const double upper = index.bound(j);
        if (exact[j] || j < prefix || j >= suffix) {
            while (s < singles.size() && singles[s] < upper) merged.push_back({singles[s++], 1.0});
        } else if (count[j] > 0.0) {
            // The mean of values in [bound(j - 1), bound(j)) stays there despite rounding.
            const double lower = j > 0 ? index.bound(j - 1) : -std::numeric_limits<double>::infinity();
            merged.push_back({std::min(std::max(sum[j] / count[j], lower), upper), count[j]});
        }
        if (j + 1 < gaps) merged.push_back(centroids_[j]);
    }
    total_weight_ = total;
    fold_sorted(merged, total_weight_);
    centroids_.swap(merged);
    return true;
}

void TDigest::add_bulk(const double* values, size_t n) {
    // Large unweighted batches skip the small buffer. The first values seed the digest by a
    // radix sort; later chunks are counted into the gaps between its centroids (see
    // add_bucketed_chunk), which costs a table lookup and a few compares per value instead
    // of a sort.
    flush();
    // The digest before the batch, to restore when a value is bad (all or nothing); a copy
    // of ~compression centroids.
    const std::vector<Centroid> saved = centroids_;
    const double saved_total = total_weight_, saved_min = min_, saved_max = max_;
    auto reject = [&](size_t from, size_t count) {
        centroids_ = saved;
        total_weight_ = saved_total;
        min_ = saved_min;
        max_ = saved_max;
        check_entries(values + from, nullptr, count, from);  // throws, naming the entry
    };
    auto sorted_chunk = [&](size_t from, size_t count) {
        if (!all_finite(values + from, count)) reject(from, count);
        add_sorted_chunk(values + from, count);
    };
    size_t start = 0;
    if (centroids_.size() < kMinGapCentroids) {
        start = std::min(n, kSeedChunk);
        sorted_chunk(0, start);
    }
    for (size_t m = 0; start < n; start += m) {
        // A chunk at most as large as the digest so far: each gap then gets about half a
        // centroid's share of the weight, well within what one centroid may hold.
        const double grown = std::max(total_weight_, static_cast<double>(kSeedChunk));
        m = std::min({kBulkChunk, n - start, static_cast<size_t>(std::min(grown, 1e18))});
        if (centroids_.size() < kMinGapCentroids)
            sorted_chunk(start, m);
        else if (!add_bucketed_chunk(values + start, m))  // checks the values as it counts them
            reject(start, m);
    }
}

void TDigest::fold(std::vector<Centroid>& points, double total) const {
    std::sort(points.begin(), points.end(), [](const Centroid& a, const Centroid& b) { return a.mean < b.mean; });
    fold_sorted(points, total);
}

double TDigest::q_limit(double q0) const {
    const double norm = compression_ / (2.0 * kPi);
    const double k = norm * std::asin(2.0 * q0 - 1.0) + 1.0;
    if (k >= norm * kPi / 2.0) return 1.0;
    return (std::sin(k / norm) + 1.0) / 2.0;
}

void TDigest::fold_sorted(std::vector<Centroid>& points, double total) const {
    // k1 scale: k(q) = delta / (2 pi) * asin(2q - 1); a centroid spans at most one unit of k,
    // so centroids near q = 0 and q = 1 stay small and the tails stay accurate.
    std::vector<Centroid> out;
    out.reserve(static_cast<size_t>(compression_) * 2);
    Centroid cur = points.front();
    double so_far = 0.0;
    double limit = q_limit(0.0);
    for (size_t i = 1; i < points.size(); ++i) {
        const Centroid& next = points[i];
        const double q = (so_far + cur.weight + next.weight) / total;
        if (q <= limit) {
            cur.weight += next.weight;
            cur.mean = lerp(cur.mean, next.mean, next.weight, cur.weight);
        } else {
            out.push_back(cur);
            so_far += cur.weight;
            limit = q_limit(so_far / total);
            cur = next;
        }
    }
    out.push_back(cur);
    points.swap(out);
}

void TDigest::flush() const {
    if (buffer_.empty()) return;
    buffer_.insert(buffer_.end(), centroids_.begin(), centroids_.end());
    const double total = total_weight_ + buffer_weight_;
    fold(buffer_, total);
    centroids_.swap(buffer_);
    buffer_.clear();
    total_weight_ = total;
    buffer_weight_ = 0.0;
}

std::vector<TDigest::Centroid> TDigest::centroids() const {
    flush();
    return centroids_;
}

double TDigest::quantile(double q) const {
    if (!(q >= 0.0 && q <= 1.0))
        throw std::invalid_argument("q: expected a number in [0, 1], got " + std::to_string(q));
    flush();
    if (centroids_.empty()) return kNaN;
    if (q == 0.0) return min_;
    if (q == 1.0) return max_;
    const auto& c = centroids_;
    const size_t n = c.size();
    if (n == 1) return lerp(min_, max_, q, 1.0);
    const double index = q * total_weight_;
    // Each centroid's weight is centred on its mean; min and max anchor the ends.
    if (index < c[0].weight / 2.0) {
        if (c[0].weight == 1.0) return min_;
        return lerp(min_, c[0].mean, index, c[0].weight / 2.0);
    }
    double so_far = c[0].weight / 2.0;
    for (size_t i = 0; i + 1 < n; ++i) {
        const double dw = (c[i].weight + c[i + 1].weight) / 2.0;
        if (so_far + dw > index) {
            // Singletons are exact points, not spread out.
            double left = index - so_far, span = dw;
            if (c[i].weight == 1.0) {
                if (left < 0.5) return c[i].mean;
                left -= 0.5;
                span -= 0.5;
            }
            if (c[i + 1].weight == 1.0) {
                if (span - left <= 0.5) return c[i + 1].mean;
                span -= 0.5;
            }
            return lerp(c[i].mean, c[i + 1].mean, left, span);
        }
        so_far += dw;
    }
    const double last_half = c[n - 1].weight / 2.0;
    if (c[n - 1].weight == 1.0) return max_;
    const double into = index - (total_weight_ - last_half);
    return lerp(c[n - 1].mean, max_, std::min(1.0, into / last_half), 1.0);
}

double TDigest::cdf(double x) const {
    if (std::isnan(x)) throw std::invalid_argument("x: expected a number, got NaN");
    flush();
    if (centroids_.empty()) return kNaN;
    if (x < min_) return 0.0;
    if (x > max_) return 1.0;
    if (min_ == max_) return 0.5;
    const auto& c = centroids_;
    const size_t n = c.size();
    const double total = total_weight_;
    if (x < c[0].mean) {
        return c[0].mean > min_ ? (c[0].weight / 2.0) * fraction(x, min_, c[0].mean) / total : 0.0;
    }
    double so_far = 0.0;
    for (size_t i = 0; i + 1 < n; ++i) {
        if (x == c[i].mean) {
            // Sum the weight of every centroid at exactly x, counting them half.
            double eq = 0.0;
            size_t j = i;
            for (; j < n && c[j].mean == x; ++j) eq += c[j].weight;
            return (so_far + eq / 2.0) / total;
        }
        if (x < c[i + 1].mean) {
            const double left = c[i].weight / 2.0, right = c[i + 1].weight / 2.0;
            const double frac = fraction(x, c[i].mean, c[i + 1].mean);
            return (so_far + left + (left + right) * frac) / total;
        }
        so_far += c[i].weight;
    }
    if (x == c[n - 1].mean) return (total - c[n - 1].weight / 2.0) / total;
    const double frac = max_ > c[n - 1].mean ? fraction(x, c[n - 1].mean, max_) : 1.0;
    return std::min(1.0, (total - c[n - 1].weight / 2.0 + frac * c[n - 1].weight / 2.0) / total);
}

double TDigest::trimmed_mean(double lo, double hi) const {
    if (!(lo >= 0.0 && hi <= 1.0 && lo < hi))
        throw std::invalid_argument("trimmed_mean: expected 0 <= low < high <= 1, got low=" + std::to_string(lo) +
                                    " high=" + std::to_string(hi));
    flush();
    if (centroids_.empty()) return kNaN;
    const double a = lo * total_weight_, b = hi * total_weight_;
    double so_far = 0.0, sum = 0.0, weight = 0.0;
    for (const auto& c : centroids_) {
        // The part of this centroid's weight that lies inside [a, b].
        const double from = std::max(a, so_far), to = std::min(b, so_far + c.weight);
        if (to > from) {
            sum += c.mean * (to - from);
            weight += to - from;
        }
        so_far += c.weight;
        if (so_far >= b) break;
    }
    return weight > 0 ? sum / weight : kNaN;
}

void TDigest::merge(const std::vector<const TDigest*>& others, bool scale_to_fit) {
    for (const auto* o : others)
        if (o->compression_ != compression_)
            throw std::invalid_argument("merge: expected compression " + std::to_string(compression_) + ", got " +
                                        std::to_string(o->compression_));
    flush();
    double total = total_weight_;
    for (const auto* o : others) {
        o->flush();
        total += o->total_weight_;
    }
    if (!std::isfinite(total) && !scale_to_fit) checked_total(0.0, total);  // throws before anything changes
    std::vector<Centroid> all = centroids_;
    for (const auto* o : others) all.insert(all.end(), o->centroids_.begin(), o->centroids_.end());
    if (!std::isfinite(total)) {
        // Every weight halved as often as the total needs to fit (each digest's total is at most
        // the largest double: 2^k >= the number of digests is enough). ldexp halves exactly down
        // to the smallest normal double; a weight is kept at least that (a subnormal one could
        // halve to 0 later).
        std::vector<Centroid> halved;
        for (int k = 1; !std::isfinite(total); ++k) {
            halved = all;
            total = 0.0;
            for (auto& c : halved) {
                c.weight = std::max(std::ldexp(c.weight, -k), std::numeric_limits<double>::min());
                total += c.weight;
            }
        }
        all.swap(halved);
    }
    for (const auto* o : others)
        if (!o->empty()) {
            min_ = std::min(min_, o->min_);
            max_ = std::max(max_, o->max_);
        }
    if (all.empty()) return;
    fold(all, total);
    centroids_.swap(all);
    total_weight_ = total;
}

void TDigest::clear() {
    centroids_.clear();
    buffer_.clear();
    total_weight_ = buffer_weight_ = 0.0;
    min_ = std::numeric_limits<double>::infinity();
    max_ = -std::numeric_limits<double>::infinity();
}

std::string TDigest::to_bytes() const {
    flush();
    io::ByteWriter w;
    w.put<double>(compression_);
    w.put<double>(min_);
    w.put<double>(max_);
    w.put<uint64_t>(centroids_.size());
    for (const auto& c : centroids_) {
        w.put<double>(c.mean);
        w.put<double>(c.weight);
    }
    return io::seal(io::Family::t_digest, kVersion, w.str());
}

TDigest TDigest::from_bytes(std::string_view blob) {
    io::ByteReader r(io::unseal(blob, io::Family::t_digest, kVersion));
    const double compression = r.get<double>("compression");
    const double mn = r.get<double>("min");
    const double mx = r.get<double>("max");
    const auto n = r.get<uint64_t>("centroid count");
    if (!(compression >= 10.0 && compression <= 10000.0))
        io::corruption("compression: expected [10, 10000], got " + std::to_string(compression));
    if (n != r.remaining() / 16 || r.remaining() % 16 != 0)
        io::corruption("centroids: expected " + std::to_string(n) + " centroids, got " + std::to_string(r.remaining()) +
                       " bytes");
    TDigest d(compression);
    double total = 0.0, prev = -std::numeric_limits<double>::infinity();
    d.centroids_.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
        const double mean = r.get<double>("mean");
        const double weight = r.get<double>("weight");
        if (!std::isfinite(mean) || !(std::isfinite(weight) && weight > 0.0) || mean < prev)
            io::corruption("centroid " + std::to_string(i) + ": expected finite sorted means and positive weights");
        prev = mean;
        total += weight;
        d.centroids_.push_back({mean, weight});
    }
    r.expect_end();
    if (n == 0) {
        if (!(std::isinf(mn) && mn > 0 && std::isinf(mx) && mx < 0)) io::corruption("min/max of an empty digest");
    } else if (!(std::isfinite(mn) && std::isfinite(mx) && mn <= d.centroids_.front().mean &&
                 mx >= d.centroids_.back().mean)) {
        io::corruption("min/max: expected finite bounds around the centroids");
    }
    if (!std::isfinite(total)) io::corruption("total weight is not finite");
    d.min_ = mn;
    d.max_ = mx;
    d.total_weight_ = total;
    return d;
}

}  // namespace anomaly_detection

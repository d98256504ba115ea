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

void TDigest::add(const double* values, const double* weights, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(values[i]))
            throw std::invalid_argument("values[" + std::to_string(i) + "]: expected a finite number, got " +
                                        std::to_string(values[i]));
        if (weights && !(std::isfinite(weights[i]) && weights[i] > 0.0))
            throw std::invalid_argument("weights[" + std::to_string(i) + "]: expected a finite positive number, got " +
                                        std::to_string(weights[i]));
    }
    if (!weights && n >= kBulkThreshold) {
        add_bulk(values, n);
        return;
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

void TDigest::add_bulk(const double* values, size_t n) {
    // Large unweighted batches skip the small buffer: each chunk is radix sorted, merged
    // with the (sorted) centroids and folded once, instead of comparison-sorting every
    // few hundred points. The digest is the same kind a merging t-digest builds.
    flush();
    std::vector<uint64_t> keys, scratch;
    std::vector<Centroid> merged;
    for (size_t start = 0; start < n; start += kBulkChunk) {
        const size_t m = std::min(kBulkChunk, n - start);
        keys.resize(m);
        for (size_t i = 0; i < m; ++i) keys[i] = order_key(values[start + i]);
        radix_sort(keys, scratch);
        min_ = std::min(min_, from_order_key(keys.front()));
        max_ = std::max(max_, from_order_key(keys.back()));
        merged.clear();
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
}

void TDigest::fold(std::vector<Centroid>& points, double total) const {
    std::sort(points.begin(), points.end(), [](const Centroid& a, const Centroid& b) { return a.mean < b.mean; });
    fold_sorted(points, total);
}

void TDigest::fold_sorted(std::vector<Centroid>& points, double total) const {
    // k1 scale: k(q) = delta / (2 pi) * asin(2q - 1); a centroid spans at most one unit of k,
    // so centroids near q = 0 and q = 1 stay small and the tails stay accurate.
    const double norm = compression_ / (2.0 * kPi);
    auto q_limit = [&](double q0) {
        const double k = norm * std::asin(2.0 * q0 - 1.0) + 1.0;
        if (k >= norm * kPi / 2.0) return 1.0;
        return (std::sin(k / norm) + 1.0) / 2.0;
    };
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
            cur.mean += (next.mean - cur.mean) * next.weight / cur.weight;
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
    if (!(q >= 0.0 && q <= 1.0)) throw std::invalid_argument("q: expected a number in [0, 1], got " + std::to_string(q));
    flush();
    if (centroids_.empty()) return kNaN;
    if (q == 0.0) return min_;
    if (q == 1.0) return max_;
    const auto& c = centroids_;
    const size_t n = c.size();
    if (n == 1) return min_ + q * (max_ - min_);
    const double index = q * total_weight_;
    // Each centroid's weight is centred on its mean; min and max anchor the ends.
    if (index < c[0].weight / 2.0) {
        if (c[0].weight == 1.0) return min_;
        return min_ + (c[0].mean - min_) * index / (c[0].weight / 2.0);
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
            return c[i].mean + (c[i + 1].mean - c[i].mean) * left / span;
        }
        so_far += dw;
    }
    const double last_half = c[n - 1].weight / 2.0;
    if (c[n - 1].weight == 1.0) return max_;
    const double into = index - (total_weight_ - last_half);
    return c[n - 1].mean + (max_ - c[n - 1].mean) * std::min(1.0, into / last_half);
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
        const double span = c[0].mean - min_;
        return span > 0 ? (c[0].weight / 2.0) * (x - min_) / span / total : 0.0;
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
            const double frac = (x - c[i].mean) / (c[i + 1].mean - c[i].mean);
            return (so_far + left + (left + right) * frac) / total;
        }
        so_far += c[i].weight;
    }
    if (x == c[n - 1].mean) return (total - c[n - 1].weight / 2.0) / total;
    const double span = max_ - c[n - 1].mean;
    const double frac = span > 0 ? (x - c[n - 1].mean) / span : 1.0;
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

void TDigest::merge(const std::vector<const TDigest*>& others) {
    for (const auto* o : others)
        if (o->compression_ != compression_)
            throw std::invalid_argument("merge: expected compression " + std::to_string(compression_) + ", got " +
                                        std::to_string(o->compression_));
    flush();
    std::vector<Centroid> all = centroids_;
    double total = total_weight_;
    for (const auto* o : others) {
        o->flush();
        all.insert(all.end(), o->centroids_.begin(), o->centroids_.end());
        total += o->total_weight_;
        if (!o->empty()) {
            min_ = std::min(min_, o->min_);
            max_ = std::max(max_, o->max_);
        }
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
        io::corruption("centroids: expected " + std::to_string(n) + " centroids, got " +
                       std::to_string(r.remaining()) + " bytes");
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

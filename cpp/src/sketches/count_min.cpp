#include "anomaly_detection/sketches/count_min.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "anomaly_detection/io/bytes.hpp"
#include "anomaly_detection/portable.hpp"
#include "anomaly_detection/sketches/hash.hpp"

namespace anomaly_detection {

namespace {
constexpr uint16_t kVersion = 1;
// 2^28 counters = 1 GiB: a bound that keeps a corrupt or absurd size from allocating the machine.
constexpr uint64_t kMaxCells = uint64_t{1} << 28;
constexpr size_t kPrefetchBytes = size_t{1} << 18;

uint64_t saturating_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
uint64_t saturating_mul(uint64_t a, uint64_t b) {
    if (a == 0 || b == 0) return 0;
    return a > UINT64_MAX / b ? UINT64_MAX : a * b;
}
}  // namespace

CountMinSketch::CountMinSketch(uint32_t width, uint32_t depth, bool conservative, uint64_t seed)
    : width_(width), depth_(depth), conservative_(conservative), seed_(seed) {
    if (width == 0) throw std::invalid_argument("width: expected at least 1, got 0");
    if (depth == 0 || depth > 64) throw std::invalid_argument("depth: expected 1..64, got " + std::to_string(depth));
    if (uint64_t{width} * depth > kMaxCells)
        throw std::invalid_argument("width * depth: expected at most 2^28 counters, got " +
                                    std::to_string(uint64_t{width} * depth));
    counters_.assign(size_t{width} * depth, 0);
}

CountMinSketch CountMinSketch::from_error(double epsilon, double delta, bool conservative, uint64_t seed) {
    if (!(epsilon > 0.0 && epsilon < 1.0))
        throw std::invalid_argument("epsilon: expected a number in (0, 1), got " + std::to_string(epsilon));
    if (!(delta > 0.0 && delta < 1.0))
        throw std::invalid_argument("delta: expected a number in (0, 1), got " + std::to_string(delta));
    const double width = std::ceil(std::exp(1.0) / epsilon);
    const double depth = std::ceil(std::log(1.0 / delta));
    if (width > static_cast<double>(kMaxCells))
        throw std::invalid_argument("epsilon: too small, the sketch would exceed 2^28 counters");
    return CountMinSketch(static_cast<uint32_t>(width), static_cast<uint32_t>(std::max(1.0, depth)), conservative,
                          seed);
}

void CountMinSketch::cells(uint64_t h, size_t* out) const {
    // Kirsch-Mitzenmacher: row hashes h1 + row * h2 are as good as independent ones here.
    const uint64_t h1 = mix64(h ^ seed_);
    const uint64_t h2 = mix64(h1) | 1;
    for (uint32_t r = 0; r < depth_; ++r) out[r] = size_t{r} * width_ + reduce_range(h1 + r * h2, width_);
}

void CountMinSketch::positions(const uint64_t* hashes, size_t n, uint64_t* out) const {
    size_t c[64];
    for (size_t i = 0; i < n; ++i) {
        cells(hashes[i], c);
        for (uint32_t r = 0; r < depth_; ++r) out[i * depth_ + r] = c[r];
    }
}

uint64_t CountMinSketch::estimate(const size_t* c) const {
    uint64_t m = UINT64_MAX;
    for (uint32_t r = 0; r < depth_; ++r) m = std::min<uint64_t>(m, counters_[c[r]]);
    return m;
}

namespace {
// The plain (not conservative, unchecked) update with the depth a compile-time
// constant: the row loops unroll and the cells live in registers.
template <uint32_t Depth>
void add_fixed_depth(uint32_t* counters, uint32_t width, uint64_t seed, const uint64_t* hashes,
                     const uint64_t* increments, uint64_t constant, size_t n, uint64_t* estimates_out) {
    // Prefetching pays only for tables beyond the L2 cache; below, it costs more than it hides.
    const bool prefetch = size_t{width} * Depth * sizeof(uint32_t) > kPrefetchBytes;
    size_t next[Depth];
    const auto cells_of = [&](uint64_t h, size_t* out) {
        const uint64_t h1 = mix64(h ^ seed);
        const uint64_t h2 = mix64(h1) | 1;
        for (uint32_t r = 0; r < Depth; ++r) out[r] = size_t{r} * width + reduce_range(h1 + r * h2, width);
    };
    if (n > 0) cells_of(hashes[0], next);
    for (size_t i = 0; i < n; ++i) {
        size_t cur[Depth];
        for (uint32_t r = 0; r < Depth; ++r) cur[r] = next[r];
        if (i + 1 < n) {
            cells_of(hashes[i + 1], next);
            if (prefetch)
                for (uint32_t r = 0; r < Depth; ++r) portable::prefetch_write(counters + next[r]);
        }
        const uint64_t inc = increments ? increments[i] : constant;
        uint64_t est = UINT64_MAX;
        for (uint32_t r = 0; r < Depth; ++r) {
            const uint64_t v = uint64_t{counters[cur[r]]} + inc;
            counters[cur[r]] = static_cast<uint32_t>(v);
            est = std::min(est, v);
        }
        if (estimates_out) estimates_out[i] = est;
    }
}
}  // namespace

bool CountMinSketch::apply(const uint64_t* hashes, const uint64_t* increments, uint64_t constant, size_t n,
                           uint64_t* estimates_out, bool checked) {
    // The cells of the next item are computed and prefetched while this one is updated:
    // for sketches beyond the L1 cache the loads, not the arithmetic, set the pace.
    if (!conservative_ && !checked && depth_ >= 1 && depth_ <= 8) {
        using Fn =
            void (*)(uint32_t*, uint32_t, uint64_t, const uint64_t*, const uint64_t*, uint64_t, size_t, uint64_t*);
        static constexpr Fn kByDepth[] = {add_fixed_depth<1>, add_fixed_depth<2>, add_fixed_depth<3>,
                                          add_fixed_depth<4>, add_fixed_depth<5>, add_fixed_depth<6>,
                                          add_fixed_depth<7>, add_fixed_depth<8>};
        kByDepth[depth_ - 1](counters_.data(), width_, seed_, hashes, increments, constant, n, estimates_out);
        return true;
    }
    size_t a[64], b[64];
    size_t* cur = a;
    size_t* next = b;
    if (n > 0) cells(hashes[0], cur);
    for (size_t i = 0; i < n; ++i) {
        if (i + 1 < n) {
            cells(hashes[i + 1], next);
            for (uint32_t r = 0; r < depth_; ++r) portable::prefetch_write(&counters_[next[r]]);
        }
        const uint64_t inc = increments ? increments[i] : constant;
        uint64_t est = UINT64_MAX;
        if (conservative_) {
            const uint64_t target = estimate(cur) + inc;
            if (checked && target > kMaxCounter) return false;
            for (uint32_t r = 0; r < depth_; ++r) {
                auto& c = counters_[cur[r]];
                if (c < target) c = static_cast<counter_type>(target);
            }
            est = target;
        } else {
            for (uint32_t r = 0; r < depth_; ++r) {
                auto& c = counters_[cur[r]];
                const uint64_t v = uint64_t{c} + inc;
                if (checked && v > kMaxCounter) return false;
                c = static_cast<counter_type>(v);
                est = std::min(est, v);
            }
        }
        if (estimates_out) estimates_out[i] = est;
        std::swap(cur, next);
    }
    return true;
}

void CountMinSketch::incrby(const uint64_t* hashes, const uint64_t* increments, size_t n, uint64_t* estimates_out,
                            uint64_t constant_increment) {
    uint64_t sum = 0;
    if (increments) {
        for (size_t i = 0; i < n; ++i) {
            if (increments[i] > kMaxCounter)
                throw std::invalid_argument("increments[" + std::to_string(i) + "]: expected at most 2^32 - 1, got " +
                                            std::to_string(increments[i]));
            sum = saturating_add(sum, increments[i]);
        }
    } else {
        if (constant_increment > kMaxCounter)
            throw std::invalid_argument("increment: expected at most 2^32 - 1, got " +
                                        std::to_string(constant_increment));
        sum = saturating_mul(constant_increment, n);
    }
    // Every counter is at most total_, so below this bound no counter can overflow
    // and the batch needs neither checks nor an undo copy.
    if (saturating_add(total_, sum) <= kMaxCounter) {
        apply(hashes, increments, constant_increment, n, estimates_out, false);
    } else {
        std::vector<counter_type> backup = counters_;
        if (!apply(hashes, increments, constant_increment, n, estimates_out, true)) {
            counters_.swap(backup);
            throw std::overflow_error("count-min counter would exceed 2^32 - 1; nothing was added");
        }
    }
    total_ = saturating_add(total_, sum);
}

void CountMinSketch::query(const uint64_t* hashes, size_t n, uint64_t* out) const {
    size_t cell[64];
    for (size_t i = 0; i < n; ++i) {
        cells(hashes[i], cell);
        out[i] = estimate(cell);
    }
}

void CountMinSketch::merge(const std::vector<const CountMinSketch*>& others, const std::vector<uint64_t>& weights) {
    if (weights.size() != others.size())
        throw std::invalid_argument("weights: expected " + std::to_string(others.size()) + " weights, got " +
                                    std::to_string(weights.size()));
    for (const auto* o : others) {
        if (o->width_ != width_ || o->depth_ != depth_ || o->seed_ != seed_)
            throw std::invalid_argument("merge: expected width=" + std::to_string(width_) +
                                        " depth=" + std::to_string(depth_) + " seed=" + std::to_string(seed_) +
                                        ", got width=" + std::to_string(o->width_) +
                                        " depth=" + std::to_string(o->depth_) + " seed=" + std::to_string(o->seed_));
    }
    std::vector<uint64_t> acc(counters_.begin(), counters_.end());
    uint64_t total = total_;
    for (size_t k = 0; k < others.size(); ++k) {
        const auto& oc = others[k]->counters_;
        for (size_t i = 0; i < acc.size(); ++i) acc[i] = saturating_add(acc[i], saturating_mul(oc[i], weights[k]));
        total = saturating_add(total, saturating_mul(others[k]->total_, weights[k]));
    }
    for (size_t i = 0; i < acc.size(); ++i) counters_[i] = static_cast<counter_type>(std::min(acc[i], kMaxCounter));
    total_ = total;
}

void CountMinSketch::load_counters(const counter_type* counters, size_t n) {
    if (n != counters_.size())
        throw std::invalid_argument("counters: expected " + std::to_string(counters_.size()) + ", got " +
                                    std::to_string(n));
    std::copy(counters, counters + n, counters_.begin());
    total_ = 0;
    for (uint32_t r = 0; r < depth_; ++r) {
        uint64_t row = 0;
        for (uint32_t c = 0; c < width_; ++c) row += counters_[size_t{r} * width_ + c];
        total_ = std::max(total_, row);
    }
}

void CountMinSketch::clear() {
    std::fill(counters_.begin(), counters_.end(), 0);
    total_ = 0;
}

std::string CountMinSketch::to_bytes() const {
    io::ByteWriter w;
    w.put<uint32_t>(width_);
    w.put<uint32_t>(depth_);
    w.put<uint8_t>(conservative_ ? 1 : 0);
    w.put<uint64_t>(seed_);
    w.put<uint64_t>(total_);
    w.put_array(counters_.data(), counters_.size());
    return io::seal(io::Family::count_min, kVersion, w.str());
}

CountMinSketch CountMinSketch::from_bytes(std::string_view blob) {
    io::ByteReader r(io::unseal(blob, io::Family::count_min, kVersion));
    const auto width = r.get<uint32_t>("width");
    const auto depth = r.get<uint32_t>("depth");
    const bool conservative = r.get_flag("conservative flag");
    const auto seed = r.get<uint64_t>("seed");
    const auto total = r.get<uint64_t>("total");
    if (width == 0 || depth == 0 || depth > 64 || uint64_t{width} * depth > kMaxCells)
        io::corruption("dimensions: got width=" + std::to_string(width) + " depth=" + std::to_string(depth));
    if (uint64_t{width} * depth * sizeof(counter_type) != r.remaining())
        io::corruption("counters: expected " + std::to_string(uint64_t{width} * depth * sizeof(counter_type)) +
                       " bytes, got " + std::to_string(r.remaining()));
    CountMinSketch s(width, depth, conservative, seed);
    r.get_array(s.counters_.data(), s.counters_.size(), "counters");
    r.expect_end();
    // incrby relies on every counter being at most total to skip its undo copy.
    const auto largest = *std::max_element(s.counters_.begin(), s.counters_.end());
    if (total < largest)
        io::corruption("total: expected at least the largest counter " + std::to_string(largest) + ", got " +
                       std::to_string(total));
    s.total_ = total;
    return s;
}

}  // namespace anomaly_detection

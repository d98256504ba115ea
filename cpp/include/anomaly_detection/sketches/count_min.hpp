// Count-min sketch (Cormode & Muthukrishnan) with saturating 32-bit counters.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace anomaly_detection {

/// Frequency estimates that never undercount: estimate <= true + epsilon * N with
/// probability 1 - delta, for width = ceil(e / epsilon) and depth = ceil(ln(1 / delta)).
///
/// Counters are 32-bit and never wrap. `incrby` is all or nothing: a batch that
/// would push any counter past 2^32 - 1 throws std::overflow_error and changes
/// nothing. `merge` saturates at 2^32 - 1 instead (like Redis BITFIELD OVERFLOW SAT).
class CountMinSketch {
   public:
    using counter_type = uint32_t;
    static constexpr uint64_t kMaxCounter = UINT32_MAX;

    /// width counters in each of depth rows; conservative update raises only the
    /// smallest counters of an item (lower error, not mergeable in a shared store).
    CountMinSketch(uint32_t width, uint32_t depth, bool conservative = false, uint64_t seed = 0);
    /// Dimensions for the (epsilon, delta) guarantee; both must lie in (0, 1).
    static CountMinSketch from_error(double epsilon, double delta, bool conservative = false, uint64_t seed = 0);

    uint32_t width() const { return width_; }
    uint32_t depth() const { return depth_; }
    bool conservative() const { return conservative_; }
    uint64_t seed() const { return seed_; }
    /// Sum of every increment (saturating at 2^64 - 1).
    uint64_t total() const { return total_; }
    size_t memory_bytes() const { return counters_.size() * sizeof(counter_type); }
    const std::vector<counter_type>& counters() const { return counters_; }

    /// Counter indices (row * width + column) of each item hash: out has n * depth entries.
    /// These are the positions a shared sketch increments on the server.
    void positions(const uint64_t* hashes, size_t n, uint64_t* out) const;
    /// Adds increments[i] (or constant_increment to every item when increments is null) to
    /// item hashes[i], in order; estimates_out[i] (may be null) gets the estimate right after
    /// that increment. Throws std::overflow_error, changing nothing, when a counter would
    /// pass 2^32 - 1, and std::invalid_argument for an increment above 2^32 - 1.
    void incrby(const uint64_t* hashes, const uint64_t* increments, size_t n, uint64_t* estimates_out,
                uint64_t constant_increment = 1);
    /// Estimated count of each item hash.
    void query(const uint64_t* hashes, size_t n, uint64_t* out) const;
    /// this += sum(weights[i] * others[i]), saturating; refuses other dimensions or seeds.
    void merge(const std::vector<const CountMinSketch*>& others, const std::vector<uint64_t>& weights);
    /// Replaces the counters (for example with a snapshot of a shared sketch); total becomes the largest row sum.
    void load_counters(const counter_type* counters, size_t n);
    void clear();

    std::string to_bytes() const;
    static CountMinSketch from_bytes(std::string_view blob);

   private:
    void cells(uint64_t h, size_t* out) const;
    uint64_t estimate(const size_t* cells) const;
    bool apply(const uint64_t* hashes, const uint64_t* increments, uint64_t constant, size_t n, uint64_t* estimates_out,
               bool checked);

    uint32_t width_;
    uint32_t depth_;
    bool conservative_;
    uint64_t seed_;
    uint64_t total_ = 0;
    std::vector<counter_type> counters_;
};

}  // namespace anomaly_detection

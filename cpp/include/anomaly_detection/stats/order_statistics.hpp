// A multiset of doubles with O(log n) insert, erase, rank and select, used for
// rolling median, quantiles and MAD over a sliding window.
//
// It is a treap whose nodes live in an arena indexed by the window's ring slot, so
// a window update reuses the evicted value's node and never allocates (the arena
// grows with the slots used, up to the capacity, as the window first fills).
// Equal values are ordered by slot id, which makes every key unique.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace anomaly_detection {

class OrderStatistics {
public:
    /// `capacity` is the number of slots (the window size).
    explicit OrderStatistics(size_t capacity);

    /// Inserts `value` under slot id `slot` (the slot must be free).
    void insert(size_t slot, double value);
    /// Removes the value stored under `slot`.
    void erase(size_t slot);
    void clear();

    size_t size() const { return root_ < 0 ? 0 : nodes_[static_cast<size_t>(root_)].size; }
    /// The k-th smallest value, 0-based (requires k < size()).
    double select(size_t k) const;
    /// Number of stored values strictly less than `value`.
    size_t count_less(double value) const;
    /// Quantile with linear interpolation between order statistics (NumPy's
    /// default method); q in [0, 1], requires size() > 0.
    double quantile(double q) const;
    double median() const { return quantile(0.5); }
    /// Median absolute deviation from the median (unscaled), O(log^2 n).
    double mad() const;

private:
    struct Node {
        double value = 0.0;
        uint32_t priority = 0;
        int32_t left = -1;
        int32_t right = -1;
        uint32_t size = 0;
    };
    bool less(int32_t a, double value, size_t slot) const;
    void pull(int32_t t);
    void split(int32_t t, double value, size_t slot, int32_t& lo, int32_t& hi);  // lo: keys < (value, slot)
    int32_t merge(int32_t a, int32_t b);

    size_t capacity_;
    std::vector<Node> nodes_;
    int32_t root_ = -1;
    uint64_t rng_ = 0x9E3779B97F4A7C15ULL;
};

}  // namespace anomaly_detection

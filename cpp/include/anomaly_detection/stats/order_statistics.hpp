// A multiset of doubles with insert, erase, rank and select, used for rolling
// median, quantiles and MAD over a sliding window.
//
// The values are kept sorted in blocks of at most 2 * kBlock (a sorted array
// moved with memmove, in pieces). A window of up to 2 * kBlock values is one
// block: insert and erase move on average a third of it, select is an index.
// Larger windows (measured up to 10,000) move within one block and keep a
// prefix count of the blocks for select. Measured against a treap (O(log n),
// pointer chasing) on 200,000 points of N(20, 1): see benchmarks/README.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "anomaly_detection/stats/quantile.hpp"

namespace anomaly_detection {

class OrderStatistics {
   public:
    /// `capacity` is the number of slots (the window size).
    explicit OrderStatistics(size_t capacity);

    /// Inserts `value` under slot id `slot` (the slot must be free).
    void insert(size_t slot, double value);
    /// Removes the value stored under `slot`.
    void erase(size_t slot);
    /// Replaces the value stored under `slot` by `value` (erase then insert, in one move).
    void replace(size_t slot, double value);
    void clear();

    size_t size() const { return size_; }
    /// The k-th smallest value, 0-based (requires k < size()).
    double select(size_t k) const;
    /// Number of stored values strictly less than `value`.
    size_t count_less(double value) const;
    /// Quantile with linear interpolation between order statistics (NumPy's
    /// default method); q in [0, 1], requires size() > 0.
    double quantile(double q) const {
        // One block (windows up to 2 * kBlock) is one sorted array: inlined, so that the
        // scoring of a point (three quantiles for IQR) pays no call or check per quantile.
        if (blocks_.size() == 1 && size_ > 0 && q >= 0.0 && q <= 1.0) {
            const double* v = blocks_[0].data();
            return linear_quantile(size_, q, [v](size_t k) { return v[k]; });
        }
        return quantile_general(q);
    }
    double median() const { return quantile(0.5); }
    /// Median absolute deviation from the median (unscaled), O(log^2 n).
    double mad() const;

   private:
    // Values per block before a split (blocks hold up to twice this).
    static constexpr size_t kBlock = 256;

    double quantile_general(double q) const;  // any number of blocks; checks and clamps q
    size_t block_of(double value) const;      // first block whose largest value is >= value (or the last)
    void refresh_prefix() const;

    size_t capacity_;
    size_t size_ = 0;
    std::vector<std::vector<double>> blocks_;
    std::vector<double> by_slot_;
    mutable std::vector<size_t> prefix_;  // prefix_[b]: values in the blocks before b
    mutable bool prefix_stale_ = true;
};

}  // namespace anomaly_detection

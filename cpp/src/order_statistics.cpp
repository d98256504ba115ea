#include "anomaly_detection/stats/order_statistics.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace anomaly_detection {

OrderStatistics::OrderStatistics(size_t capacity) : capacity_(capacity) {
    if (capacity == 0 || capacity > static_cast<size_t>(INT32_MAX))
        throw std::invalid_argument("order statistics capacity: expected 1..2^31-1");
    blocks_.emplace_back();
}

void OrderStatistics::clear() {
    size_ = 0;
    blocks_.assign(1, {});
    prefix_stale_ = true;
}

size_t OrderStatistics::block_of(double value) const {
    if (blocks_.size() == 1) return 0;
    const auto it = std::partition_point(blocks_.begin(), blocks_.end() - 1,
                                         [value](const std::vector<double>& b) { return b.back() < value; });
    return static_cast<size_t>(it - blocks_.begin());
}

void OrderStatistics::refresh_prefix() const {
    prefix_.resize(blocks_.size() + 1);
    prefix_[0] = 0;
    for (size_t b = 0; b < blocks_.size(); ++b) prefix_[b + 1] = prefix_[b] + blocks_[b].size();
    prefix_stale_ = false;
}

void OrderStatistics::insert(size_t slot, double value) {
    if (slot >= capacity_) throw std::out_of_range("order statistics slot out of range");
    // Slots grow with the window, as the ring buffer's memory does.
    if (slot >= by_slot_.size()) by_slot_.resize(std::min(capacity_, std::max({slot + 1, 2 * by_slot_.size(), size_t{16}})));
    by_slot_[slot] = value;
    const size_t b = block_of(value);
    auto& block = blocks_[b];
    block.insert(std::upper_bound(block.begin(), block.end(), value), value);
    ++size_;
    prefix_stale_ = true;
    if (block.size() >= 2 * kBlock) {  // split in halves
        std::vector<double> upper(block.begin() + kBlock, block.end());
        block.resize(kBlock);
        blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(b) + 1, std::move(upper));
    }
}

void OrderStatistics::erase(size_t slot) {
    if (slot >= by_slot_.size() || size_ == 0) throw std::out_of_range("order statistics slot out of range");
    const double value = by_slot_[slot];
    const size_t b = block_of(value);
    auto& block = blocks_[b];
    const auto it = std::lower_bound(block.begin(), block.end(), value);
    if (it == block.end() || !(*it == value)) throw std::out_of_range("order statistics: slot holds no value");
    block.erase(it);
    --size_;
    prefix_stale_ = true;
    if (blocks_.size() == 1) return;
    // A block that shrank to a quarter joins a neighbour, so that blocks stay few.
    if (block.size() < kBlock / 4) {
        const size_t other = b + 1 < blocks_.size() ? b + 1 : b - 1;
        const size_t lo = std::min(b, other), hi = std::max(b, other);
        if (blocks_[lo].size() + blocks_[hi].size() < 2 * kBlock) {
            blocks_[lo].insert(blocks_[lo].end(), blocks_[hi].begin(), blocks_[hi].end());
            blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(hi));
        }
    }
}

double OrderStatistics::select(size_t k) const {
    if (k >= size_) throw std::out_of_range("order statistics select: index out of range");
    if (blocks_.size() == 1) return blocks_[0][k];
    if (prefix_stale_) refresh_prefix();
    const size_t b = static_cast<size_t>(std::upper_bound(prefix_.begin(), prefix_.end(), k) - prefix_.begin()) - 1;
    return blocks_[b][k - prefix_[b]];
}

size_t OrderStatistics::count_less(double value) const {
    const size_t b = block_of(value);
    const auto& block = blocks_[b];
    const auto in_block = static_cast<size_t>(std::lower_bound(block.begin(), block.end(), value) - block.begin());
    if (b == 0) return in_block;
    if (prefix_stale_) refresh_prefix();
    return prefix_[b] + in_block;
}

double OrderStatistics::quantile(double q) const {
    const size_t n = size();
    if (n == 0) throw std::runtime_error("quantile of an empty window");
    const double pos = std::clamp(q, 0.0, 1.0) * static_cast<double>(n - 1);
    const auto lo = static_cast<size_t>(std::floor(pos));
    const double frac = pos - static_cast<double>(lo);
    const double a = select(lo);
    if (frac == 0.0 || lo + 1 >= n) return a;
    return a + frac * (select(lo + 1) - a);
}

double OrderStatistics::mad() const {
    const size_t n = size();
    if (n == 0) throw std::runtime_error("MAD of an empty window");
    const double m = median();
    // Deviations form two sorted lists: left, m - x over values below the
    // median walking down; right, x - m over the rest walking up. The median
    // deviation is found by selecting from their merge without building it.
    const size_t p = count_less(m);
    const size_t na = p, nb = n - p;
    auto A = [&](size_t i) { return m - select(p - 1 - i); };
    auto B = [&](size_t j) { return select(p + j) - m; };
    auto kth = [&](size_t k) {  // k-th smallest (0-based) of merge(A, B)
        size_t lo = k + 1 > nb ? k + 1 - nb : 0;
        size_t hi = std::min(k + 1, na);
        while (true) {
            const size_t i = lo + (hi - lo) / 2;  // taken from A
            const size_t j = k + 1 - i;           // taken from B
            if (i < na && j > 0 && B(j - 1) > A(i)) {
                lo = i + 1;
            } else if (i > 0 && j < nb && A(i - 1) > B(j)) {
                hi = i - 1;
            } else {
                double v = -INFINITY;
                if (i > 0) v = std::max(v, A(i - 1));
                if (j > 0) v = std::max(v, B(j - 1));
                return v;
            }
        }
    };
    if (n % 2 == 1) return kth(n / 2);
    return 0.5 * (kth(n / 2 - 1) + kth(n / 2));
}

}  // namespace anomaly_detection

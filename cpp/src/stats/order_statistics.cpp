#include "anomaly_detection/stats/order_statistics.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "anomaly_detection/stats/quantile.hpp"

namespace anomaly_detection {

namespace {
// Binary searches without data-dependent branches (conditional moves): on the
// random order of a window's values a branching search mispredicts about half
// of its steps, which cost more than the memmove.
size_t lower_index(const double* a, size_t n, double value) {
    const double* base = a;
    while (n > 1) {
        const size_t half = n / 2;
        base += static_cast<size_t>(base[half - 1] < value) * half;
        n -= half;
    }
    return static_cast<size_t>(base - a) + (n == 1 && *base < value);
}
size_t upper_index(const double* a, size_t n, double value) {
    const double* base = a;
    while (n > 1) {
        const size_t half = n / 2;
        base += static_cast<size_t>(!(value < base[half - 1])) * half;
        n -= half;
    }
    return static_cast<size_t>(base - a) + (n == 1 && !(value < *base));
}
// lower_index(a, n, lower_of) and upper_index(a, n, upper_of) in one loop: the two
// chains of dependent loads overlap.
void search_both(const double* a, size_t n, double lower_of, double upper_of, size_t& lower, size_t& upper) {
    const double *lo = a, *up = a;
    while (n > 1) {
        const size_t half = n / 2;
        lo += static_cast<size_t>(lo[half - 1] < lower_of) * half;
        up += static_cast<size_t>(!(upper_of < up[half - 1])) * half;
        n -= half;
    }
    lower = static_cast<size_t>(lo - a) + (n == 1 && *lo < lower_of);
    upper = static_cast<size_t>(up - a) + (n == 1 && !(upper_of < *up));
}
}  // namespace

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
    if (slot >= by_slot_.size())
        by_slot_.resize(std::min(capacity_, std::max({slot + 1, 2 * by_slot_.size(), size_t{16}})));
    by_slot_[slot] = value;
    const size_t b = block_of(value);
    auto& block = blocks_[b];
    block.insert(block.begin() + static_cast<std::ptrdiff_t>(upper_index(block.data(), block.size(), value)), value);
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
    const size_t at = lower_index(block.data(), block.size(), value);
    if (at == block.size() || !(block[at] == value)) throw std::out_of_range("order statistics: slot holds no value");
    block.erase(block.begin() + static_cast<std::ptrdiff_t>(at));
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

void OrderStatistics::replace(size_t slot, double value) {
    if (blocks_.size() > 1 || slot >= by_slot_.size() || size_ == 0) {
        erase(slot);
        return insert(slot, value);
    }
    // One block: the values between the old place and the new one move by one.
    auto& block = blocks_[0];
    double* a = block.data();
    const size_t n = block.size();
    const double old = by_slot_[slot];
    size_t from, upper;
    search_both(a, n, old, value, from, upper);
    if (from == n || !(a[from] == old)) throw std::out_of_range("order statistics: slot holds no value");
    by_slot_[slot] = value;
    if (value >= old) {
        const size_t to = upper - 1;  // the last value <= value, once `old` is gone
        std::memmove(a + from, a + from + 1, (to - from) * sizeof(double));
        a[to] = value;
    } else {
        const size_t to = upper;  // every value <= value lies before `old`, which is larger
        std::memmove(a + to + 1, a + to, (from - to) * sizeof(double));
        a[to] = value;
    }
    prefix_stale_ = true;
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
    const size_t in_block = lower_index(block.data(), block.size(), value);
    if (b == 0) return in_block;
    if (prefix_stale_) refresh_prefix();
    return prefix_[b] + in_block;
}

double OrderStatistics::quantile_general(double q) const {
    const size_t n = size();
    if (n == 0) throw std::runtime_error("quantile of an empty window");
    q = std::clamp(q, 0.0, 1.0);
    if (blocks_.size() == 1) {  // one sorted array: plain indexing
        const double* v = blocks_[0].data();
        return linear_quantile(n, q, [v](size_t k) { return v[k]; });
    }
    return linear_quantile(n, q, [this](size_t k) { return select(k); });
}

namespace {
// The median of |x - m| over sorted values given by at(k), k < n, with p of them
// below m. Deviations form two sorted lists: A, m - x over the values below the
// median walking down; B, x - m over the rest walking up. The median deviation is
// selected from their merge without building it, in O(log n) calls of at.
template <typename At>
double median_deviation(const At& at, size_t n, size_t p, double m) {
    const size_t na = p, nb = n - p;
    auto A = [&](size_t i) { return m - at(p - 1 - i); };
    auto B = [&](size_t j) { return at(p + j) - m; };
    // The split of the k+1 smallest deviations between A and B: i from A, k+1-i from B.
    auto split = [&](size_t k) {
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
                return i;
            }
        }
    };
    // The k-th smallest is the largest taken; for an even count the next one, the
    // smallest not taken, comes from the same split.
    const size_t k = (n - 1) / 2;
    const size_t i = split(k), j = k + 1 - i;
    double kth = -INFINITY;
    if (i > 0) kth = std::max(kth, A(i - 1));
    if (j > 0) kth = std::max(kth, B(j - 1));
    if (n % 2 == 1) return kth;
    double next = INFINITY;
    if (i < na) next = std::min(next, A(i));
    if (j < nb) next = std::min(next, B(j));
    const double sum = kth + next;  // two deviations near DBL_MAX overflow: halved first
    return std::isinf(sum) ? 0.5 * kth + 0.5 * next : 0.5 * sum;
}
}  // namespace

double OrderStatistics::mad() const {
    const size_t n = size();
    if (n == 0) throw std::runtime_error("MAD of an empty window");
    const double m = median();
    const size_t p = count_less(m);
    if (blocks_.size() == 1) {  // one sorted array: plain indexing
        const double* a = blocks_[0].data();
        return median_deviation([a](size_t k) { return a[k]; }, n, p, m);
    }
    return median_deviation([this](size_t k) { return select(k); }, n, p, m);
}

}  // namespace anomaly_detection

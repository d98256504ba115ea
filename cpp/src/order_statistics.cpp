#include "anomaly_detection/stats/order_statistics.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace anomaly_detection {

OrderStatistics::OrderStatistics(size_t capacity) : capacity_(capacity) {
    if (capacity == 0 || capacity > static_cast<size_t>(INT32_MAX))
        throw std::invalid_argument("order statistics capacity: expected 1..2^31-1");
}

void OrderStatistics::clear() {
    root_ = -1;
    for (auto& n : nodes_) n = Node{};
}

bool OrderStatistics::less(int32_t a, double value, size_t slot) const {
    const Node& n = nodes_[static_cast<size_t>(a)];
    return n.value < value || (n.value == value && static_cast<size_t>(a) < slot);
}

void OrderStatistics::pull(int32_t t) {
    Node& n = nodes_[static_cast<size_t>(t)];
    n.size = 1 + (n.left >= 0 ? nodes_[static_cast<size_t>(n.left)].size : 0) +
             (n.right >= 0 ? nodes_[static_cast<size_t>(n.right)].size : 0);
}

void OrderStatistics::split(int32_t t, double value, size_t slot, int32_t& lo, int32_t& hi) {
    if (t < 0) {
        lo = hi = -1;
        return;
    }
    Node& n = nodes_[static_cast<size_t>(t)];
    if (less(t, value, slot)) {
        split(n.right, value, slot, n.right, hi);
        lo = t;
    } else {
        split(n.left, value, slot, lo, n.left);
        hi = t;
    }
    pull(t);
}

int32_t OrderStatistics::merge(int32_t a, int32_t b) {
    if (a < 0) return b;
    if (b < 0) return a;
    Node& na = nodes_[static_cast<size_t>(a)];
    Node& nb = nodes_[static_cast<size_t>(b)];
    if (na.priority > nb.priority) {
        na.right = merge(na.right, b);
        pull(a);
        return a;
    }
    nb.left = merge(a, nb.left);
    pull(b);
    return b;
}

void OrderStatistics::insert(size_t slot, double value) {
    if (slot >= capacity_) throw std::out_of_range("order statistics slot out of range");
    if (slot >= nodes_.size())
        nodes_.resize(std::min(capacity_, std::max({slot + 1, 2 * nodes_.size(), size_t{16}})));
    // xorshift64*: deterministic priorities keep runs reproducible.
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    Node& n = nodes_[slot];
    n = Node{value, static_cast<uint32_t>((rng_ * 0x2545F4914F6CDD1DULL) >> 32), -1, -1, 1};
    int32_t lo, hi;
    split(root_, value, slot, lo, hi);
    root_ = merge(merge(lo, static_cast<int32_t>(slot)), hi);
}

void OrderStatistics::erase(size_t slot) {
    if (slot >= nodes_.size()) throw std::out_of_range("order statistics slot out of range");
    const double value = nodes_[slot].value;
    int32_t lo, mid, hi;
    split(root_, value, slot, lo, mid);      // lo < key <= mid
    split(mid, value, slot + 1, mid, hi);    // mid holds exactly the key
    root_ = merge(lo, hi);
    nodes_[slot] = Node{};
}

double OrderStatistics::select(size_t k) const {
    int32_t t = root_;
    while (t >= 0) {
        const Node& n = nodes_[static_cast<size_t>(t)];
        const size_t left = n.left >= 0 ? nodes_[static_cast<size_t>(n.left)].size : 0;
        if (k < left) {
            t = n.left;
        } else if (k == left) {
            return n.value;
        } else {
            k -= left + 1;
            t = n.right;
        }
    }
    throw std::out_of_range("order statistics select: index out of range");
}

size_t OrderStatistics::count_less(double value) const {
    size_t count = 0;
    int32_t t = root_;
    while (t >= 0) {
        const Node& n = nodes_[static_cast<size_t>(t)];
        if (n.value < value) {
            count += 1 + (n.left >= 0 ? nodes_[static_cast<size_t>(n.left)].size : 0);
            t = n.right;
        } else {
            t = n.left;
        }
    }
    return count;
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

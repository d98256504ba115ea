// Fixed-capacity ring buffer: push overwrites the oldest element when full.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <vector>

namespace anomaly_detection {

template <typename T>
class RingBuffer {
public:
    /// Creates a buffer holding at most `capacity` elements (capacity >= 1).
    explicit RingBuffer(size_t capacity) : data_(capacity) {
        if (capacity == 0) throw std::invalid_argument("ring buffer capacity: expected >= 1, got 0");
    }

    size_t capacity() const { return data_.size(); }
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    bool full() const { return size_ == data_.size(); }

    /// Slot index in [0, capacity) that the next push writes to.
    size_t next_slot() const { return wrap(head_ + size_); }

    /// Appends `v`; returns true if the oldest element was overwritten.
    bool push(const T& v) {
        if (full()) {
            data_[head_] = v;
            head_ = wrap(head_ + 1);
            return true;
        }
        data_[next_slot()] = v;
        ++size_;
        return false;
    }

    /// The oldest element (requires !empty()).
    const T& front() const { return data_[head_]; }
    /// Slot of the oldest element.
    size_t front_slot() const { return head_; }

    /// i-th element from the oldest (0 = oldest).
    const T& operator[](size_t i) const { return data_[wrap(head_ + i)]; }

    void clear() {
        head_ = 0;
        size_ = 0;
    }

private:
    // Indices never exceed 2 * capacity: a compare beats an integer division on the per-point path.
    size_t wrap(size_t i) const { return i >= data_.size() ? i - data_.size() : i; }

    std::vector<T> data_;
    size_t head_ = 0;
    size_t size_ = 0;
};

}  // namespace anomaly_detection

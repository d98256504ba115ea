// Fixed-capacity ring buffer: push overwrites the oldest element when full. Its memory
// grows with the elements pushed up to the capacity, so that a large window costs only
// what it holds (a snapshot that names a huge window allocates what it stores).
#pragma once

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <vector>

namespace anomaly_detection {

template <typename T>
class RingBuffer {
   public:
    /// Creates a buffer holding at most `capacity` elements (capacity >= 1).
    explicit RingBuffer(size_t capacity) : capacity_(capacity) {
        if (capacity == 0) throw std::invalid_argument("ring buffer capacity: expected >= 1, got 0");
    }

    size_t capacity() const { return capacity_; }
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    bool full() const { return size_ == capacity_; }

    /// Slot index in [0, capacity) that the next push writes to.
    size_t next_slot() const { return wrap(head_ + size_); }

    /// Appends `v`; returns true if the oldest element was overwritten.
    bool push(const T& v) {
        if (full()) {
            data_[head_] = v;
            head_ = wrap(head_ + 1);
            return true;
        }
        // Until the buffer has been full once, head_ is 0 and the next slot is either
        // inside data_ (after a clear) or just past its end.
        const size_t slot = next_slot();
        if (slot < data_.size()) {
            data_[slot] = v;
        } else {
            if (data_.size() == data_.capacity())
                data_.reserve(std::min(capacity_, std::max<size_t>(16, 2 * data_.size())));
            data_.push_back(v);
        }
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
    size_t wrap(size_t i) const { return i >= capacity_ ? i - capacity_ : i; }

    size_t capacity_;
    std::vector<T> data_;
    size_t head_ = 0;
    size_t size_ = 0;
};

}  // namespace anomaly_detection

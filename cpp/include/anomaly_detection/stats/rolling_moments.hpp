// Rolling mean and variance of a sliding window in O(1) per update.
//
// Sums are kept of values shifted by a reference point close to the mean, so
// that a series such as 1e9 + N(0, 1) does not lose its variance to
// cancellation; the reference is re-centred (and the sums recomputed exactly
// from the window) once per `capacity` evictions, which bounds drift at an
// amortised O(1) cost; a level shift that would cancel digits re-centres at once.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "anomaly_detection/stats/ring_buffer.hpp"

namespace anomaly_detection {

class RollingMoments {
public:
    /// Adds `added`; when `evicted` is non-null the window dropped that value.
    /// `window` is the window after the update (used for periodic re-centring).
    void update(double added, const double* evicted, const RingBuffer<double>& window) {
        if (n_ == 0 && !evicted) shift_ = added;
        const double d = added - shift_;
        s1_ += d;
        s2_ += d * d;
        if (evicted) {
            const double e = *evicted - shift_;
            s1_ -= e;
            s2_ -= e * e;
            if (++evictions_ >= window.capacity()) return recompute(window);
        } else {
            ++n_;
        }
        // When the mean has moved far from the reference relative to the spread (a
        // level shift), s2 - s1^2/n cancels most of its digits: re-centre now.
        const double centred = s1_ * s1_ / static_cast<double>(n_);
        if (centred > kMaxCancellation * (s2_ - centred)) recompute(window);
    }

    /// Recomputes the sums exactly from the window, re-centred on its mean.
    void recompute(const RingBuffer<double>& window) {
        n_ = window.size();
        evictions_ = 0;
        s1_ = s2_ = 0.0;
        if (n_ == 0) return;
        double sum = 0.0;
        for (size_t i = 0; i < n_; ++i) sum += window[i] - window[0];
        shift_ = window[0] + sum / static_cast<double>(n_);
        for (size_t i = 0; i < n_; ++i) {
            const double d = window[i] - shift_;
            s1_ += d;
            s2_ += d * d;
        }
    }

    void clear() { *this = RollingMoments(); }

    /// The raw running sums, so that a saved state continues bit for bit.
    struct Raw {
        uint64_t n, evictions;
        double shift, s1, s2;
    };
    Raw raw() const { return {n_, evictions_, shift_, s1_, s2_}; }
    void set_raw(const Raw& r) {
        n_ = r.n;
        evictions_ = r.evictions;
        shift_ = r.shift;
        s1_ = r.s1;
        s2_ = r.s2;
    }

    size_t count() const { return n_; }
    double mean() const { return n_ ? shift_ + s1_ / static_cast<double>(n_) : 0.0; }
    /// Sample variance (ddof = 1); 0 for fewer than two values.
    double variance() const {
        if (n_ < 2) return 0.0;
        const double n = static_cast<double>(n_);
        const double v = (s2_ - s1_ * s1_ / n) / (n - 1.0);
        return v > 0.0 ? v : 0.0;
    }
    double stddev() const { return std::sqrt(variance()); }

private:
    // Digits allowed to cancel before re-centring: 1e4 keeps ~12 of 16.
    static constexpr double kMaxCancellation = 1e4;

    uint64_t n_ = 0;
    uint64_t evictions_ = 0;
    double shift_ = 0.0;
    double s1_ = 0.0;
    double s2_ = 0.0;
};

}  // namespace anomaly_detection

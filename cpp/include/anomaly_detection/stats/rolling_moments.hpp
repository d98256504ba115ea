// Rolling mean and variance of a sliding window in O(1) per update.
//
// Sums are kept of values shifted by a reference point close to the mean, so
// that a series such as 1e9 + N(0, 1) does not lose its variance to
// cancellation; the reference is re-centred (and the sums recomputed exactly
// from the window) once per `capacity` evictions, which bounds drift at an
// amortised O(1) cost; a level shift that would cancel digits re-centres at once.
//
// One glitch must not blind the statistics (a 1e308 among values around 20):
// - the sums are of values divided by a power of two (exact, 1 unless a value
//   beyond 2^480 is in the window), so squares never overflow to infinity
//   (whose difference would be NaN once the glitch leaves);
// - when an evicted value held nearly all of the sum of squares (a glitch
//   leaving), what is left has lost its digits: the sums are recomputed from the
//   window at once, and update() says so (its caller may rebuild what the glitch
//   also touched, such as an EWMA statistic).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "anomaly_detection/stats/ring_buffer.hpp"

namespace anomaly_detection {

class RollingMoments {
public:
    /// What an update did beyond the O(1) step.
    enum class Step : uint8_t {
        updated,      ///< the running sums were updated
        recomputed,   ///< periodic or level-shift re-centring from the window
        collapsed,    ///< a value that dominated the window's spread left: recomputed
    };

    /// Adds `added`; when `evicted` is non-null the window dropped that value.
    /// `window` is the window after the update: anything with size() and
    /// operator[] (oldest first), used to recompute; `capacity` its maximum size.
    template <typename Window>
    Step update(double added, const double* evicted, const Window& window, size_t capacity) {
        const double u = added * inv_scale_;
        if (!(std::fabs(u) <= kMaxScaled)) {  // beyond the scaled range: rescale
            recompute(window);
            return Step::recomputed;
        }
        if (n_ == 0 && !evicted) shift_ = u;
        const double d = u - shift_;
        s1_ += d;
        s2_ += d * d;
        if (evicted) {
            const double e = *evicted * inv_scale_ - shift_;
            const double before = s2_;
            s1_ -= e;
            s2_ -= e * e;
            if (++evictions_ >= capacity) {
                recompute(window);
                return Step::recomputed;
            }
            // Nearly all of the sum of squares left with one value: what remains
            // is rounding noise of its square.
            if (s2_ < kCollapse * before) {
                recompute(window);
                return Step::collapsed;
            }
        } else {
            ++n_;
        }
        // When the mean has moved far from the reference relative to the spread (a
        // level shift), s2 - s1^2/n cancels most of its digits: re-centre now. (As
        // s1^2 (1 + c) > c n s2, which needs no division.)
        if (s1_ * s1_ * (1.0 + kMaxCancellation) > kMaxCancellation * static_cast<double>(n_) * s2_) {
            recompute(window);
            return Step::recomputed;
        }
        return Step::updated;
    }

    /// As update, with the window held in a ring buffer.
    Step update(double added, const double* evicted, const RingBuffer<double>& window) {
        return update(added, evicted, window, window.capacity());
    }

    /// Recomputes the sums exactly from the window, re-centred on its mean, with
    /// the scale its largest value needs.
    template <typename Window>
    void recompute(const Window& window) {
        n_ = window.size();
        evictions_ = 0;
        s1_ = s2_ = 0.0;
        double largest = 0.0;
        for (size_t i = 0; i < n_; ++i) largest = std::max(largest, std::fabs(window[i]));
        inv_scale_ = largest > kMaxScaled ? std::ldexp(1.0, -(std::ilogb(largest) - kScaledExponent)) : 1.0;
        scale_ = 1.0 / inv_scale_;
        if (n_ == 0) return;
        const double first = window[0] * inv_scale_;
        double sum = 0.0;
        for (size_t i = 0; i < n_; ++i) sum += window[i] * inv_scale_ - first;
        shift_ = first + sum / static_cast<double>(n_);
        for (size_t i = 0; i < n_; ++i) {
            const double d = window[i] * inv_scale_ - shift_;
            s1_ += d;
            s2_ += d * d;
        }
    }

    void clear() { *this = RollingMoments(); }

    /// The raw running sums, so that a saved state continues bit for bit
    /// (`shift`, `s1` and `s2` are in units of the scale, a power of two).
    struct Raw {
        uint64_t n, evictions;
        double shift, s1, s2;
    };
    Raw raw() const { return {n_, evictions_, shift_, s1_, s2_}; }
    /// Restores raw sums; the scale is that of `window` (1 for any window
    /// without a value beyond 2^480, the only case older snapshots could hold).
    template <typename Window>
    void set_raw(const Raw& r, const Window& window) {
        recompute(window);
        if (inv_scale_ != 1.0) return;  // a rescaled window: the recomputed sums stand
        n_ = r.n;
        evictions_ = r.evictions;
        shift_ = r.shift;
        s1_ = r.s1;
        s2_ = r.s2;
    }

    size_t count() const { return n_; }
    double mean() const { return n_ ? (shift_ + s1_ / static_cast<double>(n_)) * scale_ : 0.0; }
    /// Sample standard deviation (ddof = 1); 0 for fewer than two values. Finite
    /// for any finite window (the variance itself may overflow).
    double stddev() const { return std::sqrt(scaled_variance()) * scale_; }
    /// Sample variance (ddof = 1); 0 for fewer than two values.
    double variance() const {
        const double s = stddev();
        return s * s;
    }

    /// The raw pieces of the batch kernels: mean and standard deviation are
    /// mean_of(...) and stddev_of(...) of them; equal to mean() and stddev().
    double scale() const { return scale_; }
    double shift() const { return shift_; }
    double sum() const { return s1_; }
    double sum_of_squares() const { return s2_; }
    static double mean_of(double shift, double s1, double n, double scale) { return (shift + s1 / n) * scale; }
    static double stddev_of(double s1, double s2, double n, double scale) {
        if (n < 2.0) return 0.0;
        const double v = (s2 - s1 * s1 / n) / (n - 1.0);
        return std::sqrt(v > 0.0 ? v : 0.0) * scale;
    }

private:
    double scaled_variance() const {
        if (n_ < 2) return 0.0;
        const double n = static_cast<double>(n_);
        const double v = (s2_ - s1_ * s1_ / n) / (n - 1.0);
        return v > 0.0 ? v : 0.0;
    }

    // Digits allowed to cancel before re-centring: 1e4 keeps ~12 of 16.
    static constexpr double kMaxCancellation = 1e4;
    // A sum of squares that fell below this share of itself in one eviction.
    static constexpr double kCollapse = 1.0 / (1 << 20);
    // Scaled values stay within 2^480: 1e7 squares of them stay far below 2^1023.
    static constexpr int kScaledExponent = 480;
    static constexpr double kMaxScaled = 0x1p480;

    uint64_t n_ = 0;
    uint64_t evictions_ = 0;
    double shift_ = 0.0;
    double s1_ = 0.0;
    double s2_ = 0.0;
    double scale_ = 1.0;
    double inv_scale_ = 1.0;
};

}  // namespace anomaly_detection

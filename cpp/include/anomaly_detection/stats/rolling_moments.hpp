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
#include <limits>

#include "anomaly_detection/stats/ring_buffer.hpp"

namespace anomaly_detection {

class RollingMoments {
   public:
    /// What an update did beyond the O(1) step.
    enum class Step : uint8_t {
        updated,     ///< the running sums were updated
        recomputed,  ///< periodic or level-shift re-centring from the window
        collapsed,   ///< a value that dominated the window's spread left: recomputed
    };

    /// Adds `added`; when `evicted` is non-null the window dropped that value.
    /// `window` is the window after the update: anything with size() and
    /// operator[] (oldest first), used to recompute; `capacity` its maximum size.
    template <typename Window>
    Step update(double added, const double* evicted, const Window& window, size_t capacity) {
        return step(s_, added, evicted, window, capacity);
    }

    /// As update, with the window held in a ring buffer.
    Step update(double added, const double* evicted, const RingBuffer<double>& window) {
        return step(s_, added, evicted, window, window.capacity());
    }

    /// The batch kernel: for i in [0, n), calls before(i, mean, spread) with the
    /// statistics update would see before values[i], adds values[i] to `window`
    /// (size(), operator[] and advance(), which takes in the next value and drops
    /// the oldest when full) and to the sums, then calls after(i, step, window). `spread`
    /// is the scaled variance when the scale is 1, minus the standard deviation
    /// otherwise (spread_stddev turns it into the latter). The sums stay in
    /// registers meanwhile; the arithmetic is update's, so results are equal.
    template <typename Window, typename Before, typename After>
    void update_many(const double* values, size_t n, Window& window, size_t capacity, Before&& before, After&& after) {
        Sums s = s_;
        for (size_t i = 0; i < n; ++i) {
            before(i, mean_of(s), spread_of(s));
            const bool evicting = window.size() == capacity;
            const double evicted = evicting ? window[0] : 0.0;
            window.advance();
            after(i, step(s, values[i], evicting ? &evicted : nullptr, window, capacity), window);
        }
        s_ = s;
    }
    /// update_many for points [begin, end) of `values` whose window is full and lies
    /// in `values` itself: the window before point i is values[i - capacity, i)
    /// (begin >= capacity), so it is read in place and the oldest value leaves at each
    /// step. after(i, step, window) also gets the window after the update. While the
    /// scale is 1 (no value beyond 2^480 in the window) the step is inlined with the
    /// multiplications by the scale left out (x * 1.0 == x) and the spread before
    /// the point shared with the collapse check: the same operations in the same
    /// order as update, so results are equal.
    template <typename Before, typename After>
    void update_many_contiguous(const double* values, size_t begin, size_t end, size_t capacity, Before&& before,
                                After&& after) {
        Sums s = s_;
        for (size_t i = begin; i < end;) {
            if (s.scale != 1.0 || s.n != capacity) {  // the general step
                const InPlace window{values + i + 1 - capacity, capacity};
                before(i, mean_of(s), spread_of(s));
                const double evicted = values[i - capacity];
                after(i, step(s, values[i], &evicted, window, capacity), window);
                ++i;
                continue;
            }
            // As mean_of, spread_of and step with scale 1 and a full window, the sums in
            // registers until a step is more than an update.
            double s1 = s.s1, s2 = s.s2;
            const double shift = s.shift, inv_n = s.inv_n, inv_nm1 = s.inv_nm1;
            const double n = static_cast<double>(s.n);
            uint64_t evictions = s.evictions;
            Step st = Step::updated;
            double spread_before = s2 - s1 * s1 * inv_n;  // then the collapse check's, one step on
            for (; i < end; ++i) {
                const double x = values[i];
                if (!(std::fabs(x) <= kMaxScaled)) break;  // a rescale: the general step takes it
                const double v = spread_before * inv_nm1;
                before(i, shift + s1 * inv_n, v > 0.0 ? v : 0.0);
                const double d = x - shift;
                s1 += d;
                s2 += d * d;
                const double e = values[i - capacity] - shift;
                s1 -= e;
                s2 -= e * e;
                const double spread_after = s2 - s1 * s1 * inv_n;
                if (spread_after < kCollapse * spread_before) {
                    st = Step::collapsed;
                    break;
                }
                spread_before = spread_after;
                if (++evictions >= capacity || s1 * s1 * (1.0 + kMaxCancellation) > kMaxCancellation * n * s2) {
                    st = Step::recomputed;
                    break;
                }
            }
            s.s1 = s1;
            s.s2 = s2;
            s.evictions = evictions;
            if (i == end) break;
            if (st == Step::updated) {  // x beyond the scaled range, not yet stepped: the general step
                const InPlace window{values + i + 1 - capacity, capacity};
                before(i, mean_of(s), spread_of(s));
                const double evicted = values[i - capacity];
                after(i, step(s, values[i], &evicted, window, capacity), window);
            } else {  // every value of a scale-1 window is within range, x included
                const InPlace window{values + i + 1 - capacity, capacity};
                s = recomputed_in_range(window);
                after(i, st, window);
            }
            ++i;
        }
        s_ = s;
    }

    /// A window read in place: `size` values from `data`, oldest first.
    struct InPlace {
        const double* data;
        size_t count;
        size_t size() const { return count; }
        double operator[](size_t j) const { return data[j]; }
    };

    /// The standard deviation from a spread of update_many.
    static double spread_stddev(double spread) { return spread >= 0.0 ? std::sqrt(spread) : -spread; }

    /// Recomputes the sums exactly from the window, re-centred on its mean, with
    /// the scale its largest value needs.
    template <typename Window>
    void recompute(const Window& window) {
        s_ = recomputed(window);
    }

    void clear() { *this = RollingMoments(); }

    /// The raw running sums, so that a saved state continues bit for bit
    /// (`shift`, `s1` and `s2` are in units of the scale, 2^scale_exponent).
    struct Raw {
        uint64_t n, evictions;
        double shift, s1, s2;
        int32_t scale_exponent;
    };
    Raw raw() const { return {s_.n, s_.evictions, s_.shift, s_.s1, s_.s2, std::ilogb(s_.scale)}; }
    /// Restores raw sums. Returns false (and changes nothing) when they cannot
    /// belong to `window`: a count other than its size, non-finite sums, sums beyond
    /// what `n` scaled values give (a reference beyond 2^480, |s1| beyond n 2^482, s2
    /// beyond n 2^964: the next update's square would overflow), or a scale outside
    /// 2^0..2^544 or too small for its largest value.
    template <typename Window>
    bool set_raw(const Raw& r, const Window& window) {
        const double n = static_cast<double>(r.n);
        if (r.n != window.size() || !(std::fabs(r.shift) <= kMaxScaled) || !(std::fabs(r.s1) <= n * 0x1p482) ||
            !(r.s2 >= 0 && r.s2 <= n * 0x1p964) || r.scale_exponent < 0 || r.scale_exponent > 1024 - kScaledExponent)
            return false;
        const double inv_scale = std::ldexp(1.0, -r.scale_exponent);
        for (size_t i = 0; i < window.size(); ++i)
            if (!(std::fabs(window[i] * inv_scale) <= kMaxScaled)) return false;
        s_.evictions = r.evictions;
        s_.shift = r.shift;
        s_.s1 = r.s1;
        s_.s2 = r.s2;
        s_.inv_scale = inv_scale;
        s_.scale = std::ldexp(1.0, r.scale_exponent);
        s_.set_count(r.n);
        return true;
    }

    size_t count() const { return s_.n; }
    double mean() const { return mean_of(s_); }
    /// Sample standard deviation (ddof = 1); 0 for fewer than two values. Finite
    /// for any finite window: at most the largest double (the variance may overflow).
    double stddev() const { return spread_stddev(spread_of(s_)); }
    /// Sample variance (ddof = 1); 0 for fewer than two values.
    double variance() const {
        const double s = stddev();
        return s * s;
    }

   private:
    struct Sums {
        uint64_t n = 0;
        uint64_t evictions = 0;
        double shift = 0.0;
        double s1 = 0.0;
        double s2 = 0.0;
        double scale = 1.0;
        double inv_scale = 1.0;
        double inv_n = 0.0;    // 1 / n (0 when empty)
        double inv_nm1 = 0.0;  // 1 / (n - 1) (0 below two values)
        void set_count(uint64_t count) {
            n = count;
            inv_n = n ? 1.0 / static_cast<double>(n) : 0.0;
            inv_nm1 = n > 1 ? 1.0 / static_cast<double>(n - 1) : 0.0;
        }
    };

    static double mean_of(const Sums& s) { return (s.shift + s.s1 * s.inv_n) * s.scale; }
    static double spread_of(const Sums& s) {
        const double v = (s.s2 - s.s1 * s.s1 * s.inv_n) * s.inv_nm1;
        const double var = v > 0.0 ? v : 0.0;
        // Scaled sums can hold a standard deviation beyond the largest double (DBL_MAX and
        // -DBL_MAX in one window): it is taken as the largest double, at most a factor
        // sqrt(n / (n - 1)) off, so that deviations stay numbers.
        return s.scale == 1.0 ? var : -std::min(std::sqrt(var) * s.scale, std::numeric_limits<double>::max());
    }

    template <typename Window>
    static Step step(Sums& s, double added, const double* evicted, const Window& window, size_t capacity) {
        const double u = added * s.inv_scale;
        if (!(std::fabs(u) <= kMaxScaled)) {  // beyond the scaled range: rescale
            s = recomputed(window);
            return Step::recomputed;
        }
        if (s.n == 0 && !evicted) s.shift = u;
        const double d = u - s.shift;
        // The spread (sum of squared deviations from the mean) before the update.
        const double spread_before = evicted ? s.s2 - s.s1 * s.s1 * s.inv_n : 0.0;
        s.s1 += d;
        s.s2 += d * d;
        if (evicted) {
            const double e = *evicted * s.inv_scale - s.shift;
            s.s1 -= e;
            s.s2 -= e * e;
            // Nearly all of the window's spread left with one value: what remains
            // is rounding noise of its square. (Checked first: the value that
            // forced a rescale leaves just when the periodic recompute is due.)
            if (s.s2 - s.s1 * s.s1 * s.inv_n < kCollapse * spread_before) {
                s = recomputed(window);
                return Step::collapsed;
            }
            if (++s.evictions >= capacity) {
                s = recomputed(window);
                return Step::recomputed;
            }
        } else {
            s.set_count(s.n + 1);
        }
        // When the mean has moved far from the reference relative to the spread (a
        // level shift), s2 - s1^2/n cancels most of its digits: re-centre now. (As
        // s1^2 (1 + c) > c n s2, which needs no division.)
        if (s.s1 * s.s1 * (1.0 + kMaxCancellation) > kMaxCancellation * static_cast<double>(s.n) * s.s2) {
            s = recomputed(window);
            return Step::recomputed;
        }
        return Step::updated;
    }

    template <typename Window>
    static Sums recomputed(const Window& window) {
        Sums s;
        s.set_count(window.size());
        double largest = 0.0;
        for (size_t i = 0; i < s.n; ++i) largest = std::max(largest, std::fabs(window[i]));
        if (largest > kMaxScaled) {
            s.inv_scale = std::ldexp(1.0, -(std::ilogb(largest) + 1 - kScaledExponent));  // largest < 2^480
            s.scale = 1.0 / s.inv_scale;
        }
        return centred(window, s);
    }

    /// recomputed for a window known to need no scale (every |value| <= kMaxScaled, as
    /// in any window whose sums have scale 1): the same sums without the search for
    /// the largest value.
    template <typename Window>
    static Sums recomputed_in_range(const Window& window) {
        Sums s;
        s.set_count(window.size());
        return centred(window, s);
    }

    /// The re-centred sums of `window` for the count and scale already in `s`. Each sum
    /// runs in four chains (values 0, 4, 8, ... in the first; the last values, fewer than
    /// four, in the first chains), added pairwise at the end: a quarter of one chain's
    /// latency, and a fixed order, so every caller (update, the batch kernels, a restored
    /// state) gets the same bits.
    template <typename Window>
    static Sums centred(const Window& window, Sums s) {
        if (s.n == 0) return s;
        const double first = window[0] * s.inv_scale;
        double c0 = 0.0, c1 = 0.0, c2 = 0.0, c3 = 0.0;
        size_t i = 0;
        for (; i + 4 <= s.n; i += 4) {
            c0 += window[i] * s.inv_scale - first;
            c1 += window[i + 1] * s.inv_scale - first;
            c2 += window[i + 2] * s.inv_scale - first;
            c3 += window[i + 3] * s.inv_scale - first;
        }
        if (i < s.n) c0 += window[i] * s.inv_scale - first;
        if (i + 1 < s.n) c1 += window[i + 1] * s.inv_scale - first;
        if (i + 2 < s.n) c2 += window[i + 2] * s.inv_scale - first;
        s.shift = first + ((c0 + c1) + (c2 + c3)) * s.inv_n;
        double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;  // the sums of d
        double b0 = 0.0, b1 = 0.0, b2 = 0.0, b3 = 0.0;  // and of d * d
        const auto add = [&](double& a, double& b, double v) {
            const double d = v * s.inv_scale - s.shift;
            a += d;
            b += d * d;
        };
        for (i = 0; i + 4 <= s.n; i += 4) {
            add(a0, b0, window[i]);
            add(a1, b1, window[i + 1]);
            add(a2, b2, window[i + 2]);
            add(a3, b3, window[i + 3]);
        }
        if (i < s.n) add(a0, b0, window[i]);
        if (i + 1 < s.n) add(a1, b1, window[i + 1]);
        if (i + 2 < s.n) add(a2, b2, window[i + 2]);
        s.s1 = (a0 + a1) + (a2 + a3);
        s.s2 = (b0 + b1) + (b2 + b3);
        return s;
    }

    // Digits allowed to cancel before re-centring: 1e4 keeps ~12 of 16.
    static constexpr double kMaxCancellation = 1e4;
    // A spread that fell below this share of itself in one eviction.
    static constexpr double kCollapse = 1.0 / (1 << 20);
    // Scaled values stay within 2^480: 1e7 squares of them stay far below 2^1023.
    static constexpr int kScaledExponent = 480;
    static constexpr double kMaxScaled = 0x1p480;

    Sums s_;
};

}  // namespace anomaly_detection

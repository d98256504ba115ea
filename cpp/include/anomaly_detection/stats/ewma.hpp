// The EWMA chart statistic (the one EWMA of the core) and the CUSUM.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define ANOMALY_CUSUM_SSE2 1
#endif

namespace anomaly_detection {

/// One step of the EWMA chart statistic with smoothing factor lambda in (0, 1]:
/// lambda * x + (1 - lambda) * stat.
inline double ewma_step(double stat, double x, double lambda) { return lambda * x + (1.0 - lambda) * stat; }

/// Two-sided tabular CUSUM on standardised values z with allowance k:
/// S+ = max(0, S+ + z - k), S- = max(0, S- - z - k).
struct Cusum {
    double k = 0.5;
    double pos = 0.0;
    double neg = 0.0;

    void update(double z) {
        pos = clamp_sum(pos + z - k);
        neg = clamp_sum(neg - z - k);
    }
    /// A sum kept in [0, DBL_MAX]: x itself for 0 <= x <= DBL_MAX (-0.0 included), 0 for a
    /// negative x or NaN, DBL_MAX for +inf (a deviation that overflowed: the state must stay
    /// finite, or no snapshot of it loads). Inline and branch-free: a sum meets 0 often,
    /// unpredictably, and std::fmax is a library call where NaN must be handled.
    static double clamp_sum(double x) {
#if ANOMALY_CUSUM_SSE2
        const __m128d v = _mm_set_sd(x);
        const __m128d kept = _mm_and_pd(_mm_cmpge_sd(v, _mm_setzero_pd()), v);  // x masked by x >= 0
        return _mm_cvtsd_f64(_mm_min_sd(kept, _mm_set_sd(std::numeric_limits<double>::max())));
#else
        return x >= 0.0 ? (x <= std::numeric_limits<double>::max() ? x : std::numeric_limits<double>::max()) : 0.0;
#endif
    }
    /// Signed statistic: +S+ when the upward sum dominates, -S- otherwise.
    double statistic() const {
#if ANOMALY_CUSUM_SSE2
        // Branch-free: which sum dominates changes often and unpredictably.
        const __m128d p = _mm_set_sd(pos), n = _mm_xor_pd(_mm_set_sd(neg), _mm_set_sd(-0.0));
        const __m128d take_pos = _mm_cmpge_sd(p, _mm_set_sd(neg));
        return _mm_cvtsd_f64(_mm_or_pd(_mm_and_pd(take_pos, p), _mm_andnot_pd(take_pos, n)));
#else
        return pos >= neg ? pos : -neg;
#endif
    }
    void reset() { pos = neg = 0.0; }
};

/// The EWMA chart statistic replayed over a window (anything with size() and
/// operator[], oldest first; non-empty): it starts at the oldest value, as a
/// state rebuilt from the window does.
template <typename Window>
double ewma_over(const Window& window, double lambda) {
    double stat = window[0];
    for (size_t i = 1; i < window.size(); ++i) stat = ewma_step(stat, window[i], lambda);
    return stat;
}

}  // namespace anomaly_detection

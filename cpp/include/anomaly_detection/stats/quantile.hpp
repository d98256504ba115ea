// The one linear-interpolated quantile of the core (NumPy's default, "linear").
#pragma once

#include <cmath>
#include <cstddef>

namespace anomaly_detection {

/// The q-quantile (q in [0, 1]) of n >= 1 sorted values read through at(k), k < n:
/// at(lo) + frac * (at(lo + 1) - at(lo)) at position q * (n - 1); at(lo + 1) is read only
/// when the position falls between two values. Finite values give a finite quantile: when
/// their difference overflows (-DBL_MAX and DBL_MAX) it is weighted as (1 - frac) a + frac b.
template <typename At>
double linear_quantile(size_t n, double q, At&& at) {
    const double pos = q * static_cast<double>(n - 1);
    const auto lo = static_cast<size_t>(pos);  // floor: pos >= 0 (a call of floor() on baseline x86-64)
    const double frac = pos - static_cast<double>(lo);
    const double a = at(lo);
    if (frac == 0.0 || lo + 1 >= n) return a;
    const double b = at(lo + 1);
    const double gap = b - a;
    if (std::isinf(gap)) return (1.0 - frac) * a + frac * b;
    return a + frac * gap;
}

}  // namespace anomaly_detection

// The EWMA chart statistic (the one EWMA of the core) and the CUSUM.
#pragma once

#include <cmath>
#include <cstddef>

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
        pos = std::fmax(0.0, pos + z - k);
        neg = std::fmax(0.0, neg - z - k);
    }
    /// Signed statistic: +S+ when the upward sum dominates, -S- otherwise.
    double statistic() const { return pos >= neg ? pos : -neg; }
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

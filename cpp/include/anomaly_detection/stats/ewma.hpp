// Exponentially weighted moving mean and variance.
#pragma once

#include <cmath>
#include <cstddef>

namespace anomaly_detection {

/// EWMA with smoothing factor alpha in (0, 1]: mean += alpha * (x - mean),
/// var = (1 - alpha) * (var + alpha * (x - mean_old)^2) (West's update).
struct Ewma {
    double alpha = 0.3;
    double mean = 0.0;
    double var = 0.0;
    bool initialised = false;

    void update(double x) {
        if (!initialised) {
            mean = x;
            var = 0.0;
            initialised = true;
            return;
        }
        const double diff = x - mean;
        const double incr = alpha * diff;
        mean += incr;
        var = (1.0 - alpha) * (var + diff * incr);
    }
    double stddev() const { return std::sqrt(var); }
};

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
    for (size_t i = 1; i < window.size(); ++i) stat = lambda * window[i] + (1.0 - lambda) * stat;
    return stat;
}

}  // namespace anomaly_detection

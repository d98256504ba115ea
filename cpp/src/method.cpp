#include "anomaly_detection/detectors/method.hpp"

#include <cmath>
#include <stdexcept>

namespace anomaly_detection {

namespace {
constexpr std::string_view kNames[] = {"zscore", "mad", "iqr", "ewma", "cusum", "ensemble"};
}

Method parse_method(std::string_view name) {
    for (size_t i = 0; i < std::size(kNames); ++i)
        if (name == kNames[i]) return static_cast<Method>(i);
    throw std::invalid_argument("unknown method '" + std::string(name) +
                                "': expected one of zscore, mad, iqr, ewma, cusum, ensemble");
}

std::string_view method_name(Method m) { return kNames[static_cast<size_t>(m)]; }

bool needs_order_statistics(Method m) { return m == Method::mad || m == Method::iqr; }

void DetectorConfig::validate() const {
    auto fail = [](const std::string& msg) { throw std::invalid_argument(msg); };
    if (static_cast<size_t>(method) >= std::size(kNames)) fail("method: unknown method code");
    if (window_size < 2 || window_size > 10'000'000)
        fail("window_size: expected 2..10000000, got " + std::to_string(window_size));
    if (!(std::isfinite(threshold) && threshold > 0)) fail("threshold: expected a finite value > 0");
    if (method == Method::ensemble && threshold > 1) fail("threshold: expected a score in (0, 1] for the ensemble");
    if (min_samples < 2) fail("min_samples: expected >= 2, got " + std::to_string(min_samples));
    if (!(ewma_alpha > 0 && ewma_alpha <= 1)) fail("ewma_alpha: expected a value in (0, 1]");
    if (!(std::isfinite(cusum_k) && cusum_k >= 0)) fail("cusum_k: expected a finite value >= 0");
    if (alert_cooldown > 1'000'000) fail("alert_cooldown: expected at most 1000000 points");
}

bool is_valid_sensor_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxSensorNameBytes) return false;
    for (unsigned char c : name) {
        switch (c) {
            case ':': case '*': case '?': case '[': case ']': case '{': case '}': return false;
            default:
                if (c <= 0x20 || c == 0x7f) return false;  // whitespace and control characters
        }
    }
    return true;
}

void check_sensor_name(std::string_view name) {
    if (name.empty()) throw std::invalid_argument("sensor name: expected a non-empty string");
    if (name.size() > kMaxSensorNameBytes)
        throw std::invalid_argument("sensor name: expected at most 200 bytes, got " + std::to_string(name.size()));
    if (!is_valid_sensor_name(name))
        throw std::invalid_argument("sensor name '" + std::string(name) +
                                    "': must not contain ':', '*', '?', '[', ']', '{', '}', whitespace or "
                                    "control characters (they would break the Redis key layout)");
}

}  // namespace anomaly_detection

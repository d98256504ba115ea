// Scoring methods and the configuration shared by every sensor of a registry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace anomaly_detection {

enum class Method : uint8_t { zscore = 0, mad = 1, iqr = 2, ewma = 3, cusum = 4, ensemble = 5 };

/// Parses "zscore", "mad", "iqr", "ewma", "cusum" or "ensemble"; throws std::invalid_argument.
Method parse_method(std::string_view name);
std::string_view method_name(Method m);
/// Whether the method needs rolling order statistics (median, quartiles).
bool needs_order_statistics(Method m);

/// Settings of a detector; all sensors of a registry share them. The Python
/// ``Settings`` owns each method's default threshold and the ranges; the core
/// only validates what it is given (the initialisers below make a valid config).
struct DetectorConfig {
    Method method = Method::zscore;
    /// Number of past points a new point is compared with (>= 2).
    size_t window_size = 100;
    /// Deviation beyond which a point is anomalous (> 0); for the ensemble,
    /// the score in (0, 1] at or above which it is.
    double threshold = 3.0;
    /// No point is flagged before this many points were seen (>= 2).
    size_t min_samples = 10;
    /// Whether flagged points enter the window (and the EWMA/CUSUM state).
    bool include_anomalies = true;
    /// EWMA smoothing factor lambda in (0, 1].
    double ewma_alpha = 0.3;
    /// CUSUM allowance k in standard deviations (>= 0).
    double cusum_k = 0.5;
    /// Maximum number of sensors (0 = unlimited).
    size_t max_sensors = 0;
    /// The ensemble's alarm cooldown: points after an alarm whose alert score stays
    /// below the threshold (one alarm per incident), at most 1,000,000.
    uint64_t alert_cooldown = 100;
    /// The same cooldown in seconds of the points' timestamps instead (> 0: an alarm
    /// holds the alarms of the points less than this many seconds after it; then
    /// `alert_cooldown` must be 0), at most 1e10; 0 = the cooldown is in points.
    double alert_cooldown_seconds = 0.0;

    /// Throws std::invalid_argument naming the first invalid field.
    void validate() const;
};

/// Maximum length of a sensor name in bytes.
inline constexpr size_t kMaxSensorNameBytes = 200;

/// True when `name` is non-empty, at most 200 bytes of well-formed UTF-8, not
/// "." or "..", and holds none of the characters that would break the Redis key
/// layout (':', '*', '?', '[', ']', '{', '}') nor any whitespace, control or
/// invisible character (Unicode spaces such as U+00A0, U+2028, zero-width and
/// bidi controls, the BOM). The one sensor-name rule of the package.
bool is_valid_sensor_name(std::string_view name);
/// Throws std::invalid_argument explaining why `name` is invalid.
void check_sensor_name(std::string_view name);

}  // namespace anomaly_detection

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
    if (!(std::isfinite(alert_cooldown_seconds) && alert_cooldown_seconds >= 0 && alert_cooldown_seconds <= 1e10))
        fail("alert_cooldown_seconds: expected 0..1e10 seconds");
    if (alert_cooldown_seconds > 0 && alert_cooldown > 0)
        fail("alert_cooldown: in points or in seconds, not both (set alert_cooldown to 0)");
}

namespace {
// Decodes the UTF-8 code point at name[i] and advances i; returns -1 for bytes that
// are not well-formed UTF-8 (overlong forms, surrogates and values beyond U+10FFFF
// included), so that a name read from untrusted bytes is refused, not stored.
long next_code_point(std::string_view name, size_t& i) {
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(name[k]); };
    const unsigned char lead = byte(i);
    if (lead < 0x80) return name[i++];
    size_t extra = 0;
    long cp = 0, min = 0;
    if ((lead & 0xE0) == 0xC0)
        extra = 1, cp = lead & 0x1F, min = 0x80;
    else if ((lead & 0xF0) == 0xE0)
        extra = 2, cp = lead & 0x0F, min = 0x800;
    else if ((lead & 0xF8) == 0xF0)
        extra = 3, cp = lead & 0x07, min = 0x10000;
    else
        return -1;
    if (i + extra >= name.size()) return -1;  // truncated sequence
    for (size_t k = 1; k <= extra; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    i += extra + 1;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    return cp;
}

// Characters that look like nothing or like a space: a name holding one could not be
// told apart from another name by a person reading keys, logs or a dashboard.
bool is_blank_or_invisible(long cp) {
    return cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0) ||    // ASCII and C1 controls, space, NBSP
           cp == 0xAD || cp == 0x1680 || cp == 0x180E ||  // soft hyphen, Ogham space, Mongolian separator
           (cp >= 0x2000 && cp <= 0x200F) ||              // spaces, zero-width characters, LRM/RLM
           (cp >= 0x2028 && cp <= 0x202F) ||              // line/paragraph separators, bidi embeddings, NNBSP
           (cp >= 0x205F && cp <= 0x206F) ||              // math space, word joiner, invisible operators, bidi
           cp == 0x3000 || cp == 0xFEFF ||                // ideographic space, BOM / zero-width no-break space
           (cp >= 0xFFF9 && cp <= 0xFFFB);                // interlinear annotation controls
}
}  // namespace

bool is_valid_sensor_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxSensorNameBytes) return false;
    if (name == "." || name == "..") return false;  // path segments: unreachable as a URL path
    for (size_t i = 0; i < name.size();) {
        const long cp = next_code_point(name, i);
        if (cp < 0 || is_blank_or_invisible(cp)) return false;
        switch (cp) {
            case ':':
            case '*':
            case '?':
            case '[':
            case ']':
            case '{':
            case '}':
                return false;
            default:
                break;
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
                                    "': must be UTF-8 text other than '.' and '..' without ':', '*', '?', '[', "
                                    "']', '{', '}', whitespace, control or invisible characters (they would break "
                                    "the Redis key layout or the URL of the sensor, or look like another name)");
}

}  // namespace anomaly_detection

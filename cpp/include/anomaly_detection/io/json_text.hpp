// Text of finite doubles as Python's repr writes them (shortest round-trip digits; fixed
// notation for decimal exponents -4..15 with ".0" on integral values, else d.ddde+XX), and
// JSON objects of (value, timestamp) pairs in that text. No dependency beyond C++17.
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace anomaly_detection::io {

/// Append ``v`` to ``out`` as Python's ``repr(float)`` does; ``v`` must be finite (JSON
/// has no NaN or infinity): std::invalid_argument otherwise, ``out`` unchanged.
inline void append_float_repr(std::string& out, double v) {
    if (!std::isfinite(v)) throw std::invalid_argument("append_float_repr: expected a finite number");
    char buf[40];
    const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    const std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));  // [-]d[.ddd]e(+|-)XX
    const size_t e = sci.find('e');
    int exponent = 0;
    for (size_t i = e + 2; i < sci.size(); ++i) exponent = exponent * 10 + (sci[i] - '0');
    if (sci[e + 1] == '-') exponent = -exponent;
    if (exponent < -4 || exponent >= 16) {  // Python's repr switches to the exponent form here
        out.append(sci);
        return;
    }
    const bool negative = sci[0] == '-';
    if (negative) out.push_back('-');
    std::string_view mantissa = sci.substr(negative ? 1 : 0, e - (negative ? 1 : 0));
    char digits[24];
    size_t nd = 0;
    for (const char c : mantissa)
        if (c != '.') digits[nd++] = c;
    if (exponent < 0) {
        out.append("0.");
        out.append(static_cast<size_t>(-exponent - 1), '0');
        out.append(digits, nd);
        return;
    }
    const auto whole = static_cast<size_t>(exponent) + 1;
    if (nd <= whole) {
        out.append(digits, nd);
        out.append(whole - nd, '0');
        out.append(".0");
    } else {
        out.append(digits, whole);
        out.push_back('.');
        out.append(digits + whole, nd - whole);
    }
}

/// ``{"value":v,"timestamp":t}`` for each of the ``n`` pairs, joined by newlines (no
/// trailing one), numbers as :func:`append_float_repr` writes them. Every number must be
/// finite: std::invalid_argument otherwise (naming the index), nothing returned. A number
/// equal in its bits to the one before it in its column (a batch's points stamped with one
/// time, a flat signal) is copied from that one's text, not formatted again.
inline std::string json_point_entries(const double* values, const double* timestamps, size_t n) {
    std::string out;
    out.reserve(n * 48);
    // where the previous value's and timestamp's text are in `out`
    size_t value_at = 0, value_len = 0, stamp_at = 0, stamp_len = 0;
    const auto append_number = [&out](double x, bool repeat, size_t& at, size_t& len) {
        if (repeat) {  // copied out first: `out` may move while it grows (a text is <= 24 chars)
            char copy[40];
            out.copy(copy, len, at);
            at = out.size();
            out.append(copy, len);
            return;
        }
        at = out.size();
        append_float_repr(out, x);
        len = out.size() - at;
    };
    const auto same_bits = [](double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; };
    for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(values[i]) || !std::isfinite(timestamps[i]))
            throw std::invalid_argument("json_point_entries: point " + std::to_string(i) +
                                        " is not finite (JSON has no NaN or infinity)");
        if (i) out.push_back('\n');
        out.append("{\"value\":");
        append_number(values[i], i && same_bits(values[i], values[i - 1]), value_at, value_len);
        out.append(",\"timestamp\":");
        append_number(timestamps[i], i && same_bits(timestamps[i], timestamps[i - 1]), stamp_at, stamp_len);
        out.push_back('}');
    }
    return out;
}

}  // namespace anomaly_detection::io

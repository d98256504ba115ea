#include "anomaly_detection/sketches/hyperloglog.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "anomaly_detection/io/bytes.hpp"

namespace anomaly_detection {

namespace {
constexpr uint16_t kVersion = 1;

// Ertl, "New cardinality estimation algorithms for HyperLogLog sketches" (2017), section 4.
double sigma(double x) {
    if (x == 1.0) return std::numeric_limits<double>::infinity();
    double y = 1.0, z = x;
    for (;;) {
        x *= x;
        const double z_old = z;
        z += x * y;
        y += y;
        if (z == z_old) return z;
    }
}

double tau(double x) {
    if (x == 0.0 || x == 1.0) return 0.0;
    double y = 1.0, z = 1.0 - x;
    for (;;) {
        x = std::sqrt(x);
        const double z_old = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if (z == z_old) return z / 3.0;
    }
}

void check_precision(int p) {
    if (p < HyperLogLog::kMinPrecision || p > HyperLogLog::kMaxPrecision)
        throw std::invalid_argument("precision: expected 4..18, got " + std::to_string(p));
}
}  // namespace

HyperLogLog::HyperLogLog(int precision) : precision_(precision) {
    check_precision(precision);
    registers_.assign(size_t{1} << precision, 0);
}

bool HyperLogLog::add(const uint64_t* hashes, size_t n) {
    const int p = precision_;
    bool changed = false;
    for (size_t i = 0; i < n; ++i) {
        const uint64_t h = hashes[i];
        const size_t idx = static_cast<size_t>(h >> (64 - p));
        // The sentinel bit bounds the rank at 64 - p + 1 when the remaining bits are zero.
        const uint64_t w = (h << p) | (uint64_t{1} << (p - 1));
        const auto rank = static_cast<uint8_t>(__builtin_clzll(w) + 1);
        if (rank > registers_[idx]) {
            registers_[idx] = rank;
            changed = true;
        }
    }
    return changed;
}

double HyperLogLog::count() const {
    const int q = 64 - precision_;
    const double m = static_cast<double>(registers_.size());
    std::vector<double> hist(static_cast<size_t>(q + 2), 0.0);
    for (uint8_t r : registers_) hist[r] += 1.0;
    double z = m * tau(1.0 - hist[static_cast<size_t>(q + 1)] / m);
    for (int k = q; k >= 1; --k) z = 0.5 * (z + hist[static_cast<size_t>(k)]);
    z += m * sigma(hist[0] / m);
    constexpr double kAlphaInf = 0.7213475204444817;  // 1 / (2 ln 2)
    return kAlphaInf * m * m / z;
}

void HyperLogLog::merge(const HyperLogLog& other) {
    if (other.precision_ != precision_)
        throw std::invalid_argument("merge: expected precision " + std::to_string(precision_) + ", got " +
                                    std::to_string(other.precision_));
    for (size_t i = 0; i < registers_.size(); ++i) registers_[i] = std::max(registers_[i], other.registers_[i]);
}

void HyperLogLog::clear() { std::fill(registers_.begin(), registers_.end(), 0); }

double HyperLogLog::standard_error() const { return 1.04 / std::sqrt(static_cast<double>(registers_.size())); }

std::string HyperLogLog::to_bytes() const {
    io::ByteWriter w;
    w.put<uint8_t>(static_cast<uint8_t>(precision_));
    w.put_array(registers_.data(), registers_.size());
    return io::seal(io::Family::hyperloglog, kVersion, w.str());
}

HyperLogLog HyperLogLog::from_bytes(std::string_view blob) {
    io::ByteReader r(io::unseal(blob, io::Family::hyperloglog, kVersion));
    const int p = r.get<uint8_t>("precision");
    if (p < kMinPrecision || p > kMaxPrecision) io::corruption("precision: expected 4..18, got " + std::to_string(p));
    HyperLogLog s(p);
    if (r.remaining() != s.registers_.size())
        io::corruption("registers: expected " + std::to_string(s.registers_.size()) + " bytes, got " +
                       std::to_string(r.remaining()));
    r.get_array(s.registers_.data(), s.registers_.size(), "registers");
    const auto max_rank = static_cast<uint8_t>(64 - p + 1);
    for (uint8_t v : s.registers_)
        if (v > max_rank)
            io::corruption("register: expected at most " + std::to_string(max_rank) + ", got " + std::to_string(v));
    return s;
}

}  // namespace anomaly_detection

// HyperLogLog distinct counter with Ertl's improved estimator (no bias tables).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace anomaly_detection {

/// Counts distinct items in 2^precision one-byte registers; the relative standard
/// error is about 1.04 / sqrt(2^precision) (0.81% at the default precision 14).
///
/// Redis-compatible mode (precision 14 only) fills the registers exactly as Redis's
/// PFADD would for the element "8-byte little-endian item hash" (MurmurHash64A, low 14
/// bits for the register), so to_redis() writes a string that PFCOUNT and PFMERGE read,
/// and from_redis() reads what PFADD wrote (dense or sparse encoding).
class HyperLogLog {
public:
    static constexpr int kMinPrecision = 4;
    static constexpr int kMaxPrecision = 18;
    static constexpr int kRedisPrecision = 14;

    explicit HyperLogLog(int precision = 14, bool redis_compatible = false);

    int precision() const { return precision_; }
    bool redis_compatible() const { return redis_compatible_; }
    size_t register_count() const { return registers_.size(); }
    size_t memory_bytes() const { return registers_.size(); }
    const std::vector<uint8_t>& registers() const { return registers_; }

    /// Adds item hashes; returns whether any register changed.
    bool add(const uint64_t* hashes, size_t n);
    /// Estimated number of distinct items added.
    double count() const;
    /// Register-wise maximum; refuses another precision.
    void merge(const HyperLogLog& other);
    void clear();
    /// 1.04 / sqrt(m): the relative standard error of count().
    double standard_error() const;

    std::string to_bytes() const;
    static HyperLogLog from_bytes(std::string_view blob);

    /// The dense Redis HLL string ("HYLL" header, 6-bit registers); redis-compatible mode only.
    std::string to_redis() const;
    /// Reads a Redis HLL string (dense or sparse) into a redis-compatible sketch; throws
    /// std::invalid_argument ("possible corruption: ...") on anything else.
    static HyperLogLog from_redis(std::string_view data);

private:
    int precision_;
    bool redis_compatible_;
    std::vector<uint8_t> registers_;
};

}  // namespace anomaly_detection

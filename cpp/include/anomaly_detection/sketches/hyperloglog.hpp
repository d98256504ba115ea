// HyperLogLog distinct counter with Ertl's improved estimator (no bias tables).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace anomaly_detection {

/// Counts distinct items in 2^precision one-byte registers; the relative standard
/// error is about 1.04 / sqrt(2^precision) (0.81% at the default precision 14).
class HyperLogLog {
public:
    static constexpr int kMinPrecision = 4;
    static constexpr int kMaxPrecision = 18;

    explicit HyperLogLog(int precision = 14);

    int precision() const { return precision_; }
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

private:
    int precision_;
    std::vector<uint8_t> registers_;
};

}  // namespace anomaly_detection

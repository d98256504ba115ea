// HyperLogLog distinct counter: the HIP estimator while the sketch is only added to, Ertl's
// improved estimator (no bias tables) after a merge or when read from Redis's bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace anomaly_detection {

/// Counts distinct items in 2^precision one-byte registers. While the sketch is only added
/// to, count() is the HIP estimate (Cohen 2014; Ting 2014: each register change adds the
/// inverse of the probability that an item changes a register), relative standard error
/// about 0.83 / sqrt(2^precision); after a merge, or when read from Redis's bytes, it is
/// Ertl's estimator over the registers, about 1.04 / sqrt(2^precision).
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
    /// The relative standard error of count(): 0.83 / sqrt(m) with HIP, 1.04 / sqrt(m) without.
    double standard_error() const;
    /// Whether count() is the HIP estimate (false after a merge or from Redis's bytes).
    bool hip_valid() const { return hip_valid_; }

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
    // HIP: the running estimate, and sum of 2^-register split so that both parts add exactly
    // (registers below 32; registers of 32 and above, scaled by 2^32).
    bool hip_valid_ = true;
    double hip_ = 0.0;
    double kxq0_ = 0.0;
    double kxq1_ = 0.0;

    void reset_kxq();
    void on_change(uint8_t old_rank, uint8_t new_rank);
};

}  // namespace anomaly_detection

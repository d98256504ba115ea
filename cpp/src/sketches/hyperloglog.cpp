#include "anomaly_detection/sketches/hyperloglog.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "anomaly_detection/io/bytes.hpp"
#include "anomaly_detection/portable.hpp"
#include "anomaly_detection/sketches/hash.hpp"

namespace anomaly_detection {

namespace {
constexpr uint16_t kVersion = 2;  // 2: + the HIP estimate; 1 is still read (no HIP)
// Redis's HyperLogLog: 2^14 registers of 6 bits, MurmurHash64A seeded 0xadc83b19.
constexpr uint64_t kRedisSeed = 0xadc83b19ULL;
constexpr size_t kRedisRegisters = size_t{1} << HyperLogLog::kRedisPrecision;
constexpr int kRedisQ = 64 - HyperLogLog::kRedisPrecision;
constexpr size_t kRedisHeader = 16;
constexpr size_t kRedisDenseBytes = kRedisRegisters * 6 / 8;

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

HyperLogLog::HyperLogLog(int precision, bool redis_compatible)
    : precision_(precision), redis_compatible_(redis_compatible) {
    check_precision(precision);
    if (redis_compatible && precision != kRedisPrecision)
        throw std::invalid_argument("precision: a Redis-compatible HyperLogLog has precision 14, got " +
                                    std::to_string(precision));
    registers_.assign(size_t{1} << precision, 0);
    reset_kxq();
}

void HyperLogLog::reset_kxq() {
    kxq0_ = kxq1_ = 0.0;
    for (uint8_t r : registers_) {
        if (r < 32)
            kxq0_ += std::ldexp(1.0, -r);
        else
            kxq1_ += std::ldexp(1.0, 32 - r);
    }
}

// A register goes from old_rank to new_rank: the item that did it had probability
// kxq / m of changing some register, so it stands for m / kxq distinct items.
void HyperLogLog::on_change(uint8_t old_rank, uint8_t new_rank) {
    const double m = static_cast<double>(registers_.size());
    hip_ += m / (kxq0_ + std::ldexp(kxq1_, -32));
    if (old_rank < 32)
        kxq0_ -= std::ldexp(1.0, -old_rank);
    else
        kxq1_ -= std::ldexp(1.0, 32 - old_rank);
    if (new_rank < 32)
        kxq0_ += std::ldexp(1.0, -new_rank);
    else
        kxq1_ += std::ldexp(1.0, 32 - new_rank);
}

bool HyperLogLog::add(const uint64_t* hashes, size_t n) {
    const int p = precision_;
    bool changed = false;
    if (redis_compatible_) {
        for (size_t i = 0; i < n; ++i) {
            // Redis's PFADD of the element "8-byte little-endian item hash" (hllPatLen).
            unsigned char element[8];
            int_item_bytes(hashes[i], element);
            const uint64_t h = murmurhash64a(element, 8, kRedisSeed);
            const size_t idx = static_cast<size_t>(h & (kRedisRegisters - 1));
            const uint64_t rest = (h >> kRedisPrecision) | (uint64_t{1} << kRedisQ);
            const auto rank = static_cast<uint8_t>(portable::ctz64(rest) + 1);
            if (rank > registers_[idx]) {
                on_change(registers_[idx], rank);
                registers_[idx] = rank;
                changed = true;
            }
        }
        return changed;
    }
    for (size_t i = 0; i < n; ++i) {
        const uint64_t h = hashes[i];
        const size_t idx = static_cast<size_t>(h >> (64 - p));
        // The sentinel bit bounds the rank at 64 - p + 1 when the remaining bits are zero.
        const uint64_t w = (h << p) | (uint64_t{1} << (p - 1));
        const auto rank = static_cast<uint8_t>(portable::clz64(w) + 1);
        if (rank > registers_[idx]) {
            on_change(registers_[idx], rank);
            registers_[idx] = rank;
            changed = true;
        }
    }
    return changed;
}

double HyperLogLog::count() const {
    if (hip_valid_) return hip_;
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
    if (other.precision_ != precision_ || other.redis_compatible_ != redis_compatible_)
        throw std::invalid_argument("merge: expected precision " + std::to_string(precision_) +
                                    (redis_compatible_ ? " (Redis-compatible)" : "") + ", got " +
                                    std::to_string(other.precision_) +
                                    (other.redis_compatible_ ? " (Redis-compatible)" : ""));
    bool changed = false;
    for (size_t i = 0; i < registers_.size(); ++i) {
        if (other.registers_[i] > registers_[i]) {
            registers_[i] = other.registers_[i];
            changed = true;
        }
    }
    // The union's history is unknown: the registers alone estimate it from now on.
    if (changed) {
        hip_valid_ = false;
        hip_ = 0.0;
        reset_kxq();
    }
}

void HyperLogLog::clear() {
    std::fill(registers_.begin(), registers_.end(), 0);
    hip_valid_ = true;
    hip_ = 0.0;
    reset_kxq();
}

double HyperLogLog::standard_error() const {
    return (hip_valid_ ? 0.83 : 1.04) / std::sqrt(static_cast<double>(registers_.size()));
}

std::string HyperLogLog::to_bytes() const {
    io::ByteWriter w;
    w.put<uint8_t>(static_cast<uint8_t>(precision_));
    w.put<uint8_t>(redis_compatible_ ? 1 : 0);
    w.put_array(registers_.data(), registers_.size());
    w.put<uint8_t>(hip_valid_ ? 1 : 0);
    w.put<double>(hip_valid_ ? hip_ : 0.0);  // one encoding per state: a stale estimate is not kept
    return io::seal(io::Family::hyperloglog, kVersion, w.str());
}

HyperLogLog HyperLogLog::from_bytes(std::string_view blob) {
    uint16_t version = 0;
    io::ByteReader r(io::unseal(blob, io::Family::hyperloglog, kVersion, &version));
    const int p = r.get<uint8_t>("precision");
    const auto redis = r.get<uint8_t>("redis-compatible flag");
    if (p < kMinPrecision || p > kMaxPrecision) io::corruption("precision: expected 4..18, got " + std::to_string(p));
    if (redis > 1 || (redis && p != kRedisPrecision))
        io::corruption("redis-compatible flag: expected 0, or 1 with precision 14");
    HyperLogLog s(p, redis != 0);
    const size_t tail = version >= 2 ? 1 + sizeof(double) : 0;
    if (r.remaining() != s.registers_.size() + tail)
        io::corruption("registers: expected " + std::to_string(s.registers_.size() + tail) + " bytes, got " +
                       std::to_string(r.remaining()));
    r.get_array(s.registers_.data(), s.registers_.size(), "registers");
    s.hip_valid_ = false;  // version 1 kept no HIP estimate
    if (version >= 2) {
        const bool valid = r.get_flag("HIP flag");
        const auto hip = r.get<double>("HIP estimate");
        // Far above any count of 64-bit hashes, so that adding to a loaded sketch stays finite.
        if (!(hip >= 0.0 && hip <= 1e30)) io::corruption("HIP estimate: expected a number in [0, 1e30]");
        s.hip_valid_ = valid;
        s.hip_ = s.hip_valid_ ? hip : 0.0;
    }
    const auto max_rank = static_cast<uint8_t>(64 - p + 1);
    for (uint8_t v : s.registers_)
        if (v > max_rank)
            io::corruption("register: expected at most " + std::to_string(max_rank) + ", got " + std::to_string(v));
    s.reset_kxq();
    return s;
}

std::string HyperLogLog::to_redis() const {
    if (!redis_compatible_) throw std::runtime_error("to_redis: the sketch was not created Redis-compatible");
    std::string out(kRedisHeader + kRedisDenseBytes, '\0');
    std::memcpy(&out[0], "HYLL", 4);    // encoding byte 0 = dense
    out[15] = static_cast<char>(0x80);  // cached cardinality marked stale: Redis recomputes it
    auto* p = reinterpret_cast<unsigned char*>(&out[kRedisHeader]);
    for (size_t i = 0; i < kRedisRegisters; ++i) {
        // Registers are 6 bits, packed from the least significant bit of each byte.
        const size_t bit = i * 6, byte = bit / 8, shift = bit % 8;
        const unsigned v = registers_[i];
        p[byte] = static_cast<unsigned char>(p[byte] | (v << shift));
        if (shift > 2) p[byte + 1] = static_cast<unsigned char>(p[byte + 1] | (v >> (8 - shift)));
    }
    return out;
}

HyperLogLog HyperLogLog::from_redis(std::string_view data) {
    if (data.size() < kRedisHeader || std::memcmp(data.data(), "HYLL", 4) != 0)
        io::corruption("Redis HyperLogLog: expected the 'HYLL' header");
    const auto encoding = static_cast<unsigned char>(data[4]);
    const auto* p = reinterpret_cast<const unsigned char*>(data.data()) + kRedisHeader;
    const size_t size = data.size() - kRedisHeader;
    HyperLogLog s(kRedisPrecision, true);
    const auto max_rank = static_cast<uint8_t>(kRedisQ + 1);
    if (encoding == 0) {
        if (size != kRedisDenseBytes)
            io::corruption("Redis HyperLogLog dense registers: expected " + std::to_string(kRedisDenseBytes) +
                           " bytes, got " + std::to_string(size));
        for (size_t i = 0; i < kRedisRegisters; ++i) {
            const size_t bit = i * 6, byte = bit / 8, shift = bit % 8;
            unsigned v = p[byte] >> shift;
            if (shift > 2) v |= static_cast<unsigned>(p[byte + 1]) << (8 - shift);
            s.registers_[i] = static_cast<uint8_t>(v & 63);
            if (s.registers_[i] > max_rank) io::corruption("Redis HyperLogLog register above 51");
        }
    } else if (encoding == 1) {
        // Sparse: ZERO 00xxxxxx (run of x+1 zeros), XZERO 01xxxxxx yyyyyyyy (run of 14-bit
        // length + 1), VAL 1vvvvvxx (run of xx+1 registers of value vvvvv+1).
        size_t reg = 0;
        for (size_t i = 0; i < size; ++i) {
            const unsigned op = p[i];
            size_t run = 0;
            uint8_t value = 0;
            if ((op & 0xC0) == 0x00) {
                run = (op & 0x3F) + 1;
            } else if ((op & 0xC0) == 0x40) {
                if (i + 1 >= size) io::corruption("Redis HyperLogLog sparse: truncated XZERO");
                run = (((op & 0x3F) << 8) | p[++i]) + 1;
            } else {
                value = static_cast<uint8_t>(((op >> 2) & 0x1F) + 1);
                run = (op & 0x3) + 1;
            }
            if (run > kRedisRegisters - reg) io::corruption("Redis HyperLogLog sparse: runs past 16384 registers");
            for (size_t k = 0; k < run; ++k) s.registers_[reg++] = value;
        }
        if (reg != kRedisRegisters)
            io::corruption("Redis HyperLogLog sparse: expected 16384 registers, got " + std::to_string(reg));
    } else {
        io::corruption("Redis HyperLogLog encoding: expected 0 (dense) or 1 (sparse), got " + std::to_string(encoding));
    }
    s.hip_valid_ = false;  // PFADD kept no history
    s.reset_kxq();
    return s;
}

}  // namespace anomaly_detection

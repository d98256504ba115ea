// Deterministic item hashing shared by every sketch.
//
// Items are hashed with xxHash64 (seed 0), implemented from its specification, so
// the same item gives the same 64-bit hash in every process, run and platform.
// Text hashes as its UTF-8 bytes (so "a" and b"a" are one item); an integer hashes
// as its 8-byte little-endian two's-complement value, which keeps integer batches
// fast (no formatting) and well defined for any client language.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace anomaly_detection {

namespace detail {
constexpr uint64_t kXxPrime1 = 11400714785074694791ULL;
constexpr uint64_t kXxPrime2 = 14029467366897019727ULL;
constexpr uint64_t kXxPrime3 = 1609587929392839161ULL;
constexpr uint64_t kXxPrime4 = 9650029242287828579ULL;
constexpr uint64_t kXxPrime5 = 2870177450012600261ULL;

inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline uint64_t read_le64(const unsigned char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

inline uint32_t read_le32(const unsigned char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

inline uint64_t xx_round(uint64_t acc, uint64_t input) {
    acc += input * kXxPrime2;
    acc = rotl64(acc, 31);
    return acc * kXxPrime1;
}

inline uint64_t xx_merge_round(uint64_t acc, uint64_t val) {
    acc ^= xx_round(0, val);
    return acc * kXxPrime1 + kXxPrime4;
}
}  // namespace detail

/// xxHash64 of a byte run (reference algorithm, byte-order independent).
inline uint64_t xxhash64(const void* data, size_t len, uint64_t seed = 0) {
    using namespace detail;
    const auto* p = static_cast<const unsigned char*>(data);
    const unsigned char* const end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = seed + kXxPrime1 + kXxPrime2, v2 = seed + kXxPrime2, v3 = seed, v4 = seed - kXxPrime1;
        const unsigned char* const limit = end - 32;
        do {
            v1 = xx_round(v1, read_le64(p));
            v2 = xx_round(v2, read_le64(p + 8));
            v3 = xx_round(v3, read_le64(p + 16));
            v4 = xx_round(v4, read_le64(p + 24));
            p += 32;
        } while (p <= limit);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xx_merge_round(h, v1);
        h = xx_merge_round(h, v2);
        h = xx_merge_round(h, v3);
        h = xx_merge_round(h, v4);
    } else {
        h = seed + kXxPrime5;
    }
    h += static_cast<uint64_t>(len);
    while (p + 8 <= end) {
        h ^= xx_round(0, read_le64(p));
        h = rotl64(h, 27) * kXxPrime1 + kXxPrime4;
        p += 8;
    }
    if (p + 4 <= end) {
        h ^= static_cast<uint64_t>(read_le32(p)) * kXxPrime1;
        h = rotl64(h, 23) * kXxPrime2 + kXxPrime3;
        p += 4;
    }
    while (p < end) {
        h ^= (*p) * kXxPrime5;
        h = rotl64(h, 11) * kXxPrime1;
        ++p;
    }
    h ^= h >> 33;
    h *= kXxPrime2;
    h ^= h >> 29;
    h *= kXxPrime3;
    h ^= h >> 32;
    return h;
}

/// MurmurHash64A (Austin Appleby), the hash Redis's HyperLogLog applies to elements.
inline uint64_t murmurhash64a(const void* data, size_t len, uint64_t seed) {
    constexpr uint64_t m = 0xc6a4a7935bd1e995ULL;
    constexpr int r = 47;
    const auto* p = static_cast<const unsigned char*>(data);
    uint64_t h = seed ^ (len * m);
    const unsigned char* const end = p + (len - (len & 7));
    for (; p != end; p += 8) {
        uint64_t k = detail::read_le64(p);
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
    }
    const size_t tail = len & 7;
    if (tail) {
        for (size_t i = tail; i-- > 0;) h ^= static_cast<uint64_t>(p[i]) << (8 * i);
        h *= m;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

/// Hash of an item given as text or bytes.
inline uint64_t hash_item(std::string_view item) { return xxhash64(item.data(), item.size(), 0); }

/// The 8 little-endian bytes an integer item is hashed as (and stored as, in a top-k).
inline void int_item_bytes(uint64_t bits, unsigned char out[8]) {
    for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(bits >> (8 * i));
}

/// Hash of an integer item given by its 64 bits (int64 two's complement or uint64).
inline uint64_t hash_int_bits(uint64_t bits) {
    unsigned char b[8];
    int_item_bytes(bits, b);
    return xxhash64(b, 8, 0);
}

/// Hash of an integer item: xxHash64 of its 8-byte little-endian two's-complement value.
inline uint64_t hash_item(int64_t item) { return hash_int_bits(static_cast<uint64_t>(item)); }

/// Maps a uniform 64-bit hash onto [0, n) with a multiply instead of a division
/// (Lemire's fast range reduction): it uses the high bits of the hash.
inline uint64_t reduce_range(uint64_t h, uint64_t n) {
    __extension__ using uint128 = unsigned __int128;  // GCC and Clang; one 64x64 -> 128 multiply
    return static_cast<uint64_t>((static_cast<uint128>(h) * n) >> 64);
}

/// splitmix64 finaliser: derives further independent-looking hashes from one.
inline uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/// Small seeded generator (splitmix64) whose whole state is one integer, so it serialises.
class SplitMix64 {
   public:
    explicit SplitMix64(uint64_t seed = 0) : state_(seed) {}
    uint64_t next() {
        state_ += kStep;
        return output(state_);
    }
    /// Uniform double in [0, 1).
    double uniform() { return to_unit(next()); }
    /// What uniform() returns next, without drawing it; advance(1) then draws it. For a
    /// caller that computes a draw it may not take, with no branch on whether it takes it.
    double peek_uniform() const { return to_unit(output(state_ + kStep)); }
    void advance(uint64_t draws) { state_ += draws * kStep; }
    uint64_t state() const { return state_; }
    void set_state(uint64_t s) { state_ = s; }

   private:
    static constexpr uint64_t kStep = 0x9e3779b97f4a7c15ULL;
    static uint64_t output(uint64_t z) {
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    static double to_unit(uint64_t x) { return static_cast<double>(x >> 11) * 0x1.0p-53; }
    uint64_t state_;
};

}  // namespace anomaly_detection

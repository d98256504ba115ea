// Little-endian byte encoding with bounds-checked reads and a versioned,
// checksummed header shared by everything in the core that serialises state.
//
// Layout of a blob: magic (4 bytes "ADET") | format version (u16) |
// family (u16) | payload length (u64) | payload checksum (u64, FNV-1a) | payload.
// Bytes are untrusted: every read is checked and a failed check throws
// std::invalid_argument whose message starts with "possible corruption".
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace anomaly_detection::io {

/// Families of serialised objects; a blob of one family never loads as another.
enum class Family : uint16_t {
    sensor_registry = 1,
    ensemble_checkpoint = 2,
    count_min = 10,
    cuckoo = 11,
    bloom = 12,
    top_k = 13,
    t_digest = 14,
    hyperloglog = 15,
    isolation_forest = 20,
    half_space_trees = 21,
};

/// 64-bit FNV-1a: cheap, dependency-free integrity check (not a MAC).
inline uint64_t fnv1a64(const void* data, size_t size, uint64_t h = 0xcbf29ce484222325ULL) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < size; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

[[noreturn]] inline void corruption(const std::string& what) {
    throw std::invalid_argument("possible corruption: " + what);
}

constexpr bool little_endian() {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return false;
#else
    return true;
#endif
}

/// Appends little-endian scalars and raw byte runs to a string.
class ByteWriter {
   public:
    template <typename T>
    void put(T v) {
        static_assert(std::is_arithmetic_v<T> || std::is_enum_v<T>);
        unsigned char raw[sizeof(T)];
        std::memcpy(raw, &v, sizeof(T));
        if constexpr (!little_endian()) reverse(raw, sizeof(T));
        buf_.append(reinterpret_cast<const char*>(raw), sizeof(T));
    }
    void put_bytes(const void* data, size_t size) { buf_.append(static_cast<const char*>(data), size); }
    void put_string(std::string_view s) {
        put<uint32_t>(static_cast<uint32_t>(s.size()));
        put_bytes(s.data(), s.size());
    }
    template <typename T>
    void put_array(const T* data, size_t n) {
        if constexpr (little_endian()) {
            put_bytes(data, n * sizeof(T));
        } else {
            for (size_t i = 0; i < n; ++i) put(data[i]);
        }
    }
    const std::string& str() const { return buf_; }
    std::string& str() { return buf_; }

    static void reverse(unsigned char* p, size_t n) {
        for (size_t i = 0; i < n / 2; ++i) std::swap(p[i], p[n - 1 - i]);
    }

   private:
    std::string buf_;
};

/// Reads what ByteWriter wrote; every read is bounds checked.
class ByteReader {
   public:
    ByteReader(const char* data, size_t size) : p_(data), end_(data + size) {}
    explicit ByteReader(std::string_view s) : ByteReader(s.data(), s.size()) {}

    size_t remaining() const { return static_cast<size_t>(end_ - p_); }

    template <typename T>
    T get(const char* what = "value") {
        need(sizeof(T), what);
        unsigned char raw[sizeof(T)];
        std::memcpy(raw, p_, sizeof(T));
        if constexpr (!little_endian()) ByteWriter::reverse(raw, sizeof(T));
        p_ += sizeof(T);
        T v;
        std::memcpy(&v, raw, sizeof(T));
        return v;
    }
    /// A flag byte: 0 or 1 (anything else is corruption).
    bool get_flag(const char* what = "flag") {
        const auto v = get<uint8_t>(what);
        if (v > 1) corruption(std::string(what) + ": expected 0 or 1, got " + std::to_string(v));
        return v == 1;
    }
    std::string get_string(size_t max_size, const char* what = "string") {
        const auto n = get<uint32_t>(what);
        if (n > max_size)
            corruption(std::string(what) + " length: expected at most " + std::to_string(max_size) + ", got " +
                       std::to_string(n));
        need(n, what);
        std::string s(p_, n);
        p_ += n;
        return s;
    }
    template <typename T>
    void get_array(T* out, size_t n, const char* what = "array") {
        if (n > remaining() / sizeof(T)) need(n * sizeof(T), what);
        if (n == 0) return;  // out may be null (an empty vector's data()): no memcpy
        if constexpr (little_endian()) {
            std::memcpy(out, p_, n * sizeof(T));
            p_ += n * sizeof(T);
        } else {
            for (size_t i = 0; i < n; ++i) out[i] = get<T>(what);
        }
    }
    void expect_end(const char* what = "blob") const {
        if (p_ != end_)
            corruption(std::string(what) + ": expected end of data, got " + std::to_string(remaining()) +
                       " trailing bytes");
    }

   private:
    void need(size_t n, const char* what) const {
        if (n > remaining())
            corruption(std::string("truncated ") + what + ": expected " + std::to_string(n) + " bytes, got " +
                       std::to_string(remaining()));
    }
    const char* p_;
    const char* end_;
};

/// The largest count of points a saved state may claim: 2^53, more than any stream reaches (the
/// largest integer a double holds exactly, as the Redis store's counters do). A larger count is
/// corrupt: a few points more would wrap it past 2^64, and the state saved then would not load.
inline constexpr uint64_t kMaxPointCount = uint64_t{1} << 53;

/// A point counter after `more` points: it stops at kMaxPointCount, so that a state restored
/// just below it (valid) and fed on still saves a state that loads.
inline uint64_t count_up(uint64_t count, uint64_t more) {
    return count >= kMaxPointCount || more >= kMaxPointCount - count ? kMaxPointCount : count + more;
}

inline constexpr char kMagic[4] = {'A', 'D', 'E', 'T'};
inline constexpr size_t kHeaderSize = 4 + 2 + 2 + 8 + 8;

/// Wraps a payload in the common header.
inline std::string seal(Family family, uint16_t version, const std::string& payload) {
    ByteWriter w;
    w.put_bytes(kMagic, 4);
    w.put<uint16_t>(version);
    w.put<uint16_t>(static_cast<uint16_t>(family));
    w.put<uint64_t>(payload.size());
    w.put<uint64_t>(fnv1a64(payload.data(), payload.size()));
    w.put_bytes(payload.data(), payload.size());
    return std::move(w.str());
}

/// Checks the header of a blob and returns a view of its payload.
/// Throws std::invalid_argument on any mismatch.
inline std::string_view unseal(std::string_view blob, Family family, uint16_t max_version,
                               uint16_t* version_out = nullptr) {
    if (blob.size() < kHeaderSize)
        corruption("header: expected " + std::to_string(kHeaderSize) + " bytes, got " + std::to_string(blob.size()));
    if (std::memcmp(blob.data(), kMagic, 4) != 0) corruption("magic: expected 'ADET'");
    ByteReader r(blob.data() + 4, kHeaderSize - 4);
    const auto version = r.get<uint16_t>();
    const auto fam = r.get<uint16_t>();
    const auto length = r.get<uint64_t>();
    const auto checksum = r.get<uint64_t>();
    if (fam != static_cast<uint16_t>(family))
        corruption("family: expected " + std::to_string(static_cast<uint16_t>(family)) + ", got " +
                   std::to_string(fam));
    if (version == 0 || version > max_version)
        corruption("format version: expected 1.." + std::to_string(max_version) + ", got " + std::to_string(version));
    if (length != blob.size() - kHeaderSize)
        corruption("payload length: expected " + std::to_string(blob.size() - kHeaderSize) + ", got " +
                   std::to_string(length));
    const auto payload = blob.substr(kHeaderSize);
    if (fnv1a64(payload.data(), payload.size()) != checksum) corruption("checksum mismatch");
    if (version_out) *version_out = version;
    return payload;
}

}  // namespace anomaly_detection::io

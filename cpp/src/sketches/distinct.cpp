#include "anomaly_detection/sketches/distinct.hpp"

#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "anomaly_detection/portable.hpp"
#include "anomaly_detection/sketches/hash.hpp"

namespace anomaly_detection {

namespace {

uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

/// A cell's contents, zero-padded to 16 bytes.
struct Key {
    uint64_t lo, hi;
    bool operator==(const Key& o) const { return lo == o.lo && hi == o.hi; }
};

/// A distinct key and its summed increments, side by side, so that a hit touches one place.
template <class K>
struct Group {
    K key;
    uint64_t count;
};

/// Groups items 0..n-1 by key: load(i, key) reads item i's key (false: the batch cannot be
/// keyed), spread(key) gives the 64-bit hash whose top bits pick its slot. Distinct keys
/// with their counts go to groups, and their first indices to first, in order of first
/// appearance.
template <class K, class Load, class Spread>
bool group_by_key(size_t n, const uint64_t* increments, Load&& load, Spread&& spread, std::vector<Group<K>>& groups,
                  std::vector<size_t>& first) {
    // An open-addressing table of distinct indices + 1 (0 means empty), at most half full,
    // sized for a quarter of the items distinct (long-tailed streams) so that growing (a
    // rehash of every distinct key) is rare.
    int bits = 6;
    while ((size_t{1} << bits) < n / 2 && bits < 22) ++bits;
    std::vector<uint32_t> slots;
    auto resize = [&](size_t capacity) {
        slots.assign(capacity, 0);
        groups.reserve(capacity / 2);
        first.reserve(capacity / 2);
        for (size_t d = 0; d < groups.size(); ++d) {
            size_t s = spread(groups[d].key) >> (64 - bits);
            while (slots[s] != 0) s = (s + 1) & (capacity - 1);
            slots[s] = static_cast<uint32_t>(d + 1);
        }
    };
    resize(size_t{1} << bits);
    // A pipeline over the long tail's cache misses: kAhead items ahead a key is loaded and
    // its slot prefetched; half way there its slot is read and the group it names prefetched.
    constexpr size_t kAhead = 16;
    K ahead[kAhead];
    uint64_t ahead_spread[kAhead];
    for (size_t i = 0; i < n && i < kAhead; ++i) {
        if (!load(i, ahead[i])) return false;
        ahead_spread[i] = spread(ahead[i]);
    }
    // Locals for what the loop reads on every item (the lambdas above take bits by reference).
    int shift = 64 - bits;
    uint32_t* table = slots.data();
    size_t mask = slots.size() - 1;
    for (size_t i = 0; i < n; ++i) {
        const size_t r = i % kAhead;
        const K key = ahead[r];
        const uint64_t h = ahead_spread[r];
        if (i + kAhead < n) {
            K next;  // a local, spread before it is stored: no reload through memory
            if (!load(i + kAhead, next)) return false;
            ahead[r] = next;
            ahead_spread[r] = spread(next);
            portable::prefetch_read(&table[ahead_spread[r] >> shift]);
        }
        if (i + kAhead / 2 < n) {
            const uint32_t d = table[ahead_spread[(i + kAhead / 2) % kAhead] >> shift];
            if (d != 0) portable::prefetch_read(&groups[d - 1]);
        }
        const uint64_t inc = increments ? increments[i] : 1;
        for (size_t s = h >> shift;; s = (s + 1) & mask) {
            const uint32_t d = table[s];
            if (d == 0) {
                table[s] = static_cast<uint32_t>(groups.size() + 1);
                groups.push_back({key, inc});
                first.push_back(i);
                if (2 * groups.size() > slots.size()) {
                    ++bits;
                    resize(slots.size() * 2);
                    shift = 64 - bits;
                    table = slots.data();
                    mask = slots.size() - 1;
                }
                break;
            }
            Group<K>& g = groups[d - 1];
            if (g.key == key) {
                g.count = sat_add(g.count, inc);
                break;
            }
        }
    }
    return true;
}

/// out's hashes (hash_of each key) and counts from groups.
template <class K, class HashOf>
void fill(const std::vector<Group<K>>& groups, HashOf&& hash_of, DistinctItems& out) {
    out.hashes.resize(groups.size());
    out.counts.resize(groups.size());
    for (size_t d = 0; d < groups.size(); ++d) {
        out.hashes[d] = hash_of(groups[d].key);
        out.counts[d] = groups[d].count;
    }
}

/// Multiplicative hashing: the top bits depend on every bit of the key.
constexpr auto spread_word = [](uint64_t x) { return x * 0x9E3779B97F4A7C15ULL; };
constexpr auto spread_key = [](const Key& k) {
    return ((k.lo * 0x9E3779B97F4A7C15ULL) ^ k.hi) * 0xC2B2AE3D27D4EB4FULL;
};

/// hash_item of a key's bytes up to its last non-zero one.
uint64_t hash_key_text(const Key& k) {
    unsigned char b[16];
    std::memcpy(b, &k, 16);
    const uint64_t lo = detail::read_le64(b), hi = detail::read_le64(b + 8);  // byte 15 is hi's top
    const size_t len = hi   ? 16 - static_cast<size_t>(portable::clz64(hi)) / 8
                       : lo ? 8 - static_cast<size_t>(portable::clz64(lo)) / 8
                            : 0;
    return xxhash64(b, len);
}

/// Reads a cell's first `width` bytes (width <= kBytes) as kBytes, the rest zero, with a
/// fixed-size copy where kBytes are readable, so that nothing per cell depends on the width.
template <size_t kBytes>
class CellReader {
   public:
    CellReader(const char* cells, size_t width, size_t n) : cells_(cells), width_(width) {
        const size_t total = width * n;
        safe_ = total >= kBytes ? (total - kBytes) / width + 1 : 0;  // cells i < safe_ have kBytes readable
        for (size_t j = 0; j < kBytes; ++j) mask_[j] = j < width ? 0xFF : 0;
    }
    /// Cell i's bytes: p points at kBytes of which the first width are the cell's; AND them
    /// with mask() (the cells after it may follow).
    const unsigned char* bytes(size_t i, unsigned char scratch[kBytes]) const {
        const char* cell = cells_ + i * width_;
        if (i < safe_) return reinterpret_cast<const unsigned char*>(cell);
        std::memset(scratch, 0, kBytes);
        std::memcpy(scratch, cell, width_);
        return scratch;
    }
    const unsigned char* mask() const { return mask_; }

   private:
    const char* cells_;
    size_t width_;
    size_t safe_;
    unsigned char mask_[kBytes];
};

/// Key of a bytes cell of up to 16 bytes.
bool bytes_key(const unsigned char* p, const unsigned char* mask, Key& k) {
#if defined(__SSE2__)
    const __m128i v = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)),
                                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(mask)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&k), v);
#else
    unsigned char b[16];
    for (size_t j = 0; j < 16; ++j) b[j] = p[j] & mask[j];
    std::memcpy(&k, b, 16);
#endif
    return true;
}

/// Key of a UTF-32 cell of up to 16 code points: each narrowed to a byte. False when one
/// is above 0x7F (not ASCII), since its UTF-8 is not that byte.
bool utf32_key(const unsigned char* p, const unsigned char* mask, Key& k) {
#if defined(__SSE2__)
    const auto* vp = reinterpret_cast<const __m128i*>(p);
    const auto* vm = reinterpret_cast<const __m128i*>(mask);
    const __m128i a = _mm_and_si128(_mm_loadu_si128(vp), _mm_loadu_si128(vm));
    const __m128i b = _mm_and_si128(_mm_loadu_si128(vp + 1), _mm_loadu_si128(vm + 1));
    const __m128i c = _mm_and_si128(_mm_loadu_si128(vp + 2), _mm_loadu_si128(vm + 2));
    const __m128i d = _mm_and_si128(_mm_loadu_si128(vp + 3), _mm_loadu_si128(vm + 3));
    const __m128i high = _mm_and_si128(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)), _mm_set1_epi32(~0x7F));
    if (_mm_movemask_epi8(_mm_cmpeq_epi32(high, _mm_setzero_si128())) != 0xFFFF) return false;
    // Every lane is 0..0x7F, so the saturating packs keep each value.
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&k), _mm_packus_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d)));
    return true;
#else
    uint32_t any = 0;
    unsigned char narrow[16];
    for (size_t j = 0; j < 16; ++j) {
        uint32_t c;
        std::memcpy(&c, p + 4 * j, 4);
        c &= uint32_t{mask[4 * j]} * 0x01010101u;  // whole units: the width is a multiple of 4
        any |= c;
        narrow[j] = static_cast<unsigned char>(c);
    }
    std::memcpy(&k, narrow, 16);
    return any < 0x80;
#endif
}

/// group_cells for text cells: to_key(bytes, mask, key) makes the 16-byte key of a cell
/// (a template argument, so that the call is inlined).
template <size_t kBytes, bool (*to_key)(const unsigned char*, const unsigned char*, Key&)>
bool group_text(const char* cells, size_t width, size_t n, const uint64_t* increments, DistinctItems& out) {
    const CellReader<kBytes> reader(cells, width, n);
    std::vector<Group<Key>> groups;
    const bool keyed = group_by_key<Key>(
        n, increments,
        [&](size_t i, Key& k) {
            unsigned char scratch[kBytes];
            return to_key(reader.bytes(i, scratch), reader.mask(), k);
        },
        spread_key, groups, out.first);
    if (keyed) fill(groups, hash_key_text, out);
    return keyed;
}

}  // namespace

DistinctItems group_hashes(const uint64_t* hashes, const uint64_t* increments, size_t n) {
    DistinctItems out;
    std::vector<Group<uint64_t>> groups;
    // The hashes are their own keys, and already spread.
    group_by_key<uint64_t>(
        n, increments,
        [&](size_t i, uint64_t& k) {
            k = hashes[i];
            return true;
        },
        [](uint64_t h) { return h; }, groups, out.first);
    fill(
        groups, [](uint64_t h) { return h; }, out);
    return out;
}

bool group_cells(const char* cells, size_t width, CellFormat format, size_t n, const uint64_t* increments,
                 DistinctItems& out) {
    out = DistinctItems{};
    if (n >= (size_t{1} << 31)) return false;  // distinct indices are 32-bit
    if (format == CellFormat::int64) {
        if (width != 8) return false;
        std::vector<Group<uint64_t>> groups;
        group_by_key<uint64_t>(
            n, increments,
            [&](size_t i, uint64_t& k) {
                std::memcpy(&k, cells + 8 * i, 8);
                return true;
            },
            spread_word, groups, out.first);
        fill(groups, hash_int_bits, out);
        return true;
    }
    const size_t units = format == CellFormat::utf32 ? width / 4 : width;
    if (width == 0 || units > 16 || (format == CellFormat::utf32 && width % 4 != 0)) return false;
    return format == CellFormat::bytes ? group_text<16, bytes_key>(cells, width, n, increments, out)
                                       : group_text<64, utf32_key>(cells, width, n, increments, out);
}

}  // namespace anomaly_detection

// The distinct items of a batch, for sketches that apply one weighted update per item.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace anomaly_detection {

/// The distinct items of a batch in order of first appearance: hash_item of each, its
/// summed increments (saturating) and the index where it first appears.
struct DistinctItems {
    std::vector<uint64_t> hashes;
    std::vector<uint64_t> counts;
    std::vector<size_t> first;
    size_t size() const { return hashes.size(); }
};

/// Groups items by their 64-bit hashes (increments null means 1 each). Two items with
/// the same hash are one item, as they are everywhere else in a sketch.
DistinctItems group_hashes(const uint64_t* hashes, const uint64_t* increments, size_t n);

/// How the fixed-width cells of a batch hold their items (NumPy's int64/uint64, 'S' and
/// 'U' arrays, for example), in the machine's byte order. Text cells end at their last
/// non-zero unit, as NumPy reads them.
enum class CellFormat : uint8_t {
    int64,  // 64-bit integers: hashed as integer items
    bytes,  // raw bytes: hashed as they are
    utf32,  // UTF-32 code points: hashed as their UTF-8
};

/// group_hashes for a batch of n cells of `width` bytes each, without hashing every item:
/// cells are grouped by their contents (exact, no collisions) and only the distinct items
/// are hashed. Applies when each cell fits a 16-byte key: 8-byte int64 cells, bytes cells
/// of up to 16 bytes, and UTF-32 cells of up to 16 code points that are all ASCII.
/// Returns false, with out unspecified, for any other batch (the caller hashes its items
/// one by one), or for n of 2^31 or more.
bool group_cells(const char* cells, size_t width, CellFormat format, size_t n, const uint64_t* increments,
                 DistinctItems& out);

}  // namespace anomaly_detection

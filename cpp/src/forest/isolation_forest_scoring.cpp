// IsolationForest: the scoring layouts (heap, rank, 8-bit top ranks) and the walks over them.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <type_traits>

#include "anomaly_detection/forest/isolation_forest.hpp"
#include "anomaly_detection/forest/parallel.hpp"
#include "anomaly_detection/forest/random.hpp"
#include "anomaly_detection/io/bytes.hpp"
#include "anomaly_detection/stats/quantile.hpp"
#include "isolation_forest_detail.hpp"

namespace anomaly_detection {

using namespace iforest;

void IsolationForest::build_heap_layout() {
    heap_threshold_.clear();
    heap_feature_.clear();
    heap_leaf_.clear();
    heap_offset_.assign(1, 0);
    // A complete tree of depth D has 2^D slots per array; pad only while the forest's
    // slots stay within 8x its real nodes (+ 2^16), so the copy is linear in the model
    // (and in the bytes of a crafted blob). A skinny tree (duplicate rows) is fine as
    // long as the forest as a whole is not.
    size_t slots = 0;
    if (n_features_in_ > std::numeric_limits<uint32_t>::max() / kRowsPerTask) {
        heap_offset_.clear();
        return;
    }
    for (size_t t = 0; t < n_trees(); ++t) {
        if (tree_depth_[t] > kMaxHeapDepth) {
            heap_offset_.clear();
            return;
        }
        slots += size_t{1} << tree_depth_[t];
        heap_offset_.push_back(slots);
    }
    if (slots > 8 * nodes_.size() + (size_t{1} << 16)) {
        heap_offset_.clear();
        return;
    }
    heap_threshold_.assign(slots, kInf);
    heap_feature_.assign(slots, 0);
    heap_leaf_.assign(slots, 0.0);
    struct Item {
        uint32_t node;
        size_t heap;
        unsigned depth;
    };
    std::vector<Item> stack;
    for (size_t t = 0; t < n_trees(); ++t) {
        const IsolationNode* nodes = nodes_.data() + tree_offset_[t];
        const double* values = leaf_value_.data() + tree_offset_[t];
        const size_t base = heap_offset_[t];
        const unsigned depth = tree_depth_[t];
        stack.assign(1, {0, 1, 0});
        while (!stack.empty()) {
            const Item it = stack.back();
            stack.pop_back();
            const IsolationNode& node = nodes[it.node];
            if (node.left == it.node) {
                heap_leaf_[base + (it.heap << (depth - it.depth)) - (size_t{1} << depth)] = values[it.node];
            } else {
                heap_threshold_[base + it.heap] = node.threshold;
                heap_feature_[base + it.heap] = static_cast<uint32_t>(node.feature * kRowsPerTask);
                stack.push_back({node.left, 2 * it.heap, it.depth + 1});
                stack.push_back({node.left + 1, 2 * it.heap + 1, it.depth + 1});
            }
        }
    }
    build_rank_layout();
}

namespace {

// Bucket of x in [0, last]: floor((x - lo) * scale) clamped. Each operation is monotone
// in x, so x <= y implies bucket(x) <= bucket(y): a value in a lower bucket than x is
// below x, one in a higher bucket is above it, and only x's own bucket needs comparing.
inline size_t rank_bucket(double x, double lo, double scale, double last) {
    // maxsd/minsd and a truncation: no branch on the data. v is never NaN: scale is
    // finite and positive, or 0 with lo 0.
    const double v = std::min(std::max((x - lo) * scale, 0.0), last);
    return static_cast<size_t>(static_cast<int64_t>(v));
}

// What ranking one feature's values reads (see IsolationForest::RankFeature).
struct RankView {
    const double* values;    // sorted split values, then +inf
    const uint16_t* starts;  // per bucket
    const uint16_t* ints;    // rank of each integer int_lo + i, or null
    double lo, scale, last;
    int64_t int_lo;
    uint64_t int_count;
    uint32_t n_values;
    size_t window;
};

// rank_f(v) << 16 for count values v = x[r * stride]. An integer v in the integer
// table's range is one lookup; below it the rank is 0 and above it n_values. Any other
// v: the start of v's bucket plus how many of the `window` values from there are below
// v (the bucket's own values come first; those after it are above v, or +inf), by W
// independent compares, or for W = 0 by a branch-free binary search over the window.
//
// Integer input (T integral, at most 32 bits: exact as a double) takes the table without
// the round trip through double, or the bucket search on the value as a double: the same
// rank as for the same value given as a double.
template <size_t W, typename T>
inline void rank_values(const RankView& f, const T* x, std::ptrdiff_t stride, size_t count, uint32_t* out) {
    if constexpr (std::is_integral_v<T>) {
        if (f.ints != nullptr) {
            for (size_t r = 0; r < count; ++r) {
                const auto i = static_cast<int64_t>(x[static_cast<std::ptrdiff_t>(r) * stride]);
                const auto k = static_cast<uint64_t>(i - f.int_lo);
                out[r] = (k < f.int_count ? f.ints[k] : i < f.int_lo ? 0U : f.n_values) << 16;
            }
            return;
        }
    }
    for (size_t r = 0; r < count; ++r) {
        const auto v = static_cast<double>(x[static_cast<std::ptrdiff_t>(r) * stride]);
        if (!std::is_integral_v<T> && f.ints != nullptr && v > -9e18 && v < 9e18) {
            const auto i = static_cast<int64_t>(v);
            if (static_cast<double>(i) == v) {
                const auto k = static_cast<uint64_t>(i - f.int_lo);
                out[r] = (k < f.int_count ? f.ints[k] : i < f.int_lo ? 0U : f.n_values) << 16;
                continue;
            }
        }
        size_t at = f.starts[rank_bucket(v, f.lo, f.scale, f.last)];
        if (W > 0) {
            size_t below = at;
            for (size_t j = 0; j < W; ++j) below += static_cast<size_t>(f.values[at + j] < v);
            out[r] = static_cast<uint32_t>(below) << 16;
        } else {
            for (size_t n = f.window; n > 1;) {
                const size_t half = n / 2;
                at += f.values[at + half] < v ? half : 0;
                n -= half;
            }
            out[r] = static_cast<uint32_t>(at + static_cast<size_t>(f.values[at] < v)) << 16;
        }
    }
}

}  // namespace

void IsolationForest::build_top8() {
    top8_map_.clear();
    top8_map_offset_.clear();
    top8_slots_.clear();
    const size_t d = rank_feature_.size();
    if (rank_node_.empty() || d > 16 * kTop8Chunks) return;
    // The k of slots 1 .. 15 of every tree, per feature, sorted and unique: T'_f.
    std::vector<std::vector<uint32_t>> top(d);
    for (size_t t = 0; t < n_trees(); ++t)
        for (size_t slot = 1; slot < 16 && tree_depth_[t] >= 4; ++slot) {
            const uint32_t word = rank_node_[heap_offset_[t] + slot];
            if ((word >> 16) == kRankLimit) continue;  // padding
            top[(word & 0xFFFF) / kRowsPerTask].push_back(word >> 16);
        }
    for (auto& v : top) {
        std::sort(v.begin(), v.end());
        v.erase(std::unique(v.begin(), v.end()), v.end());
        if (v.size() > 255) return;
    }
    // map_f[rank] = #{k in T'_f : k < rank}: rank > k exactly when map_f[rank] > index of k.
    for (size_t f = 0; f < d; ++f) {
        top8_map_offset_.push_back(top8_map_.size());
        const uint32_t n_ranks = rank_feature_[f].n_values + 1;
        for (uint32_t rank = 0; rank < n_ranks; ++rank)
            top8_map_.push_back(
                static_cast<uint8_t>(std::lower_bound(top[f].begin(), top[f].end(), rank) - top[f].begin()));
    }
    // Per tree, 16 bytes of k' ^ 0x80 (signed compare; slot 0 and padding: 255 ^ 0x80, never
    // below a rank'), then per chunk of 16 features the pshufb control of slots 0-15: the
    // slot's feature within the chunk, or 0x80 (zero) when it is in another chunk.
    top8_chunks_ = (d + 15) / 16;
    const size_t stride = 16 * (1 + top8_chunks_);
    top8_slots_.assign(stride * n_trees(), 0);
    for (size_t t = 0; t < n_trees(); ++t) {
        uint8_t* out = top8_slots_.data() + stride * t;
        for (size_t slot = 0; slot < 16; ++slot) {
            const uint32_t word =
                tree_depth_[t] >= 4 && slot > 0 ? rank_node_[heap_offset_[t] + slot] : kRankLimit << 16;
            const uint32_t f = (word & 0xFFFF) / kRowsPerTask;
            uint32_t k = 255;
            if ((word >> 16) != kRankLimit)
                k = static_cast<uint32_t>(std::lower_bound(top[f].begin(), top[f].end(), word >> 16) - top[f].begin());
            out[slot] = static_cast<uint8_t>(k ^ 0x80U);
            for (size_t c = 0; c < top8_chunks_; ++c)
                out[16 * (1 + c) + slot] = f / 16 == c ? static_cast<uint8_t>(f % 16) : uint8_t{0x80};
        }
    }
}

void IsolationForest::build_rank_layout() {
    rank_top_ = false;
    rank_node_.clear();
    rank_value_.clear();
    rank_start_.clear();
    rank_int_.clear();
    rank_feature_.clear();
    const size_t d = n_features_in_;
    // The feature's block offset and a value's rank must each fit 16 bits.
    if (heap_offset_.empty() || d * kRowsPerTask > kRankLimit + 1) return;
    // Ranking costs every feature of every row; beyond kRankFeatures the heap walk, which reads
    // only the features on the rows' paths, is faster (measured: 1.4x at 128 features, 1.7x at 384).
    if (d > kRankFeatures) return;
    std::vector<std::vector<double>> values(d);
    for (size_t slot = 0; slot < heap_threshold_.size(); ++slot)
        if (heap_threshold_[slot] != kInf) values[heap_feature_[slot] / kRowsPerTask].push_back(heap_threshold_[slot]);
    std::vector<RankFeature> features(d);
    size_t n_values = 0, n_starts = 0;
    for (size_t f = 0; f < d; ++f) {
        auto& v = values[f];
        std::sort(v.begin(), v.end());
        v.erase(std::unique(v.begin(), v.end()), v.end());
        if (v.size() > kRankLimit) return;
        RankFeature& rf = features[f];
        while (rf.buckets < 8 * v.size() && rf.buckets <= kRankLimit) rf.buckets *= 2;
        if (v.size() > 1) {
            const double scale = static_cast<double>(rf.buckets) / (v.back() - v.front());
            if (std::isfinite(scale) && scale > 0.0) {
                rf.lo = v.front();
                rf.scale = scale;
            }
        }
        n_values += 2 * v.size();  // the values and at most as many +inf after them
        n_starts += rf.buckets;
    }
    rank_value_.reserve(n_values);
    rank_start_.reserve(n_starts);
    for (size_t f = 0; f < d; ++f) {
        RankFeature& rf = features[f];
        const auto& v = values[f];
        rf.values = rank_value_.size();
        rf.starts = rank_start_.size();
        rank_start_.resize(rf.starts + rf.buckets, 0);
        // rank_start_[b] = #{values in buckets below b}; window = the fullest bucket.
        std::vector<size_t> in_bucket(rf.buckets, 0);
        for (const double x : v) ++in_bucket[rank_bucket(x, rf.lo, rf.scale, static_cast<double>(rf.buckets - 1))];
        size_t below = 0;
        for (size_t b = 0; b < rf.buckets; ++b) {
            rank_start_[rf.starts + b] = static_cast<uint16_t>(below);
            below += in_bucket[b];
            rf.window = std::max(rf.window, in_bucket[b]);
        }
        rank_value_.insert(rank_value_.end(), v.begin(), v.end());
        rank_value_.insert(rank_value_.end(), rf.window, kInf);
        rf.n_values = static_cast<uint32_t>(v.size());
        // Integer-coded features (counts, categories, 8- or 16-bit sensors) get a table of
        // the rank of every integer between the smallest and the largest split value.
        if (!v.empty() && v.front() > -1e15 && v.back() < 1e15) {
            const double lo = std::floor(v.front()), span = std::ceil(v.back()) - lo + 1.0;
            if (span <= static_cast<double>(kRankIntegers) && span <= 16.0 * static_cast<double>(v.size()) + 4096.0) {
                rf.int_lo = static_cast<int64_t>(lo);
                rf.int_count = static_cast<uint64_t>(span);
                rf.ints = rank_int_.size();
                for (uint64_t i = 0; i < rf.int_count; ++i) {
                    const double value = lo + static_cast<double>(i);
                    rank_int_.push_back(static_cast<uint16_t>(std::lower_bound(v.begin(), v.end(), value) - v.begin()));
                }
            }
        }
    }
    rank_node_.assign(heap_threshold_.size(), kRankLimit << 16);  // padding: never taken right
    size_t most_values = 0;
    for (const auto& v : values) most_values = std::max(most_values, v.size());
    rank_top_ = d <= kTopFeatures && most_values < kSignedPad;
    for (size_t slot = 0; slot < heap_threshold_.size(); ++slot) {
        if (heap_threshold_[slot] == kInf) continue;
        const size_t f = heap_feature_[slot] / kRowsPerTask;
        const auto& v = values[f];
        const auto k = static_cast<uint32_t>(std::lower_bound(v.begin(), v.end(), heap_threshold_[slot]) - v.begin());
        rank_node_[slot] = (k << 16) | heap_feature_[slot];
    }
    rank_feature_ = std::move(features);
    build_top8();
    // The double copy is no longer walked.
    heap_threshold_ = {};
    heap_feature_ = {};
}

namespace {

// One step of the heap walk: at = 2 * at + (x > threshold). On x86-64 the
// compare sets the carry flag exactly when threshold < x and `adc` doubles and
// adds it: four instructions, against seven for what the compiler makes of it. x may sit
// in a register ("xm"): the walks pass a converted value (a cast of the row's element),
// which "m" alone forced through a stack slot, a store and a reload on every level's
// dependent chain (20% of the walk at 300k x 500).
inline uint64_t heap_step(uint64_t at, double threshold, const double& x) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    asm("comisd %[x], %[t]\n\tadc %[at], %[at]" : [at] "+r"(at) : [t] "x"(threshold), [x] "xm"(x) : "cc");
    return at;
#else
    return 2 * at + static_cast<uint64_t>(x > threshold);
#endif
}

// heap_step on float32 rows: threshold is the split value rounded down to a float (see
// walk_path_sum), and for a float x, x > that float exactly when double(x) > the split value.
inline uint64_t heap_step(uint64_t at, float threshold, const float& x) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    asm("comiss %[x], %[t]\n\tadc %[at], %[at]" : [at] "+r"(at) : [t] "x"(threshold), [x] "xm"(x) : "cc");
    return at;
#else
    return 2 * at + static_cast<uint64_t>(x > threshold);
#endif
}

// Walks Rows rows down one tree in heap layout: the child of slot h is 2h + (x > threshold),
// so a step is two loads from the tree, one from the row and a compare, with no branch and no
// child index to load. The rows are read in place (row r at rows[r], features col_stride
// apart): a row reads only the features on its paths, where a copy to a feature-major block
// converted every feature of every row (60% of the time at 500 features).
template <size_t Rows, typename T>
inline void heap_walk_rows(const double* thresholds, const uint32_t* features, const double* leaves, unsigned depth,
                           const T* const* rows, std::ptrdiff_t col_stride, double* acc) {
    uint64_t at[Rows];
    for (size_t r = 0; r < Rows; ++r) at[r] = 1;
    for (unsigned s = 0; s < depth; ++s) {
#pragma GCC unroll 16
        for (size_t r = 0; r < Rows; ++r) {
            const auto feature = static_cast<std::ptrdiff_t>(features[at[r]] / kRowsPerTask);
            const auto x = static_cast<double>(rows[r][feature * col_stride]);
            at[r] = heap_step(at[r], thresholds[at[r]], x);
        }
    }
    leaves -= size_t{1} << depth;
#pragma GCC unroll 16
    for (size_t r = 0; r < Rows; ++r) acc[r] += leaves[at[r]];
}

// Where heap_walk reads row r's value of a slot's feature (off: the feature's element offset
// into a row, the feature times the column stride). Rows anywhere, one pointer each:
template <typename T>
struct RowPointers {
    const T* const* rows;
    const T& operator()(std::ptrdiff_t off, size_t r) const { return rows[r][off]; }
};

// Rows one element apart (Fortran order): row r's value is x0[off + r], so every row shares
// one base register and its own constant displacement, where row pointers (one register
// each) would not fit the registers beside the rows' slots.
template <typename T>
struct UnitRows {
    const T* x0;
    const T& operator()(std::ptrdiff_t off, size_t r) const { return x0[off + static_cast<std::ptrdiff_t>(r)]; }
};

// heap_walk_rows with each slot's feature as an element offset into the row (made per call):
// no shift and multiply between the node's load and the row's. `fetch` reads the rows
// (RowPointers or UnitRows: the same code, measured as fast as the two copies it replaced).
template <size_t Rows, unsigned Depth = 0, typename Th, typename Fetch>
inline void heap_walk(const Th* thresholds, const int32_t* offsets, const double* leaves, unsigned depth,
                      const Fetch& fetch, double* acc) {
    uint64_t at[Rows];
    for (size_t r = 0; r < Rows; ++r) at[r] = 1;
    const unsigned levels = Depth > 0 ? Depth : depth;
#pragma GCC unroll 16
    for (unsigned s = 0; s < levels; ++s) {
#pragma GCC unroll 16
        for (size_t r = 0; r < Rows; ++r) {
            const auto x = static_cast<Th>(fetch(static_cast<std::ptrdiff_t>(offsets[at[r]]), r));
            at[r] = heap_step(at[r], thresholds[at[r]], x);
        }
    }
    leaves -= size_t{1} << levels;
#pragma GCC unroll 16
    for (size_t r = 0; r < Rows; ++r) acc[r] += leaves[at[r]];
}

#ifdef ANOMALY_AVX2_TOP
// heap_walk on UnitRows for float64 rows one element apart (Fortran order) and trees of depth Depth,
// with levels 0-2 taken by AVX2 for 4 rows at a time: in Fortran order 4 rows' values of one
// feature are one load, so all 7 top slots of the tree are compared by vector (the value and
// the split of level 1 and 2 picked by blends on the outcomes above) and each row starts the
// scalar walk at its level-3 slot. The same compare (x > threshold, ordered: the tile is
// checked finite first; padding slots hold +inf), so the same path, bit for bit.
template <unsigned Depth>
__attribute__((target("avx2"))) inline void heap_walk_unit_top3(const double* thresholds, const int32_t* offsets,
                                                                const double* leaves, const double* x0, double* acc) {
    static_assert(Depth > 3, "the vector levels are 0-2");
    constexpr size_t Rows = kHeapWalk;
    const __m256d t1 = _mm256_set1_pd(thresholds[1]), t2 = _mm256_set1_pd(thresholds[2]),
                  t3 = _mm256_set1_pd(thresholds[3]), t4 = _mm256_set1_pd(thresholds[4]),
                  t5 = _mm256_set1_pd(thresholds[5]), t6 = _mm256_set1_pd(thresholds[6]),
                  t7 = _mm256_set1_pd(thresholds[7]);
    const double *c1 = x0 + offsets[1], *c2 = x0 + offsets[2], *c3 = x0 + offsets[3], *c4 = x0 + offsets[4],
                 *c5 = x0 + offsets[5], *c6 = x0 + offsets[6], *c7 = x0 + offsets[7];
    alignas(32) uint64_t start[Rows];
    const __m256i eight = _mm256_set1_epi64x(8);
#pragma GCC unroll 4
    for (size_t k = 0; k < Rows; k += 4) {
        const __m256d m0 = _mm256_cmp_pd(_mm256_loadu_pd(c1 + k), t1, _CMP_GT_OQ);
        const __m256d m1 = _mm256_cmp_pd(_mm256_blendv_pd(_mm256_loadu_pd(c2 + k), _mm256_loadu_pd(c3 + k), m0),
                                         _mm256_blendv_pd(t2, t3, m0), _CMP_GT_OQ);
        const __m256d x2 = _mm256_blendv_pd(_mm256_blendv_pd(_mm256_loadu_pd(c4 + k), _mm256_loadu_pd(c5 + k), m1),
                                            _mm256_blendv_pd(_mm256_loadu_pd(c6 + k), _mm256_loadu_pd(c7 + k), m1), m0);
        const __m256d th2 = _mm256_blendv_pd(_mm256_blendv_pd(t4, t5, m1), _mm256_blendv_pd(t6, t7, m1), m0);
        const __m256d m2 = _mm256_cmp_pd(x2, th2, _CMP_GT_OQ);
        // 8 + 4 b0 + 2 b1 + b2, each mask lane 0 or -1.
        __m256i at = _mm256_sub_epi64(eight, _mm256_slli_epi64(_mm256_castpd_si256(m0), 2));
        at = _mm256_sub_epi64(at, _mm256_slli_epi64(_mm256_castpd_si256(m1), 1));
        at = _mm256_sub_epi64(at, _mm256_castpd_si256(m2));
        _mm256_store_si256(reinterpret_cast<__m256i*>(start + k), at);
    }
    uint64_t at[Rows];
    for (size_t r = 0; r < Rows; ++r) at[r] = start[r];
#pragma GCC unroll 16
    for (unsigned s = 3; s < Depth; ++s) {
#pragma GCC unroll 16
        for (size_t r = 0; r < Rows; ++r) {
            const double x = x0[static_cast<std::ptrdiff_t>(offsets[at[r]]) + static_cast<std::ptrdiff_t>(r)];
            at[r] = heap_step(at[r], thresholds[at[r]], x);
        }
    }
    leaves -= size_t{1} << Depth;
#pragma GCC unroll 16
    for (size_t r = 0; r < Rows; ++r) acc[r] += leaves[at[r]];
}
#endif  // ANOMALY_AVX2_TOP

// One step of the rank walk: at = 2 * at + (node's rank < the row's rank), the row's
// rank read at the feature offset in the node's low 16 bits. As in heap_step, the
// compare leaves the carry for `adc`: two loads, a zero-extension, a compare and an add.
inline uint64_t rank_step(uint64_t at, uint32_t node, const uint32_t* row) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    asm("cmpl %[x], %[n]\n\tadc %[at], %[at]" : [at] "+r"(at) : [n] "r"(node), [x] "m"(row[node & 0xFFFF]) : "cc");
    return at;
#else
    return 2 * at + static_cast<uint64_t>(node < row[node & 0xFFFF]);
#endif
}

// Walks Rows rows of a rank block down one tree (nodes and leaves in heap order). With
// Depth > 0 (8 is max_samples="auto"'s) the depth is known at compile time, so every
// level is unrolled and no loop counter stays live; Depth 0 reads it from `depth`.
template <size_t Rows, unsigned Depth>
inline void rank_walk(const uint32_t* nodes, const double* leaves, unsigned depth, const uint32_t* ranks, double* acc) {
    const unsigned levels = Depth > 0 ? Depth : depth;
    uint64_t at[Rows];
    for (size_t r = 0; r < Rows; ++r) at[r] = 1;
#pragma GCC unroll 16
    for (unsigned s = 0; s < levels; ++s) {
#pragma GCC unroll 16
        for (size_t r = 0; r < Rows; ++r) at[r] = rank_step(at[r], nodes[at[r]], ranks + r);
    }
    leaves -= size_t{1} << levels;
#pragma GCC unroll 16
    for (size_t r = 0; r < Rows; ++r) acc[r] += leaves[at[r]];
}

#ifdef ANOMALY_AVX2_TOP

// Heap slot at level 3 (8 .. 15) reached from the outcomes of slots 1 .. 7 (bit h - 1 set:
// slot h goes right), as the walk takes them: at = 2 at + bit(at - 1), three times.
constexpr std::array<uint8_t, 128> kLevel3 = [] {
    std::array<uint8_t, 128> out{};
    for (unsigned m = 0; m < 128; ++m) {
        unsigned at = 1;
        for (int s = 0; s < 3; ++s) at = 2 * at + ((m >> (at - 1)) & 1U);
        out[m] = static_cast<uint8_t>(at);
    }
    return out;
}();

// Levels of each tree compared at once (slots 1 .. 31, two registers of 16 words); 4 levels
// (one register) measured 5-10% slower on mammography, the same on shuttle.
constexpr unsigned kTopLevels = 5;

// Slots 0 .. 31 of one tree for the top levels, one 16-bit word per slot in two registers:
// `lo` holds slots 0-7 and 16-23, `hi` slots 8-15 and 24-31 (so that packing the two
// compares to bytes puts slot s at bit s of the mask). Per register: the pshufb control that
// picks each slot's feature from a row's 16-bit ranks (features 0-7 in both 128-bit halves;
// with Wide, features 8-15 from a second register, chosen where `high` is set), and each
// slot's k. Padding slots (and the unused slot 0) get k = 0x7FFF, above every rank.
struct TopSlots {
    __m256i pick_lo, high_lo, k_lo, pick_hi, high_hi, k_hi;
};

__attribute__((target("avx2"))) inline TopSlots top_slots(const uint32_t* nodes) {
    alignas(32) uint8_t pick[2][32], high[2][32];
    alignas(32) int16_t k[2][16];
    for (size_t v = 0; v < 2; ++v)
        for (size_t w = 0; w < 16; ++w) {
            const size_t slot = (w < 8 ? w : w + 8) + 8 * v;
            const uint32_t word = slot == 0 ? kSignedPad << 16 : nodes[slot];
            const uint32_t f = (word & 0xFFFF) / kRowsPerTask;
            pick[v][2 * w] = static_cast<uint8_t>(2 * (f % 8));
            pick[v][2 * w + 1] = static_cast<uint8_t>(2 * (f % 8) + 1);
            high[v][2 * w] = high[v][2 * w + 1] = f >= 8 ? 0x80 : 0;
            k[v][w] = static_cast<int16_t>(std::min(word >> 16, kSignedPad));
        }
    return {_mm256_load_si256(reinterpret_cast<const __m256i*>(pick[0])),
            _mm256_load_si256(reinterpret_cast<const __m256i*>(high[0])),
            _mm256_load_si256(reinterpret_cast<const __m256i*>(k[0])),
            _mm256_load_si256(reinterpret_cast<const __m256i*>(pick[1])),
            _mm256_load_si256(reinterpret_cast<const __m256i*>(high[1])),
            _mm256_load_si256(reinterpret_cast<const __m256i*>(k[1]))};
}

// Levels 0 .. kTopLevels - 1 of one row: the comparisons of slots 1 .. 2^kTopLevels - 1 at
// once (rank > k as signed 16-bit words: both below 2^15, the same outcome as the scalar
// walk's compare), then the path through them: the slot at level 3 from the table, each
// further level by `bt` (the mask has slot s's outcome at bit s) and `adc`. Returns the slot
// at level kTopLevels. row: the row's ranks as 16-bit words, 8 or 16 of them.
template <bool Wide>
__attribute__((target("avx2"))) inline uint64_t top_levels(const TopSlots& s, const uint16_t* row) {
    const __m256i low = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(row)));
    __m256i r_lo = _mm256_shuffle_epi8(low, s.pick_lo);
    __m256i r_hi = _mm256_shuffle_epi8(low, s.pick_hi);
    if (Wide) {
        const __m256i up = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(row + 8)));
        r_lo = _mm256_blendv_epi8(r_lo, _mm256_shuffle_epi8(up, s.pick_lo), s.high_lo);
        r_hi = _mm256_blendv_epi8(r_hi, _mm256_shuffle_epi8(up, s.pick_hi), s.high_hi);
    }
    const uint64_t m = static_cast<uint32_t>(
        _mm256_movemask_epi8(_mm256_packs_epi16(_mm256_cmpgt_epi16(r_lo, s.k_lo), _mm256_cmpgt_epi16(r_hi, s.k_hi))));
    uint64_t at = kLevel3[(m >> 1) & 0x7F];
    for (unsigned level = 3; level < kTopLevels; ++level)
        asm("bt %[at], %[m]\n\tadc %[at], %[at]" : [at] "+r"(at) : [m] "r"(m) : "cc");
    return at;
}

// rank_walk with levels 0-4 from top_levels: Rows rows of the block (ranks: feature-major,
// rank << 16; row_ranks: 8 or 16 plain ranks per row) down one tree of depth >= 5.
template <size_t Rows, unsigned Depth, bool Wide>
__attribute__((target("avx2"))) inline void top_walk(const TopSlots& slots, const uint32_t* nodes, const double* leaves,
                                                     unsigned depth, const uint32_t* ranks, const uint16_t* row_ranks,
                                                     double* acc) {
    constexpr size_t kLanes = Wide ? 16 : 8;
    const unsigned levels = Depth > 0 ? Depth : depth;
    uint64_t at[Rows];
#pragma GCC unroll 16
    for (size_t r = 0; r < Rows; ++r) at[r] = top_levels<Wide>(slots, row_ranks + r * kLanes);
#pragma GCC unroll 16
    for (unsigned s = kTopLevels; s < levels; ++s) {
#pragma GCC unroll 16
        for (size_t r = 0; r < Rows; ++r) at[r] = rank_step(at[r], nodes[at[r]], ranks + r);
    }
    leaves -= size_t{1} << levels;
#pragma GCC unroll 16
    for (size_t r = 0; r < Rows; ++r) acc[r] += leaves[at[r]];
}

template <unsigned Depth, bool Wide>
__attribute__((target("avx2"))) inline void top_tree(const uint32_t* nodes, const double* leaves, unsigned depth,
                                                     const uint32_t* ranks, const uint16_t* row_ranks, size_t count,
                                                     double* acc) {
    constexpr size_t kLanes = Wide ? 16 : 8;
    const TopSlots slots = top_slots(nodes);
    size_t r0 = 0;
    for (; r0 + kRankWalk <= count; r0 += kRankWalk)
        top_walk<kRankWalk, Depth, Wide>(slots, nodes, leaves, depth, ranks + r0, row_ranks + r0 * kLanes, acc + r0);
    for (; r0 < count; ++r0)
        top_walk<1, 0, Wide>(slots, nodes, leaves, depth, ranks + r0, row_ranks + r0 * kLanes, acc + r0);
}

// Levels 0-3 from 8-bit "top ranks": row holds, per feature, #{k of slots 1-15 of any tree
// below the row's rank} ^ 0x80 (16 bytes); slots: the tree's 16 features and k' ^ 0x80.
// rank > k exactly when rank' > k': one pshufb, one byte compare, one mask. Returns the slot
// at level 4.
template <size_t Chunks>
__attribute__((target("avx2"))) inline uint64_t top8_levels(const __m128i* pick, __m128i k, const uint8_t* row) {
    __m128i r = _mm_shuffle_epi8(_mm_load_si128(reinterpret_cast<const __m128i*>(row)), pick[0]);
    for (size_t c = 1; c < Chunks; ++c)
        r = _mm_or_si128(r, _mm_shuffle_epi8(_mm_load_si128(reinterpret_cast<const __m128i*>(row + 16 * c)), pick[c]));
    const auto m = static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpgt_epi8(r, k))));
    uint64_t at = kLevel3[(m >> 1) & 0x7F];
    asm("bt %[at], %[m]\n\tadc %[at], %[at]" : [at] "+r"(at) : [m] "r"(m) : "cc");
    return at;
}

template <size_t Rows, unsigned Depth, size_t Chunks>
__attribute__((target("avx2"))) inline void top8_walk(const __m128i* pick, __m128i k, const uint32_t* nodes,
                                                      const double* leaves, unsigned depth, const uint32_t* ranks,
                                                      const uint8_t* rows8, double* acc) {
    const unsigned levels = Depth > 0 ? Depth : depth;
    uint64_t at[Rows];
#pragma GCC unroll 16
    for (size_t r = 0; r < Rows; ++r) at[r] = top8_levels<Chunks>(pick, k, rows8 + 16 * Chunks * r);
#pragma GCC unroll 16
    for (unsigned s = 4; s < levels; ++s) {
#pragma GCC unroll 16
        for (size_t r = 0; r < Rows; ++r) at[r] = rank_step(at[r], nodes[at[r]], ranks + r);
    }
    leaves -= size_t{1} << levels;
#pragma GCC unroll 16
    for (size_t r = 0; r < Rows; ++r) acc[r] += leaves[at[r]];
}

template <unsigned Depth, size_t Chunks>
__attribute__((target("avx2"))) inline void top8_tree(const uint8_t* slots, const uint32_t* nodes, const double* leaves,
                                                      unsigned depth, const uint32_t* ranks, const uint8_t* rows8,
                                                      size_t count, double* acc) {
    const __m128i k = _mm_loadu_si128(reinterpret_cast<const __m128i*>(slots));
    __m128i pick[Chunks];
    for (size_t c = 0; c < Chunks; ++c)
        pick[c] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(slots + 16 * (1 + c)));
    constexpr size_t kRow = 16 * Chunks;
    size_t r0 = 0;
    for (; r0 + kRankWalk <= count; r0 += kRankWalk)
        top8_walk<kRankWalk, Depth, Chunks>(pick, k, nodes, leaves, depth, ranks + r0, rows8 + kRow * r0, acc + r0);
    for (; r0 < count; ++r0)
        top8_walk<1, 0, Chunks>(pick, k, nodes, leaves, depth, ranks + r0, rows8 + kRow * r0, acc + r0);
}

template <size_t Chunks>
__attribute__((target("avx2"))) void top8_forest(const uint8_t* slots, const uint32_t* nodes, const double* leaves,
                                                 const size_t* offsets, const uint8_t* depths, size_t n_trees,
                                                 const uint32_t* ranks, const uint8_t* rows8, size_t count,
                                                 double* acc) {
    for (size_t t = 0; t < n_trees; ++t) {
        const uint32_t* tn = nodes + offsets[t];
        const double* tl = leaves + offsets[t];
        const uint8_t* ts = slots + 16 * (1 + Chunks) * t;
        const unsigned depth = depths[t];
        switch (depth) {
            case 6:
                top8_tree<6, Chunks>(ts, tn, tl, depth, ranks, rows8, count, acc);
                break;
            case 7:
                top8_tree<7, Chunks>(ts, tn, tl, depth, ranks, rows8, count, acc);
                break;
            case 8:
                top8_tree<8, Chunks>(ts, tn, tl, depth, ranks, rows8, count, acc);
                break;
            case 9:
                top8_tree<9, Chunks>(ts, tn, tl, depth, ranks, rows8, count, acc);
                break;
            case 10:
                top8_tree<10, Chunks>(ts, tn, tl, depth, ranks, rows8, count, acc);
                break;
            default:
                if (depth >= 4) {
                    top8_tree<0, Chunks>(ts, tn, tl, depth, ranks, rows8, count, acc);
                } else {
                    for (size_t r = 0; r < count; ++r) rank_walk<1, 0>(tn, tl, depth, ranks + r, acc + r);
                }
        }
    }
}

// Adds the leaves of every tree, in order, to acc[0 .. count): trees of depth >= 5 through
// top_walk, shallower ones through rank_walk. Same comparisons, same path, same sums.
template <bool Wide>
__attribute__((target("avx2"))) void top_forest(const uint32_t* nodes, const double* leaves, const size_t* offsets,
                                                const uint8_t* depths, size_t n_trees, const uint32_t* ranks,
                                                const uint16_t* row_ranks, size_t count, double* acc) {
    for (size_t t = 0; t < n_trees; ++t) {
        const uint32_t* tn = nodes + offsets[t];
        const double* tl = leaves + offsets[t];
        const unsigned depth = depths[t];
        switch (depth) {
            case 6:
                top_tree<6, Wide>(tn, tl, depth, ranks, row_ranks, count, acc);
                break;
            case 7:
                top_tree<7, Wide>(tn, tl, depth, ranks, row_ranks, count, acc);
                break;
            case 8:
                top_tree<8, Wide>(tn, tl, depth, ranks, row_ranks, count, acc);
                break;
            case 9:
                top_tree<9, Wide>(tn, tl, depth, ranks, row_ranks, count, acc);
                break;
            case 10:
                top_tree<10, Wide>(tn, tl, depth, ranks, row_ranks, count, acc);
                break;
            default:
                if (depth >= kTopLevels) {
                    top_tree<0, Wide>(tn, tl, depth, ranks, row_ranks, count, acc);
                } else {
                    for (size_t r = 0; r < count; ++r) rank_walk<1, 0>(tn, tl, depth, ranks + r, acc + r);
                }
        }
    }
}

#endif  // ANOMALY_AVX2_TOP

// Walks kWalk rows of a feature-major block (value of feature f of row r at
// rows[f * kRowsPerTask + r]) down one tree. The loop over rows is unrolled so
// that the rows' positions live in registers and their loads overlap; the
// feature-major block turns the address of a value into a shift and an offset.
template <size_t Rows>
inline void walk(const IsolationNode* nodes, const double* values, unsigned steps, const double* rows, double* acc) {
    uint32_t at[Rows] = {};
    for (unsigned s = 0; s < steps; ++s) {
#pragma GCC unroll 16
        for (size_t r = 0; r < Rows; ++r) {
            const IsolationNode& node = nodes[at[r]];
            at[r] = node.left + static_cast<uint32_t>(rows[node.feature * kRowsPerTask + r] > node.threshold);
        }
    }
#pragma GCC unroll 16
    for (size_t r = 0; r < Rows; ++r) acc[r] += values[at[r]];
}

}  // namespace

template <typename T>
void IsolationForest::rank_block(const T* x0, std::ptrdiff_t row_stride, std::ptrdiff_t col_stride, size_t count,
                                 uint32_t* ranks) const {
    // Values are read in place, row by row: a feature-major copy first measured slower,
    // even for 36 features.
    const size_t d = rank_feature_.size();
    for (size_t f = 0; f < d; ++f) {
        const RankFeature& rf = rank_feature_[f];
        uint32_t* out = ranks + f * kRowsPerTask;
        const T* x = x0 + static_cast<std::ptrdiff_t>(f) * col_stride;
        const std::ptrdiff_t stride = row_stride;
        const RankView view{rank_value_.data() + rf.values,
                            rank_start_.data() + rf.starts,
                            rf.int_count > 0 ? rank_int_.data() + rf.ints : nullptr,
                            rf.lo,
                            rf.scale,
                            static_cast<double>(rf.buckets - 1),
                            rf.int_lo,
                            rf.int_count,
                            rf.n_values,
                            rf.window};
        switch (rf.window) {
            case 0:
                std::fill(out, out + count, 0U);
                break;  // no split reads this feature
            case 1:
                rank_values<1>(view, x, stride, count, out);
                break;
            case 2:
                rank_values<2>(view, x, stride, count, out);
                break;
            case 3:
                rank_values<3>(view, x, stride, count, out);
                break;
            case 4:
                rank_values<4>(view, x, stride, count, out);
                break;
            case 5:
                rank_values<5>(view, x, stride, count, out);
                break;
            case 6:
                rank_values<6>(view, x, stride, count, out);
                break;
            default:
                rank_values<0>(view, x, stride, count, out);
        }
    }
}

template <typename T>
void IsolationForest::rank_path_sum(const T* X, size_t n, std::ptrdiff_t row_stride, std::ptrdiff_t col_stride,
                                    double* out, unsigned n_threads) const {
    const size_t d = rank_feature_.size();
    const size_t n_tasks = (n + kRowsPerTask - 1) / kRowsPerTask;
    [[maybe_unused]] const bool top = uses_vector_walk();
    parallel_for(n_tasks, resolve_threads(n_threads), [&](size_t task, unsigned) {
        const size_t begin = task * kRowsPerTask, count = std::min(n, begin + kRowsPerTask) - begin;
        double* acc = out + begin;
        std::fill(acc, acc + count, 0.0);
        // Float rows are checked here, while the block is about to be read anyway: one pass over X.
        check_finite(X, begin, begin + count, d, row_stride, col_stride);
        std::vector<uint32_t> ranks(d * kRowsPerTask);
        rank_block(X + static_cast<std::ptrdiff_t>(begin) * row_stride, row_stride, col_stride, count, ranks.data());
#ifdef ANOMALY_AVX2_TOP
        if (top && !top8_slots_.empty()) {
            // Each row's 8-bit top ranks (^ 0x80), 16 bytes per chunk of 16 features.
            const size_t row_bytes = 16 * top8_chunks_;
            alignas(32) uint8_t rows8[kRowsPerTask * 16 * kTop8Chunks] = {};  // bytes past d: never picked
            for (size_t f = 0; f < d; ++f) {
                const uint8_t* map = top8_map_.data() + top8_map_offset_[f];
                for (size_t r = 0; r < count; ++r)
                    rows8[r * row_bytes + f] = static_cast<uint8_t>(map[ranks[f * kRowsPerTask + r] >> 16] ^ 0x80U);
            }
            const auto forest = top8_chunks_ == 1   ? top8_forest<1>
                                : top8_chunks_ == 2 ? top8_forest<2>
                                : top8_chunks_ == 3 ? top8_forest<3>
                                                    : top8_forest<4>;
            forest(top8_slots_.data(), rank_node_.data(), heap_leaf_.data(), heap_offset_.data(), tree_depth_.data(),
                   n_trees(), ranks.data(), rows8, count, acc);
            return;
        }
        if (top && rank_top_) {
            // Each row's plain ranks, 8 or 16 lanes (zero past d), for the AVX2 top levels.
            const size_t lanes = d > 8 ? 16 : 8;
            alignas(32) uint16_t row_ranks[kRowsPerTask * kTopFeatures] = {};
            for (size_t f = 0; f < d; ++f)
                for (size_t r = 0; r < count; ++r)
                    row_ranks[r * lanes + f] = static_cast<uint16_t>(ranks[f * kRowsPerTask + r] >> 16);
            if (lanes == 16)
                top_forest<true>(rank_node_.data(), heap_leaf_.data(), heap_offset_.data(), tree_depth_.data(),
                                 n_trees(), ranks.data(), row_ranks, count, acc);
            else
                top_forest<false>(rank_node_.data(), heap_leaf_.data(), heap_offset_.data(), tree_depth_.data(),
                                  n_trees(), ranks.data(), row_ranks, count, acc);
            return;
        }
#endif
        for (size_t t = 0; t < n_trees(); ++t) {
            const uint32_t* nodes = rank_node_.data() + heap_offset_[t];
            const double* leaves = heap_leaf_.data() + heap_offset_[t];
            const unsigned depth = tree_depth_[t];
            size_t r0 = 0;
            for (; r0 + kRankWalk <= count; r0 += kRankWalk) {
                const uint32_t* rows = ranks.data() + r0;
                switch (depth) {
                    case 6:
                        rank_walk<kRankWalk, 6>(nodes, leaves, depth, rows, acc + r0);
                        break;
                    case 7:
                        rank_walk<kRankWalk, 7>(nodes, leaves, depth, rows, acc + r0);
                        break;
                    case 8:
                        rank_walk<kRankWalk, 8>(nodes, leaves, depth, rows, acc + r0);
                        break;
                    case 9:
                        rank_walk<kRankWalk, 9>(nodes, leaves, depth, rows, acc + r0);
                        break;
                    case 10:
                        rank_walk<kRankWalk, 10>(nodes, leaves, depth, rows, acc + r0);
                        break;
                    default:
                        rank_walk<kRankWalk, 0>(nodes, leaves, depth, rows, acc + r0);
                }
            }
            for (; r0 < count; ++r0) rank_walk<1, 0>(nodes, leaves, depth, ranks.data() + r0, acc + r0);
        }
    });
}

template <typename T>
void IsolationForest::walk_path_sum(const StridedRows<T>& X, double* out, unsigned n_threads) const {
    const size_t n = X.rows, d = X.cols;
    const size_t n_tasks = (n + kRowsPerTask - 1) / kRowsPerTask;
    // Each heap slot's feature as an element offset into a row (feature x column stride),
    // made per call: the walk then loads a row's value straight from the node's word, with
    // no shift and multiply in between. When an offset could overflow 32 bits, the
    // features and the stride as they are.
    std::vector<int32_t> offsets;
    if (!heap_offset_.empty() && X.col_stride > 0 &&
        static_cast<double>(d) * static_cast<double>(X.col_stride) < static_cast<double>(INT32_MAX)) {
        offsets.resize(heap_feature_.size());
        for (size_t i = 0; i < offsets.size(); ++i)
            offsets[i] =
                static_cast<int32_t>(static_cast<std::ptrdiff_t>(heap_feature_[i] / kRowsPerTask) * X.col_stride);
    }
    // float32 rows compare as floats: each split value t rounded down to a float t' (t' <= t <
    // the next float), so that for a float x, x > t' exactly when double(x) > t. Half the bytes
    // per slot, and no conversion on the walk's dependent chain. Made per call, as the offsets.
    using Th = std::conditional_t<std::is_same_v<T, float>, float, double>;
    std::vector<Th> thresholds_f;
    if constexpr (std::is_same_v<T, float>) {
        if (!offsets.empty()) {
            thresholds_f.resize(heap_threshold_.size());
            for (size_t i = 0; i < thresholds_f.size(); ++i) {
                const double t = heap_threshold_[i];
                float f = static_cast<float>(t);
                if (static_cast<double>(f) > t) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
                thresholds_f[i] = f;
            }
        }
    }
    // Fortran-ordered float64: the top 3 levels by AVX2 (heap_walk_unit_top3), unless the
    // forest is told to keep the scalar walk (set_vector_walk(false)).
    [[maybe_unused]] const bool top3 = vector_walk_ && vector_walk_supported();
    parallel_for(n_tasks, resolve_threads(n_threads), [&](size_t task, unsigned) {
        const size_t begin = task * kRowsPerTask, count = std::min(n, begin + kRowsPerTask) - begin;
        double* acc = out + begin;
        std::fill(acc, acc + count, 0.0);
        if (!heap_offset_.empty()) {
            // Tiles of rows read in place. While the trees walk one tile, the lines
            // of the next (also past this task's rows) are prefetched, a few per tree, so the
            // finiteness check of the next tile (the first read of its values) finds them in
            // cache instead of waiting on memory (in Fortran order a tile is d runs of a few
            // lines each, which the hardware prefetcher does not follow).
            const bool by_cols = X.col_stride > X.row_stride;
            // In Fortran order a tile is the same bytes per column whatever the type (512: 64
            // float64 or 128 float32 rows; float32 Fortran at 64 rows: 0.19-0.21 s against 0.17-0.18 s
            // at 300k x 500); C order 64 rows (128 slower, 32 no better for float64 Fortran).
            const size_t tile = by_cols ? std::min(kRowsPerTask, kHeapTile * sizeof(double) / sizeof(T)) : kHeapTile;
            for (size_t t0 = 0; t0 < count; t0 += tile) {
                const size_t rows_here = std::min(tile, count - t0);
                check_finite(X.data, begin + t0, begin + t0 + rows_here, d, X.row_stride, X.col_stride);
                const T* x0 = X.data + static_cast<std::ptrdiff_t>(begin + t0) * X.row_stride;
                const T* rows[kRowsPerTask];
                for (size_t r = 0; r < rows_here; ++r) rows[r] = x0 + static_cast<std::ptrdiff_t>(r) * X.row_stride;
                const size_t next = begin + t0 + rows_here;
                const size_t next_rows = next < n ? std::min(tile, n - next) : 0;
                const size_t runs = next_rows == 0 ? 0 : by_cols ? d : next_rows;
                // A run's lines exactly: from the line of its first byte to that of its last.
                const size_t run_bytes = (by_cols ? next_rows : d) * sizeof(T);
                const std::ptrdiff_t run_stride = by_cols ? X.col_stride : X.row_stride;
                const T* next_x = X.data + static_cast<std::ptrdiff_t>(next) * X.row_stride;
                const size_t runs_per_tree = (runs + n_trees() - 1) / n_trees();
                size_t run = 0;
                double* acc_t = acc + t0;
                for (size_t t = 0; t < n_trees(); ++t) {
                    for (size_t q = 0; q < runs_per_tree && run < runs; ++q, ++run) {
                        const auto first =
                            reinterpret_cast<uintptr_t>(next_x + static_cast<std::ptrdiff_t>(run) * run_stride);
                        for (uintptr_t line = first & ~uintptr_t{63}; line < first + run_bytes; line += 64)
                            __builtin_prefetch(reinterpret_cast<const char*>(line), 0, 2);
                    }
                    const size_t base = heap_offset_[t];
                    const double* thresholds = heap_threshold_.data() + base;
                    const double* leaves = heap_leaf_.data() + base;
                    const unsigned depth = tree_depth_[t];
                    size_t r0 = 0;
                    if (!offsets.empty()) {
                        const int32_t* off = offsets.data() + base;
                        const Th* thresholds_t;
                        if constexpr (std::is_same_v<T, float>)
                            thresholds_t = thresholds_f.data() + base;
                        else
                            thresholds_t = thresholds;
#ifdef ANOMALY_AVX2_TOP
                        // Fortran-ordered float64, depth 8: levels 0-2 by AVX2, then the scalar walk.
                        if constexpr (std::is_same_v<T, double>) {
                            if (top3 && X.row_stride == 1 && depth == 8)
                                for (; r0 + kHeapWalk <= rows_here; r0 += kHeapWalk)
                                    heap_walk_unit_top3<8>(thresholds_t, off, leaves, rows[r0], acc_t + r0);
                        }
#endif
                        // Depth 8 (max_samples="auto") unrolled: no loop counter, and the first
                        // levels' slots known at compile time. Fortran order: one base register and
                        // constant row displacements.
                        if (X.row_stride == 1 && depth == 8)
                            for (; r0 + kHeapWalk <= rows_here; r0 += kHeapWalk)
                                heap_walk<kHeapWalk, 8>(thresholds_t, off, leaves, depth, UnitRows<T>{rows[r0]},
                                                        acc_t + r0);
                        if (X.row_stride == 1)
                            for (; r0 + kHeapWalk <= rows_here; r0 += kHeapWalk)
                                heap_walk<kHeapWalk>(thresholds_t, off, leaves, depth, UnitRows<T>{rows[r0]},
                                                     acc_t + r0);
                        if (depth == 8)
                            for (; r0 + kHeapWalk <= rows_here; r0 += kHeapWalk)
                                heap_walk<kHeapWalk, 8>(thresholds_t, off, leaves, depth, RowPointers<T>{rows + r0},
                                                        acc_t + r0);
                        for (; r0 + kHeapWalk <= rows_here; r0 += kHeapWalk)
                            heap_walk<kHeapWalk>(thresholds_t, off, leaves, depth, RowPointers<T>{rows + r0},
                                                 acc_t + r0);
                        for (; r0 < rows_here; ++r0)
                            heap_walk<1>(thresholds_t, off, leaves, depth, RowPointers<T>{rows + r0}, acc_t + r0);
                        continue;
                    }
                    const uint32_t* features = heap_feature_.data() + base;
                    for (; r0 + kHeapWalk <= rows_here; r0 += kHeapWalk)
                        heap_walk_rows<kHeapWalk>(thresholds, features, leaves, depth, rows + r0, X.col_stride,
                                                  acc_t + r0);
                    for (; r0 < rows_here; ++r0)
                        heap_walk_rows<1>(thresholds, features, leaves, depth, rows + r0, X.col_stride, acc_t + r0);
                }
            }
            return;
        }
        check_finite(X.data, begin, begin + count, d, X.row_stride, X.col_stride);
        std::vector<double> block(d * kRowsPerTask);
        const T* x0 = X.data + static_cast<std::ptrdiff_t>(begin) * X.row_stride;
        const auto value = [&](size_t r, size_t j) {
            return static_cast<double>(
                x0[static_cast<std::ptrdiff_t>(r) * X.row_stride + static_cast<std::ptrdiff_t>(j) * X.col_stride]);
        };
        if (X.col_stride <= X.row_stride) {  // in memory order: row by row (C order) ...
            for (size_t r = 0; r < count; ++r)
                for (size_t j = 0; j < d; ++j) block[j * kRowsPerTask + r] = value(r, j);
        } else {  // ... or feature by feature (Fortran order)
            for (size_t j = 0; j < d; ++j)
                for (size_t r = 0; r < count; ++r) block[j * kRowsPerTask + r] = value(r, j);
        }
        for (size_t t = 0; t + 1 < tree_offset_.size(); ++t) {
            const IsolationNode* nodes = nodes_.data() + tree_offset_[t];
            const double* values = leaf_value_.data() + tree_offset_[t];
            const unsigned steps = tree_depth_[t];
            size_t r0 = 0;
            for (; r0 + kWalk <= count; r0 += kWalk) walk<kWalk>(nodes, values, steps, block.data() + r0, acc + r0);
            for (; r0 < count; ++r0) walk<1>(nodes, values, steps, block.data() + r0, acc + r0);
        }
    });
}

namespace {
StridedRows<double> strided(const MatrixRef& X) {
    return {X.data(), static_cast<size_t>(X.rows()), static_cast<size_t>(X.cols()), X.outerStride(), X.innerStride()};
}
}  // namespace

Eigen::VectorXd IsolationForest::mean_path_length(MatrixRef X, unsigned n_threads) const {
    return mean_path_length(strided(X), n_threads);
}

Eigen::VectorXd IsolationForest::mean_path_length_reference(MatrixRef X) const {
    require_fitted();
    if (static_cast<size_t>(X.cols()) != n_features_in_)
        throw std::invalid_argument("X: expected " + std::to_string(n_features_in_) + " features, got " +
                                    std::to_string(X.cols()));
    check_input(X, "X");
    Eigen::VectorXd out = Eigen::VectorXd::Zero(X.rows());
    for (Eigen::Index i = 0; i < X.rows(); ++i) {
        for (size_t t = 0; t < n_trees(); ++t) {
            const IsolationNode* nodes = nodes_.data() + tree_offset_[t];
            uint32_t at = 0;
            while (nodes[at].left != at) at = nodes[at].left + (X(i, nodes[at].feature) > nodes[at].threshold ? 1 : 0);
            out[i] += leaf_value_[tree_offset_[t] + at];
        }
    }
    out /= static_cast<double>(n_trees());
    return out;
}

bool IsolationForest::uses_vector_walk() const {
    return !rank_node_.empty() && (rank_top_ || !top8_slots_.empty()) && vector_walk_supported() && vector_walk_;
}

bool IsolationForest::vector_walk_supported() { return cpu_has_avx2(); }

const char* IsolationForest::scoring_layout() const {
    require_fitted();
    if (uses_vector_walk()) return !top8_slots_.empty() ? "rank-avx2-8bit" : "rank-avx2-16bit";
    return !rank_node_.empty() ? "rank" : !heap_offset_.empty() ? "heap" : "node";
}

void IsolationForest::score_samples(MatrixRef X, double* out, unsigned n_threads) const {
    path_length_sum(strided(X), out, n_threads);
    to_scores(out, X.rows());
}

void IsolationForest::to_scores(double* sums, Eigen::Index n) const {
    const double denominator = static_cast<double>(n_trees()) * average_path_length(static_cast<double>(max_samples_));
    // As scikit-learn: with a single training row both are 0 and the score is -2^-1.
    for (Eigen::Index i = 0; i < n; ++i) sums[i] = -std::exp2(-(denominator != 0.0 ? sums[i] / denominator : 1.0));
}

Eigen::VectorXd IsolationForest::score_samples(MatrixRef X, unsigned n_threads) const {
    Eigen::VectorXd out(X.rows());
    score_samples(X, out.data(), n_threads);
    return out;
}

Eigen::VectorXd IsolationForest::decision_function(MatrixRef X, unsigned n_threads) const {
    Eigen::VectorXd out = score_samples(X, n_threads);
    out.array() -= offset_;
    return out;
}

template <typename T>
void IsolationForest::path_length_sum(const StridedRows<T>& X, double* out, unsigned n_threads) const {
    require_fitted();
    if (X.cols != n_features_in_)
        throw std::invalid_argument("X: expected " + std::to_string(n_features_in_) + " features, got " +
                                    std::to_string(X.cols));
    if (X.rows == 0 || X.cols == 0 || X.data == nullptr)
        throw std::invalid_argument("X: expected a non-empty 2-D array, got shape (" + std::to_string(X.rows) + ", " +
                                    std::to_string(X.cols) + ")");
    if (!rank_node_.empty()) {
        rank_path_sum(X.data, X.rows, X.row_stride, X.col_stride, out, n_threads);
        return;
    }
    walk_path_sum(X, out, n_threads);  // the heap or node walk, on blocks of rows read in place
}

template <typename T>
Eigen::VectorXd IsolationForest::score_samples(const StridedRows<T>& X, unsigned n_threads) const {
    Eigen::VectorXd out(static_cast<Eigen::Index>(X.rows));
    path_length_sum(X, out.data(), n_threads);
    to_scores(out.data(), out.size());
    return out;
}

template <typename T>
Eigen::VectorXd IsolationForest::decision_function(const StridedRows<T>& X, unsigned n_threads) const {
    Eigen::VectorXd out = score_samples(X, n_threads);
    out.array() -= offset_;
    return out;
}

template <typename T>
Eigen::VectorXd IsolationForest::mean_path_length(const StridedRows<T>& X, unsigned n_threads) const {
    Eigen::VectorXd out(static_cast<Eigen::Index>(X.rows));
    path_length_sum(X, out.data(), n_threads);
    out /= static_cast<double>(n_trees());
    return out;
}

#define ANOMALY_STRIDED_ROWS(T)                                                                         \
    template Eigen::VectorXd IsolationForest::score_samples(const StridedRows<T>&, unsigned) const;     \
    template Eigen::VectorXd IsolationForest::decision_function(const StridedRows<T>&, unsigned) const; \
    template Eigen::VectorXd IsolationForest::mean_path_length(const StridedRows<T>&, unsigned) const;
ANOMALY_STRIDED_ROWS(int8_t)
ANOMALY_STRIDED_ROWS(uint8_t)
ANOMALY_STRIDED_ROWS(int16_t)
ANOMALY_STRIDED_ROWS(uint16_t)
ANOMALY_STRIDED_ROWS(int32_t)
ANOMALY_STRIDED_ROWS(float)
ANOMALY_STRIDED_ROWS(double)
#undef ANOMALY_STRIDED_ROWS

}  // namespace anomaly_detection

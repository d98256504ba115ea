// Private to the isolation forest's sources (fit, scoring layouts, serialisation): the
// constants they share and the AVX2 probe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

// The AVX2 top of the rank walk: compiled for AVX2 function by function (no global -march),
// taken only when the CPU reports AVX2 at run time. GCC and Clang on x86-64.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ANOMALY_AVX2_TOP 1
#include <immintrin.h>
#endif

namespace anomaly_detection::iforest {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kEulerGamma = 0.5772156649015329;
// scikit-learn's FEATURE_THRESHOLD: a feature whose range in a node is no wider
// than this is constant there and cannot split it.
constexpr double kFeatureThreshold = 1e-7;
constexpr uint16_t kFormatVersion = 1;
// Rows scored per task, and per interleaved walk inside a task. A task keeps
// one tree hot in L1 while its rows stream through it; the walk advances
// kWalk independent rows one level at a time so their loads overlap.
constexpr size_t kRowsPerTask = 128;
constexpr size_t kWalk = 16;
constexpr size_t kHeapWalk = 16;
// Rows of a tile of the heap walk (the next tile is prefetched while the trees walk one).
constexpr size_t kHeapTile = 64;
constexpr size_t kRankWalk = 16;
// Deepest tree padded to a complete tree for scoring (2^16 slots).
constexpr unsigned kMaxHeapDepth = 16;
// Most distinct split values of one feature (and largest block offset) in the rank layout.
constexpr uint32_t kRankLimit = 0xFFFF;
// The AVX2 top walk compares ranks and k as signed 16-bit words: it needs every K_f below
// kSignedPad, which then stands for "never right".
constexpr uint32_t kSignedPad = 0x7FFF;
// Most chunks of 16 features for the 8-bit top walk.
constexpr size_t kTop8Chunks = 4;
// Most features of a C-ordered tree gathered whole before growing it (more: each when drawn).
constexpr size_t kEagerFeatures = 64;
// Most features for the rank layout (more: the heap walk).
constexpr size_t kRankFeatures = 64;
// Most features for the AVX2 top walk: a row's ranks fill at most two 8-lane registers.
constexpr size_t kTopFeatures = 16;

inline bool cpu_has_avx2() {
#ifdef ANOMALY_AVX2_TOP
    static const bool has = __builtin_cpu_supports("avx2") != 0;
    return has;
#else
    return false;
#endif
}

// Largest table of the ranks of integers, per feature.
constexpr uint64_t kRankIntegers = 1 << 16;

// Whether v is NaN or +-inf, from its exponent bits (an integer test, so that the loops
// over many values below vectorise; integers are always finite).
template <typename T>
inline bool non_finite(T v) {
    if constexpr (std::is_same_v<T, double>) {
        uint64_t bits;
        std::memcpy(&bits, &v, sizeof bits);
        return (bits & 0x7FF0000000000000ULL) == 0x7FF0000000000000ULL;
    } else if constexpr (std::is_same_v<T, float>) {
        uint32_t bits;
        std::memcpy(&bits, &v, sizeof bits);
        return (bits & 0x7F800000U) == 0x7F800000U;
    } else {
        return false;
    }
}

constexpr size_t kCheckLanes = 16;

#ifdef ANOMALY_AVX2_TOP
// Whether any of `outer` runs of `inner` contiguous values (runs outer_stride apart) is NaN or
// +-inf, by AVX2: each value's exponent bits (an AND with the exponent mask) folded into 4
// accumulators by unsigned 32-bit max, two integer operations per 32 bytes where `v - v`
// summed in lanes takes two floating-point ones (a non-finite value has all exponent bits set:
// its masked word is the mask itself, the largest it can be).
template <typename T>
__attribute__((target("avx2"))) inline bool any_non_finite_avx2(const T* base, size_t outer,
                                                                std::ptrdiff_t outer_stride, size_t inner) {
    static_assert(std::is_same_v<T, double> || std::is_same_v<T, float>);
    constexpr size_t kLanes = 32 / sizeof(T);
    const __m256i mask =
        std::is_same_v<T, double> ? _mm256_set1_epi64x(0x7FF0000000000000LL) : _mm256_set1_epi32(0x7F800000);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    bool bad = false;
    for (size_t o = 0; o < outer; ++o) {
        const T* line = base + static_cast<std::ptrdiff_t>(o) * outer_stride;
#define ANOMALY_LOAD(i) _mm256_loadu_si256(reinterpret_cast<const __m256i*>(line + (i)))
        size_t i = 0;
        for (; i + 4 * kLanes <= inner; i += 4 * kLanes) {
            a0 = _mm256_max_epu32(a0, _mm256_and_si256(ANOMALY_LOAD(i), mask));
            a1 = _mm256_max_epu32(a1, _mm256_and_si256(ANOMALY_LOAD(i + kLanes), mask));
            a2 = _mm256_max_epu32(a2, _mm256_and_si256(ANOMALY_LOAD(i + 2 * kLanes), mask));
            a3 = _mm256_max_epu32(a3, _mm256_and_si256(ANOMALY_LOAD(i + 3 * kLanes), mask));
        }
        for (; i + kLanes <= inner; i += kLanes) a0 = _mm256_max_epu32(a0, _mm256_and_si256(ANOMALY_LOAD(i), mask));
        for (; i < inner; ++i) {
            if constexpr (std::is_same_v<T, double>) {
                uint64_t bits;
                std::memcpy(&bits, line + i, sizeof bits);
                bad |= (bits & 0x7FF0000000000000ULL) == 0x7FF0000000000000ULL;
            } else {
                uint32_t bits;
                std::memcpy(&bits, line + i, sizeof bits);
                bad |= (bits & 0x7F800000U) == 0x7F800000U;
            }
        }
    }
#undef ANOMALY_LOAD
    const __m256i m = _mm256_max_epu32(_mm256_max_epu32(a0, a1), _mm256_max_epu32(a2, a3));
    // For float64 the low word of each lane is 0 in both and compares equal: the AND with the
    // mask keeps only the exponent words.
    return bad || !_mm256_testz_si256(_mm256_cmpeq_epi32(m, mask), mask);
}
#endif

// any_non_finite on a CPU without AVX2 (a function of its own, so that the C++ tests check it
// on every CPU, beside the AVX2 one).
template <typename T>
bool any_non_finite_portable(const T* base, size_t outer, std::ptrdiff_t outer_stride, size_t inner) {
    // v - v is 0 for a finite v and NaN otherwise; independent lanes, so that the loop
    // vectorises (no -ffast-math needed) and runs at the speed of memory. The lanes are
    // tested once for all lines (a Fortran tile of the heap walk is 500 lines of 64 values).
    T lanes[kCheckLanes] = {};
    bool bad = false;
    for (size_t o = 0; o < outer; ++o) {
        const T* line = base + static_cast<std::ptrdiff_t>(o) * outer_stride;
        size_t i = 0;
        for (; i + kCheckLanes <= inner; i += kCheckLanes)
            for (size_t k = 0; k < kCheckLanes; ++k) lanes[k] += line[i + k] - line[i + k];
        for (; i < inner; ++i) bad |= non_finite(line[i]);
    }
    for (size_t k = 0; k < kCheckLanes; ++k) bad |= lanes[k] != T(0);
    return bad;
}

// Whether any of `outer` runs of `inner` contiguous values of x is non-finite (see check_finite).
template <typename T>
bool any_non_finite(const T* base, size_t outer, std::ptrdiff_t outer_stride, size_t inner) {
    if constexpr (!std::is_floating_point_v<T>) {
        return false;
    } else {
#ifdef ANOMALY_AVX2_TOP
        if (cpu_has_avx2()) return any_non_finite_avx2(base, outer, outer_stride, inner);
#endif
        return any_non_finite_portable(base, outer, outer_stride, inner);
    }
}

// Throws "X: expected finite values, got <v> at row i, column j" for the first non-finite
// value of rows [begin, end) of the strided matrix at x, when there is one. The rows are read
// in memory order (row by row for C order, column by column for Fortran order).
template <typename T>
void check_finite(const T* x, size_t begin, size_t end, size_t cols, std::ptrdiff_t row_stride,
                  std::ptrdiff_t col_stride) {
    if constexpr (std::is_floating_point_v<T>) {
        const bool by_rows = col_stride <= row_stride;
        // Contiguous C-ordered rows are one line of values.
        const bool flat = col_stride == 1 && row_stride == static_cast<std::ptrdiff_t>(cols);
        const size_t outer = flat ? 1 : by_rows ? end - begin : cols;
        const size_t inner = flat ? (end - begin) * cols : by_rows ? cols : end - begin;
        const std::ptrdiff_t outer_stride = by_rows ? row_stride : col_stride;
        const std::ptrdiff_t inner_stride = by_rows ? col_stride : row_stride;
        const T* base = x + static_cast<std::ptrdiff_t>(begin) * row_stride;
        bool bad = false;
        if (inner_stride == 1) {
            bad = any_non_finite(base, outer, outer_stride, inner);
        } else {
            for (size_t o = 0; o < outer; ++o) {
                const T* line = base + static_cast<std::ptrdiff_t>(o) * outer_stride;
                for (size_t i = 0; i < inner; ++i)
                    bad |= non_finite(line[static_cast<std::ptrdiff_t>(i) * inner_stride]);
            }
        }
        if (bad) {
            for (size_t i = 0; i < end - begin; ++i)
                for (size_t j = 0; j < cols; ++j) {
                    const T v =
                        base[static_cast<std::ptrdiff_t>(i) * row_stride + static_cast<std::ptrdiff_t>(j) * col_stride];
                    if (non_finite(v))
                        throw std::invalid_argument("X: expected finite values, got " + std::to_string(v) + " at row " +
                                                    std::to_string(begin + i) + ", column " + std::to_string(j));
                }
        }
    }
}

}  // namespace anomaly_detection::iforest

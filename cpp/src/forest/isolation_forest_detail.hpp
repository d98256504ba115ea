// Private to the isolation forest's sources (fit, scoring layouts, serialisation): the
// constants they share and the AVX2 probe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

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

}  // namespace anomaly_detection::iforest

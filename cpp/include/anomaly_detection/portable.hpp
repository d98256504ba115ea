// Compiler intrinsics behind one portable interface: GCC and Clang builtins, MSVC's
// <intrin.h> equivalents. Hot loops call these instead of __builtin_* directly, so the
// core also builds with MSVC (and on non-x86 targets, where the x86-only ones fall back).
#pragma once

#include <cstdint>

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#include <stdlib.h>
#define ANOMALY_DETECTION_MSVC 1
#endif

namespace anomaly_detection::portable {

/// Number of leading zero bits of x; x must not be 0 (as for __builtin_clzll).
inline int clz64(uint64_t x) noexcept {
#ifdef ANOMALY_DETECTION_MSVC
    unsigned long index;
    _BitScanReverse64(&index, x);
    return 63 - static_cast<int>(index);
#else
    return __builtin_clzll(x);
#endif
}

/// Number of trailing zero bits of x; x must not be 0 (as for __builtin_ctzll).
inline int ctz64(uint64_t x) noexcept {
#ifdef ANOMALY_DETECTION_MSVC
    unsigned long index;
    _BitScanForward64(&index, x);
    return static_cast<int>(index);
#else
    return __builtin_ctzll(x);
#endif
}

inline uint64_t bswap64(uint64_t v) noexcept {
#ifdef ANOMALY_DETECTION_MSVC
    return _byteswap_uint64(v);
#else
    return __builtin_bswap64(v);
#endif
}

inline uint32_t bswap32(uint32_t v) noexcept {
#ifdef ANOMALY_DETECTION_MSVC
    return _byteswap_ulong(v);
#else
    return __builtin_bswap32(v);
#endif
}

/// Hint that *p will be read soon (a no-op where the target has no prefetch).
inline void prefetch_read(const void* p) noexcept {
#if defined(ANOMALY_DETECTION_MSVC) && (defined(_M_X64) || defined(_M_IX86))
    _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
#elif defined(ANOMALY_DETECTION_MSVC) && defined(_M_ARM64)
    __prefetch(p);
#elif defined(ANOMALY_DETECTION_MSVC)
    (void)p;
#else
    __builtin_prefetch(p, 0);
#endif
}

/// Hint that *p will be written soon.
inline void prefetch_write(const void* p) noexcept {
#if defined(ANOMALY_DETECTION_MSVC) && (defined(_M_X64) || defined(_M_IX86))
    _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
#elif defined(ANOMALY_DETECTION_MSVC) && defined(_M_ARM64)
    __prefetchw(p);
#elif defined(ANOMALY_DETECTION_MSVC)
    (void)p;
#else
    __builtin_prefetch(p, 1);
#endif
}

/// Whether this CPU (and the OS) can run AVX2 code; false on other architectures.
inline bool cpu_has_avx2() noexcept {
#if defined(ANOMALY_DETECTION_MSVC) && (defined(_M_X64) || defined(_M_IX86))
    int info[4];
    __cpuid(info, 0);
    if (info[0] < 7) return false;
    __cpuid(info, 1);
    const bool osxsave = (info[2] & (1 << 27)) != 0, avx = (info[2] & (1 << 28)) != 0;
    if (!osxsave || !avx || (_xgetbv(0) & 6) != 6) return false;  // the OS saves the YMM registers
    __cpuidex(info, 7, 0);
    return (info[1] & (1 << 5)) != 0;
#elif !defined(ANOMALY_DETECTION_MSVC) && (defined(__x86_64__) || defined(__i386__))
    return __builtin_cpu_supports("avx2") != 0;
#else
    return false;
#endif
}

}  // namespace anomaly_detection::portable

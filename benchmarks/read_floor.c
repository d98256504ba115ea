/* The read-bandwidth floor of IsolationForest.fit (bench_forest.py --floor): tight one-thread
   AVX2 loops over a buffer, built by the bench with the system C compiler and loaded by ctypes.
   Not part of the package. */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

/* Pure read of `bytes` bytes (a multiple of 128): the loads OR-ed into 4 accumulators, so no
   arithmetic chain limits the loop. */
__attribute__((target("avx2"))) uint64_t read_avx2(const void* p, size_t bytes) {
    const char* x = (const char*)p;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= bytes; i += 128) {
        a0 = _mm256_or_si256(a0, _mm256_loadu_si256((const __m256i*)(x + i)));
        a1 = _mm256_or_si256(a1, _mm256_loadu_si256((const __m256i*)(x + i + 32)));
        a2 = _mm256_or_si256(a2, _mm256_loadu_si256((const __m256i*)(x + i + 64)));
        a3 = _mm256_or_si256(a3, _mm256_loadu_si256((const __m256i*)(x + i + 96)));
    }
    a0 = _mm256_or_si256(_mm256_or_si256(a0, a1), _mm256_or_si256(a2, a3));
    uint64_t o[4];
    _mm256_storeu_si256((__m256i*)o, a0);
    return o[0] | o[1] | o[2] | o[3];
}

/* The finiteness test at its leanest: exponent bits of n doubles, AVX2, 4 accumulators, no
   branch in the loop. Returns 1 when all are finite. */
__attribute__((target("avx2"))) int finite_avx2(const double* x, size_t n) {
    const __m256i e = _mm256_set1_epi64x(0x7FF0000000000000LL);
    __m256i b0 = _mm256_setzero_si256(), b1 = b0, b2 = b0, b3 = b0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        b0 = _mm256_or_si256(b0, _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_loadu_si256((const __m256i*)(x + i)), e), e));
        b1 = _mm256_or_si256(b1, _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_loadu_si256((const __m256i*)(x + i + 4)), e), e));
        b2 = _mm256_or_si256(b2, _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_loadu_si256((const __m256i*)(x + i + 8)), e), e));
        b3 = _mm256_or_si256(b3, _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_loadu_si256((const __m256i*)(x + i + 12)), e), e));
    }
    b0 = _mm256_or_si256(_mm256_or_si256(b0, b1), _mm256_or_si256(b2, b3));
    int ok = _mm256_testz_si256(b0, b0);
    for (; i < n; ++i) {
        uint64_t bits;
        __builtin_memcpy(&bits, x + i, 8);
        ok &= (bits & 0x7FF0000000000000ULL) != 0x7FF0000000000000ULL;
    }
    return ok;
}

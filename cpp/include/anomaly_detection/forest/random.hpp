// Random number generators of the forest family. Both are implemented here
// (not taken from <random>) so that a seed gives the same model on every
// platform and standard library: the distributions of <random> are not
// specified bit for bit.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace anomaly_detection {

/// SplitMix64 step: spreads a seed into well-mixed state words.
inline uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/// xoshiro256** (Blackman and Vigna): fast, small, and good enough for
/// sampling; one independent stream per (seed, stream) pair so that each tree
/// draws the same numbers whatever the number of threads.
class Xoshiro256 {
   public:
    explicit Xoshiro256(uint64_t seed, uint64_t stream = 0) {
        uint64_t sm = seed ^ (0xd1b54a32d192ed03ULL * (stream + 1));
        for (auto& w : s_) w = splitmix64(sm);
    }

    uint64_t next() {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    /// Uniform in [0, 1) with 53 random bits.
    double uniform01() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    /// Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject); n > 0.
    uint64_t below(uint64_t n) {
        __extension__ using u128 = unsigned __int128;
        u128 m = static_cast<u128>(next()) * n;
        auto low = static_cast<uint64_t>(m);
        if (low < n) {
            const uint64_t threshold = (0 - n) % n;
            while (low < threshold) {
                m = static_cast<u128>(next()) * n;
                low = static_cast<uint64_t>(m);
            }
        }
        return static_cast<uint64_t>(m >> 64);
    }

   private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t s_[4];
};

/// CPython's `random.Random`: MT19937 seeded exactly as `random.seed(int)` seeds
/// it, and `random()` built from two draws the same way. HalfSpaceTrees uses it
/// so that a seed builds the very trees River builds with that seed.
class PythonRandom {
   public:
    explicit PythonRandom(uint64_t seed) {
        // random.seed(n) feeds |n| to init_by_array as 32-bit words, least
        // significant first, and at least one word (zero for n == 0).
        std::vector<uint32_t> key;
        do {
            key.push_back(static_cast<uint32_t>(seed & 0xffffffffULL));
            seed >>= 32;
        } while (seed != 0);
        init_by_array(key);
    }

    /// `random.random()`: 53 bits from two 32-bit outputs.
    double random() {
        const uint32_t a = genrand() >> 5, b = genrand() >> 6;
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
    }

    /// `random.uniform(a, b)`.
    double uniform(double a, double b) { return a + (b - a) * random(); }

   private:
    static constexpr int N = 624, M = 397;

    void init_genrand(uint32_t s) {
        mt_[0] = s;
        for (mti_ = 1; mti_ < N; ++mti_)
            mt_[mti_] = 1812433253U * (mt_[mti_ - 1] ^ (mt_[mti_ - 1] >> 30)) + static_cast<uint32_t>(mti_);
    }

    void init_by_array(const std::vector<uint32_t>& key) {
        init_genrand(19650218U);
        int i = 1;
        size_t j = 0;
        const size_t key_length = key.size();
        for (size_t k = (N > key_length ? N : key_length); k; --k) {
            mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + key[j] + static_cast<uint32_t>(j);
            ++i;
            ++j;
            if (i >= N) {
                mt_[0] = mt_[N - 1];
                i = 1;
            }
            if (j >= key_length) j = 0;
        }
        for (int k = N - 1; k; --k) {
            mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - static_cast<uint32_t>(i);
            ++i;
            if (i >= N) {
                mt_[0] = mt_[N - 1];
                i = 1;
            }
        }
        mt_[0] = 0x80000000U;
    }

    uint32_t genrand() {
        static constexpr uint32_t mag01[2] = {0x0U, 0x9908b0dfU};
        if (mti_ >= N) {
            int kk = 0;
            for (; kk < N - M; ++kk) {
                const uint32_t y = (mt_[kk] & 0x80000000U) | (mt_[kk + 1] & 0x7fffffffU);
                mt_[kk] = mt_[kk + M] ^ (y >> 1) ^ mag01[y & 1U];
            }
            for (; kk < N - 1; ++kk) {
                const uint32_t y = (mt_[kk] & 0x80000000U) | (mt_[kk + 1] & 0x7fffffffU);
                mt_[kk] = mt_[kk + (M - N)] ^ (y >> 1) ^ mag01[y & 1U];
            }
            const uint32_t y = (mt_[N - 1] & 0x80000000U) | (mt_[0] & 0x7fffffffU);
            mt_[N - 1] = mt_[M - 1] ^ (y >> 1) ^ mag01[y & 1U];
            mti_ = 0;
        }
        uint32_t y = mt_[mti_++];
        y ^= (y >> 11);
        y ^= (y << 7) & 0x9d2c5680U;
        y ^= (y << 15) & 0xefc60000U;
        y ^= (y >> 18);
        return y;
    }

    uint32_t mt_[N];
    int mti_ = N + 1;
};

}  // namespace anomaly_detection

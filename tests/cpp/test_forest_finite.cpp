// The forest's finiteness check (cpp/src/forest/isolation_forest_detail.hpp): the portable
// loop and the AVX2 one side by side, so that both are checked whatever the CPU (the forest
// takes the AVX2 one wherever the CPU has it, so its Python tests never reach the other).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../../cpp/src/forest/isolation_forest_detail.hpp"

namespace {

using anomaly_detection::iforest::any_non_finite;
using anomaly_detection::iforest::any_non_finite_portable;
using anomaly_detection::iforest::check_finite;
#ifdef ANOMALY_AVX2_TOP
using anomaly_detection::iforest::any_non_finite_avx2;
using anomaly_detection::iforest::cpu_has_avx2;
#endif

// A NaN whose payload is only in its lowest bit (its exponent bits all set, nothing else).
template <typename T>
T low_payload_nan() {
    T v;
    if constexpr (sizeof(T) == 8) {
        const uint64_t bits = 0x7FF0000000000001ULL;
        std::memcpy(&v, &bits, sizeof v);
    } else {
        const uint32_t bits = 0x7F800001U;
        std::memcpy(&v, &bits, sizeof v);
    }
    return v;
}

// Every implementation the build has, on this CPU: (name, answer).
template <typename T>
std::vector<std::pair<std::string, bool>> answers(const T* base, size_t outer, std::ptrdiff_t stride, size_t inner) {
    std::vector<std::pair<std::string, bool>> out = {{"portable", any_non_finite_portable(base, outer, stride, inner)},
                                                     {"dispatched", any_non_finite(base, outer, stride, inner)}};
#ifdef ANOMALY_AVX2_TOP
    if (cpu_has_avx2()) out.emplace_back("avx2", any_non_finite_avx2(base, outer, stride, inner));
#endif
    return out;
}

template <typename T>
void check_every_lane_tail_and_start() {
    using L = std::numeric_limits<T>;
    const T finite_edges[] = {L::max(), L::lowest(), L::denorm_min(), -L::denorm_min(), L::min(), T(-0.0)};
    const T bad_values[] = {L::quiet_NaN(), L::infinity(), -L::infinity(), low_payload_nan<T>()};
    std::mt19937_64 rng(7);
    std::normal_distribution<double> normal(0.0, 1e3);
    for (size_t start = 0; start < 9; ++start) {                                       // unaligned starts
        for (size_t inner : {1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 64, 65, 100, 131}) {  // lanes and tails
            for (size_t outer : {1, 2, 5}) {
                const std::ptrdiff_t stride = static_cast<std::ptrdiff_t>(inner + 3);  // a gap after each run
                std::vector<T> buf(start + outer * static_cast<size_t>(stride) + 40);
                for (auto& v : buf) v = static_cast<T>(normal(rng));
                // The finite edges spread over the runs.
                for (size_t k = 0; k < std::size(finite_edges); ++k)
                    buf[start + (k % outer) * static_cast<size_t>(stride) + (k * 5) % inner] = finite_edges[k];
                // Non-finite values outside the runs: in the gaps, before the start, after the end.
                for (size_t o = 0; o < outer; ++o) buf[start + o * static_cast<size_t>(stride) + inner] = L::infinity();
                if (start > 0) buf[start - 1] = L::quiet_NaN();
                buf[start + (outer - 1) * static_cast<size_t>(stride) + inner + 1] = L::quiet_NaN();
                const T* base = buf.data() + start;
                for (const auto& [name, bad] : answers(base, outer, stride, inner))
                    ASSERT_FALSE(bad) << name << ": finite runs taken for non-finite, start " << start << " inner "
                                      << inner << " outer " << outer;
                for (size_t o = 0; o < outer; ++o)
                    for (size_t i = 0; i < inner; ++i) {
                        T& slot = buf[start + o * static_cast<size_t>(stride) + i];
                        const T kept = slot;
                        slot = bad_values[(o + i) % std::size(bad_values)];
                        for (const auto& [name, bad] : answers(base, outer, stride, inner))
                            ASSERT_TRUE(bad) << name << ": missed a non-finite value at run " << o << ", index " << i
                                             << " (start " << start << ", inner " << inner << ")";
                        slot = kept;
                    }
            }
        }
    }
}

TEST(ForestFiniteness, EveryImplementationFindsEveryNonFiniteValueAndOnlyThose) {
    check_every_lane_tail_and_start<double>();
    check_every_lane_tail_and_start<float>();
}

// What check_finite throws for the view (rows, cols, strides) of x, or "" when nothing.
std::string thrown(const double* x, size_t begin, size_t end, size_t cols, std::ptrdiff_t rs, std::ptrdiff_t cs) {
    try {
        check_finite(x, begin, end, cols, rs, cs);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

TEST(ForestFiniteness, CheckFiniteNamesTheBadValueInEveryLayout) {
    // 40 rows of 70 in C order with a NaN at row 17, column 9, read as: whole rows (one run),
    // the first 60 columns (runs 70 apart), every second column from column 1 (a strided run),
    // and the transpose (Fortran order: 40 runs of 70).
    std::vector<double> x(40 * 70, 1.5);
    x[17 * 70 + 9] = std::numeric_limits<double>::quiet_NaN();
    const std::string at = "at row 17, column 9";
    EXPECT_NE(thrown(x.data(), 3, 40, 70, 70, 1).find(at), std::string::npos);
    EXPECT_NE(thrown(x.data(), 3, 40, 60, 70, 1).find(at), std::string::npos);
    EXPECT_NE(thrown(x.data() + 1, 3, 40, 34, 70, 2).find("at row 17, column 4"), std::string::npos);
    EXPECT_NE(thrown(x.data(), 0, 70, 40, 1, 70).find("at row 9, column 17"), std::string::npos);
    EXPECT_EQ(thrown(x.data(), 18, 40, 70, 70, 1), "");
    EXPECT_EQ(thrown(x.data(), 0, 17, 70, 70, 1), "");
    EXPECT_EQ(thrown(x.data(), 3, 40, 9, 70, 1), "");  // the columns before it
}

}  // namespace

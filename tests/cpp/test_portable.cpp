#include <gtest/gtest.h>

#include <cstdint>

#include "anomaly_detection/portable.hpp"

using namespace anomaly_detection::portable;

TEST(Portable, CountsLeadingAndTrailingZeros) {
    EXPECT_EQ(clz64(1), 63);
    EXPECT_EQ(clz64(UINT64_C(1) << 63), 0);
    EXPECT_EQ(clz64(0x00F0000000000000ULL), 8);
    EXPECT_EQ(ctz64(1), 0);
    EXPECT_EQ(ctz64(UINT64_C(1) << 63), 63);
    EXPECT_EQ(ctz64(0x00F0000000000000ULL), 52);
    for (int i = 0; i < 64; ++i) {
        EXPECT_EQ(clz64(UINT64_C(1) << i), 63 - i);
        EXPECT_EQ(ctz64(UINT64_C(1) << i), i);
    }
}

TEST(Portable, SwapsBytes) {
    EXPECT_EQ(bswap64(0x0102030405060708ULL), 0x0807060504030201ULL);
    EXPECT_EQ(bswap32(0x01020304U), 0x04030201U);
}

TEST(Portable, PrefetchIsHarmlessAndAvx2AnswersConsistently) {
    const int values[4] = {1, 2, 3, 4};
    prefetch_read(values);
    prefetch_write(values + 3);
    EXPECT_EQ(values[3], 4);
    EXPECT_EQ(cpu_has_avx2(), cpu_has_avx2());
}

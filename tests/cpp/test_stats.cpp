#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <tuple>
#include <vector>

#include "anomaly_detection/stats/ewma.hpp"
#include "anomaly_detection/stats/order_statistics.hpp"
#include "anomaly_detection/stats/ring_buffer.hpp"
#include "anomaly_detection/stats/rolling_moments.hpp"

using namespace anomaly_detection;

TEST(RingBuffer, OverwritesOldestWhenFull) {
    RingBuffer<int> rb(3);
    EXPECT_FALSE(rb.push(1));
    EXPECT_FALSE(rb.push(2));
    EXPECT_FALSE(rb.push(3));
    EXPECT_TRUE(rb.full());
    EXPECT_TRUE(rb.push(4));
    EXPECT_EQ(rb.size(), 3u);
    EXPECT_EQ(rb[0], 2);
    EXPECT_EQ(rb[2], 4);
    EXPECT_EQ(rb.front(), 2);
    EXPECT_THROW(RingBuffer<int>(0), std::invalid_argument);
}

TEST(RingBuffer, GrowsWithItsElementsAndKeepsOrderAfterClear) {
    // Memory follows what is held, not the capacity: a huge capacity costs nothing up front
    // (a registry snapshot naming a 10^7 window for many empty sensors allocated gigabytes;
    // a fuzzing find). Eager allocation of 2^31 doubles would take seconds and 16 GiB.
    RingBuffer<double> huge(size_t{1} << 31);
    huge.push(1.0);
    EXPECT_EQ(huge.size(), 1u);
    EXPECT_EQ(huge.capacity(), size_t{1} << 31);
    OrderStatistics order(static_cast<size_t>(INT32_MAX));
    order.insert(5, 2.0);
    order.insert(0, 1.0);
    EXPECT_EQ(order.median(), 1.5);
    // Filling part way, clearing and filling past the capacity keeps ring order.
    RingBuffer<int> rb(40);
    for (int i = 0; i < 25; ++i) rb.push(i);
    rb.clear();
    for (int i = 100; i < 150; ++i) rb.push(i);
    ASSERT_TRUE(rb.full());
    for (size_t i = 0; i < rb.size(); ++i) EXPECT_EQ(rb[i], 110 + static_cast<int>(i));
    EXPECT_EQ(rb.front(), 110);
}

TEST(RollingMoments, VarianceAccurateAtLargeOffset) {
    std::mt19937_64 rng(42);
    std::normal_distribution<double> noise(0.0, 1.0);
    const size_t w = 1000;
    RingBuffer<double> window(w);
    RollingMoments m;
    for (int i = 0; i < 1'000'000; ++i) {
        const double x = 1e9 + noise(rng);
        const bool evicting = window.full();
        const double evicted = evicting ? window.front() : 0.0;
        window.push(x);
        m.update(x, evicting ? &evicted : nullptr, window);
    }
    // Two-pass reference over the final window.
    double mean = 0;
    for (size_t i = 0; i < w; ++i) mean += window[i];
    mean /= w;
    double ss = 0;
    for (size_t i = 0; i < w; ++i) ss += (window[i] - mean) * (window[i] - mean);
    const double var = ss / (w - 1);
    EXPECT_LT(std::fabs(m.variance() - var) / var, 1e-6);
    EXPECT_NEAR(m.mean(), mean, 1e-6);
}

TEST(RollingMoments, FewerThanTwoValuesHaveZeroVariance) {
    RingBuffer<double> window(4);
    RollingMoments m;
    EXPECT_EQ(m.variance(), 0.0);
    window.push(5.0);
    m.update(5.0, nullptr, window);
    EXPECT_EQ(m.mean(), 5.0);
    EXPECT_EQ(m.variance(), 0.0);
}

TEST(RollingMoments, RestoredSumsBeyondWhatTheWindowCanGiveAreRefused) {
    // A reference far outside the scaled range (found by the fuzzer: -3.1e231 with a window
    // of 1 and 2): the next update's square overflowed, and the state saved after it was
    // refused by its own loader. Sums the window can give load; these do not, and nothing changes.
    RingBuffer<double> window(4);
    for (const double x : {1.0, 2.0}) window.push(x);
    RollingMoments m;
    ASSERT_TRUE(m.set_raw({2, 0, 1.5, 0.0, 0.5, 0}, window));
    EXPECT_EQ(m.mean(), 1.5);
    for (const RollingMoments::Raw bad :
         {RollingMoments::Raw{2, 0, -3.1e231, 1.0, 1.0, 0}, RollingMoments::Raw{2, 0, 1.5, 1e200, 0.5, 0},
          RollingMoments::Raw{2, 0, 1.5, 0.0, 1e300, 0}, RollingMoments::Raw{2, 0, 1.5, 0.0, -1.0, 0}}) {
        EXPECT_FALSE(m.set_raw(bad, window));
        EXPECT_EQ(m.mean(), 1.5);
    }
}
class OrderStatisticsRandom : public ::testing::TestWithParam<std::tuple<size_t, bool>> {};

TEST_P(OrderStatisticsRandom, MatchesSortedWindow) {
    const auto [w, use_replace] = GetParam();
    std::mt19937_64 rng(w);
    std::uniform_int_distribution<int> small(-5, 5);  // many ties
    std::normal_distribution<double> normal(0, 10);
    RingBuffer<double> window(w);
    OrderStatistics os(w);
    for (int step = 0; step < 3000; ++step) {
        const double x = step % 3 ? normal(rng) : small(rng);
        const size_t slot = window.next_slot();
        if (window.full() && use_replace) {
            os.replace(slot, x);
        } else {
            if (window.full()) os.erase(slot);
            os.insert(slot, x);
        }
        window.push(x);
        if (w > 257 && step % 37 != 0 && step < 2990) continue;  // large windows: check now and then
        std::vector<double> sorted;
        for (size_t i = 0; i < window.size(); ++i) sorted.push_back(window[i]);
        std::sort(sorted.begin(), sorted.end());
        ASSERT_EQ(os.size(), sorted.size());
        for (size_t k : {size_t{0}, sorted.size() / 2, sorted.size() - 1}) ASSERT_EQ(os.select(k), sorted[k]);
        const size_t n = sorted.size();
        const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
        ASSERT_NEAR(os.median(), median, 1e-12 * std::max(1.0, std::fabs(median)));
        std::vector<double> dev;
        for (double v : sorted) dev.push_back(std::fabs(v - median));
        std::sort(dev.begin(), dev.end());
        const double mad = n % 2 ? dev[n / 2] : 0.5 * (dev[n / 2 - 1] + dev[n / 2]);
        ASSERT_NEAR(os.mad(), mad, 1e-12 * std::max(1.0, mad)) << "step " << step;
        const double pos = 0.25 * (n - 1);
        const size_t lo = static_cast<size_t>(pos);
        const double q1 = lo + 1 < n ? sorted[lo] + (pos - lo) * (sorted[lo + 1] - sorted[lo]) : sorted[lo];
        ASSERT_NEAR(os.quantile(0.25), q1, 1e-12 * std::max(1.0, std::fabs(q1)));
        ASSERT_EQ(os.count_less(median),
                  static_cast<size_t>(std::lower_bound(sorted.begin(), sorted.end(), median) - sorted.begin()));
    }
}

// 1,200 and 2,000 values span several blocks of the sorted-block layout.
INSTANTIATE_TEST_SUITE_P(Windows, OrderStatisticsRandom,
                         ::testing::Combine(::testing::Values(1, 2, 3, 7, 64, 257, 1200, 2000), ::testing::Bool()));

TEST(OrderStatistics, DriftingSeriesKeepsBlocksFewAndOrdered) {
    // A trend moves every value from one end of the order to the other: blocks
    // empty at one end and split at the other.
    const size_t w = 3000;
    RingBuffer<double> window(w);
    OrderStatistics os(w);
    for (int step = 0; step < 20000; ++step) {
        const double x = 0.01 * step + std::sin(step);
        const size_t slot = window.next_slot();
        if (window.full()) {
            os.replace(slot, x);
        } else {
            os.insert(slot, x);
        }
        window.push(x);
    }
    std::vector<double> sorted;
    for (size_t i = 0; i < window.size(); ++i) sorted.push_back(window[i]);
    std::sort(sorted.begin(), sorted.end());
    for (size_t k = 0; k < w; k += 7) ASSERT_EQ(os.select(k), sorted[k]);
    EXPECT_EQ(os.count_less(sorted[1500]), 1500u);
}

TEST(RollingMoments, GlitchNeverGivesNaNAndIsForgottenWhenItLeaves) {
    for (double glitch : {1e308, -1e308, std::numeric_limits<double>::max(), 1e200, 1e6}) {
        const size_t w = 50;
        RingBuffer<double> window(w);
        RollingMoments m;
        std::mt19937_64 rng(1);
        std::normal_distribution<double> noise(20.0, 1.0);
        int collapses = 0;
        for (int i = 0; i < 400; ++i) {
            const double x = i == 100 ? glitch : noise(rng);
            const bool evicting = window.full();
            const double evicted = evicting ? window.front() : 0.0;
            window.push(x);
            collapses += m.update(x, evicting ? &evicted : nullptr, window) == RollingMoments::Step::collapsed;
            ASSERT_TRUE(std::isfinite(m.mean()) || std::fabs(glitch) > 1e307) << i;
            ASSERT_FALSE(std::isnan(m.mean())) << i;
            ASSERT_TRUE(std::isfinite(m.stddev())) << "glitch " << glitch << " step " << i;
            if (i >= 100 && i < 150) ASSERT_GT(m.stddev(), std::fabs(glitch) / 10) << i;
        }
        EXPECT_EQ(collapses, 1) << glitch;  // when the glitch left
        double mean = 0, ss = 0;
        for (size_t i = 0; i < w; ++i) mean += window[i] / w;
        for (size_t i = 0; i < w; ++i) ss += (window[i] - mean) * (window[i] - mean);
        EXPECT_NEAR(m.mean(), mean, 1e-12 * mean);
        EXPECT_NEAR(m.stddev(), std::sqrt(ss / (w - 1)), 1e-9);
    }
}

TEST(RollingMoments, AStandardDeviationBeyondTheLargestDoubleIsTheLargestDouble) {
    // DBL_MAX and -DBL_MAX alternating: the sample standard deviation of four is
    // sqrt(4/3) DBL_MAX, which the scaled sums hold but a double cannot.
    const double largest = std::numeric_limits<double>::max();
    RingBuffer<double> window(4);
    RollingMoments m;
    for (double x : {largest, -largest, largest, -largest}) {
        window.push(x);
        m.update(x, nullptr, window);
    }
    EXPECT_EQ(m.stddev(), largest);
    EXPECT_EQ(m.mean(), 0.0);
    RingBuffer<double> halves(4);
    RollingMoments h;  // half of each: within range, and a stddev just over half the largest
    for (double x : {largest / 2, -largest / 2, largest / 2, -largest / 2}) {
        halves.push(x);
        h.update(x, nullptr, halves);
    }
    EXPECT_NEAR(h.stddev(), std::sqrt(4.0 / 3.0) * (largest / 2), 1e-12 * largest);
}
TEST(OrderStatistics, EmptyThrows) {
    OrderStatistics os(4);
    EXPECT_THROW(os.median(), std::runtime_error);
    EXPECT_THROW(os.select(0), std::out_of_range);
}

TEST(Ewma, MatchesExponentialWeightsDefinition) {
    std::mt19937_64 rng(3);
    std::normal_distribution<double> noise(5, 2);
    std::vector<double> xs;
    for (int i = 0; i < 400; ++i) xs.push_back(noise(rng));
    // Weights alpha (1 - alpha)^k on the k-th newest value, the oldest carrying the remainder.
    const double alpha = 0.2;
    double weighted = 0.0, weight = 1.0;
    for (size_t k = 0; k + 1 < xs.size(); ++k) {
        weighted += alpha * weight * xs[xs.size() - 1 - k];
        weight *= 1.0 - alpha;
    }
    weighted += weight * xs[0];
    EXPECT_NEAR(ewma_over(xs, alpha), weighted, 1e-12);
    EXPECT_DOUBLE_EQ(ewma_step(4.0, 9.0, alpha), 5.0);
}

TEST(Cusum, AccumulatesSustainedShiftOnly) {
    Cusum c;
    for (int i = 0; i < 100; ++i) c.update(i % 2 ? 0.4 : -0.4);  // within the allowance
    EXPECT_EQ(c.statistic(), 0.0);
    for (int i = 0; i < 10; ++i) c.update(1.5);  // a one-sigma-plus shift
    EXPECT_NEAR(c.statistic(), 10.0, 1e-12);
    for (int i = 0; i < 30; ++i) c.update(-1.5);
    EXPECT_LT(c.statistic(), 0.0);
    c.reset();
    EXPECT_EQ(c.statistic(), 0.0);
}

TEST(Cusum, SumsStayFiniteWhenADeviationOverflows) {
    // A deviation of +-inf (a finite value whose distance from the mean overflows) leaves the
    // sum at the largest double, not inf: a state with inf cannot be saved and loaded. NaN adds 0.
    const double inf = std::numeric_limits<double>::infinity(), largest = std::numeric_limits<double>::max();
    Cusum c;
    c.update(-inf);
    EXPECT_EQ(c.pos, 0.0);
    EXPECT_EQ(c.neg, largest);
    EXPECT_EQ(c.statistic(), -largest);
    c.update(largest);
    c.update(largest);
    EXPECT_EQ(c.pos, largest);
    EXPECT_EQ(c.neg, 0.0);
    c.update(std::nan(""));
    EXPECT_EQ(c.pos, 0.0);
    EXPECT_EQ(c.neg, 0.0);
}

TEST(OrderStatistics, QuantilesAndMadOfValuesNearTheLargestDoubleStayFinite) {
    // -DBL_MAX and DBL_MAX are 2 DBL_MAX apart: the interpolation a + frac (b - a) gave inf (so
    // the MAD and IQR detectors scored finite values NaN); the halved sum of two deviations
    // near DBL_MAX overflowed the same way.
    const double largest = std::numeric_limits<double>::max();
    OrderStatistics os(8);
    os.insert(0, -largest);
    os.insert(1, largest);
    EXPECT_EQ(os.median(), 0.0);
    EXPECT_DOUBLE_EQ(os.quantile(0.25), -0.5 * largest);
    EXPECT_DOUBLE_EQ(os.quantile(0.75), 0.5 * largest);
    EXPECT_EQ(os.mad(), largest);
    OrderStatistics same(8);  // 4 points: two deviations of DBL_MAX averaged
    same.insert(0, -largest);
    same.insert(1, -largest);
    same.insert(2, largest);
    same.insert(3, largest);
    EXPECT_EQ(same.median(), 0.0);
    EXPECT_EQ(same.mad(), largest);
    OrderStatistics small(4);  // the ordinary formula where nothing overflows (bit for bit)
    small.insert(0, 1.0);
    small.insert(1, 4.0);
    EXPECT_EQ(small.median(), 2.5);
    EXPECT_EQ(small.mad(), 1.5);
}

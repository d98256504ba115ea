#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "anomaly_detection/detectors/ensemble.hpp"
#include "anomaly_detection/detectors/fuzzy_art.hpp"

using namespace anomaly_detection;

namespace {
// A period-64 sine (a shape repeated) with a little noise, in [-1, 1].
std::vector<double> cycles(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> noise(0.0, 0.02);
    std::vector<double> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = std::sin(2 * M_PI * static_cast<double>(i) / 64.0) + noise(rng);
    return v;
}

FuzzyArt ranged() {
    FuzzyArt a;
    a.set_range(-2.0, 4.0);
    return a;
}
}  // namespace

TEST(FuzzyArt, ARepeatedShapeIsLearnedAndANewOneIsNot) {
    FuzzyArt a = ranged();
    const auto v = cycles(4000, 1);
    double late = 0.0;
    for (size_t i = 0; i < v.size(); ++i) {
        const double s = a.update(v[i]);
        if (i >= 2000) late = std::max(late, s);
    }
    EXPECT_TRUE(a.scored());
    EXPECT_LT(late, 1.0 - FuzzyArt::kVigilance);  // every window resonates with a category
    const size_t learned = a.categories();
    // The same range of values at eight times the speed: windows never seen.
    double fresh = 0.0;
    for (size_t i = 0; i < 64; ++i)
        fresh = std::max(fresh, a.update(std::sin(2 * M_PI * static_cast<double>(i) / 8.0)));
    EXPECT_GT(fresh, 1.0 - FuzzyArt::kVigilance);
    EXPECT_GT(a.categories(), learned);
}

TEST(FuzzyArt, NoMoreThanItsCategoriesAndScoresInTheUnitInterval) {
    FuzzyArt a = ranged();
    std::mt19937_64 rng(2);
    std::uniform_real_distribution<double> wild(-5.0, 5.0);  // beyond the range too: clipped
    for (int i = 0; i < 20'000; ++i) {
        const double s = a.update(wild(rng));
        ASSERT_GE(s, 0.0);
        ASSERT_LE(s, 1.0);
    }
    EXPECT_EQ(a.categories(), FuzzyArt::kCategories);
}

TEST(FuzzyArt, SaveRestoreContinuesIdentically) {
    const auto v = cycles(3000, 3);
    for (size_t cut : {size_t{0}, size_t{1}, size_t{30}, size_t{31}, size_t{1001}}) {
        FuzzyArt a = ranged();
        for (size_t i = 0; i < cut; ++i) a.update(v[i]);
        io::ByteWriter w;
        a.serialize(w);
        const std::string bytes = w.str();
        io::ByteReader r(bytes);
        FuzzyArt b;
        b.deserialize(r);
        for (size_t i = cut; i < v.size(); ++i) ASSERT_EQ(a.update(v[i]), b.update(v[i])) << cut << " " << i;
        io::ByteWriter wa, wb;
        a.serialize(wa);
        b.serialize(wb);
        EXPECT_EQ(wa.str(), wb.str());
    }
}

TEST(FuzzyArt, CorruptBytesAreRefused) {
    FuzzyArt a = ranged();
    for (double x : cycles(500, 4)) a.update(x);
    io::ByteWriter w;
    a.serialize(w);
    const std::string bytes = w.str();
    for (size_t len = 0; len < bytes.size(); len += 13) {
        io::ByteReader r(std::string_view(bytes).substr(0, len));
        FuzzyArt b;
        EXPECT_THROW(b.deserialize(r), std::invalid_argument) << len;
    }
    // A category weight outside [0, 1] (the first weight: after the range, sum, counts, window, count).
    std::string bad = bytes;
    const size_t at = 3 * 8 + 2 * 8 + FuzzyArt::kWidth * 8 + 8;
    const double big = 7.0;
    std::memcpy(bad.data() + at, &big, sizeof big);
    io::ByteReader r(bad);
    FuzzyArt b;
    EXPECT_THROW(b.deserialize(r), std::invalid_argument);
}

TEST(Ensemble, ANewShapeWithinTheRangeRaisesTheScore) {
    // A clean period-64 wave for 3,000 points, then the same values at four times the speed:
    // no value is new, the shape is. The ensemble's score rises there.
    EnsembleState s(0.5);
    const auto v = cycles(3000, 5);
    double before = 0.0;
    for (size_t i = 0; i < v.size(); ++i) {
        const double sc = s.update(10.0 * v[i], 60.0 * static_cast<double>(i)).score;
        if (i >= 2000) before = std::max(before, sc);
    }
    double after = 0.0;
    for (size_t i = 0; i < 64; ++i)
        after = std::max(after, s.update(10.0 * std::sin(2 * M_PI * static_cast<double>(i) / 16.0),
                                         60.0 * static_cast<double>(v.size() + i))
                                    .score);
    EXPECT_GT(after, before + 0.1);
}

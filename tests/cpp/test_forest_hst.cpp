// Half-Space Trees core: River's documented example, windows, serialisation.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "anomaly_detection/forest/half_space_trees.hpp"
#include "anomaly_detection/io/bytes.hpp"

using namespace anomaly_detection;

namespace {

HalfSpaceTrees small(uint64_t seed = 42) { return HalfSpaceTrees(HalfSpaceTreesConfig{5, 3, 3, seed}, {{0.0, 1.0}}); }

}  // namespace

TEST(HalfSpaceTrees, ReproducesRiversDocumentedExample) {
    // river.anomaly.HalfSpaceTrees(n_trees=5, height=3, window_size=3, seed=42), its docstring.
    const std::vector<double> X = {0.5, 0.45, 0.43, 0.44, 0.445, 0.45, 0.0};
    const std::vector<double> expected = {0.107, 0.071, 0.107, 0.107, 0.107, 0.071, 0.853};
    HalfSpaceTrees h = small();
    for (size_t i = 0; i < 3; ++i) h.learn_one(&X[i]);
    for (size_t i = 0; i < X.size(); ++i) {
        h.learn_one(&X[i]);
        EXPECT_NEAR(h.score_one(&X[i]), expected[i], 5e-4) << "x = " << X[i];
    }
}

TEST(HalfSpaceTrees, ZeroDuringFirstWindowThenInUnitInterval) {
    HalfSpaceTrees h(HalfSpaceTreesConfig{10, 8, 20, 1}, {{0.0, 1.0}, {0.0, 1.0}});
    const double x[2] = {0.4, 0.6};
    for (int i = 0; i < 19; ++i) {
        EXPECT_EQ(h.score_one(x), 0.0);
        h.learn_one(x);
    }
    h.learn_one(x);
    EXPECT_FALSE(h.first_window());
    const double far[2] = {0.01, 0.99};
    EXPECT_GT(h.score_one(far), h.score_one(x));
    EXPECT_LE(h.score_one(far), 1.0);
}

TEST(HalfSpaceTrees, BatchEqualsLoop) {
    HalfSpaceTrees a(HalfSpaceTreesConfig{4, 6, 10, 3}, {{0.0, 1.0}, {0.0, 1.0}});
    HalfSpaceTrees b = a;
    std::vector<double> rows;
    for (int i = 0; i < 100; ++i) rows.push_back(std::fmod(i * 0.37, 1.0));
    std::vector<double> batch(50), loop(50);
    a.score_learn_many(rows.data(), 50, batch.data());
    for (size_t i = 0; i < 50; ++i) {
        loop[i] = b.score_one(&rows[2 * i]);
        b.learn_one(&rows[2 * i]);
    }
    EXPECT_EQ(batch, loop);
    EXPECT_EQ(a.to_bytes(), b.to_bytes());
}

TEST(HalfSpaceTrees, InvalidParameters) {
    EXPECT_THROW(HalfSpaceTrees(HalfSpaceTreesConfig{0, 8, 250, 0}, {{0.0, 1.0}}), std::invalid_argument);
    EXPECT_THROW(HalfSpaceTrees(HalfSpaceTreesConfig{1, 8, 0, 0}, {{0.0, 1.0}}), std::invalid_argument);
    // Beyond 2^32 the score's normaliser overflowed and scores left [0, 1] (a fuzzing find).
    EXPECT_THROW(HalfSpaceTrees(HalfSpaceTreesConfig{1, 8, (uint64_t{1} << 32) + 1, 0}, {{0.0, 1.0}}),
                 std::invalid_argument);
    EXPECT_THROW(HalfSpaceTrees(HalfSpaceTreesConfig{1, 40, 10, 0}, {{0.0, 1.0}}), std::invalid_argument);
    EXPECT_THROW(HalfSpaceTrees(HalfSpaceTreesConfig{}, {}), std::invalid_argument);
    EXPECT_THROW(HalfSpaceTrees(HalfSpaceTreesConfig{}, {{1.0, 1.0}}), std::invalid_argument);
    EXPECT_THROW(HalfSpaceTrees(HalfSpaceTreesConfig{}, {{0.0, 1.0}}, {"a", "b"}), std::invalid_argument);
}

TEST(HalfSpaceTrees, BytesRoundTripAndCorruption) {
    HalfSpaceTrees h(HalfSpaceTreesConfig{2, 3, 4, 5}, {{0.0, 2.0}, {-1.0, 1.0}}, {"cpu", "mem"});
    const double x[2] = {0.5, 0.1};
    for (int i = 0; i < 6; ++i) h.learn_one(x);
    const std::string good = h.to_bytes();
    const HalfSpaceTrees g = HalfSpaceTrees::from_bytes(good);
    EXPECT_EQ(g.score_one(x), h.score_one(x));
    EXPECT_EQ(g.feature_names(), h.feature_names());
    EXPECT_EQ(g.counter(), 2u);
    for (size_t len = 0; len < good.size(); ++len)
        EXPECT_THROW(HalfSpaceTrees::from_bytes(good.substr(0, len)), std::invalid_argument);
    // Damaged content under a valid checksum: rejected, or loads into a usable model whose
    // scores stay in [0, 1] (a fuzzing find: masses beyond a window made them negative).
    const std::string payload = good.substr(io::kHeaderSize);
    for (size_t i = 0; i < payload.size(); ++i) {
        std::string bad = payload;
        bad[i] = static_cast<char>(bad[i] ^ 0x41);
        try {
            const HalfSpaceTrees c = HalfSpaceTrees::from_bytes(io::seal(io::Family::half_space_trees, 1, bad));
            std::vector<double> row(c.n_features(), 0.5);
            const double s = c.score_one(row.data());
            EXPECT_TRUE(s >= 0.0 && s <= 1.0) << "byte " << i << ": " << s;  // masses beyond a window refused
        } catch (const std::invalid_argument&) {
        }
    }
}

TEST(HalfSpaceTrees, WindowMassesBeyondTheWindowsPointsAreRefused) {
    // A window's masses count its points so far (`counter`): a node beyond that loaded, and the
    // next learn_one saved a model the loader refused (a fuzzing find, review 12).
    HalfSpaceTrees h(HalfSpaceTreesConfig{2, 3, 4, 5}, {{0.0, 2.0}, {-1.0, 1.0}});
    const double x[2] = {0.5, 0.1};
    for (int i = 0; i < 6; ++i) h.learn_one(x);
    ASSERT_EQ(h.counter(), 2u);
    const std::string payload = h.to_bytes().substr(io::kHeaderSize);
    const size_t nodes = 2 * 15;  // n_trees x (2^(height+1) - 1); window masses, then reference masses
    const size_t root = payload.size() - 2 * nodes * sizeof(uint64_t);
    std::string bad = payload;
    const uint64_t four = 4;  // within a window, beyond the window's 2 points so far
    bad.replace(root, sizeof four, reinterpret_cast<const char*>(&four), sizeof four);
    EXPECT_THROW(HalfSpaceTrees::from_bytes(io::seal(io::Family::half_space_trees, 1, bad)), std::invalid_argument);
    // The model as saved loads, learns a whole window and saves one that loads.
    HalfSpaceTrees g = HalfSpaceTrees::from_bytes(io::seal(io::Family::half_space_trees, 1, payload));
    for (int i = 0; i < 5; ++i) g.learn_one(x);
    EXPECT_NO_THROW(HalfSpaceTrees::from_bytes(g.to_bytes()));
}

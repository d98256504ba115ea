// Isolation Forest core: the score definition, determinism, thread
// independence, the effect of the parameters, and serialisation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

#include "anomaly_detection/forest/isolation_forest.hpp"
#include "anomaly_detection/forest/random.hpp"
#include "anomaly_detection/io/bytes.hpp"

using namespace anomaly_detection;

namespace {

// n inliers from N(0, 1) in d dimensions, followed by `outliers` rows at +8.
RowMatrixXd blob(size_t n, size_t d, size_t outliers, uint64_t seed) {
    std::mt19937_64 gen(seed);
    std::normal_distribution<double> normal;
    RowMatrixXd X(n + outliers, d);
    for (Eigen::Index i = 0; i < X.rows(); ++i)
        for (Eigen::Index j = 0; j < X.cols(); ++j) X(i, j) = normal(gen) + (static_cast<size_t>(i) >= n ? 8.0 : 0.0);
    return X;
}

IsolationForestConfig config(uint64_t seed) {
    IsolationForestConfig c;
    c.seed = seed;
    return c;
}

// The layout scoring_layout() reports with the AVX2 walk allowed: "rank-avx2-<bits>bit" on
// CPUs with AVX2, else `layout`.
const char* with_avx2(const char* layout, const char* bits) {
    if (bits == nullptr || !IsolationForest::vector_walk_supported()) return layout;
    return std::string(bits) == "8" ? "rank-avx2-8bit" : "rank-avx2-16bit";
}

}  // namespace

TEST(AveragePathLength, MatchesScikitLearn) {
    EXPECT_EQ(average_path_length(0), 0.0);
    EXPECT_EQ(average_path_length(1), 0.0);
    EXPECT_EQ(average_path_length(2), 1.0);
    // 2 (ln(n - 1) + gamma) - 2 (n - 1) / n, values from sklearn's _average_path_length.
    EXPECT_NEAR(average_path_length(3), 1.207392357589623, 1e-12);
    EXPECT_NEAR(average_path_length(256), 10.244770920119917, 1e-12);
}

TEST(IsolationForest, OutliersScoreLowerThanInliers) {
    const RowMatrixXd X = blob(500, 4, 10, 1);
    IsolationForest f(config(7));
    f.fit(X);
    const Eigen::VectorXd s = f.score_samples(X);
    EXPECT_LT(s.tail(10).maxCoeff(), s.head(500).mean());
    for (Eigen::Index i = 0; i < s.size(); ++i) {
        EXPECT_LT(s[i], 0.0);
        EXPECT_GE(s[i], -1.0);
    }
    EXPECT_EQ(f.max_samples_used(), 256u);
    EXPECT_EQ(f.offset(), -0.5);
    EXPECT_EQ(f.n_trees(), 100u);
}

TEST(IsolationForest, ScoreIsTwoToTheMinusNormalisedPathLength) {
    const RowMatrixXd X = blob(300, 3, 5, 2);
    IsolationForest f(config(3));
    f.fit(X);
    const Eigen::VectorXd h = f.mean_path_length(X);
    const Eigen::VectorXd s = f.score_samples(X);
    const double c = average_path_length(256);
    for (Eigen::Index i = 0; i < s.size(); ++i) EXPECT_DOUBLE_EQ(s[i], -std::exp2(-h[i] / c));
    // A path is at most max_depth (8) plus c(n) of a leaf (n <= 256).
    EXPECT_LE(h.maxCoeff(), 8.0 + c);
    EXPECT_GT(h.minCoeff(), 0.0);
}

TEST(IsolationForest, SameSeedSameScoresAnyThreadCount) {
    const RowMatrixXd X = blob(2000, 5, 20, 3);
    IsolationForest a(config(11)), b(config(11)), c(config(12));
    a.fit(X, 1);
    b.fit(X, 4);
    c.fit(X, 1);
    const Eigen::VectorXd sa = a.score_samples(X, 1);
    EXPECT_EQ(sa, b.score_samples(X, 3));
    EXPECT_NE(sa, c.score_samples(X, 1));
    EXPECT_EQ(a.to_bytes(), b.to_bytes());
}

TEST(IsolationForest, ContaminationSetsOffsetAtThePercentile) {
    const RowMatrixXd X = blob(999, 3, 1, 4);
    auto cfg = config(5);
    cfg.contamination = 0.1;
    IsolationForest f(cfg);
    f.fit(X);
    const Eigen::VectorXd d = f.decision_function(X);
    const auto below = (d.array() < 0.0).count();
    EXPECT_EQ(below, 100);  // 1000 distinct scores: exactly 10 % fall under the 10th percentile
}

TEST(IsolationForest, MaxSamplesAndFeaturesBoundTheTrees) {
    const RowMatrixXd X = blob(400, 6, 0, 5);
    auto cfg = config(6);
    cfg.max_samples = 16;
    cfg.max_features = 2;
    cfg.n_estimators = 10;
    IsolationForest f(cfg);
    f.fit(X);
    EXPECT_EQ(f.max_samples_used(), 16u);
    EXPECT_LE(f.n_nodes(), 10u * (2 * 16 - 1));
    const Eigen::VectorXd h = f.mean_path_length(X);
    EXPECT_LE(h.maxCoeff(), 4.0 + average_path_length(16));
}

TEST(IsolationForest, BootstrapGrowsOnDistinctRows) {
    const RowMatrixXd X = blob(64, 2, 0, 6);
    auto cfg = config(8);
    cfg.bootstrap = true;
    cfg.max_samples = 64;
    IsolationForest f(cfg);
    f.fit(X);
    // 64 draws with replacement from 64 rows hold about 41 distinct rows: fewer leaves than 64.
    EXPECT_LT(f.n_nodes(), 100u * (2 * 64 - 1));
    EXPECT_TRUE(f.score_samples(X).allFinite());
}

TEST(IsolationForest, ConstantDataIsOneLeafPerTree) {
    RowMatrixXd X = RowMatrixXd::Constant(50, 3, 2.5);
    IsolationForest f(config(1));
    f.fit(X);
    EXPECT_EQ(f.n_nodes(), 100u);
    const Eigen::VectorXd h = f.mean_path_length(X);
    EXPECT_NEAR(h[0], average_path_length(50), 1e-12);
}

TEST(IsolationForest, SingleRow) {
    RowMatrixXd X(1, 2);
    X << 1.0, 2.0;
    IsolationForest f(config(1));
    f.fit(X);
    EXPECT_DOUBLE_EQ(f.score_samples(X)[0], -0.5);  // scikit-learn's convention when c(1) = 0
}

TEST(IsolationForest, InvalidInput) {
    EXPECT_THROW(IsolationForest(IsolationForestConfig{0, 0, 0, 0.0, false, 0}), std::invalid_argument);
    auto bad = config(1);
    bad.contamination = 0.6;
    EXPECT_THROW(IsolationForest{bad}, std::invalid_argument);

    IsolationForest f(config(1));
    RowMatrixXd X = blob(10, 2, 0, 1);
    EXPECT_THROW(f.score_samples(X), std::runtime_error);
    X(3, 1) = std::numeric_limits<double>::quiet_NaN();
    EXPECT_THROW(f.fit(X), std::invalid_argument);
    EXPECT_FALSE(f.is_fitted());
    EXPECT_THROW(f.fit(RowMatrixXd(0, 3)), std::invalid_argument);
    auto many = config(1);
    many.max_samples = 11;
    IsolationForest g(many);
    EXPECT_THROW(g.fit(blob(10, 2, 0, 1)), std::invalid_argument);
    auto wide = config(1);
    wide.max_features = 3;
    IsolationForest h(wide);
    EXPECT_THROW(h.fit(blob(10, 2, 0, 1)), std::invalid_argument);

    f.fit(blob(10, 2, 0, 1));
    EXPECT_THROW(f.score_samples(blob(10, 3, 0, 1)), std::invalid_argument);
    RowMatrixXd inf = blob(10, 2, 0, 1);
    inf(0, 0) = std::numeric_limits<double>::infinity();
    EXPECT_THROW(f.score_samples(inf), std::invalid_argument);
}

TEST(IsolationForest, FailedFitKeepsThePreviousModel) {
    IsolationForest f(config(2));
    const RowMatrixXd X = blob(100, 2, 0, 2);
    f.fit(X);
    const std::string before = f.to_bytes();
    RowMatrixXd bad = X;
    bad(0, 0) = std::numeric_limits<double>::infinity();
    EXPECT_THROW(f.fit(bad), std::invalid_argument);
    EXPECT_EQ(f.to_bytes(), before);
}

TEST(IsolationForest, BytesRoundTrip) {
    const RowMatrixXd X = blob(300, 3, 3, 9);
    auto cfg = config(21);
    cfg.contamination = 0.05;
    IsolationForest f(cfg);
    f.fit(X);
    const IsolationForest g = IsolationForest::from_bytes(f.to_bytes());
    EXPECT_EQ(f.score_samples(X), g.score_samples(X));
    EXPECT_EQ(f.offset(), g.offset());
    EXPECT_EQ(g.config().seed, 21u);
    EXPECT_EQ(g.to_bytes(), f.to_bytes());

    const IsolationForest unfitted = IsolationForest::from_bytes(IsolationForest(cfg).to_bytes());
    EXPECT_FALSE(unfitted.is_fitted());
}

TEST(IsolationForest, CorruptBytesThrowInvalidArgument) {
    auto cfg = config(4);
    cfg.n_estimators = 3;
    IsolationForest f(cfg);
    f.fit(blob(40, 3, 0, 4));
    const std::string good = f.to_bytes();
    // Truncation at every length and a flipped bit in every byte: always invalid_argument, never a crash.
    for (size_t len = 0; len < good.size(); ++len)
        EXPECT_THROW(IsolationForest::from_bytes(good.substr(0, len)), std::invalid_argument);
    for (size_t i = 0; i < good.size(); ++i) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ 0x10);
        EXPECT_THROW(IsolationForest::from_bytes(bad), std::invalid_argument) << "byte " << i;
    }
    EXPECT_THROW(IsolationForest::from_bytes(good + "x"), std::invalid_argument);
}

TEST(Random, XoshiroBelowIsInRangeAndCoversIt) {
    Xoshiro256 rng(1);
    int counts[7] = {};
    for (int i = 0; i < 7000; ++i) ++counts[rng.below(7)];
    for (int c : counts) EXPECT_GT(c, 850);
    for (int i = 0; i < 1000; ++i) {
        const double u = rng.uniform01();
        EXPECT_GE(u, 0.0);
        EXPECT_LT(u, 1.0);
    }
}

TEST(Random, PythonRandomMatchesCPython) {
    // random.Random(42).random(), twice, and random.Random(0).random().
    PythonRandom a(42);
    EXPECT_DOUBLE_EQ(a.random(), 0.6394267984578837);
    EXPECT_DOUBLE_EQ(a.random(), 0.025010755222666936);
    PythonRandom b(0);
    EXPECT_DOUBLE_EQ(b.random(), 0.8444218515250481);
    PythonRandom big(1ULL << 40);
    EXPECT_DOUBLE_EQ(big.random(), 0.1036394562812375);
}

namespace {

// Scores of integer rows of type T, read in place (Fortran order: column stride 1), against
// the same values as doubles, and the path lengths against the plain walk, bit for bit.
template <typename T>
void expect_integer_rows_match(const IsolationForest& f, const RowMatrixXd& values) {
    const auto n = static_cast<size_t>(values.rows()), d = static_cast<size_t>(values.cols());
    std::vector<T> column_major(n * d);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < d; ++j)
            column_major[j * n + i] =
                static_cast<T>(values(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)));
    RowMatrixXd as_double(n, d);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < d; ++j)
            as_double(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = column_major[j * n + i];
    const IntegerRows<T> rows{column_major.data(), n, d, 1, static_cast<std::ptrdiff_t>(n)};
    const Eigen::VectorXd lengths = f.mean_path_length(rows, 2);
    const Eigen::VectorXd plain = f.mean_path_length_reference(as_double);
    const Eigen::VectorXd scores = f.score_samples(rows, 1), expected = f.score_samples(as_double, 1);
    const Eigen::VectorXd decision = f.decision_function(rows, 1),
                          expected_decision = f.decision_function(as_double, 1);
    for (size_t i = 0; i < n; ++i) {
        const auto r = static_cast<Eigen::Index>(i);
        ASSERT_EQ(lengths[r], plain[r]) << f.scoring_layout() << " row " << i;
        ASSERT_EQ(scores[r], expected[r]) << f.scoring_layout() << " row " << i;
        ASSERT_EQ(decision[r], expected_decision[r]) << f.scoring_layout() << " row " << i;
    }
}

}  // namespace

// Integer input (8-, 16- and 32-bit) is ranked without a conversion to double: the same
// path lengths and scores as the same values as doubles, in every layout, for values inside,
// below and above each feature's integer table, and for features ranked by buckets.
TEST(IsolationForest, IntegerRowsScoreAsTheirDoubles) {
    struct Case {
        size_t n, d, max_samples;
        double spread;  // integers ~ N(0, spread) (1e6: feature 0 has no integer table); < 0: Cauchy
        const char* layout;
    };
    const Case cases[] = {{3000, 9, 256, 3.0, "rank"}, {3000, 4, 3000, 40.0, "rank"}, {2000, 36, 256, 60.0, "rank"},
                          {3000, 3, 256, 1e6, "rank"}, {600, 600, 64, 3.0, "heap"},   {3000, 4, 4000, -1e3, "node"}};
    for (const Case& c : cases) {
        std::mt19937_64 gen(c.n * 7 + c.d);
        std::normal_distribution<double> normal;
        std::cauchy_distribution<double> cauchy;
        RowMatrixXd X(c.n, c.d);
        for (Eigen::Index i = 0; i < X.rows(); ++i)
            for (Eigen::Index j = 0; j < X.cols(); ++j)
                X(i, j) =
                    c.spread < 0
                        ? std::round(std::clamp(cauchy(gen) * -c.spread, -2e9, 2e9))
                        : std::round(normal(gen) * (j == 0 && c.spread > 1e5 ? c.spread : std::min(c.spread, 60.0)));
        IsolationForestConfig cfg = config(c.n);
        cfg.max_samples = std::min(c.max_samples, c.n);
        cfg.n_estimators = c.d > 100 ? 10 : 50;
        IsolationForest f(cfg);
        f.fit(X, 2);
        EXPECT_STREQ(f.scoring_layout(), with_avx2(c.layout, std::string(c.layout) == "rank" ? "8" : nullptr))
            << c.n << "x" << c.d;
        // Every integer from -130 to 130 in each feature, and the extremes of 8 and 16 bits.
        RowMatrixXd Q = X.topRows(400);
        for (Eigen::Index i = 0; i < Q.rows(); ++i)
            for (Eigen::Index j = 0; j < Q.cols(); ++j)
                if ((i + j) % 3 == 0) Q(i, j) = static_cast<double>((i * 7 + j) % 261 - 130);
        Q.row(0).setConstant(-128.0);
        Q.row(1).setConstant(127.0);
        Q.row(2).setConstant(0.0);
        RowMatrixXd wide = Q;
        wide.row(3).setConstant(-32768.0);
        wide.row(4).setConstant(32767.0);
        wide.row(5).setConstant(-2147483648.0);
        wide.row(6).setConstant(2147483647.0);
        RowMatrixXd narrow = Q.cwiseMax(-128.0).cwiseMin(127.0);
        for (const bool vector : {true, false}) {
            f.set_vector_walk(vector);
            expect_integer_rows_match<int8_t>(f, narrow);
            expect_integer_rows_match<uint8_t>(f, narrow.cwiseAbs());
            expect_integer_rows_match<int16_t>(f, wide.cwiseMax(-32768.0).cwiseMin(32767.0));
            expect_integer_rows_match<uint16_t>(f, wide.cwiseAbs().cwiseMin(65535.0));
            expect_integer_rows_match<int32_t>(f, wide);
            if (c.spread > 1e5 || c.spread < 0) expect_integer_rows_match<int32_t>(f, X);
        }
        f.set_vector_walk(true);
    }
}

// Float and double rows read in place (C order, Fortran order, every other column of a wider
// matrix) grow the same trees as the C-ordered doubles of the same values (fit reads only the
// sampled rows), and score the same to the last bit, in every layout; a NaN anywhere, also in a
// row no tree samples, is found by fit's one pass and by scoring's blocks, with its row and column.
TEST(IsolationForest, FloatAndStridedRowsFitAndScoreAsContiguousDoubles) {
    struct Case {
        size_t n, d, max_samples;
        double contamination;
        const char* layout;
    };
    const Case cases[] = {{3000, 5, 256, 0.0, "rank"}, {1000, 36, 256, 0.1, "rank"}, {600, 600, 64, 0.0, "heap"}};
    for (const Case& c : cases) {
        RowMatrixXd X = blob(c.n, c.d, 0, c.n + c.d);
        for (Eigen::Index i = 0; i < X.rows(); ++i)
            for (Eigen::Index j = 0; j < X.cols(); ++j)
                X(i, j) = static_cast<double>(static_cast<float>(X(i, j)));  // exact as floats
        const auto n = static_cast<size_t>(X.rows()), d = c.d;
        std::vector<float> c32(n * d), f32(n * d);
        std::vector<double> f64(n * d), wide(n * d * 2);
        for (size_t i = 0; i < n; ++i)
            for (size_t j = 0; j < d; ++j) {
                const double v = X(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j));
                c32[i * d + j] = f32[j * n + i] = static_cast<float>(v);
                f64[j * n + i] = wide[i * 2 * d + 2 * j + 1] = v;
            }
        const auto sn = static_cast<std::ptrdiff_t>(n), sd = static_cast<std::ptrdiff_t>(d);
        IsolationForestConfig cfg = config(c.n);
        cfg.max_samples = c.max_samples;
        cfg.contamination = c.contamination;
        cfg.n_estimators = c.d > 100 ? 10 : 50;
        IsolationForest reference(cfg);
        reference.fit(X);
        EXPECT_STREQ(reference.scoring_layout(), with_avx2(c.layout, std::string(c.layout) == "rank" ? "8" : nullptr));
        const Eigen::VectorXd expected = reference.score_samples(X);
        const auto check = [&](const auto& rows, const char* what) {
            IsolationForest f(cfg);
            f.fit(rows);
            EXPECT_EQ(f.to_bytes(), reference.to_bytes()) << what << " " << c.n << "x" << c.d;
            const Eigen::VectorXd scores = reference.score_samples(rows, 2);
            for (Eigen::Index i = 0; i < scores.size(); ++i) ASSERT_EQ(scores[i], expected[i]) << what << " row " << i;
        };
        check(StridedRows<float>{c32.data(), n, d, sd, 1}, "float C");
        check(StridedRows<float>{f32.data(), n, d, 1, sn}, "float F");
        check(StridedRows<double>{f64.data(), n, d, 1, sn}, "double F");
        check(StridedRows<double>{wide.data() + 1, n, d, 2 * sd, 2}, "double every other column");

        f32[(d - 1) * n + (n - 3)] = std::numeric_limits<float>::quiet_NaN();  // row n - 3, last column
        const StridedRows<float> bad{f32.data(), n, d, 1, sn};
        const std::string where = "row " + std::to_string(n - 3) + ", column " + std::to_string(d - 1);
        IsolationForest f(cfg);
        try {
            f.fit(bad);
            ADD_FAILURE() << "fit took a NaN";
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
        }
        EXPECT_FALSE(f.is_fitted());
        try {
            reference.score_samples(bad, 2);
            ADD_FAILURE() << "scoring took a NaN";
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
        }
    }
}

TEST(IsolationForest, ResealedCorruptPayloadIsRejectedOrHarmless) {
    // A valid checksum over damaged content must still never crash: either the
    // structural checks reject it, or every walk stays inside its tree.
    auto cfg = config(5);
    cfg.n_estimators = 3;
    IsolationForest f(cfg);
    const RowMatrixXd X = blob(40, 3, 0, 5);
    f.fit(X);
    const std::string payload = f.to_bytes().substr(io::kHeaderSize);
    size_t rejected = 0;
    for (size_t i = 0; i < payload.size(); ++i) {
        for (const unsigned char mask : {0x01, 0x80}) {
            std::string bad = payload;
            bad[i] = static_cast<char>(bad[i] ^ mask);
            try {
                const IsolationForest g = IsolationForest::from_bytes(io::seal(io::Family::isolation_forest, 1, bad));
                if (g.is_fitted()) EXPECT_EQ(g.score_samples(X).size(), X.rows());
            } catch (const std::invalid_argument&) {
                ++rejected;
            }
        }
    }
    EXPECT_GT(rejected, payload.size() / 4);
}

TEST(IsolationForest, NodeWithTwoParentsIsRejected) {
    // A crafted model whose split points at children another split already has: each
    // pointer is in range and forward, but the shared children sit at two depths, which
    // put a heap slot outside the layout (an ASan overflow found by fuzzing).
    auto cfg = config(7);
    cfg.n_estimators = 1;
    IsolationForest f(cfg);
    f.fit(blob(200, 3, 0, 7));
    const auto& nodes = f.nodes();
    const uint32_t count = static_cast<uint32_t>(nodes.size());
    std::string payload = f.to_bytes().substr(io::kHeaderSize);
    bool crafted = false;
    for (uint32_t i = 0; i < count && !crafted; ++i) {
        for (uint32_t j = i + 1; j < count && !crafted; ++j) {
            if (nodes[i].left == i || nodes[j].left == j || nodes[i].left <= j) continue;
            // Node j's record (threshold, feature, left) is found by its bytes and given i's children.
            io::ByteWriter w;
            w.put<double>(nodes[j].threshold);
            w.put<uint32_t>(nodes[j].feature);
            w.put<uint32_t>(nodes[j].left);
            const size_t at = payload.find(w.str());
            ASSERT_NE(at, std::string::npos);
            io::ByteWriter left;
            left.put<uint32_t>(nodes[i].left);
            payload.replace(at + 12, 4, left.str());
            crafted = true;
        }
    }
    ASSERT_TRUE(crafted);
    EXPECT_THROW(IsolationForest::from_bytes(io::seal(io::Family::isolation_forest, 1, payload)),
                 std::invalid_argument);
}

// The fast scoring layouts (ranks of split values, padded heap, plain nodes) must give
// the plain walk's path lengths bit for bit, on rows equal to split values, just above
// and below them, signed zeros, heavy tails, duplicates, integers and huge magnitudes.
// With AVX2 the rank layout compares the top levels at once, on 8-bit top ranks (up to 64
// features, at most 255 distinct top splits per feature) or on 16-bit ranks (up to 16
// features, fewer than 2^15 - 1 split values per feature): every case runs with and without.
TEST(IsolationForest, FastScoringEqualsThePlainWalk) {
    struct Case {
        size_t n, d, max_samples;
        int kind;  // 0 normal, 1 Cauchy * 1e6 with +-1e308, 2 small integers, 3 rounded with zeros
        const char* layout;
        const char* avx2 = nullptr;  // the layout with AVX2 when it differs: "8" or "16" (bit)
        size_t trees = 0;            // 0: 50 (10 beyond 100 features)
    };
    const Case cases[] = {{3000, 5, 256, 0, "rank", "8"},
                          {3000, 3, 1001, 1, "rank", "8"},
                          {5000, 9, 256, 2, "rank", "8"},
                          {2000, 36, 256, 3, "rank", "8"},
                          {600, 600, 64, 0, "heap"},
                          {70000, 2, 70000, 2, "node"},
                          {3000, 4, 4000, 1, "node"},
                          {3000, 4, 3000, 0, "rank", "8"},
                          {3000, 16, 256, 1, "rank", "8"},
                          {3000, 12, 256, 3, "rank", "8"},
                          {3000, 6, 8, 0, "rank", "8"},
                          {3000, 6, 16, 1, "rank", "8"},
                          {3000, 10, 32, 2, "rank", "8"},
                          {2000, 64, 128, 1, "rank", "8"},
                          {3000, 2, 256, 0, "rank", "16"},
                          {3000, 9, 256, 1, "rank", "16", 400},
                          {3000, 13, 512, 3, "rank", "16", 300},
                          {1000, 80, 64, 0, "heap"},  // over 64 features: the heap walk (faster than ranking)
                          {5000, 1, 4096, 0, "rank", nullptr, 50}};
    for (const Case& c : cases) {
        std::mt19937_64 gen(c.n + c.d);
        std::normal_distribution<double> normal;
        std::cauchy_distribution<double> cauchy;
        RowMatrixXd X(c.n, c.d);
        for (Eigen::Index i = 0; i < X.rows(); ++i)
            for (Eigen::Index j = 0; j < X.cols(); ++j) {
                const double z = normal(gen);
                X(i, j) = c.kind == 0   ? z
                          : c.kind == 1 ? cauchy(gen) * 1e6
                          : c.kind == 2 ? std::round(z * 3.0)
                                        : (i % 5 == 0 ? -0.0 : std::round(z * 10.0) / 10.0);
            }
        if (c.kind == 1) {
            X(0, 0) = 1e308;
            X(1, 0) = -1e308;
            X(2, 0) = 5e-324;
        }
        IsolationForestConfig cfg = config(c.n);
        cfg.max_samples = std::min(c.max_samples, c.n);
        cfg.n_estimators = c.trees > 0 ? c.trees : c.d > 100 ? 10 : 50;
        IsolationForest f(cfg);
        f.fit(X, 2);
        // The last case has over 2^15 split values and over 255 top splits in its one feature.
        const char* vector_layout = with_avx2(c.layout, c.avx2);
        EXPECT_STREQ(f.scoring_layout(), vector_layout) << c.n << "x" << c.d;
        // Rows at, just below and just above split values, and signed zeros.
        RowMatrixXd Q = X.topRows(std::min<Eigen::Index>(X.rows(), 400));
        size_t q = 0;
        for (const IsolationNode& node : f.nodes()) {
            if (!std::isfinite(node.threshold)) continue;
            const auto row = static_cast<Eigen::Index>(q++ % static_cast<size_t>(Q.rows()));
            const int which = static_cast<int>(q % 3);
            Q(row, node.feature) = which == 0   ? node.threshold
                                   : which == 1 ? std::nextafter(node.threshold, -1e308)
                                                : std::nextafter(node.threshold, 1e308);
        }
        Q(0, 0) = 0.0;
        Q(1, 0) = -0.0;
        Q.row(2).setConstant(-1e6);  // integers below and above every split value
        Q.row(3).setConstant(1e6);
        Q.row(4).setConstant(-1.0);
        Q(5, 0) = 1e300;
        Q(6, 0) = 3.0;
        for (const bool vector : {true, false}) {
            f.set_vector_walk(vector);
            EXPECT_STREQ(f.scoring_layout(), vector ? vector_layout : c.layout);
            for (const RowMatrixXd& rows : {X, Q}) {
                const Eigen::VectorXd fast = f.mean_path_length(rows, 2);
                const Eigen::VectorXd plain = f.mean_path_length_reference(rows);
                ASSERT_EQ(fast.size(), plain.size());
                for (Eigen::Index i = 0; i < fast.size(); ++i)
                    ASSERT_EQ(fast[i], plain[i]) << f.scoring_layout() << " " << c.n << "x" << c.d << " row " << i;
            }
        }
        f.set_vector_walk(true);
        // The layouts are derived again from restored bytes.
        const IsolationForest g = IsolationForest::from_bytes(f.to_bytes());
        EXPECT_STREQ(g.scoring_layout(), vector_layout);
        EXPECT_EQ(g.mean_path_length(Q, 1), f.mean_path_length(Q, 1));
    }
}

// The AVX2 walk is taken when the CPU has AVX2 (x86-64 GCC/Clang builds), and
// set_vector_walk(false) returns to the scalar walk.
TEST(IsolationForest, VectorWalkIsTakenWhenTheCpuHasAvx2) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    EXPECT_EQ(IsolationForest::vector_walk_supported(), __builtin_cpu_supports("avx2") != 0);
#else
    EXPECT_FALSE(IsolationForest::vector_walk_supported());
#endif
    IsolationForest f(config(3));
    const RowMatrixXd X = blob(1000, 6, 10, 3);
    f.fit(X);
    EXPECT_STREQ(f.scoring_layout(), IsolationForest::vector_walk_supported() ? "rank-avx2-8bit" : "rank");
    const Eigen::VectorXd vector_scores = f.score_samples(X);
    EXPECT_TRUE(f.set_vector_walk(false));
    EXPECT_STREQ(f.scoring_layout(), "rank");
    const Eigen::VectorXd scalar_scores = f.score_samples(X);
    EXPECT_FALSE(f.set_vector_walk(true));
    for (Eigen::Index i = 0; i < X.rows(); ++i) ASSERT_EQ(vector_scores[i], scalar_scores[i]) << "row " << i;
}

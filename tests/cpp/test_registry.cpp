#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "anomaly_detection/detectors/registry.hpp"

using namespace anomaly_detection;

namespace {
// Each method's conventional threshold (Settings' defaults in Python).
double conventional_threshold(Method m) {
    switch (m) {
        case Method::mad:
            return 3.5;
        case Method::iqr:
            return 1.5;
        case Method::cusum:
            return 5.0;
        case Method::ensemble:
            return 0.5;
        default:
            return 3.0;
    }
}

DetectorConfig config(Method m) {
    DetectorConfig c;
    c.method = m;
    c.window_size = 32;
    c.min_samples = 5;
    c.threshold = conventional_threshold(m);
    return c;
}
}  // namespace

TEST(DetectorConfig, ValidateRejectsBadFields) {
    DetectorConfig c;
    c.window_size = 1;
    EXPECT_THROW(c.validate(), std::invalid_argument);
    c = DetectorConfig{};
    c.threshold = -1;
    EXPECT_THROW(c.validate(), std::invalid_argument);
    c = DetectorConfig{};
    c.ewma_alpha = 0;
    EXPECT_THROW(c.validate(), std::invalid_argument);
    EXPECT_THROW(parse_method("nope"), std::invalid_argument);
    EXPECT_EQ(parse_method("mad"), Method::mad);
}

TEST(SensorNames, RejectKeyBreakingCharacters) {
    EXPECT_TRUE(is_valid_sensor_name("pump-1.temp"));
    for (const char* bad : {"", "a:b", "a*", "a?", "[", "]", "{", "}", "a b", "a\tb"})
        EXPECT_FALSE(is_valid_sensor_name(bad)) << bad;
    EXPECT_FALSE(is_valid_sensor_name(std::string(201, 'x')));
    EXPECT_THROW(check_sensor_name("a:b"), std::invalid_argument);
}

TEST(SensorNames, OneRuleForUnicodeBlanksInvisiblesDotsAndBadUtf8) {
    for (const char* good : {"h\xC3\xB6he/2", "\xD0\xBA\xD0\xBB\xD1\x8E\xD1\x87", "...", ".hidden", "\xF0\x9F\x94\xA5"})
        EXPECT_TRUE(is_valid_sensor_name(good)) << good;
    for (const char* bad : {
             ".", "..",
             "a\xC2\xA0"
             "b",  // U+00A0 no-break space
             "a\xC2\x85"
             "b",  // U+0085 next line (C1 control)
             "a\xE2\x80\xA8"
             "b",  // U+2028 line separator
             "a\xE2\x80\x8B"
             "b",  // U+200B zero-width space
             "a\xE2\x80\xAE"
             "b",  // U+202E right-to-left override
             "\xEF\xBB\xBF"
             "a",  // U+FEFF byte order mark
             "a\xE3\x80\x80"
             "b",  // U+3000 ideographic space
             "a\xFF"
             "b",      // not UTF-8
             "a\xC3",  // truncated sequence
             "a\xC0\xBA"
             "b",  // overlong ':'
             "a\xED\xA0\x80"
             "b",  // an encoded surrogate
             "a\xF4\x90\x80\x80"
             "b",  // beyond U+10FFFF
         })
        EXPECT_FALSE(is_valid_sensor_name(bad)) << bad;
    EXPECT_THROW(check_sensor_name(".."), std::invalid_argument);
}

TEST(SensorRegistry, FlagsSpikeAfterWarmUp) {
    SensorRegistry reg(config(Method::zscore));
    for (int i = 0; i < 50; ++i) EXPECT_FALSE(reg.detect("s", 10.0 + (i % 3) * 0.1, i).is_anomaly);
    const auto d = reg.detect("s", 50.0, 50);
    EXPECT_TRUE(d.is_anomaly);
    EXPECT_GT(d.score, 0.999);
    EXPECT_EQ(d.window_count, 32u);
}

TEST(SensorRegistry, RejectsNonFiniteBatchWithoutChange) {
    SensorRegistry reg(config(Method::zscore));
    reg.detect("s", 1.0, 0);
    const double values[] = {1.0, NAN, 2.0};
    const double ts[] = {1, 2, 3};
    bool a[3];
    double s[3], d[3], e[3];
    uint64_t c[3];
    EXPECT_THROW(reg.detect_batch("s", values, ts, 3, {a, s, d, e, c}), std::invalid_argument);
    SensorSummary sum;
    ASSERT_TRUE(reg.summary("s", sum));
    EXPECT_EQ(sum.points_seen, 1u);
}

class BadBatchChangesNothing : public ::testing::TestWithParam<std::tuple<Method, bool>> {};

TEST_P(BadBatchChangesNothing, NonFiniteEntryInAnyBlock) {
    // The z-score, EWMA and CUSUM kernels check each block as they reach it, after the
    // blocks before it have moved the running sums: a bad entry anywhere (the first
    // stretch, a later block, the tail; a value or a timestamp) must still leave every
    // sensor as it was, create no sensor, and name the entry. Then the sensor goes on as
    // if the bad batch had never come.
    const auto [method, include] = GetParam();
    DetectorConfig c = config(method);
    c.include_anomalies = include;
    SensorRegistry reg(c), clean(c);
    std::mt19937_64 rng(11);
    std::normal_distribution<double> noise(20.0, 1.0);
    const size_t n = 20000;  // the kernels check 8,192 points at a time: three stretches
    std::vector<double> values(n), ts(n);
    for (size_t i = 0; i < n; ++i) {
        values[i] = noise(rng);
        ts[i] = static_cast<double>(i);
    }
    std::vector<char> a(n);
    std::vector<double> s(n), d(n), e(n);
    std::vector<uint64_t> cnt(n);
    const BatchOutput out{reinterpret_cast<bool*>(a.data()), s.data(), d.data(), e.data(), cnt.data()};
    reg.detect_batch("s", values.data(), ts.data(), 200, out);
    clean.detect_batch("s", values.data(), ts.data(), 200, out);
    const std::string before = reg.to_bytes();
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    struct Bad {
        size_t at;
        bool timestamp;
        double x;
        const char* message;
    };
    for (const Bad bad : {Bad{0, false, nan, "values[0]: expected a finite number, got nan"},
                          Bad{31, true, inf, "timestamps[31]: expected a finite number, got inf"},
                          Bad{1500, false, -inf, "values[1500]: expected a finite number, got -inf"},
                          Bad{1500, false, -nan, "values[1500]: expected a finite number, got nan"},
                          Bad{17000, false, inf, "values[17000]: expected a finite number, got inf"},
                          Bad{19799, true, nan, "timestamps[19799]: expected a finite number, got nan"}}) {
        std::vector<double> v(values.begin() + 200, values.end()), t(ts.begin() + 200, ts.end());
        (bad.timestamp ? t : v).at(bad.at) = bad.x;
        const size_t m = v.size();
        for (const char* sensor : {"s", "new"}) {
            try {
                reg.detect_batch(sensor, v.data(), t.data(), m, out);
                ADD_FAILURE() << "no error for " << bad.message;
            } catch (const std::invalid_argument& error) {
                EXPECT_EQ(std::string(error.what()), bad.message);
            }
            EXPECT_EQ(reg.to_bytes(), before) << sensor << ": " << bad.message;
        }
    }
    reg.detect_batch("s", values.data() + 200, ts.data() + 200, n - 200, out);
    clean.detect_batch("s", values.data() + 200, ts.data() + 200, n - 200, out);
    EXPECT_EQ(reg.to_bytes(), clean.to_bytes());
}

INSTANTIATE_TEST_SUITE_P(Methods, BadBatchChangesNothing,
                         ::testing::Combine(::testing::Values(Method::zscore, Method::mad, Method::iqr, Method::ewma,
                                                              Method::cusum, Method::ensemble),
                                            ::testing::Bool()));

TEST(SensorRegistry, NonFiniteBatchOnANewSensorAtTheLimitIsReportedFirst) {
    auto c = config(Method::zscore);
    c.max_sensors = 1;
    SensorRegistry reg(c);
    reg.detect("a", 1, 0);
    const double values[] = {1.0, 2.0, NAN};
    const double ts[] = {1, 2, 3};
    bool a[3];
    double s[3], d[3], e[3];
    uint64_t cnt[3];
    EXPECT_THROW(reg.detect_batch("b", values, ts, 3, {a, s, d, e, cnt}), std::invalid_argument);
    const double fine[] = {1.0, 2.0, 3.0};
    EXPECT_THROW(reg.detect_batch("b", fine, ts, 3, {a, s, d, e, cnt}), SensorLimitError);
    EXPECT_EQ(reg.size(), 1u);
    reg.detect_batch("a", fine, ts, 3, {a, s, d, e, cnt});
    EXPECT_EQ(cnt[2], 3u);
}

TEST(SensorRegistry, SensorLimit) {
    auto c = config(Method::zscore);
    c.max_sensors = 1;
    SensorRegistry reg(c);
    reg.detect("a", 1, 0);
    EXPECT_THROW(reg.detect("b", 1, 0), SensorLimitError);
    EXPECT_EQ(reg.size(), 1u);
}

TEST(SensorRegistry, ConcurrentUpdatesLoseNothing) {
    SensorRegistry reg(config(Method::mad));
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&reg, t] {
            for (int i = 0; i < 2000; ++i) reg.detect(i % 2 ? "shared" : "own" + std::to_string(t), i, i);
        });
    for (auto& th : threads) th.join();
    SensorSummary s;
    ASSERT_TRUE(reg.summary("shared", s));
    EXPECT_EQ(s.points_seen, 8u * 1000u);
    EXPECT_EQ(reg.size(), 9u);
}

class RegistryRoundTrip : public ::testing::TestWithParam<Method> {};

TEST_P(RegistryRoundTrip, ContinuesBitForBit) {
    SensorRegistry reg(config(GetParam()));
    std::mt19937_64 rng(7);
    std::normal_distribution<double> noise(100, 5);
    for (int i = 0; i < 500; ++i) reg.detect("s", noise(rng), i);
    auto copy = SensorRegistry::from_bytes(reg.to_bytes());
    for (int i = 0; i < 200; ++i) {
        const double x = noise(rng);
        const auto a = reg.detect("s", x, i);
        const auto b = copy->detect("s", x, i);
        ASSERT_EQ(a.score, b.score);
        ASSERT_EQ(a.is_anomaly, b.is_anomaly);
    }
}

INSTANTIATE_TEST_SUITE_P(Methods, RegistryRoundTrip,
                         ::testing::Values(Method::zscore, Method::mad, Method::iqr, Method::ewma, Method::cusum));

TEST(RegistrySerialization, BytesDoNotDependOnHistory) {
    // The same sensors in the same states give the same bytes, however the registry came
    // to hold them (its map's order depends on insertions): a snapshot loaded and saved
    // again is the snapshot (a fuzzing find).
    SensorRegistry a(config(Method::zscore)), b(config(Method::zscore));
    std::vector<std::string> names;
    for (int i = 0; i < 40; ++i) names.push_back("sensor-" + std::to_string(i));
    for (const auto& n : names) a.detect(n, 1.0, 0);
    for (auto it = names.rbegin(); it != names.rend(); ++it) b.detect(*it, 1.0, 0);
    EXPECT_EQ(a.to_bytes(), b.to_bytes());
    const std::string blob = a.to_bytes();
    EXPECT_EQ(SensorRegistry::from_bytes(blob)->to_bytes(), blob);
}

TEST(RegistrySerialization, CorruptPayloadWithValidChecksumNeverCrashes) {
    SensorRegistry reg(config(Method::iqr));
    for (int i = 0; i < 40; ++i) reg.detect(i % 2 ? "a" : "b", i * 0.5, i);
    const std::string blob = reg.to_bytes();
    const std::string payload(io::unseal(blob, io::Family::sensor_registry, 8));
    std::mt19937_64 rng(1);
    int rejected = 0;
    for (int trial = 0; trial < 20000; ++trial) {
        std::string p = payload;
        const int flips = 1 + static_cast<int>(rng() % 3);
        for (int f = 0; f < flips; ++f) p[rng() % p.size()] = static_cast<char>(rng());
        if (trial % 4 == 0) p.resize(rng() % p.size());
        try {
            SensorRegistry::from_bytes(io::seal(io::Family::sensor_registry, 8, p));
        } catch (const std::invalid_argument&) {
            ++rejected;
        }
    }
    EXPECT_GT(rejected, 5000);  // truncations at least are always rejected
}

TEST(RegistrySerialization, HeaderChecks) {
    SensorRegistry reg(config(Method::zscore));
    reg.detect("s", 1, 0);
    std::string blob = reg.to_bytes();
    EXPECT_THROW(SensorRegistry::from_bytes(blob.substr(0, 10)), std::invalid_argument);
    std::string wrong_family = blob;
    wrong_family[6] = 99;
    EXPECT_THROW(SensorRegistry::from_bytes(wrong_family), std::invalid_argument);
    std::string flipped = blob;
    flipped.back() ^= 1;
    EXPECT_THROW(SensorRegistry::from_bytes(flipped), std::invalid_argument);
}

class BatchEqualsLoop : public ::testing::TestWithParam<std::tuple<Method, bool>> {};

TEST_P(BatchEqualsLoop, ElementByElementThroughGlitchesAndChunks) {
    // The batch kernels (passes over the input) against one update per point, in
    // chunks that start with an empty, a partial and a full window, with glitches.
    const auto [method, include] = GetParam();
    DetectorConfig c = config(method);
    c.include_anomalies = include;
    SensorRegistry looped(c), batched(c);
    std::mt19937_64 rng(5);
    std::normal_distribution<double> noise(20.0, 1.0);
    std::vector<double> values(3000), ts(3000);
    for (size_t i = 0; i < values.size(); ++i) {
        values[i] = noise(rng);
        ts[i] = static_cast<double>(i);
    }
    values[40] = 1e308;
    values[700] = -1e6;
    values[1500] = std::numeric_limits<double>::max();
    for (size_t i = 2000; i < 2100; ++i) values[i] = 7.0;  // a flat stretch
    size_t start = 0;
    for (size_t chunk : {1, 2, 17, 500, 1, 900, 1579}) {
        std::vector<char> a(chunk);
        std::vector<double> s(chunk), d(chunk), e(chunk);
        std::vector<uint64_t> n(chunk);
        const BatchOutput out{reinterpret_cast<bool*>(a.data()), s.data(), d.data(), e.data(), n.data()};
        batched.detect_batch("s", values.data() + start, ts.data() + start, chunk, out);
        for (size_t i = 0; i < chunk; ++i) {
            const Detection one = looped.detect("s", values[start + i], ts[start + i]);
            ASSERT_EQ(one.is_anomaly, static_cast<bool>(a[i])) << start + i;
            ASSERT_EQ(one.score, s[i]) << start + i;
            ASSERT_EQ(one.deviation, d[i]) << start + i;
            ASSERT_EQ(one.expected, e[i]) << start + i;
            ASSERT_EQ(one.window_count, n[i]) << start + i;
            ASSERT_FALSE(std::isnan(s[i]) || std::isnan(d[i])) << start + i;
        }
        start += chunk;
    }
    EXPECT_EQ(looped.to_bytes(), batched.to_bytes());
}

INSTANTIATE_TEST_SUITE_P(Methods, BatchEqualsLoop,
                         ::testing::Combine(::testing::Values(Method::zscore, Method::mad, Method::iqr, Method::ewma,
                                                              Method::cusum),
                                            ::testing::Bool()));

TEST(SensorRegistry, DetectManyEqualsDetectBatchAndChecksFirst) {
    const DetectorConfig c = config(Method::zscore);
    SensorRegistry many(c), one(c);
    std::mt19937_64 rng(9);
    std::normal_distribution<double> noise(20.0, 1.0);
    const size_t n = 5000, sensors = 7;
    std::vector<std::vector<double>> values(sensors, std::vector<double>(n)), ts(sensors, std::vector<double>(n));
    std::vector<std::vector<char>> flags(sensors, std::vector<char>(n));
    std::vector<std::vector<double>> scores(sensors, std::vector<double>(n)), devs(scores), exps(scores);
    std::vector<std::vector<uint64_t>> counts(sensors, std::vector<uint64_t>(n));
    std::vector<SensorRegistry::BatchJob> jobs;
    for (size_t s = 0; s < sensors; ++s) {
        for (size_t i = 0; i < n; ++i) {
            values[s][i] = noise(rng);
            ts[s][i] = static_cast<double>(i);
        }
        jobs.push_back({"s" + std::to_string(s),
                        values[s].data(),
                        ts[s].data(),
                        n,
                        {reinterpret_cast<bool*>(flags[s].data()), scores[s].data(), devs[s].data(), exps[s].data(),
                         counts[s].data()}});
    }
    many.detect_many(jobs, 3);
    for (size_t s = 0; s < sensors; ++s) {
        std::vector<char> a(n);
        std::vector<double> sc(n), d(n), e(n);
        std::vector<uint64_t> k(n);
        one.detect_batch(jobs[s].sensor, values[s].data(), ts[s].data(), n,
                         {reinterpret_cast<bool*>(a.data()), sc.data(), d.data(), e.data(), k.data()});
        EXPECT_EQ(a, flags[s]);
        EXPECT_EQ(sc, scores[s]);
        EXPECT_EQ(d, devs[s]);
    }
    EXPECT_EQ(many.to_bytes(), one.to_bytes());

    // A NaN in the last job, or a sensor given twice: nothing is scored or created.
    const std::string before = many.to_bytes();
    values[sensors - 1][17] = NAN;
    EXPECT_THROW(many.detect_many(jobs, 2), std::invalid_argument);
    values[sensors - 1][17] = 1.0;
    jobs.push_back(jobs.front());
    EXPECT_THROW(many.detect_many(jobs, 2), std::invalid_argument);
    EXPECT_EQ(many.to_bytes(), before);
}

TEST(SensorRegistry, DetectManyChecksEveryChunkOfEveryJobBeforeScoring) {
    // Jobs longer than the workers' chunk of 65,536 points: a non-finite entry in a late chunk
    // of the last job (and a later one after it) fails the call with the message of the
    // first bad entry, and no sensor is created or scored, on 1 to 4 threads.
    const DetectorConfig c = config(Method::zscore);
    const size_t n = 150000, sensors = 4;
    std::vector<std::vector<double>> values(sensors, std::vector<double>(n, 1.0)), ts(values);
    for (auto& t : ts)
        for (size_t i = 0; i < n; ++i) t[i] = static_cast<double>(i);
    std::vector<std::vector<char>> flags(sensors, std::vector<char>(n));
    std::vector<std::vector<double>> scores(values), devs(values), exps(values);
    std::vector<std::vector<uint64_t>> counts(sensors, std::vector<uint64_t>(n));
    std::vector<SensorRegistry::BatchJob> jobs;
    for (size_t s = 0; s < sensors; ++s)
        jobs.push_back({"s" + std::to_string(s),
                        values[s].data(),
                        ts[s].data(),
                        n,
                        {reinterpret_cast<bool*>(flags[s].data()), scores[s].data(), devs[s].data(), exps[s].data(),
                         counts[s].data()}});
    ts[sensors - 1][140001] = std::numeric_limits<double>::infinity();
    values[sensors - 1][149999] = NAN;
    for (size_t threads : {1, 2, 4}) {
        SensorRegistry reg(c);
        reg.detect("s0", 3.0, 0.0);
        const std::string before = reg.to_bytes();
        try {
            reg.detect_many(jobs, threads);
            ADD_FAILURE() << "no error on " << threads << " threads";
        } catch (const std::invalid_argument& e) {
            EXPECT_STREQ(e.what(), "sensor 's3': timestamps[140001]: expected a finite number, got inf");
        }
        EXPECT_EQ(reg.to_bytes(), before);
        EXPECT_EQ(reg.size(), 1u);
    }
    ts[sensors - 1][140001] = 140001.0;
    values[sensors - 1][149999] = 1.0;
    SensorRegistry reg(c);
    reg.detect_many(jobs, 2);
    EXPECT_EQ(reg.size(), sensors);
}

TEST(RegistrySerialization, GlitchInTheWindowRoundTripsBitForBit) {
    // The rolling sums of a window holding 1e308 are kept at a scale of 2^k; the
    // snapshot keeps k, so a restored registry continues exactly (a fuzzing find).
    for (Method m : {Method::zscore, Method::ewma, Method::cusum}) {
        SensorRegistry a(config(m));
        for (int i = 0; i < 60; ++i) a.detect("s", i == 40 ? 1e308 : 20.0 + (i % 7) * 0.1, i);
        const std::string bytes = a.to_bytes();
        auto b = SensorRegistry::from_bytes(bytes);
        EXPECT_EQ(b->to_bytes(), bytes);
        for (int i = 60; i < 120; ++i) {
            const Detection x = a.detect("s", 20.0 + (i % 5) * 0.1, i), y = b->detect("s", 20.0 + (i % 5) * 0.1, i);
            ASSERT_EQ(x.score, y.score) << i;
            ASSERT_EQ(x.deviation, y.deviation) << i;
        }
    }
}

TEST(NormalScore, BatchEqualsOnePointAndStaysCloseToErf) {
    // normal_scores (four or two lanes at once, the rest one by one) gives the bits of
    // normal_score for every point, whatever its place in the batch; both stay within a
    // few units in the last place of the C library's erf, tails and huge deviations included.
    std::vector<double> z;
    for (double v = -40.0; v <= 40.0; v += 1.0 / 1024) z.push_back(v);
    for (double v : {0.0, -0.0, 1e-300, 5e-324, 1e-8, 8.3, 37.5, 1e10, 1e300, std::numeric_limits<double>::max()})
        z.push_back(v);
    // Deviations whose score differs in the last bit between glibc's SSE2 and AVX2 erf: a
    // batch and one point taking different variants would disagree here.
    for (double v : {1.0102271104597134, 1.1002947252394917, 1.2748568340840341, 0.54770522147594936,
                     0.61389173045058232, 1.5080563462938665, 0.56811835524929366, 0.56946828553707984})
        for (int copies = 0; copies < 4; ++copies) z.insert(z.end(), {v, -v});
    for (double factor : {1.0, 0.6}) {
        for (size_t offset = 0; offset < 4; ++offset) {  // every lane position
            std::vector<double> out(z.size() - offset);
            normal_scores(z.data() + offset, factor, out.data(), out.size());
            for (size_t i = 0; i < out.size(); ++i) {
                const double x = factor * z[offset + i];
                ASSERT_EQ(out[i], normal_score(x)) << x;
                const double want = std::erf(std::fabs(x) * 0.70710678118654752440);
                ASSERT_NEAR(out[i], want, 4e-16 * std::max(want, 1e-300)) << x;
                ASSERT_TRUE(out[i] >= 0.0 && out[i] <= 1.0) << x;
            }
        }
    }
}

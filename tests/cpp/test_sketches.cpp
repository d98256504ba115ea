// Math, limits and serialisation of the sketches.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "anomaly_detection/io/bytes.hpp"
#include "anomaly_detection/sketches/bloom.hpp"
#include "anomaly_detection/sketches/count_min.hpp"
#include "anomaly_detection/sketches/cuckoo.hpp"
#include "anomaly_detection/sketches/errors.hpp"
#include "anomaly_detection/sketches/hash.hpp"
#include "anomaly_detection/sketches/hyperloglog.hpp"
#include "anomaly_detection/sketches/t_digest.hpp"
#include "anomaly_detection/sketches/top_k.hpp"

using namespace anomaly_detection;

namespace {

std::vector<uint64_t> hashes_of(size_t n, size_t offset = 0) {
    std::vector<uint64_t> h(n);
    for (size_t i = 0; i < n; ++i) h[i] = hash_item(static_cast<int64_t>(i + offset));
    return h;
}

std::string to_hex(const std::string& s) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

// Every single-byte change and every truncation of a blob must throw invalid_argument.
template <typename Loader>
void expect_rejects_corruption(const std::string& blob, Loader load) {
    for (size_t i = 0; i < blob.size(); ++i) {
        std::string bad = blob;
        bad[i] = static_cast<char>(bad[i] ^ 0x5a);
        EXPECT_THROW(load(bad), std::invalid_argument) << "byte " << i;
    }
    for (size_t n = 0; n < blob.size(); n += std::max<size_t>(1, blob.size() / 97))
        EXPECT_THROW(load(blob.substr(0, n)), std::invalid_argument) << "truncated to " << n;
    EXPECT_THROW(load(blob + "x"), std::invalid_argument);
}

}  // namespace

TEST(SketchHash, MatchesXxHash64ReferenceVectors) {
    EXPECT_EQ(xxhash64("", 0, 0), 0xEF46DB3751D8E999ULL);
    EXPECT_EQ(xxhash64("abc", 3, 0), 0x44BC2CF5AD770999ULL);
    const std::string long_input = "Nobody inspects the spammish repetition";
    EXPECT_EQ(xxhash64(long_input.data(), long_input.size(), 0), 0xFBCEA83C8A378BF1ULL);
}

TEST(SketchHash, IntegersHashAsTheirLittleEndianBytes) {
    EXPECT_EQ(hash_item(int64_t{42}), hash_item(std::string_view("\x2a\0\0\0\0\0\0\0", 8)));
    EXPECT_EQ(hash_item(int64_t{-1}), hash_item(std::string_view("\xff\xff\xff\xff\xff\xff\xff\xff", 8)));
    EXPECT_NE(hash_item(int64_t{42}), hash_item(std::string_view("42")));
}

TEST(CountMin, FromErrorDimensions) {
    const auto s = CountMinSketch::from_error(0.001, 0.01);
    EXPECT_EQ(s.width(), 2719u);
    EXPECT_EQ(s.depth(), 5u);
    EXPECT_THROW(CountMinSketch::from_error(0.0, 0.1), std::invalid_argument);
    EXPECT_THROW(CountMinSketch::from_error(0.1, 1.0), std::invalid_argument);
    EXPECT_THROW(CountMinSketch(0, 3), std::invalid_argument);
}

TEST(CountMin, NeverUndercountsAndReturnsNewEstimates) {
    for (bool conservative : {false, true}) {
        CountMinSketch s(64, 4, conservative, 7);
        auto h = hashes_of(500);
        std::vector<uint64_t> inc(h.size(), 3), est(h.size());
        s.incrby(h.data(), inc.data(), h.size(), est.data());
        std::vector<uint64_t> q(h.size());
        s.query(h.data(), h.size(), q.data());
        for (size_t i = 0; i < h.size(); ++i) {
            EXPECT_GE(q[i], 3u);
            EXPECT_GE(q[i], est[i]);
        }
        EXPECT_EQ(s.total(), 1500u);
    }
}

TEST(CountMin, OverflowIsAllOrNothing) {
    CountMinSketch s(16, 3);
    const uint64_t a = hash_item(std::string_view("a")), b = hash_item(std::string_view("b"));
    const uint64_t big = UINT32_MAX - 5;
    s.incrby(&a, &big, 1, nullptr);
    const std::string before = s.to_bytes();
    const uint64_t hs[2] = {b, a};
    const uint64_t incs[2] = {1, 10};
    EXPECT_THROW(s.incrby(hs, incs, 2, nullptr), std::overflow_error);
    EXPECT_EQ(s.to_bytes(), before);
}

TEST(CountMin, MergeWeightsAndSaturates) {
    CountMinSketch a(32, 3), b(32, 3), c(33, 3);
    const uint64_t x = hash_item(std::string_view("x"));
    const uint64_t one = 1, big = UINT32_MAX - 1;
    a.incrby(&x, &one, 1, nullptr);
    b.incrby(&x, &big, 1, nullptr);
    CountMinSketch m = a;
    m.merge({&a}, {4});
    uint64_t q;
    m.query(&x, 1, &q);
    EXPECT_EQ(q, 5u);
    m.merge({&b}, {3});
    m.query(&x, 1, &q);
    EXPECT_EQ(q, uint64_t{UINT32_MAX});
    EXPECT_THROW(m.merge({&c}, {1}), std::invalid_argument);
    EXPECT_THROW(m.merge({&b}, {}), std::invalid_argument);
}

TEST(CountMin, RoundTripGoldenAndCorrupt) {
    CountMinSketch s(4, 2, false, 1);
    const uint64_t h = hash_item(std::string_view("a"));
    const uint64_t inc = 3;
    s.incrby(&h, &inc, 1, nullptr);
    const std::string blob = s.to_bytes();
    EXPECT_EQ(to_hex(blob),
              "4144455401000a0039000000000000006bbea224ec9ba37a"    // header: magic, v1, family 10, length, checksum
              "04000000020000000001000000000000000300000000000000"  // width 4, depth 2, plain, seed 1, total 3
              "0000000000000000000000000300000003000000000000000000000000000000");
    const auto t = CountMinSketch::from_bytes(blob);
    EXPECT_EQ(t.to_bytes(), blob);
    expect_rejects_corruption(blob, [](const std::string& b) { CountMinSketch::from_bytes(b); });
}

TEST(HyperLogLog, ErrorWithinThreeStandardErrors) {
    for (int p : {10, 14}) {
        HyperLogLog h(p);
        for (size_t n : {100u, 10000u, 200000u}) {
            h.clear();
            auto hs = hashes_of(n, 1000000 * p);
            h.add(hs.data(), hs.size());
            EXPECT_NEAR(h.count(), static_cast<double>(n), 3 * h.standard_error() * n) << "p=" << p << " n=" << n;
        }
    }
    EXPECT_THROW(HyperLogLog(3), std::invalid_argument);
    EXPECT_THROW(HyperLogLog(19), std::invalid_argument);
}

TEST(HyperLogLog, MergeEqualsUnionAndSerialises) {
    HyperLogLog a(12), b(12), u(12);
    auto h1 = hashes_of(5000), h2 = hashes_of(5000, 2500);
    a.add(h1.data(), h1.size());
    b.add(h2.data(), h2.size());
    u.add(h1.data(), h1.size());
    u.add(h2.data(), h2.size());
    a.merge(b);
    EXPECT_EQ(a.registers(), u.registers());
    EXPECT_THROW(a.merge(HyperLogLog(13)), std::invalid_argument);
    const auto blob = a.to_bytes();
    EXPECT_EQ(HyperLogLog::from_bytes(blob).registers(), a.registers());
    // After a merge the HIP estimate is no longer kept: adding more must not leave a stale
    // estimate in the bytes, so that saving what was loaded gives the same bytes (fuzz find).
    auto h3 = hashes_of(100, 90000);
    a.add(h3.data(), h3.size());
    const auto again = a.to_bytes();
    EXPECT_EQ(HyperLogLog::from_bytes(again).to_bytes(), again);
    HyperLogLog small(4);
    small.add(h1.data(), 10);
    expect_rejects_corruption(small.to_bytes(), [](const std::string& b) { HyperLogLog::from_bytes(b); });
}

TEST(TDigest, RankErrorBelowOnePercent) {
    TDigest d(100);
    std::mt19937_64 rng(3);
    std::lognormal_distribution<double> dist(0.0, 1.0);
    std::vector<double> v(200000);
    for (auto& x : v) x = dist(rng);
    d.add(v.data(), nullptr, v.size());
    std::sort(v.begin(), v.end());
    for (double q : {0.001, 0.01, 0.5, 0.99, 0.999}) {
        const double est = d.quantile(q);
        const double rank = static_cast<double>(std::lower_bound(v.begin(), v.end(), est) - v.begin()) / v.size();
        EXPECT_NEAR(rank, q, 0.01 * std::max(q, 0.1)) << "q=" << q;
        EXPECT_NEAR(d.cdf(v[static_cast<size_t>(q * v.size())]), q, 0.005) << "q=" << q;
    }
    EXPECT_EQ(d.min(), v.front());
    EXPECT_EQ(d.max(), v.back());
    EXPECT_LT(d.centroids().size(), 200u);
}

TEST(TDigest, WeightsWhoseTotalOverflowsOrThatAreSubnormalAreRefusedAndChangeNothing) {
    // Two values of weight DBL_MAX made a total of inf, which to_bytes wrote and from_bytes
    // refused as corrupt; a weight of 5e-324 halves to 0 and the median was NaN.
    const double largest = std::numeric_limits<double>::max();
    const double values[] = {largest, largest};
    const double huge[] = {largest, largest};
    TDigest d(10);
    const double one[] = {1.0};
    d.add(values, one, 1);
    const std::string before = d.to_bytes();
    EXPECT_THROW(d.add(values, huge, 2), std::invalid_argument);
    EXPECT_EQ(d.to_bytes(), before);
    const double tiny[] = {5e-324, 5e-324};
    EXPECT_THROW(d.add(values, tiny, 2), std::invalid_argument);
    EXPECT_EQ(d.to_bytes(), before);
    TDigest a(10), b(10);  // each total finite, their sum not
    a.add(values, huge, 1);
    b.add(values, huge, 1);
    const std::string a_before = a.to_bytes();
    EXPECT_THROW(a.merge({&b}), std::invalid_argument);
    EXPECT_EQ(a.to_bytes(), a_before);
    EXPECT_NO_THROW(TDigest::from_bytes(a.to_bytes()));
    const double smallest_normal[] = {std::numeric_limits<double>::min(), std::numeric_limits<double>::min()};
    TDigest e(10);
    e.add(values, smallest_normal, 2);
    EXPECT_EQ(e.quantile(0.5), largest);
}

TEST(TDigest, BulkPathMatchesStreamingAdds) {
    std::mt19937_64 rng(9);
    std::normal_distribution<double> dist(0.0, 100.0);  // negative and positive values
    std::vector<double> v(100000);
    for (auto& x : v) x = dist(rng);
    TDigest bulk(100), streamed(100);
    bulk.add(v.data(), nullptr, v.size());  // one call: the radix-sorted bulk path
    for (size_t i = 0; i < v.size(); i += 1000) streamed.add(v.data() + i, nullptr, 1000);
    std::sort(v.begin(), v.end());
    EXPECT_EQ(bulk.min(), v.front());
    EXPECT_EQ(bulk.max(), v.back());
    EXPECT_DOUBLE_EQ(bulk.total_weight(), 100000.0);
    auto rank = [&](double x) {
        return static_cast<double>(std::lower_bound(v.begin(), v.end(), x) - v.begin()) / v.size();
    };
    for (double q : {0.001, 0.01, 0.5, 0.99, 0.999}) {
        EXPECT_NEAR(rank(bulk.quantile(q)), q, 0.002) << "q=" << q;
        EXPECT_NEAR(rank(streamed.quantile(q)), q, 0.002) << "q=" << q;
    }
}

TEST(TDigest, GapCountedBatchesStayAccurateWhenTheDataShifts) {
    // Later chunks of a large batch are counted into the gaps between centroids; a batch
    // unlike the digest so far (here: a second mode far away) must still be merged exactly.
    std::mt19937_64 rng(11);
    std::normal_distribution<double> low(0.0, 1.0), high(1e6, 10.0);
    std::vector<double> first(300000), second(300000);
    for (auto& x : first) x = low(rng);
    for (auto& x : second) x = high(rng);
    TDigest d(100);
    d.add(first.data(), nullptr, first.size());
    d.add(second.data(), nullptr, second.size());
    std::vector<double> all = first;
    all.insert(all.end(), second.begin(), second.end());
    std::sort(all.begin(), all.end());
    auto rank = [&](double x) {
        return static_cast<double>(std::lower_bound(all.begin(), all.end(), x) - all.begin()) / all.size();
    };
    for (double q : {0.001, 0.01, 0.25, 0.75, 0.99, 0.999}) EXPECT_NEAR(rank(d.quantile(q)), q, 0.002) << "q=" << q;
    EXPECT_EQ(d.min(), all.front());
    EXPECT_EQ(d.max(), all.back());
    EXPECT_LT(d.centroids().size(), 200u);
}

TEST(TDigest, BadValueLateInALargeBatchAddsNothing) {
    // Large batches are checked chunk by chunk as they are merged; a bad value in a late
    // chunk must undo the chunks before it.
    std::vector<double> v(200000);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i % 977);
    TDigest d(100);
    d.add(v.data(), nullptr, 5000);
    const std::string before = d.to_bytes();
    v[190000] = std::numeric_limits<double>::infinity();
    try {
        d.add(v.data(), nullptr, v.size());
        FAIL() << "expected std::invalid_argument";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("values[190000]"), std::string::npos) << e.what();
    }
    EXPECT_EQ(d.to_bytes(), before);
    v[190000] = 1.0;
    v[150001] = std::nan("");
    EXPECT_THROW(d.add(v.data(), nullptr, v.size()), std::invalid_argument);
    EXPECT_EQ(d.to_bytes(), before);
    EXPECT_DOUBLE_EQ(d.total_weight(), 5000.0);
}

TEST(TDigest, ValuesNearTheLargestDoubleKeepFiniteSortedCentroids) {
    std::mt19937_64 rng(5);
    std::uniform_real_distribution<double> unit(-1.0, 1.0);
    std::vector<double> v(100000);
    for (auto& x : v) x = unit(rng) * 1.7e308;
    TDigest d(100);
    d.add(v.data(), nullptr, v.size());
    const auto c = d.centroids();
    for (size_t i = 0; i < c.size(); ++i) {
        EXPECT_TRUE(std::isfinite(c[i].mean)) << i;
        if (i > 0) EXPECT_LE(c[i - 1].mean, c[i].mean) << i;
    }
    EXPECT_TRUE(std::isfinite(d.quantile(0.5)));
    EXPECT_NEAR(d.cdf(0.0), 0.5, 0.01);
    EXPECT_EQ(TDigest::from_bytes(d.to_bytes()).to_bytes(), d.to_bytes());
}

TEST(TDigest, WeightsMergeTrimmedMeanAndErrors) {
    TDigest a(100), b(100);
    const double values[3] = {1.0, 2.0, 3.0};
    const double weights[3] = {1.0, 2.0, 1.0};
    a.add(values, weights, 3);
    EXPECT_DOUBLE_EQ(a.total_weight(), 4.0);
    EXPECT_DOUBLE_EQ(a.trimmed_mean(0.0, 1.0), 2.0);
    std::vector<double> big(1000);
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<double>(i);
    b.add(big.data(), nullptr, big.size());
    EXPECT_NEAR(b.trimmed_mean(0.1, 0.9), 499.5, 2.0);
    a.merge({&b});
    EXPECT_DOUBLE_EQ(a.total_weight(), 1004.0);
    EXPECT_EQ(a.max(), 999.0);
    const TDigest other_compression(200);
    EXPECT_THROW(a.merge({&other_compression}), std::invalid_argument);
    const double bad[2] = {1.0, std::nan("")};
    EXPECT_THROW(a.add(bad, nullptr, 2), std::invalid_argument);
    EXPECT_DOUBLE_EQ(a.total_weight(), 1004.0);
    const double neg = -1.0;
    EXPECT_THROW(a.add(values, &neg, 1), std::invalid_argument);
    EXPECT_TRUE(std::isnan(TDigest().quantile(0.5)));
    const auto blob = a.to_bytes();
    EXPECT_EQ(TDigest::from_bytes(blob).to_bytes(), blob);
    TDigest small(10);
    small.add(values, weights, 3);
    expect_rejects_corruption(small.to_bytes(), [](const std::string& s) { TDigest::from_bytes(s); });
}

TEST(Bloom, NoFalseNegativesAndScaling) {
    BloomFilter f(1000, 0.01);
    auto h = hashes_of(5000);
    std::vector<uint8_t> added(h.size()), ex(h.size());
    f.add(h.data(), h.size(), added.data());
    f.exists(h.data(), h.size(), ex.data());
    EXPECT_TRUE(std::all_of(ex.begin(), ex.end(), [](uint8_t v) { return v == 1; }));
    EXPECT_GT(f.layer_count(), 1u);
    BloomFilter fixed(10, 0.01, 2, true);
    auto h10 = hashes_of(10);
    fixed.add(h10.data(), 10, nullptr);
    const uint64_t extra = hash_item(std::string_view("one too many"));
    EXPECT_THROW(fixed.add(&extra, 1, nullptr), FilterFullError);
    const auto blob = f.to_bytes();
    EXPECT_EQ(BloomFilter::from_bytes(blob).to_bytes(), blob);
    expect_rejects_corruption(fixed.to_bytes(), [](const std::string& s) { BloomFilter::from_bytes(s); });
}

TEST(Cuckoo, AddDeleteCountAndFull) {
    CuckooFilter f(1000, 2, 20, 1, 9);
    auto h = hashes_of(900);
    f.add(h.data(), h.size());
    std::vector<uint8_t> ex(h.size());
    f.exists(h.data(), h.size(), ex.data());
    EXPECT_TRUE(std::all_of(ex.begin(), ex.end(), [](uint8_t v) { return v == 1; }));
    uint8_t del = 0;
    f.remove(h.data(), 1, &del);
    EXPECT_EQ(del, 1);
    EXPECT_EQ(f.size(), 899u);
    // A capacity near 2^64 is refused at once (rounding it up to a power of two used to spin).
    EXPECT_THROW(CuckooFilter((uint64_t{1} << 63) + 5, 1, 20, 1, 1), std::invalid_argument);
    CuckooFilter probe(1000, 1, 20, 1, 1);
    std::string payload = probe.to_bytes().substr(io::kHeaderSize);
    std::memset(&payload[0], 0xff, 8);  // the capacity field; sealed again with a valid checksum
    EXPECT_THROW(CuckooFilter::from_bytes(io::seal(io::Family::cuckoo, 1, payload)), std::invalid_argument);

    CuckooFilter fixed(64, 4, 50, 0, 1);
    auto many = hashes_of(1000, 77);
    size_t added = 0;
    std::string before;
    try {
        for (; added < many.size(); ++added) {
            before = fixed.to_bytes();
            fixed.add(&many[added], 1);
        }
    } catch (const FilterFullError&) {
    }
    EXPECT_LT(added, many.size());
    EXPECT_GE(added, 48u);
    EXPECT_EQ(fixed.to_bytes(), before);  // the item that did not fit changed nothing
    expect_rejects_corruption(fixed.to_bytes(), [](const std::string& s) { CuckooFilter::from_bytes(s); });
    EXPECT_THROW(CuckooFilter(100, 0), std::invalid_argument);
}

TEST(TopK, WeightedDecayMatchesUnitDecaysInDistribution) {
    // One bucket: "a" holds 30, then "b" arrives 400 times. Adding 400 at once (gaps between
    // decays drawn geometrically) must leave "b" the same count on average as 400 adds of 1.
    const std::string_view a = "a", b = "b";
    const uint64_t ha = hash_item(a), hb = hash_item(b);
    const uint64_t thirty = 30, one = 1, many = 400;
    double weighted = 0.0, unit = 0.0;
    const int runs = 2000;
    for (int seed = 0; seed < runs; ++seed) {
        TopK w(1, 1, 1, 0.95, static_cast<uint64_t>(seed)), u(1, 1, 1, 0.95, static_cast<uint64_t>(seed) + 7919);
        w.incrby(&a, nullptr, &ha, &thirty, 1, nullptr);
        u.incrby(&a, nullptr, &ha, &thirty, 1, nullptr);
        w.incrby(&b, nullptr, &hb, &many, 1, nullptr);
        for (uint64_t i = 0; i < many; ++i) u.incrby(&b, nullptr, &hb, &one, 1, nullptr);
        weighted += static_cast<double>(w.count(hb));
        unit += static_cast<double>(u.count(hb));
    }
    weighted /= runs;
    unit /= runs;
    EXPECT_GT(unit, 100.0);  // "b" takes the bucket over in most runs
    EXPECT_NEAR(weighted, unit, 0.05 * unit);
    // decay 1: every colliding unit decays, so the outcome is exact (no draws).
    TopK certain(1, 1, 1, 1.0, 3);
    const uint64_t hundred = 100, thousand = 1000;
    certain.incrby(&a, nullptr, &ha, &hundred, 1, nullptr);
    certain.incrby(&b, nullptr, &hb, &thousand, 1, nullptr);
    EXPECT_EQ(certain.count(hb), 901u);  // 100 units empty the bucket, the 100th and the rest stay
    certain.incrby(&a, nullptr, &ha, &hundred, 1, nullptr);
    EXPECT_EQ(certain.count(hb), 801u);
}

TEST(TopK, BatchAddsSumsPerDistinctItem) {
    const std::vector<std::string> items{"x", "y", "x", "z", "x", "y"};
    std::vector<uint64_t> hs;
    for (const auto& s : items) hs.push_back(hash_item(s));
    TopK batch(2, 16, 3, 0.9, 4), loop(2, 16, 3, 0.9, 4);
    std::vector<std::pair<size_t, TopK::Entry>> expelled;
    batch.add_batch(
        hs.data(), nullptr, hs.size(),
        [&](size_t i, uint8_t& kind) {
            kind = TopK::kText;
            return std::string_view(items[i]);
        },
        &expelled);
    const uint64_t counts[3] = {3, 2, 1};
    const std::string_view distinct[3] = {"x", "y", "z"};
    for (int d = 0; d < 3; ++d) {
        const uint64_t h = hash_item(distinct[d]);
        loop.incrby(&distinct[d], nullptr, &h, &counts[d], 1, nullptr);
    }
    EXPECT_EQ(batch.to_bytes(), loop.to_bytes());
    ASSERT_EQ(batch.list().size(), 2u);
    EXPECT_EQ(batch.list()[0].item, "x");
    EXPECT_EQ(batch.list()[0].count, 3u);
    EXPECT_TRUE(expelled.empty());
}

TEST(TopK, FindsHeavyHittersDeterministically) {
    auto run = [] {
        TopK t(5, 64, 4, 0.9, 11);
        std::mt19937_64 rng(5);
        std::vector<std::string> items;
        for (int i = 0; i < 20000; ++i) {
            // Items 0..4 are heavy; the rest is noise.
            const int v = (rng() % 2 == 0) ? static_cast<int>(rng() % 5) : static_cast<int>(100 + rng() % 5000);
            items.push_back("item" + std::to_string(v));
        }
        std::vector<std::string_view> views(items.begin(), items.end());
        std::vector<uint64_t> hs;
        for (auto& s : items) hs.push_back(hash_item(s));
        t.incrby(views.data(), nullptr, hs.data(), nullptr, hs.size(), nullptr);
        return t;
    };
    const TopK t = run();
    auto top = t.list();
    ASSERT_EQ(top.size(), 5u);
    std::vector<std::string> names;
    for (auto& e : top) names.push_back(e.item);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"item0", "item1", "item2", "item3", "item4"}));
    EXPECT_EQ(run().to_bytes(), t.to_bytes());
    const auto blob = t.to_bytes();
    EXPECT_EQ(TopK::from_bytes(blob).to_bytes(), blob);
    TopK merged = t;
    merged.merge(t);
    EXPECT_EQ(merged.list().front().count, 2 * top.front().count);
    TopK small(2, 4, 2);
    std::string_view a = "a";
    uint64_t ha = hash_item(a);
    small.incrby(&a, nullptr, &ha, nullptr, 1, nullptr);
    expect_rejects_corruption(small.to_bytes(), [](const std::string& s) { TopK::from_bytes(s); });
}

// Fuzz target for the sketch deserialisers: any input must load or throw
// std::invalid_argument, never crash, hang or leak; a loaded sketch must answer queries
// and serialise back to the same bytes.
//
// libFuzzer (clang), as CI runs it: scripts/fuzz.sh [seconds] builds this file with
// -fsanitize=fuzzer,address,undefined and runs it over a copy of the golden blobs.
// Without clang, the same target runs under a small mutation driver (GCC + sanitizers):
//   g++ -std=c++17 -O1 -g -fsanitize=address,undefined -DSKETCH_FUZZ_STANDALONE -Icpp/include \
//       tests/fuzz/fuzz_sketches.cpp cpp/src/sketches/*.cpp -o build/fuzz_sketches
//   build/fuzz_sketches 200000 tests/python/golden/sketch_*.bin
// The first payload byte (after the 24-byte header) is not special: the family code in
// the header picks the loader, and a resealed checksum lets mutations reach the parsers.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "anomaly_detection/io/bytes.hpp"
#include "anomaly_detection/sketches/bloom.hpp"
#include "anomaly_detection/sketches/count_min.hpp"
#include "anomaly_detection/sketches/cuckoo.hpp"
#include "anomaly_detection/sketches/distinct.hpp"
#include "anomaly_detection/sketches/hash.hpp"
#include "anomaly_detection/sketches/hyperloglog.hpp"
#include "anomaly_detection/sketches/t_digest.hpp"
#include "anomaly_detection/sketches/top_k.hpp"
#include "reseal.hpp"

using namespace anomaly_detection;

namespace {

template <typename S, typename Use>
void load(std::string_view blob, Use use) {
    try {
        S s = S::from_bytes(blob);
        use(s);
        const std::string again = s.to_bytes();
        if (S::from_bytes(again).to_bytes() != again) __builtin_trap();  // round trip must be stable
    } catch (const std::invalid_argument&) {
    } catch (const std::overflow_error&) {  // a loaded count-min near saturation may refuse an increment
    }
}

/// The input read as a batch of fixed-width cells: grouping the cells (no hash per item)
/// must read only the batch and agree with grouping the items' hashes.
void group_as_cells(const uint8_t* data, size_t size) {
    if (size == 0) return;
    const size_t units = 1 + data[0] % 16;
    const auto* cells = reinterpret_cast<const char*>(data);
    for (const CellFormat format : {CellFormat::int64, CellFormat::bytes, CellFormat::utf32}) {
        const size_t unit = format == CellFormat::utf32 ? 4 : 1;
        const size_t width = format == CellFormat::int64 ? 8 : units * unit;
        const size_t n = size / width;
        std::vector<uint64_t> hs(n);
        bool ascii = true;
        for (size_t i = 0; i < n; ++i) {
            const char* cell = cells + i * width;
            if (format == CellFormat::int64) {
                uint64_t bits;
                std::memcpy(&bits, cell, 8);
                hs[i] = hash_int_bits(bits);
                continue;
            }
            std::string text;
            for (size_t j = 0; j < width / unit; ++j) {
                uint32_t c = 0;
                std::memcpy(&c, cell + j * unit, unit);
                ascii = ascii && (unit == 1 || c < 0x80);
                text += static_cast<char>(c);
            }
            while (!text.empty() && text.back() == 0) text.pop_back();
            hs[i] = hash_item(text);
        }
        DistinctItems got;
        const bool grouped = group_cells(cells, width, format, n, nullptr, got);
        if (grouped != ascii) __builtin_trap();
        if (!grouped) continue;
        const DistinctItems want = group_hashes(hs.data(), nullptr, n);
        if (got.hashes != want.hashes || got.counts != want.counts || got.first != want.first) __builtin_trap();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    group_as_cells(data, size);
    const std::string blob = fuzz::reseal(data, size);
    const uint64_t h = hash_item(std::string_view("fuzz"));
    const std::string_view item = "fuzz";
    load<CountMinSketch>(blob, [&](CountMinSketch& s) {
        uint64_t q = 0, one = 1;
        s.query(&h, 1, &q);
        s.incrby(&h, &one, 1, &q);
    });
    load<HyperLogLog>(blob, [&](HyperLogLog& s) {
        s.add(&h, 1);
        (void)s.count();
    });
    load<TDigest>(blob, [&](TDigest& s) {
        const double v = 1.0;
        s.add(&v, nullptr, 1);
        // A large batch takes the gap-counting path, whose gaps are the loaded centroids:
        // values around the digest's range and the input's own bytes read as doubles.
        std::vector<double> batch(5000);
        SplitMix64 rng(size);
        const double lo = s.min(), hi = s.max();
        for (size_t i = 0; i < batch.size(); ++i) {
            double x = lo + (hi - lo) * (rng.uniform() * 1.2 - 0.1);
            if (i % 7 == 0 && size >= 8) std::memcpy(&x, data + (i * 8) % (size - 7), 8);
            batch[i] = std::isfinite(x) ? x : rng.uniform();
        }
        s.add(batch.data(), nullptr, batch.size());
        (void)s.quantile(0.5);
        (void)s.cdf(0.0);
        (void)s.trimmed_mean(0.1, 0.9);
    });
    load<BloomFilter>(blob, [&](BloomFilter& s) {
        uint8_t out = 0;
        s.exists(&h, 1, &out);
    });
    load<CuckooFilter>(blob, [&](CuckooFilter& s) {
        uint8_t out = 0;
        s.exists(&h, 1, &out);
        s.remove(&h, 1, &out);
    });
    load<TopK>(blob, [&](TopK& s) {
        s.incrby(&item, nullptr, &h, nullptr, 1, nullptr);
        const std::string_view items[3] = {"a", "b", "a"};
        const uint64_t hs[3] = {hash_item(items[0]), hash_item(items[1]), hash_item(items[2])};
        const uint64_t incs[3] = {1, 1000, 70};
        std::vector<std::pair<size_t, TopK::Entry>> expelled;
        s.add_batch(
            hs, incs, 3,
            [&](size_t i, uint8_t& kind) {
                kind = TopK::kText;
                return items[i];
            },
            &expelled);
        (void)s.list();
    });
    try {  // Redis's own HLL strings are untrusted input too
        const HyperLogLog r = HyperLogLog::from_redis(std::string_view(reinterpret_cast<const char*>(data), size));
        if (HyperLogLog::from_redis(r.to_redis()).registers() != r.registers()) __builtin_trap();
    } catch (const std::invalid_argument&) {
    }
    return 0;
}

#ifdef SKETCH_FUZZ_STANDALONE
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

// Mutation driver for compilers without libFuzzer: flips, overwrites, truncates and
// extends the seed files (golden blobs) with a fixed-seed generator.
int main(int argc, char** argv) {
    const long iterations = argc > 1 ? std::atol(argv[1]) : 100000;
    std::vector<std::string> seeds;
    for (int i = 2; i < argc; ++i) {
        std::ifstream f(argv[i], std::ios::binary);
        seeds.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    if (seeds.empty()) seeds.emplace_back("ADET");
    SplitMix64 rng(2026);
    for (long it = 0; it < iterations; ++it) {
        std::string s = seeds[rng.next() % seeds.size()];
        const int edits = 1 + static_cast<int>(rng.next() % 4);
        for (int e = 0; e < edits && !s.empty(); ++e) {
            const size_t at = rng.next() % s.size();
            switch (rng.next() % 5) {
                case 0:
                    s[at] = static_cast<char>(s[at] ^ (1 << (rng.next() % 8)));
                    break;
                case 1:
                    s[at] = static_cast<char>(rng.next());
                    break;
                case 2:
                    s.resize(at);
                    break;
                case 3:
                    s.insert(at, 1 + rng.next() % 8, static_cast<char>(rng.next()));
                    break;
                default:
                    std::memset(&s[at], 0xff, std::min<size_t>(s.size() - at, 1 + rng.next() % 8));
                    break;
            }
        }
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    }
    std::printf("%ld inputs, no crash\n", iterations);
    return 0;
}
#endif

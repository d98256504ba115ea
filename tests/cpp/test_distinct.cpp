// Grouping a batch by its cells (no hash per item) must give what grouping by hashes gives.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "anomaly_detection/sketches/distinct.hpp"
#include "anomaly_detection/sketches/hash.hpp"
#include "anomaly_detection/sketches/top_k.hpp"

using namespace anomaly_detection;

namespace {

void expect_same(const DistinctItems& a, const DistinctItems& b) {
    EXPECT_EQ(a.hashes, b.hashes);
    EXPECT_EQ(a.counts, b.counts);
    EXPECT_EQ(a.first, b.first);
}

/// n cells of `units` units (1 or 4 bytes) drawn from a small alphabet that includes NUL, so
/// that cells repeat, end in padding and hold NULs inside.
std::vector<char> random_cells(std::mt19937_64& rng, size_t n, size_t units, size_t unit_bytes, size_t distinct) {
    std::vector<std::vector<char>> pool(distinct, std::vector<char>(units * unit_bytes, 0));
    for (auto& cell : pool) {
        const size_t len = rng() % (units + 1);
        for (size_t j = 0; j < len; ++j) {
            const uint32_t c = "\0ab~\x7f"[rng() % 5];
            std::memcpy(cell.data() + j * unit_bytes, &c, unit_bytes);  // little-endian hosts
        }
    }
    std::vector<char> cells;
    for (size_t i = 0; i < n; ++i) {
        const auto& cell = pool[rng() % distinct];
        cells.insert(cells.end(), cell.begin(), cell.end());
    }
    return cells;
}

/// The item a text cell holds (up to its last non-zero unit), as hash_item sees it.
std::string cell_text(const char* cell, size_t units, size_t unit_bytes) {
    std::string s;
    for (size_t j = 0; j < units; ++j) {
        uint32_t c = 0;
        std::memcpy(&c, cell + j * unit_bytes, unit_bytes);
        s += static_cast<char>(c);
    }
    while (!s.empty() && s.back() == 0) s.pop_back();
    return s;
}

/// Grouping written the obvious way, to check both fast ones against.
DistinctItems naive_group(const std::vector<uint64_t>& hs, const uint64_t* inc) {
    DistinctItems out;
    for (size_t i = 0; i < hs.size(); ++i) {
        const uint64_t add = inc ? inc[i] : 1;
        const auto at = std::find(out.hashes.begin(), out.hashes.end(), hs[i]);
        if (at == out.hashes.end()) {
            out.hashes.push_back(hs[i]);
            out.counts.push_back(add);
            out.first.push_back(i);
        } else {
            uint64_t& c = out.counts[static_cast<size_t>(at - out.hashes.begin())];
            c = c > UINT64_MAX - add ? UINT64_MAX : c + add;
        }
    }
    return out;
}

DistinctItems by_hash(const std::vector<char>& cells, size_t width, size_t unit_bytes, const uint64_t* inc) {
    const size_t n = cells.size() / width;
    std::vector<uint64_t> hs(n);
    for (size_t i = 0; i < n; ++i)
        hs[i] = hash_item(cell_text(cells.data() + i * width, width / unit_bytes, unit_bytes));
    const DistinctItems fast = group_hashes(hs.data(), inc, n);
    expect_same(fast, naive_group(hs, inc));
    return fast;
}

}  // namespace

TEST(GroupCells, TextCellsOfEveryWidthGroupAsTheirHashesDo) {
    std::mt19937_64 rng(3);
    for (size_t units = 1; units <= 16; ++units) {
        for (size_t n : {1, 2, 3, 17, 700}) {
            for (const auto [format, unit_bytes] :
                 {std::pair{CellFormat::bytes, size_t{1}}, {CellFormat::utf32, size_t{4}}}) {
                const auto cells = random_cells(rng, n, units, unit_bytes, 1 + n / 3);
                const size_t width = units * unit_bytes;
                std::vector<uint64_t> inc(n);
                for (auto& x : inc) x = 1 + rng() % 5;
                DistinctItems got;
                ASSERT_TRUE(group_cells(cells.data(), width, format, n, inc.data(), got)) << units << " " << n;
                expect_same(got, by_hash(cells, width, unit_bytes, inc.data()));
                ASSERT_TRUE(group_cells(cells.data(), width, format, n, nullptr, got));
                expect_same(got, by_hash(cells, width, unit_bytes, nullptr));
            }
        }
    }
}

TEST(GroupCells, IntegersGroupAsTheirHashesDo) {
    std::mt19937_64 rng(5);
    std::vector<int64_t> values(5000);
    for (auto& v : values) v = static_cast<int64_t>(rng() % 3000) - 1000;  // many distinct: the table grows
    values[7] = INT64_MIN;
    std::vector<uint64_t> hs;
    for (const int64_t v : values) hs.push_back(hash_item(v));
    DistinctItems got;
    ASSERT_TRUE(
        group_cells(reinterpret_cast<const char*>(values.data()), 8, CellFormat::int64, values.size(), nullptr, got));
    expect_same(got, naive_group(hs, nullptr));
    expect_same(group_hashes(hs.data(), nullptr, hs.size()), got);
    EXPECT_GT(got.size(), 2000u);
}

TEST(GroupCells, SumsSaturate) {
    const int64_t values[4] = {4, 5, 4, 4};
    const uint64_t inc[4] = {UINT64_MAX - 9, 3, 5, 7};
    DistinctItems got;
    ASSERT_TRUE(group_cells(reinterpret_cast<const char*>(values), 8, CellFormat::int64, 4, inc, got));
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got.counts, (std::vector<uint64_t>{UINT64_MAX, 3}));
    EXPECT_EQ(got.first, (std::vector<size_t>{0, 1}));
}

TEST(GroupCells, DeclinesWhatItCannotKey) {
    DistinctItems got;
    const uint32_t accented[2] = {'a', 0xE9};  // not ASCII: its UTF-8 is two bytes
    EXPECT_FALSE(group_cells(reinterpret_cast<const char*>(accented), 8, CellFormat::utf32, 1, nullptr, got));
    const uint32_t beyond[1] = {0x80000000u};  // not even a code point
    EXPECT_FALSE(group_cells(reinterpret_cast<const char*>(beyond), 4, CellFormat::utf32, 1, nullptr, got));
    const std::vector<char> wide(17 * 4 * 2, 'a');
    EXPECT_FALSE(group_cells(wide.data(), 17 * 4, CellFormat::utf32, 2, nullptr, got));  // 17 code points
    EXPECT_FALSE(group_cells(wide.data(), 17, CellFormat::bytes, 2, nullptr, got));
    EXPECT_FALSE(group_cells(wide.data(), 6, CellFormat::utf32, 2, nullptr, got));  // not whole code points
    EXPECT_FALSE(group_cells(wide.data(), 4, CellFormat::int64, 2, nullptr, got));
    std::vector<uint32_t> late(3001, 'a');  // ASCII until the last cell
    late.back() = 0x263A;
    EXPECT_FALSE(
        group_cells(reinterpret_cast<const char*>(late.data()), 4, CellFormat::utf32, late.size(), nullptr, got));
    EXPECT_TRUE(group_cells(wide.data(), 16, CellFormat::bytes, 0, nullptr, got));
    EXPECT_EQ(got.size(), 0u);
}

TEST(GroupCells, TopKFromCellsEqualsTopKFromHashes) {
    std::mt19937_64 rng(9);
    const size_t n = 20000, width = 6 * 4;
    const auto cells = random_cells(rng, n, 6, 4, 3000);
    std::vector<std::string> texts;
    std::vector<uint64_t> hs;
    for (size_t i = 0; i < n; ++i) {
        texts.push_back(cell_text(cells.data() + i * width, 6, 4));
        hs.push_back(hash_item(texts.back()));
    }
    const TopK::ItemText text = [&](size_t i, uint8_t& kind) {
        kind = TopK::kText;
        return std::string_view(texts[i]);
    };
    TopK a(10, 32, 4, 0.9, 2), b(10, 32, 4, 0.9, 2);
    std::vector<std::pair<size_t, TopK::Entry>> out_a, out_b;
    ASSERT_TRUE(a.add_cells(cells.data(), width, CellFormat::utf32, n, nullptr, text, &out_a));
    b.add_batch(hs.data(), nullptr, n, text, &out_b);
    EXPECT_EQ(a.to_bytes(), b.to_bytes());
    ASSERT_EQ(out_a.size(), out_b.size());
    for (size_t e = 0; e < out_a.size(); ++e) {
        EXPECT_EQ(out_a[e].first, out_b[e].first);
        EXPECT_EQ(out_a[e].second.item, out_b[e].second.item);
    }
    // Refused cells change nothing.
    const std::string before = a.to_bytes();
    const uint32_t accented[1] = {0xE9};
    EXPECT_FALSE(a.add_cells(reinterpret_cast<const char*>(accented), 4, CellFormat::utf32, 1, nullptr, text, nullptr));
    EXPECT_EQ(a.to_bytes(), before);
}

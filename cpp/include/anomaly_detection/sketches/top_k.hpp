// Top-k heavy hitters with HeavyKeeper (Gong et al.), the algorithm of RedisBloom's TOPK.*.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "anomaly_detection/sketches/distinct.hpp"
#include "anomaly_detection/sketches/hash.hpp"

namespace anomaly_detection {

/// Keeps the k most frequent items: a depth x width array of (fingerprint, count)
/// buckets where colliding counts decay with probability decay^count, and a min-heap
/// of the k items with the largest estimates. Decay draws use a seeded generator.
class TopK {
   public:
    /// How an item's bytes read back: text (UTF-8 or raw bytes) or an integer's 8 LE bytes.
    enum Kind : uint8_t { kText = 0, kInteger = 1 };

    struct Entry {
        std::string item;
        uint64_t count;
        uint8_t kind;
    };

    TopK(uint32_t k, uint32_t width = 8, uint32_t depth = 7, double decay = 0.9, uint64_t seed = 0);

    uint32_t k() const { return k_; }
    uint32_t width() const { return width_; }
    uint32_t depth() const { return depth_; }
    double decay() const { return decay_; }
    size_t memory_bytes() const;

    /// Adds increments[i] (1..2^32-1; null means 1) to items[i] with hash hashes[i] and
    /// kind kinds[i] (null means text), in order. When item i enters the top k and pushes
    /// another out, (i, that entry) is appended to expelled (which may be null).
    void incrby(const std::string_view* items, const uint8_t* kinds, const uint64_t* hashes, const uint64_t* increments,
                size_t n, std::vector<std::pair<size_t, Entry>>* expelled);
    /// incrby of one item (increment 1..2^32-1): true when it entered the top k and pushed
    /// `expelled` out. The same update as incrby with n = 1, without its batch plumbing.
    bool incrby_one(std::string_view item, uint8_t kind, uint64_t hash, uint64_t increment, Entry& expelled);
    /// Bytes of item i of a batch, its kind stored in kind; asked only for items whose
    /// estimate can enter the top k. The view must stay valid until the next call.
    using ItemText = std::function<std::string_view(size_t i, uint8_t& kind)>;
    /// Batch update: increments (null means 1 each) are first summed per distinct item
    /// (items are told apart by their 64-bit hash), then each distinct item gets one
    /// weighted update, in order of first appearance. Equivalent in distribution to adding
    /// the items one by one, and repeatable (the decay draws are seeded), but not the same
    /// draws. An item pushed out is reported at the first index of the item that pushed it.
    void add_batch(const uint64_t* hashes, const uint64_t* increments, size_t n, const ItemText& text,
                   std::vector<std::pair<size_t, Entry>>* expelled);
    /// add_batch for items held in fixed-width cells, grouped by their contents so that
    /// only the distinct items are hashed (see group_cells). The same result as add_batch
    /// on the items' hashes. Returns false, with nothing changed, when group_cells does not
    /// apply to these cells; the caller then hashes the items and calls add_batch.
    bool add_cells(const char* cells, size_t width, CellFormat format, size_t n, const uint64_t* increments,
                   const ItemText& text, std::vector<std::pair<size_t, Entry>>* expelled);
    /// Whether the item is currently in the top k.
    bool query(std::string_view item, uint64_t hash) const;
    /// Estimated count of an item from the buckets (an underestimate for most items).
    uint64_t count(uint64_t hash) const;
    /// The top k, largest count first.
    std::vector<Entry> list() const;
    /// Folds in another top-k with the same k, width, depth and decay.
    void merge(const TopK& other);

    std::string to_bytes() const;
    static TopK from_bytes(std::string_view blob);

   private:
    static constexpr uint32_t kMaxDepth = 64;
    struct Bucket {
        uint32_t fp;
        uint64_t count;
    };
    struct HeapEntry {
        uint64_t count;
        uint32_t fp;
        uint8_t kind;
        std::string item;
    };
    static uint32_t fingerprint(uint64_t h) { return static_cast<uint32_t>(mix64(h) >> 32); }
    size_t cell(uint64_t h, uint32_t row) const {
        // Independent hashes per row: with widths as small as 8, double hashing would make
        // whole columns of two items collide in every row.
        return size_t{row} * width_ + reduce_range(mix64(h + (uint64_t{row} + 1) * 0x9e3779b97f4a7c15ULL), width_);
    }
    void sift_down(size_t i);
    HeapEntry* find(std::string_view item, uint32_t fp);
    /// Records a new estimate for an item: raises it in the heap or replaces the minimum.
    bool offer(std::string_view item, uint8_t kind, uint32_t fp, uint64_t estimate, Entry* expelled);
    /// One weighted update per distinct item, in their order.
    void add_distinct(const DistinctItems& items, const ItemText& text,
                      std::vector<std::pair<size_t, Entry>>* expelled);
    /// One weighted update of item index of a batch, then its offer to the heap.
    void add_one(uint64_t h, uint64_t inc, size_t index, const ItemText& text,
                 std::vector<std::pair<size_t, Entry>>* expelled);
    /// Adds inc to the item with hash h in every row; returns its new estimate.
    uint64_t update_buckets(uint64_t h, uint32_t fp, uint64_t inc);
    /// update_buckets for inc 1 when the decay table reaches counts that cannot decay.
    uint64_t update_buckets_unit(uint64_t h, uint32_t fp);
    /// decay^count, the chance that one colliding unit decays a bucket holding count.
    double decay_probability(uint64_t count) const {
        if (count < decay_table_.size()) return decay_table_[count];
        return table_complete() ? 0.0 : decay_probability_slow(count);
    }
    double decay_probability_slow(uint64_t count) const;
    /// Whether the decay table reaches a count whose decay probability is below 2^-53
    /// (beyond it no draw can succeed); false only for a decay very close to 1.
    bool table_complete() const { return decay_table_.back() < 0x1.0p-53; }
    static void check_increments(const uint64_t* increments, size_t n);

    uint32_t k_;
    uint32_t width_;
    uint32_t depth_;
    double decay_;
    SplitMix64 rng_;
    std::vector<double> decay_table_;
    std::vector<Bucket> buckets_;
    std::vector<HeapEntry> heap_;  // min-heap on count, always k entries (count 0 = empty)
};

}  // namespace anomaly_detection

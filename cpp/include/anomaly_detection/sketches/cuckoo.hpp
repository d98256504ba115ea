// Cuckoo filter (Fan et al.) with deletions and growth by sub-filters, after RedisBloom's CF.*.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "anomaly_detection/sketches/hash.hpp"

namespace anomaly_detection {

/// Set membership with deletion: 8-bit fingerprints in buckets of `bucket_size` slots.
/// A full filter adds a sub-filter `expansion` times larger than the last one; with
/// expansion 0, or at 32 sub-filters, an item that does not fit raises FilterFullError
/// and the filter is left as it was before that item. Evictions use a seeded generator,
/// so runs repeat.
class CuckooFilter {
   public:
    static constexpr size_t kMaxFilters = 32;

    CuckooFilter(uint64_t capacity, uint32_t bucket_size = 2, uint32_t max_iterations = 20, uint32_t expansion = 1,
                 uint64_t seed = 0);

    uint64_t capacity() const { return capacity_; }
    uint32_t bucket_size() const { return bucket_size_; }
    uint32_t max_iterations() const { return max_iterations_; }
    uint32_t expansion() const { return expansion_; }
    uint64_t size() const { return items_; }
    uint64_t deletions() const { return deletions_; }
    size_t filter_count() const { return filters_.size(); }
    uint64_t bucket_count() const;
    size_t memory_bytes() const;

    /// Adds each item (duplicates allowed); throws FilterFullError at the first that cannot fit.
    void add(const uint64_t* hashes, size_t n);
    /// Adds the items not yet present; added_out[i] = 1 when item i was added.
    void add_nx(const uint64_t* hashes, size_t n, uint8_t* added_out);
    /// 1 when the item may be present, 0 when it surely is not.
    void exists(const uint64_t* hashes, size_t n, uint8_t* out) const;
    /// Removes one copy of each item; deleted_out[i] = 1 when a copy was found.
    void remove(const uint64_t* hashes, size_t n, uint8_t* deleted_out);
    /// Copies of the fingerprint of each item (may overcount on fingerprint collisions).
    void count(const uint64_t* hashes, size_t n, uint64_t* out) const;

    /// Fingerprint and both candidate buckets of each item in the first sub-filter: the
    /// layout a shared filter updates on the server (alternate bucket of b for fingerprint
    /// fp: (b ^ (fp * 0x5bd1e995 mod 2^32)) & (buckets - 1)).
    void first_filter_slots(const uint64_t* hashes, size_t n, uint8_t* fp, uint64_t* b1, uint64_t* b2) const;
    uint64_t first_filter_buckets() const { return filters_.front().buckets; }

    std::string to_bytes() const;
    static CuckooFilter from_bytes(std::string_view blob);

   private:
    struct SubFilter {
        uint64_t buckets;  // a power of two
        std::vector<uint8_t> slots;
    };
    struct Slots {
        uint8_t fp;
        uint64_t i1;
        uint64_t i2;
    };
    Slots locate(uint64_t h) const;
    bool contains(const Slots& s) const;
    bool insert_one(uint64_t h);
    bool try_place(SubFilter& f, uint64_t bucket, uint8_t fp);
    bool kick_in(SubFilter& f, const Slots& s);
    SubFilter make_filter(uint64_t buckets) const;

    uint64_t capacity_;
    uint32_t bucket_size_;
    uint32_t max_iterations_;
    uint32_t expansion_;
    uint64_t items_ = 0;
    uint64_t deletions_ = 0;
    SplitMix64 rng_;
    std::vector<SubFilter> filters_;
};

}  // namespace anomaly_detection

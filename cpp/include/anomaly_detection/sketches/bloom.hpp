// Scalable Bloom filter (Almeida et al.), with the parameters of RedisBloom's BF.RESERVE.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace anomaly_detection {

/// Set membership with no false negatives. Each layer holds `capacity * expansion^i`
/// items at error rate `error_rate * 0.5^i`; when the last layer is full a new one is
/// added, unless the filter is non-scaling (then FilterFullError).
class BloomFilter {
   public:
    BloomFilter(uint64_t capacity, double error_rate, uint32_t expansion = 2, bool non_scaling = false);

    uint64_t capacity() const { return capacity_; }
    double error_rate() const { return error_rate_; }
    uint32_t expansion() const { return expansion_; }
    bool non_scaling() const { return non_scaling_; }
    /// Items added (distinct as far as the filter could tell).
    uint64_t size() const;
    size_t layer_count() const { return layers_.size(); }
    size_t memory_bytes() const;
    /// Bits and hash functions of the first layer (the layout a shared filter uses).
    uint64_t bit_count() const { return layers_.front().bits; }
    uint32_t hash_count() const { return layers_.front().hashes; }

    /// Adds item hashes; added_out[i] (may be null) is 1 when the item was new.
    /// Throws FilterFullError on a full non-scaling filter; earlier items stay added.
    void add(const uint64_t* hashes, size_t n, uint8_t* added_out);
    /// exists_out[i] = 1 when the item may have been added, 0 when it surely was not.
    void exists(const uint64_t* hashes, size_t n, uint8_t* exists_out) const;
    /// Bit positions of each item in the first layer: out has n * hash_count() entries.
    void bit_positions(const uint64_t* hashes, size_t n, uint64_t* out) const;
    /// Bits and hash functions for a layer of this capacity and error rate.
    static void dimensions(uint64_t capacity, double error_rate, uint64_t* bits, uint32_t* hashes);

    std::string to_bytes() const;
    static BloomFilter from_bytes(std::string_view blob);

   private:
    struct Layer {
        uint64_t capacity;
        uint64_t bits;
        uint32_t hashes;
        uint64_t count;
        std::vector<uint64_t> words;
    };
    static Layer make_layer(uint64_t capacity, double error_rate);
    static bool layer_contains(const Layer& l, uint64_t h1, uint64_t h2);
    static void layer_insert(Layer& l, uint64_t h1, uint64_t h2);

    uint64_t capacity_;
    double error_rate_;
    uint32_t expansion_;
    bool non_scaling_;
    std::vector<Layer> layers_;
};

}  // namespace anomaly_detection

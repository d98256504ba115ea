#include "anomaly_detection/sketches/bloom.hpp"

#include <cmath>
#include <stdexcept>

#include "anomaly_detection/io/bytes.hpp"
#include "anomaly_detection/sketches/errors.hpp"
#include "anomaly_detection/sketches/hash.hpp"

namespace anomaly_detection {

namespace {
constexpr uint16_t kVersion = 1;
constexpr uint64_t kMaxBits = uint64_t{1} << 35;  // 4 GiB of bits: the bound of one Redis string is 2^32 bits
constexpr size_t kMaxLayers = 64;
constexpr double kLn2 = 0.69314718055994530942;

// Second hash for double hashing, odd so that it cycles through every position.
inline uint64_t second_hash(uint64_t h) { return mix64(h) | 1; }
}  // namespace

void BloomFilter::dimensions(uint64_t capacity, double error_rate, uint64_t* bits, uint32_t* hashes) {
    const double m = std::ceil(-static_cast<double>(capacity) * std::log(error_rate) / (kLn2 * kLn2));
    if (m > static_cast<double>(kMaxBits))
        throw std::invalid_argument("capacity and error_rate: the filter would exceed 2^35 bits");
    *bits = std::max<uint64_t>(64, static_cast<uint64_t>(m));
    *hashes = static_cast<uint32_t>(std::max(1.0, std::ceil(-std::log2(error_rate))));
}

BloomFilter::Layer BloomFilter::make_layer(uint64_t capacity, double error_rate) {
    Layer l{capacity, 0, 0, 0, {}};
    dimensions(capacity, error_rate, &l.bits, &l.hashes);
    l.words.assign((l.bits + 63) / 64, 0);
    return l;
}

BloomFilter::BloomFilter(uint64_t capacity, double error_rate, uint32_t expansion, bool non_scaling)
    : capacity_(capacity), error_rate_(error_rate), expansion_(expansion), non_scaling_(non_scaling) {
    if (capacity == 0) throw std::invalid_argument("capacity: expected at least 1, got 0");
    if (!(error_rate > 0.0 && error_rate < 1.0))
        throw std::invalid_argument("error_rate: expected a number in (0, 1), got " + std::to_string(error_rate));
    if (!non_scaling && (expansion < 1 || expansion > 32768))
        throw std::invalid_argument("expansion: expected 1..32768, got " + std::to_string(expansion));
    layers_.push_back(make_layer(capacity, error_rate));
}

uint64_t BloomFilter::size() const {
    uint64_t n = 0;
    for (const auto& l : layers_) n += l.count;
    return n;
}

size_t BloomFilter::memory_bytes() const {
    size_t b = 0;
    for (const auto& l : layers_) b += l.words.size() * 8;
    return b;
}

bool BloomFilter::layer_contains(const Layer& l, uint64_t h1, uint64_t h2) {
    for (uint32_t j = 0; j < l.hashes; ++j) {
        const uint64_t bit = reduce_range(h1 + j * h2, l.bits);
        if (!(l.words[bit >> 6] & (uint64_t{1} << (bit & 63)))) return false;
    }
    return true;
}

void BloomFilter::layer_insert(Layer& l, uint64_t h1, uint64_t h2) {
    for (uint32_t j = 0; j < l.hashes; ++j) {
        const uint64_t bit = reduce_range(h1 + j * h2, l.bits);
        l.words[bit >> 6] |= uint64_t{1} << (bit & 63);
    }
    ++l.count;
}

void BloomFilter::add(const uint64_t* hashes, size_t n, uint8_t* added_out) {
    for (size_t i = 0; i < n; ++i) {
        const uint64_t h1 = hashes[i], h2 = second_hash(h1);
        bool present = false;
        for (auto it = layers_.rbegin(); it != layers_.rend() && !present; ++it) present = layer_contains(*it, h1, h2);
        if (!present) {
            if (layers_.back().count >= layers_.back().capacity) {
                if (non_scaling_) throw FilterFullError("non-scaling Bloom filter is full");
                if (layers_.size() >= kMaxLayers) throw FilterFullError("Bloom filter reached 64 layers");
                const auto& last = layers_.back();
                const double next_error = error_rate_ * std::pow(0.5, static_cast<double>(layers_.size()));
                const double next_cap = static_cast<double>(last.capacity) * expansion_;
                if (next_cap > 1e15) throw FilterFullError("Bloom filter cannot grow further");
                try {
                    layers_.push_back(make_layer(static_cast<uint64_t>(next_cap), next_error));
                } catch (const std::invalid_argument& e) {
                    throw FilterFullError(std::string("Bloom filter cannot grow: ") + e.what());
                }
            }
            layer_insert(layers_.back(), h1, h2);
        }
        if (added_out) added_out[i] = present ? 0 : 1;
    }
}

void BloomFilter::exists(const uint64_t* hashes, size_t n, uint8_t* exists_out) const {
    for (size_t i = 0; i < n; ++i) {
        const uint64_t h1 = hashes[i], h2 = second_hash(h1);
        bool present = false;
        for (const auto& l : layers_)
            if (layer_contains(l, h1, h2)) {
                present = true;
                break;
            }
        exists_out[i] = present ? 1 : 0;
    }
}

void BloomFilter::bit_positions(const uint64_t* hashes, size_t n, uint64_t* out) const {
    const auto& l = layers_.front();
    for (size_t i = 0; i < n; ++i) {
        const uint64_t h1 = hashes[i], h2 = second_hash(h1);
        for (uint32_t j = 0; j < l.hashes; ++j) out[i * l.hashes + j] = reduce_range(h1 + j * h2, l.bits);
    }
}

std::string BloomFilter::to_bytes() const {
    io::ByteWriter w;
    w.put<uint64_t>(capacity_);
    w.put<double>(error_rate_);
    w.put<uint32_t>(expansion_);
    w.put<uint8_t>(non_scaling_ ? 1 : 0);
    w.put<uint32_t>(static_cast<uint32_t>(layers_.size()));
    for (const auto& l : layers_) {
        w.put<uint64_t>(l.capacity);
        w.put<uint64_t>(l.count);
        w.put_array(l.words.data(), l.words.size());
    }
    return io::seal(io::Family::bloom, kVersion, w.str());
}

BloomFilter BloomFilter::from_bytes(std::string_view blob) {
    io::ByteReader r(io::unseal(blob, io::Family::bloom, kVersion));
    const auto capacity = r.get<uint64_t>("capacity");
    const auto error_rate = r.get<double>("error_rate");
    const auto expansion = r.get<uint32_t>("expansion");
    const bool non_scaling = r.get_flag("non_scaling flag");
    const auto layers = r.get<uint32_t>("layer count");
    if (layers == 0 || layers > kMaxLayers || (non_scaling && layers != 1))
        io::corruption("layer count: expected 1.." + std::to_string(kMaxLayers) + ", got " + std::to_string(layers));
    if (capacity == 0 || !(error_rate > 0.0 && error_rate < 1.0))
        io::corruption("parameters: capacity and error rate out of range");
    {
        // Size the first layer from the parameters and check it against the payload before allocating.
        uint64_t bits = 0;
        uint32_t hashes = 0;
        try {
            dimensions(capacity, error_rate, &bits, &hashes);
        } catch (const std::invalid_argument& e) {
            io::corruption(std::string("parameters: ") + e.what());
        }
        if ((bits + 63) / 64 > r.remaining() / 8) io::corruption("first layer: larger than the payload");
    }
    BloomFilter f = [&] {
        try {
            return BloomFilter(capacity, error_rate, expansion, non_scaling);
        } catch (const std::invalid_argument& e) {
            io::corruption(std::string("parameters: ") + e.what());
        }
    }();
    f.layers_.clear();
    double next_cap = static_cast<double>(capacity);
    for (uint32_t i = 0; i < layers; ++i) {
        const auto cap = r.get<uint64_t>("layer capacity");
        const auto count = r.get<uint64_t>("layer count");
        if (static_cast<double>(cap) != next_cap || count > cap)
            io::corruption("layer " + std::to_string(i) + ": capacity or count does not follow the parameters");
        uint64_t bits;
        uint32_t hashes;
        dimensions(cap, error_rate * std::pow(0.5, i), &bits, &hashes);
        if ((bits + 63) / 64 > r.remaining() / 8)
            io::corruption("layer " + std::to_string(i) + ": expected " + std::to_string((bits + 63) / 64 * 8) +
                           " bytes of bits, got " + std::to_string(r.remaining()));
        Layer l{cap, bits, hashes, count, std::vector<uint64_t>((bits + 63) / 64)};
        r.get_array(l.words.data(), l.words.size(), "bits");
        f.layers_.push_back(std::move(l));
        next_cap *= expansion;
    }
    r.expect_end();
    return f;
}

}  // namespace anomaly_detection

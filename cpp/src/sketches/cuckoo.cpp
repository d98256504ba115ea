#include "anomaly_detection/sketches/cuckoo.hpp"

#include <algorithm>
#include <stdexcept>

#include "anomaly_detection/io/bytes.hpp"
#include "anomaly_detection/sketches/errors.hpp"

namespace anomaly_detection {

namespace {
constexpr uint16_t kVersion = 1;
constexpr uint64_t kMaxSlots = uint64_t{1} << 32;  // 4 GiB of fingerprints across sub-filters

// Callers bound v far below 2^63 (capacity <= kMaxSlots), where this cannot overflow.
uint64_t next_pow2(uint64_t v) {
    uint64_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

// The alternate bucket depends only on the fingerprint, so either bucket finds the other.
inline uint64_t alt_index(uint64_t i, uint8_t fp) { return i ^ (uint64_t{fp} * 0x5bd1e995ULL); }
}  // namespace

CuckooFilter::CuckooFilter(uint64_t capacity, uint32_t bucket_size, uint32_t max_iterations, uint32_t expansion,
                           uint64_t seed)
    : capacity_(capacity),
      bucket_size_(bucket_size),
      max_iterations_(max_iterations),
      expansion_(expansion),
      rng_(seed) {
    if (capacity < 2) throw std::invalid_argument("capacity: expected at least 2, got " + std::to_string(capacity));
    if (bucket_size < 1 || bucket_size > 255)
        throw std::invalid_argument("bucket_size: expected 1..255, got " + std::to_string(bucket_size));
    if (max_iterations < 1 || max_iterations > 65535)
        throw std::invalid_argument("max_iterations: expected 1..65535, got " + std::to_string(max_iterations));
    if (expansion > 32768)
        throw std::invalid_argument("expansion: expected 0..32768, got " + std::to_string(expansion));
    if (capacity > kMaxSlots)
        throw std::invalid_argument("capacity: expected at most 2^32, got " + std::to_string(capacity));
    const uint64_t buckets = next_pow2((capacity + bucket_size - 1) / bucket_size);
    if (buckets * bucket_size > kMaxSlots)
        throw std::invalid_argument("capacity: expected at most 2^32 slots, got " + std::to_string(capacity));
    filters_.push_back(make_filter(buckets));
}

CuckooFilter::SubFilter CuckooFilter::make_filter(uint64_t buckets) const {
    return SubFilter{buckets, std::vector<uint8_t>(buckets * bucket_size_, 0)};
}

uint64_t CuckooFilter::bucket_count() const {
    uint64_t n = 0;
    for (const auto& f : filters_) n += f.buckets;
    return n;
}

size_t CuckooFilter::memory_bytes() const {
    size_t n = 0;
    for (const auto& f : filters_) n += f.slots.size();
    return n;
}

CuckooFilter::Slots CuckooFilter::locate(uint64_t h) const {
    const auto fp = static_cast<uint8_t>(h % 255 + 1);  // 0 marks an empty slot
    const uint64_t i1 = mix64(h);
    return {fp, i1, alt_index(i1, fp)};
}

bool CuckooFilter::contains(const Slots& s) const {
    for (const auto& f : filters_) {
        const uint64_t mask = f.buckets - 1;
        for (const uint64_t b : {s.i1 & mask, s.i2 & mask}) {
            const uint8_t* slot = &f.slots[b * bucket_size_];
            for (uint32_t k = 0; k < bucket_size_; ++k)
                if (slot[k] == s.fp) return true;
        }
    }
    return false;
}

bool CuckooFilter::try_place(SubFilter& f, uint64_t bucket, uint8_t fp) {
    uint8_t* slot = &f.slots[bucket * bucket_size_];
    for (uint32_t k = 0; k < bucket_size_; ++k)
        if (slot[k] == 0) {
            slot[k] = fp;
            return true;
        }
    return false;
}

bool CuckooFilter::kick_in(SubFilter& f, const Slots& s) {
    const uint64_t mask = f.buckets - 1;
    if (try_place(f, s.i1 & mask, s.fp) || try_place(f, s.i2 & mask, s.fp)) return true;
    // Evict along a random walk; remember every swap so a failed walk is undone exactly.
    struct Swap {
        uint64_t index;
        uint8_t old_fp;
    };
    std::vector<Swap> undo;
    uint8_t fp = s.fp;
    uint64_t bucket = (rng_.next() & 1) ? (s.i1 & mask) : (s.i2 & mask);
    for (uint32_t it = 0; it < max_iterations_; ++it) {
        const uint64_t index = bucket * bucket_size_ + rng_.next() % bucket_size_;
        undo.push_back({index, f.slots[index]});
        std::swap(fp, f.slots[index]);
        bucket = alt_index(bucket, fp) & mask;
        if (try_place(f, bucket, fp)) return true;
    }
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) f.slots[it->index] = it->old_fp;
    return false;
}

bool CuckooFilter::insert_one(uint64_t h) {
    const Slots s = locate(h);
    if (kick_in(filters_.back(), s)) return true;
    if (expansion_ == 0 || filters_.size() >= kMaxFilters) return false;
    const uint64_t buckets = next_pow2(filters_.back().buckets * expansion_);
    uint64_t slots = 0;
    for (const auto& f : filters_) slots += f.slots.size();
    if (slots + buckets * bucket_size_ > kMaxSlots) return false;
    filters_.push_back(make_filter(buckets));
    return kick_in(filters_.back(), s);
}

void CuckooFilter::add(const uint64_t* hashes, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        const uint64_t rng_state = rng_.state();
        if (!insert_one(hashes[i])) {
            rng_.set_state(rng_state);  // a refused item leaves no trace, not even in the generator
            throw FilterFullError("cuckoo filter is full: item " + std::to_string(i) +
                                  " of the batch did not fit and the filter cannot grow (expansion=" +
                                  std::to_string(expansion_) + ", filters=" + std::to_string(filters_.size()) + ")");
        }
        ++items_;
    }
}

void CuckooFilter::add_nx(const uint64_t* hashes, size_t n, uint8_t* added_out) {
    for (size_t i = 0; i < n; ++i) {
        added_out[i] = 0;
        if (contains(locate(hashes[i]))) continue;
        add(hashes + i, 1);
        added_out[i] = 1;
    }
}

void CuckooFilter::exists(const uint64_t* hashes, size_t n, uint8_t* out) const {
    for (size_t i = 0; i < n; ++i) out[i] = contains(locate(hashes[i])) ? 1 : 0;
}

void CuckooFilter::remove(const uint64_t* hashes, size_t n, uint8_t* deleted_out) {
    for (size_t i = 0; i < n; ++i) {
        const Slots s = locate(hashes[i]);
        bool done = false;
        for (auto f = filters_.rbegin(); f != filters_.rend() && !done; ++f) {
            const uint64_t mask = f->buckets - 1;
            for (const uint64_t b : {s.i1 & mask, s.i2 & mask}) {
                uint8_t* slot = &f->slots[b * bucket_size_];
                for (uint32_t k = 0; k < bucket_size_ && !done; ++k)
                    if (slot[k] == s.fp) {
                        slot[k] = 0;
                        done = true;
                    }
                if (done) break;
            }
        }
        if (done) {
            --items_;
            ++deletions_;
        }
        if (deleted_out) deleted_out[i] = done ? 1 : 0;
    }
}

void CuckooFilter::count(const uint64_t* hashes, size_t n, uint64_t* out) const {
    for (size_t i = 0; i < n; ++i) {
        const Slots s = locate(hashes[i]);
        uint64_t c = 0;
        for (const auto& f : filters_) {
            const uint64_t mask = f.buckets - 1;
            const uint64_t b1 = s.i1 & mask, b2 = s.i2 & mask;
            for (const uint64_t b : {b1, b2}) {
                const uint8_t* slot = &f.slots[b * bucket_size_];
                for (uint32_t k = 0; k < bucket_size_; ++k) c += slot[k] == s.fp;
                if (b1 == b2) break;  // one bucket: do not count it twice
            }
        }
        out[i] = c;
    }
}

void CuckooFilter::first_filter_slots(const uint64_t* hashes, size_t n, uint8_t* fp, uint64_t* b1, uint64_t* b2) const {
    const uint64_t mask = filters_.front().buckets - 1;
    for (size_t i = 0; i < n; ++i) {
        const Slots s = locate(hashes[i]);
        fp[i] = s.fp;
        b1[i] = s.i1 & mask;
        b2[i] = s.i2 & mask;
    }
}

std::string CuckooFilter::to_bytes() const {
    io::ByteWriter w;
    w.put<uint64_t>(capacity_);
    w.put<uint32_t>(bucket_size_);
    w.put<uint32_t>(max_iterations_);
    w.put<uint32_t>(expansion_);
    w.put<uint64_t>(items_);
    w.put<uint64_t>(deletions_);
    w.put<uint64_t>(rng_.state());
    w.put<uint32_t>(static_cast<uint32_t>(filters_.size()));
    for (const auto& f : filters_) {
        w.put<uint64_t>(f.buckets);
        w.put_array(f.slots.data(), f.slots.size());
    }
    return io::seal(io::Family::cuckoo, kVersion, w.str());
}

CuckooFilter CuckooFilter::from_bytes(std::string_view blob) {
    io::ByteReader r(io::unseal(blob, io::Family::cuckoo, kVersion));
    const auto capacity = r.get<uint64_t>("capacity");
    const auto bucket_size = r.get<uint32_t>("bucket_size");
    const auto max_iterations = r.get<uint32_t>("max_iterations");
    const auto expansion = r.get<uint32_t>("expansion");
    const auto items = r.get<uint64_t>("items");
    const auto deletions = r.get<uint64_t>("deletions");
    const auto rng_state = r.get<uint64_t>("generator state");
    const auto filters = r.get<uint32_t>("filter count");
    if (capacity < 2 || capacity > kMaxSlots || bucket_size < 1 || bucket_size > 255 ||
        next_pow2((capacity + bucket_size - 1) / bucket_size) * bucket_size > r.remaining())
        io::corruption("parameters: the first sub-filter does not fit in the payload");
    CuckooFilter c = [&] {
        try {
            return CuckooFilter(capacity, bucket_size, max_iterations, expansion, 0);
        } catch (const std::invalid_argument& e) {
            io::corruption(std::string("parameters: ") + e.what());
        }
    }();
    if (filters == 0 || filters > kMaxFilters || (expansion == 0 && filters != 1))
        io::corruption("filter count: expected 1.." + std::to_string(kMaxFilters) + ", got " + std::to_string(filters));
    c.filters_.clear();
    uint64_t expected = next_pow2((capacity + bucket_size - 1) / bucket_size), slots = 0;
    for (uint32_t i = 0; i < filters; ++i) {
        const auto buckets = r.get<uint64_t>("bucket count");
        if (buckets != expected) io::corruption("sub-filter " + std::to_string(i) + ": unexpected bucket count");
        slots += buckets * bucket_size;
        if (slots > kMaxSlots || buckets * bucket_size > r.remaining())
            io::corruption("sub-filter " + std::to_string(i) + ": expected " + std::to_string(buckets * bucket_size) +
                           " bytes, got " + std::to_string(r.remaining()));
        SubFilter f = c.make_filter(buckets);
        r.get_array(f.slots.data(), f.slots.size(), "slots");
        c.filters_.push_back(std::move(f));
        expected = next_pow2(buckets * expansion);
    }
    r.expect_end();
    uint64_t occupied = 0;
    for (const auto& f : c.filters_)
        for (uint8_t s : f.slots) occupied += s != 0;
    if (occupied != items)
        io::corruption("item count: expected " + std::to_string(occupied) + ", got " + std::to_string(items));
    c.items_ = items;
    c.deletions_ = deletions;
    c.rng_.set_state(rng_state);
    return c;
}

}  // namespace anomaly_detection

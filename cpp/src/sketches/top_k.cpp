#include "anomaly_detection/sketches/top_k.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "anomaly_detection/io/bytes.hpp"
#include "anomaly_detection/sketches/distinct.hpp"

namespace anomaly_detection {

namespace {
constexpr uint16_t kVersion = 1;
constexpr size_t kDecayTable = 4096;
constexpr size_t kMaxItemBytes = 1 << 16;
constexpr uint64_t kMaxCells = uint64_t{1} << 26;
// Increments up to this draw once per unit; larger ones draw the gaps between decays.
constexpr uint64_t kUnitDraws = 64;

uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
}  // namespace

double TopK::decay_probability_slow(uint64_t count) const {
    return table_complete() ? 0.0 : std::pow(decay_, static_cast<double>(count));
}

TopK::TopK(uint32_t k, uint32_t width, uint32_t depth, double decay, uint64_t seed)
    : k_(k), width_(width), depth_(depth), decay_(decay), rng_(seed) {
    if (k < 1 || k > 100000) throw std::invalid_argument("k: expected 1..100000, got " + std::to_string(k));
    if (width < 1) throw std::invalid_argument("width: expected at least 1, got 0");
    if (depth < 1 || depth > kMaxDepth)
        throw std::invalid_argument("depth: expected 1..64, got " + std::to_string(depth));
    if (uint64_t{width} * depth > kMaxCells)
        throw std::invalid_argument("width * depth: expected at most 2^26 buckets");
    if (!(decay > 0.0 && decay <= 1.0))
        throw std::invalid_argument("decay: expected a number in (0, 1], got " + std::to_string(decay));
    // decay^count for every count at which a draw can still succeed (p >= 2^-53), up to
    // kDecayTable entries; beyond the table, pow() only when decay is so close to 1 that
    // the table ends above 2^-53.
    decay_table_.reserve(64);
    for (size_t i = 0; i < kDecayTable; ++i) {
        const double p = std::pow(decay, static_cast<double>(i));
        decay_table_.push_back(p);
        if (p < 0x1.0p-53) break;
    }
    buckets_.assign(size_t{width} * depth, Bucket{0, 0});
    heap_.assign(k, HeapEntry{0, 0, kText, {}});
}

size_t TopK::memory_bytes() const {
    size_t b = buckets_.size() * sizeof(Bucket) + heap_.size() * sizeof(HeapEntry);
    for (const auto& e : heap_) b += e.item.capacity();
    return b;
}

void TopK::sift_down(size_t i) {
    const size_t n = heap_.size();
    for (;;) {
        size_t smallest = i;
        const size_t l = 2 * i + 1, r = 2 * i + 2;
        if (l < n && heap_[l].count < heap_[smallest].count) smallest = l;
        if (r < n && heap_[r].count < heap_[smallest].count) smallest = r;
        if (smallest == i) return;
        std::swap(heap_[i], heap_[smallest]);
        i = smallest;
    }
}

TopK::HeapEntry* TopK::find(std::string_view item, uint32_t fp) {
    for (auto& e : heap_)
        if (e.count > 0 && e.fp == fp && e.item == item) return &e;
    return nullptr;
}

bool TopK::offer(std::string_view item, uint8_t kind, uint32_t fp, uint64_t estimate, Entry* expelled) {
    if (estimate < heap_[0].count || estimate == 0) return false;
    if (HeapEntry* e = find(item, fp)) {
        e->count = std::max(e->count, estimate);
        sift_down(static_cast<size_t>(e - heap_.data()));
        return false;
    }
    const bool had = heap_[0].count > 0;
    if (had && expelled) *expelled = Entry{std::move(heap_[0].item), heap_[0].count, heap_[0].kind};
    heap_[0].item.assign(item.data(), item.size());
    heap_[0].kind = kind;
    heap_[0].fp = fp;
    heap_[0].count = estimate;
    sift_down(0);
    return had;
}

void TopK::check_increments(const uint64_t* increments, size_t n) {
    if (increments)
        for (size_t i = 0; i < n; ++i)
            if (increments[i] < 1 || increments[i] > UINT32_MAX)
                throw std::invalid_argument("increments[" + std::to_string(i) + "]: expected 1..2^32-1, got " +
                                            std::to_string(increments[i]));
}

uint64_t TopK::update_buckets_unit(uint64_t h, uint32_t fp) {
    // What the general loop below does for inc 1, written as arithmetic on flags: whether a
    // colliding unit decays a small count is a coin toss, so branches on it mispredict
    // about as often as not, and the long tail of a stream is mostly such single units.
    // Same draws, same results.
    size_t cells[kMaxDepth];
    for (uint32_t row = 0; row < depth_; ++row) cells[row] = cell(h, row);  // independent: they overlap
    const uint64_t last = decay_table_.size() - 1;  // decay_table_[last] < 2^-53: no draw from there on
    // Whether a row draws depends only on its bucket, not on the generator: the row's draw is
    // the (draws so far + 1)-th from rng_, computed from that count (one add) rather than from
    // the previous row's generator state, so the rows' draws overlap instead of forming one
    // chain of output mixes. The same draws as taking them one after another.
    uint64_t draws = 0;
    uint64_t max_count = 0;
    for (uint32_t row = 0; row < depth_; ++row) {
        Bucket& b = buckets_[cells[row]];
        const uint64_t c = b.count;
        const double p = decay_table_[std::min(c, last)];
        const uint64_t mine = static_cast<uint64_t>(c == 0) | static_cast<uint64_t>(b.fp == fp);
        const uint64_t draw = (mine ^ 1) & static_cast<uint64_t>(p >= 0x1.0p-53);
        SplitMix64 at = rng_;
        at.advance(draws);
        const double u = at.peek_uniform();
        const uint64_t decays = draw & static_cast<uint64_t>(u < p);
        const uint64_t emptied = decays & static_cast<uint64_t>(c == 1);  // the unit takes the bucket
        const uint64_t taken = mine | emptied;
        draws += draw;
        const uint64_t count = c + (mine & static_cast<uint64_t>(c != UINT64_MAX)) - decays + emptied;
        b.fp ^= (b.fp ^ fp) & (0u - static_cast<uint32_t>(taken));
        b.count = count;
        max_count = std::max(max_count, count & (0 - taken));
    }
    rng_.advance(draws);
    return max_count;
}

uint64_t TopK::update_buckets(uint64_t h, uint32_t fp, uint64_t inc) {
    if (inc == 1 && table_complete()) return update_buckets_unit(h, fp);
    uint64_t max_count = 0;
    for (uint32_t row = 0; row < depth_; ++row) {
        Bucket& b = buckets_[cell(h, row)];
        if (b.count == 0) {
            b.fp = fp;
            b.count = inc;
            max_count = std::max(max_count, b.count);
        } else if (b.fp == fp) {
            b.count = sat_add(b.count, inc);
            max_count = std::max(max_count, b.count);
        } else if (inc <= kUnitDraws) {
            // Each unit of the increment decays the resident count with probability decay^count.
            for (uint64_t left = inc; left > 0; --left) {
                const double p = decay_probability(b.count);
                if (p < 0x1.0p-53) break;  // no draw can succeed any more
                if (rng_.uniform() < p && --b.count == 0) {
                    b.fp = fp;
                    b.count = left;
                    max_count = std::max(max_count, b.count);
                    break;
                }
            }
        } else {
            // inc units in a row, each decaying the resident count with probability
            // decay^count: draw how many units pass until the next decay (geometric)
            // instead of one draw per unit. The unit that empties the bucket and the units
            // after it belong to the new item.
            uint64_t left = inc;
            while (left > 0) {
                const double p = decay_probability(b.count);
                if (p < 0x1.0p-53) break;  // no draw can succeed any more
                if (p >= 1.0) {            // decay 1: every unit decays, no draw and no loop per unit
                    if (left < b.count) {
                        b.count -= left;
                        break;
                    }
                    left -= b.count - 1;  // the last of these units empties the bucket
                    b.count = 1;
                } else {
                    const double u = 1.0 - rng_.uniform();  // (0, 1]
                    const double t = std::floor(std::log(u) / std::log1p(-p));
                    if (!(t < static_cast<double>(left))) break;  // no decay in the units left
                    left -= static_cast<uint64_t>(t);             // units that passed without a decay
                }
                left -= 1;  // the unit that decays the count
                if (--b.count == 0) {
                    b.fp = fp;
                    b.count = left + 1;
                    max_count = std::max(max_count, b.count);
                    break;
                }
            }
        }
    }
    return max_count;
}

void TopK::incrby(const std::string_view* items, const uint8_t* kinds, const uint64_t* hashes,
                  const uint64_t* increments, size_t n, std::vector<std::pair<size_t, Entry>>* expelled) {
    check_increments(increments, n);
    const ItemText text = [&](size_t i, uint8_t& kind) {
        kind = kinds ? kinds[i] : uint8_t{kText};
        return items[i];
    };
    for (size_t i = 0; i < n; ++i) add_one(hashes[i], increments ? increments[i] : 1, i, text, expelled);
}

bool TopK::incrby_one(std::string_view item, uint8_t kind, uint64_t hash, uint64_t increment, Entry& expelled) {
    check_increments(&increment, 1);
    const uint32_t fp = fingerprint(hash);
    const uint64_t estimate = update_buckets(hash, fp, increment);
    if (estimate < heap_[0].count || estimate == 0) return false;  // cannot enter
    return offer(item, kind, fp, estimate, &expelled);
}

void TopK::add_batch(const uint64_t* hashes, const uint64_t* increments, size_t n, const ItemText& text,
                     std::vector<std::pair<size_t, Entry>>* expelled) {
    check_increments(increments, n);
    constexpr size_t kMaxPart = size_t{1} << 31;  // distinct indices are 32-bit
    if (n > kMaxPart) {
        for (size_t start = 0; start < n; start += kMaxPart) {
            const size_t before = expelled ? expelled->size() : 0;
            const ItemText shifted = [&](size_t i, uint8_t& kind) { return text(start + i, kind); };
            add_batch(hashes + start, increments ? increments + start : nullptr, std::min(kMaxPart, n - start), shifted,
                      expelled);
            if (expelled)
                for (size_t e = before; e < expelled->size(); ++e) (*expelled)[e].first += start;
        }
        return;
    }
    if (n == 1) {  // one item: nothing to sum, no table
        add_one(hashes[0], increments ? increments[0] : 1, 0, text, expelled);
        return;
    }
    add_distinct(group_hashes(hashes, increments, n), text, expelled);
}

bool TopK::add_cells(const char* cells, size_t width, CellFormat format, size_t n, const uint64_t* increments,
                     const ItemText& text, std::vector<std::pair<size_t, Entry>>* expelled) {
    check_increments(increments, n);
    DistinctItems distinct;
    if (!group_cells(cells, width, format, n, increments, distinct)) return false;
    add_distinct(distinct, text, expelled);
    return true;
}

void TopK::add_distinct(const DistinctItems& items, const ItemText& text,
                        std::vector<std::pair<size_t, Entry>>* expelled) {
    for (size_t d = 0; d < items.size(); ++d) add_one(items.hashes[d], items.counts[d], items.first[d], text, expelled);
}

void TopK::add_one(uint64_t h, uint64_t inc, size_t index, const ItemText& text,
                   std::vector<std::pair<size_t, Entry>>* expelled) {
    const uint32_t fp = fingerprint(h);
    const uint64_t estimate = update_buckets(h, fp, inc);
    if (estimate < heap_[0].count || estimate == 0) return;  // cannot enter: no text needed
    uint8_t kind = kText;
    const std::string_view item = text(index, kind);
    Entry out;
    if (offer(item, kind, fp, estimate, &out) && expelled) expelled->emplace_back(index, std::move(out));
}

bool TopK::query(std::string_view item, uint64_t hash) const {
    return const_cast<TopK*>(this)->find(item, fingerprint(hash)) != nullptr;
}

uint64_t TopK::count(uint64_t hash) const {
    const uint32_t fp = fingerprint(hash);
    uint64_t c = 0;
    for (uint32_t row = 0; row < depth_; ++row) {
        const Bucket& b = buckets_[cell(hash, row)];
        if (b.fp == fp) c = std::max(c, b.count);
    }
    return c;
}

std::vector<TopK::Entry> TopK::list() const {
    std::vector<Entry> out;
    for (const auto& e : heap_)
        if (e.count > 0) out.push_back({e.item, e.count, e.kind});
    std::sort(out.begin(), out.end(),
              [](const Entry& a, const Entry& b) { return a.count != b.count ? a.count > b.count : a.item < b.item; });
    return out;
}

void TopK::merge(const TopK& other) {
    if (other.k_ != k_ || other.width_ != width_ || other.depth_ != depth_ || other.decay_ != decay_)
        throw std::invalid_argument("merge: expected k=" + std::to_string(k_) + " width=" + std::to_string(width_) +
                                    " depth=" + std::to_string(depth_) + " and the same decay");
    // Candidate counts come from the heaps before the buckets change.
    std::vector<HeapEntry> candidates;
    for (const auto& e : heap_)
        if (e.count > 0) {
            const uint64_t h = hash_item(e.item);
            const bool in_other = const_cast<TopK&>(other).find(e.item, e.fp) != nullptr;
            candidates.push_back({in_other ? e.count : sat_add(e.count, other.count(h)), e.fp, e.kind, e.item});
        }
    for (const auto& e : other.heap_)
        if (e.count > 0) {
            bool merged = false;
            for (auto& c : candidates)
                if (c.fp == e.fp && c.item == e.item) {
                    c.count = sat_add(c.count, e.count);
                    merged = true;
                }
            if (!merged) candidates.push_back({sat_add(e.count, count(hash_item(e.item))), e.fp, e.kind, e.item});
        }
    // Buckets: equal fingerprints add up; different ones cancel out, the larger keeping the rest.
    for (size_t i = 0; i < buckets_.size(); ++i) {
        Bucket& a = buckets_[i];
        const Bucket& b = other.buckets_[i];
        if (b.count == 0) continue;
        if (a.count == 0 || a.fp == b.fp) {
            a.fp = b.fp;
            a.count = sat_add(a.count, b.count);
        } else if (b.count > a.count) {
            a.fp = b.fp;
            a.count = b.count - a.count;
        } else {
            a.count -= b.count;
        }
    }
    std::sort(candidates.begin(), candidates.end(),
              [](const HeapEntry& a, const HeapEntry& b) { return a.count > b.count; });
    candidates.resize(std::min<size_t>(candidates.size(), k_));
    heap_.assign(k_, HeapEntry{0, 0, kText, {}});
    std::copy(candidates.begin(), candidates.end(), heap_.begin());
    // A list sorted by decreasing count is not a min-heap; rebuild it.
    for (size_t i = heap_.size() / 2 + 1; i-- > 0;) sift_down(i);
}

std::string TopK::to_bytes() const {
    io::ByteWriter w;
    w.put<uint32_t>(k_);
    w.put<uint32_t>(width_);
    w.put<uint32_t>(depth_);
    w.put<double>(decay_);
    w.put<uint64_t>(rng_.state());
    for (const auto& b : buckets_) {
        w.put<uint32_t>(b.fp);
        w.put<uint64_t>(b.count);
    }
    for (const auto& e : heap_) {
        w.put<uint64_t>(e.count);
        w.put<uint32_t>(e.fp);
        w.put<uint8_t>(e.kind);
        w.put_string(e.item);
    }
    return io::seal(io::Family::top_k, kVersion, w.str());
}

TopK TopK::from_bytes(std::string_view blob) {
    io::ByteReader r(io::unseal(blob, io::Family::top_k, kVersion));
    const auto k = r.get<uint32_t>("k");
    const auto width = r.get<uint32_t>("width");
    const auto depth = r.get<uint32_t>("depth");
    const auto decay = r.get<double>("decay");
    const auto rng_state = r.get<uint64_t>("generator state");
    if (uint64_t{width} * depth > r.remaining() / 12 || uint64_t{k} > r.remaining() / 16)
        io::corruption("dimensions: the buckets and heap do not fit in the payload");
    TopK t = [&] {
        try {
            return TopK(k, width, depth, decay, 0);
        } catch (const std::invalid_argument& e) {
            io::corruption(std::string("parameters: ") + e.what());
        }
    }();
    t.rng_.set_state(rng_state);
    for (auto& b : t.buckets_) {
        b.fp = r.get<uint32_t>("bucket fingerprint");
        b.count = r.get<uint64_t>("bucket count");
    }
    for (auto& e : t.heap_) {
        e.count = r.get<uint64_t>("heap count");
        e.fp = r.get<uint32_t>("heap fingerprint");
        e.kind = r.get<uint8_t>("heap item kind");
        e.item = r.get_string(kMaxItemBytes, "heap item");
        if (e.kind > kInteger || (e.kind == kInteger && e.item.size() != 8))
            io::corruption("heap item kind: expected text, or an integer of 8 bytes");
        if (e.count > 0 && e.fp != fingerprint(hash_item(e.item)))
            io::corruption("heap item does not match its fingerprint");
    }
    r.expect_end();
    for (size_t i = 1; i < t.heap_.size(); ++i)
        if (t.heap_[(i - 1) / 2].count > t.heap_[i].count) io::corruption("heap order violated");
    return t;
}

}  // namespace anomaly_detection

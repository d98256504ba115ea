#include "anomaly_detection/forest/half_space_trees.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "anomaly_detection/forest/random.hpp"
#include "anomaly_detection/io/bytes.hpp"

namespace anomaly_detection {

namespace {

constexpr uint16_t kFormatVersion = 1;
constexpr double kPadding = 0.15;              // River's make_padded_tree(padding=0.15)
constexpr size_t kMaxNodes = size_t{1} << 27;  // every tree together: 1 GiB of masses at most
constexpr size_t kMaxNameBytes = 1 << 16;

// Draws the splits of a subtree in River's order (pre-order: the node, then its
// left subtree, then its right one), narrowing the limits on the way down.
struct Builder {
    PythonRandom& rng;
    std::vector<std::pair<double, double>>& limits;
    uint32_t* feature;
    double* threshold;
    std::vector<double> cumulative;

    void grow(size_t node, size_t height) {
        if (height == 0) return;
        // random.choices(population, weights): bisect_right on the running sums.
        double total = 0.0;
        for (size_t j = 0; j < limits.size(); ++j) cumulative[j] = total += limits[j].second - limits[j].first;
        const double u = rng.random() * total;
        const auto last = cumulative.begin() + static_cast<std::ptrdiff_t>(limits.size() - 1);
        const auto on = static_cast<size_t>(std::upper_bound(cumulative.begin(), last, u) - cumulative.begin());
        const double a = limits[on].first, b = limits[on].second;
        const double at = rng.uniform(a + kPadding * (b - a), b - kPadding * (b - a));
        feature[node] = static_cast<uint32_t>(on);
        threshold[node] = at;
        limits[on] = {a, at};
        grow(2 * node + 1, height - 1);
        limits[on] = {at, b};
        grow(2 * node + 2, height - 1);
        limits[on] = {a, b};
    }
};

}  // namespace

void HalfSpaceTreesConfig::validate() const {
    if (n_trees == 0) throw std::invalid_argument("n_trees: expected >= 1, got 0");
    // Bounded so that masses times 2^depth and the score's normaliser (n_trees * window_size
    // * nodes) stay exact in 64 bits.
    if (window_size == 0 || window_size > (uint64_t{1} << 32))
        throw std::invalid_argument("window_size: expected 1..2^32, got " + std::to_string(window_size));
    if (height > 26 || n_trees > kMaxNodes || n_trees * ((size_t{2} << height) - 1) > kMaxNodes)
        throw std::invalid_argument("n_trees * 2^(height + 1): expected at most 2^27 nodes, got n_trees " +
                                    std::to_string(n_trees) + " and height " + std::to_string(height));
}

HalfSpaceTrees::HalfSpaceTrees(HalfSpaceTreesConfig config, std::vector<std::pair<double, double>> limits,
                               std::vector<std::string> feature_names)
    : config_(config), limits_(std::move(limits)), feature_names_(std::move(feature_names)) {
    config_.validate();
    if (limits_.empty()) throw std::invalid_argument("limits: expected at least one feature, got none");
    if (limits_.size() > std::numeric_limits<uint32_t>::max()) throw std::invalid_argument("limits: too many features");
    for (size_t j = 0; j < limits_.size(); ++j) {
        const auto [lo, hi] = limits_[j];
        if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi))
            throw std::invalid_argument("limits of feature " + std::to_string(j) +
                                        ": expected finite low < high, got (" + std::to_string(lo) + ", " +
                                        std::to_string(hi) + ")");
    }
    if (!feature_names_.empty() && feature_names_.size() != limits_.size())
        throw std::invalid_argument("feature_names: expected " + std::to_string(limits_.size()) + " names, got " +
                                    std::to_string(feature_names_.size()));
    build();
}

void HalfSpaceTrees::build() {
    const size_t internal = internal_per_tree();
    feature_.assign(config_.n_trees * internal, 0);
    threshold_.assign(config_.n_trees * internal, 0.0);
    l_mass_.assign(config_.n_trees * nodes_per_tree(), 0);
    r_mass_.assign(config_.n_trees * nodes_per_tree(), 0);
    PythonRandom rng(config_.seed);
    auto limits = limits_;
    Builder builder{rng, limits, nullptr, nullptr, std::vector<double>(limits.size())};
    for (size_t t = 0; t < config_.n_trees; ++t) {
        builder.feature = feature_.data() + t * internal;
        builder.threshold = threshold_.data() + t * internal;
        builder.grow(0, config_.height);
    }
}

void HalfSpaceTrees::learn_one(const double* x) {
    const size_t height = config_.height, internal = internal_per_tree(), nodes = nodes_per_tree();
    for (size_t t = 0; t < config_.n_trees; ++t) {
        const uint32_t* feature = feature_.data() + t * internal;
        const double* threshold = threshold_.data() + t * internal;
        uint64_t* l_mass = l_mass_.data() + t * nodes;
        size_t node = 0;
        for (size_t level = 0; level < height; ++level) {
            ++l_mass[node];
            const double v = x[feature[node]];
            const size_t left = 2 * node + 1;
            node = std::isnan(v) ? (l_mass[left] < l_mass[left + 1] ? left + 1 : left)
                                 : (v < threshold[node] ? left : left + 1);
        }
        ++l_mass[node];
    }
    if (++counter_ == config_.window_size) {
        r_mass_.swap(l_mass_);
        std::fill(l_mass_.begin(), l_mass_.end(), 0);
        first_window_ = false;
        counter_ = 0;
    }
}

double HalfSpaceTrees::score_one(const double* x) const {
    if (first_window_) return 0.0;
    const size_t height = config_.height, internal = internal_per_tree(), nodes = nodes_per_tree();
    const double size_limit = 0.1 * static_cast<double>(config_.window_size);
    double score = 0.0;
    for (size_t t = 0; t < config_.n_trees; ++t) {
        const uint32_t* feature = feature_.data() + t * internal;
        const double* threshold = threshold_.data() + t * internal;
        const uint64_t* l_mass = l_mass_.data() + t * nodes;
        const uint64_t* r_mass = r_mass_.data() + t * nodes;
        size_t node = 0;
        uint64_t depth_pow = 1;
        // River adds each node's term to the running total as it goes; the sum of
        // integers is exact either way, the order of the float additions is kept.
        bool stopped = false;
        for (size_t level = 0; level < height; ++level) {
            const uint64_t r = r_mass[node];
            score += static_cast<double>(r * depth_pow);
            if (static_cast<double>(r) < size_limit) {
                stopped = true;
                break;
            }
            const double v = x[feature[node]];
            const size_t left = 2 * node + 1;
            node = std::isnan(v) ? (l_mass[left] < l_mass[left + 1] ? left + 1 : left)
                                 : (v < threshold[node] ? left : left + 1);
            depth_pow <<= 1;
        }
        if (!stopped) score += static_cast<double>(r_mass[node] * depth_pow);
    }
    const double max_score = static_cast<double>(config_.n_trees * config_.window_size * nodes);
    return 1.0 - score / max_score;
}

void HalfSpaceTrees::learn_many(const double* rows, size_t n) {
    for (size_t i = 0; i < n; ++i) learn_one(rows + i * n_features());
}

void HalfSpaceTrees::score_many(const double* rows, size_t n, double* out) const {
    for (size_t i = 0; i < n; ++i) out[i] = score_one(rows + i * n_features());
}

void HalfSpaceTrees::score_learn_many(const double* rows, size_t n, double* out) {
    for (size_t i = 0; i < n; ++i) {
        out[i] = score_one(rows + i * n_features());
        learn_one(rows + i * n_features());
    }
}

std::string HalfSpaceTrees::to_bytes() const {
    io::ByteWriter w;
    w.put<uint64_t>(config_.n_trees);
    w.put<uint64_t>(config_.height);
    w.put<uint64_t>(config_.window_size);
    w.put<uint64_t>(config_.seed);
    w.put<uint64_t>(limits_.size());
    for (const auto& [lo, hi] : limits_) {
        w.put<double>(lo);
        w.put<double>(hi);
    }
    w.put<uint8_t>(feature_names_.empty() ? 0 : 1);
    for (const auto& name : feature_names_) w.put_string(name);
    w.put<uint64_t>(counter_);
    w.put<uint8_t>(first_window_ ? 1 : 0);
    // The splits are rebuilt from the seed and limits on load; only masses are stored.
    w.put_array(l_mass_.data(), l_mass_.size());
    w.put_array(r_mass_.data(), r_mass_.size());
    return io::seal(io::Family::half_space_trees, kFormatVersion, w.str());
}

HalfSpaceTrees HalfSpaceTrees::from_bytes(std::string_view bytes) {
    io::ByteReader r(io::unseal(bytes, io::Family::half_space_trees, kFormatVersion));
    HalfSpaceTreesConfig cfg;
    cfg.n_trees = r.get<uint64_t>("n_trees");
    cfg.height = r.get<uint64_t>("height");
    cfg.window_size = r.get<uint64_t>("window_size");
    cfg.seed = r.get<uint64_t>("seed");
    const auto n_features = r.get<uint64_t>("feature count");
    if (n_features == 0 || n_features > r.remaining() / 16)
        io::corruption("feature count: expected 1.." + std::to_string(r.remaining() / 16) + ", got " +
                       std::to_string(n_features));
    std::vector<std::pair<double, double>> limits(n_features);
    for (auto& [lo, hi] : limits) {
        lo = r.get<double>("limit");
        hi = r.get<double>("limit");
    }
    const bool named = r.get_flag("names flag");
    std::vector<std::string> names;
    for (size_t j = 0; named && j < n_features; ++j) names.push_back(r.get_string(kMaxNameBytes, "feature name"));
    const auto counter = r.get<uint64_t>("counter");
    const bool first_window = r.get_flag("first window flag");
    HalfSpaceTrees h;
    try {
        cfg.validate();
        if (counter >= cfg.window_size) throw std::invalid_argument("counter: expected < window_size");
        const size_t masses = cfg.n_trees * ((size_t{2} << cfg.height) - 1);
        if (masses * 2 > r.remaining() / sizeof(uint64_t))
            throw std::invalid_argument("masses: expected " + std::to_string(masses * 2 * 8) + " bytes, got " +
                                        std::to_string(r.remaining()));
        h = HalfSpaceTrees(cfg, std::move(limits), std::move(names));
    } catch (const std::invalid_argument& e) {
        io::corruption(e.what());
    }
    h.counter_ = counter;
    h.first_window_ = first_window;
    r.get_array(h.l_mass_.data(), h.l_mass_.size(), "window masses");
    r.get_array(h.r_mass_.data(), h.r_mass_.size(), "reference masses");
    r.expect_end();
    // A node's mass counts points of one window: more than a window is corrupt (and would
    // take scores out of [0, 1]); the window being filled holds `counter` points so far (more,
    // and the next learn_one would save masses beyond a window).
    for (const uint64_t m : h.r_mass_)
        if (m > cfg.window_size)
            io::corruption("masses: " + std::to_string(m) + " exceeds window_size " + std::to_string(cfg.window_size));
    for (const uint64_t m : h.l_mass_)
        if (m > counter)
            io::corruption("window masses: " + std::to_string(m) + " exceeds the window's points so far (" +
                           std::to_string(counter) + ")");
    return h;
}

}  // namespace anomaly_detection

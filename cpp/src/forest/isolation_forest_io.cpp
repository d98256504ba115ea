// IsolationForest: serialisation (to_bytes, from_bytes).
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <type_traits>

#include "anomaly_detection/forest/isolation_forest.hpp"
#include "anomaly_detection/forest/parallel.hpp"
#include "anomaly_detection/forest/random.hpp"
#include "anomaly_detection/io/bytes.hpp"
#include "anomaly_detection/stats/quantile.hpp"
#include "isolation_forest_detail.hpp"

namespace anomaly_detection {

using namespace iforest;

std::string IsolationForest::to_bytes() const {
    io::ByteWriter w;
    w.put<uint64_t>(config_.n_estimators);
    w.put<uint64_t>(config_.max_samples);
    w.put<uint64_t>(config_.max_features);
    w.put<double>(config_.contamination);
    w.put<uint8_t>(config_.bootstrap ? 1 : 0);
    w.put<uint64_t>(config_.seed);
    w.put<uint8_t>(is_fitted() ? 1 : 0);
    if (is_fitted()) {
        w.put<uint64_t>(max_samples_);
        w.put<uint64_t>(n_features_in_);
        w.put<double>(offset_);
        w.put<uint64_t>(n_trees());
        w.put_array(tree_offset_.data(), tree_offset_.size());
        w.put<uint64_t>(nodes_.size());
        for (const auto& node : nodes_) {
            w.put<double>(node.threshold);
            w.put<uint32_t>(node.feature);
            w.put<uint32_t>(node.left);
        }
        w.put_array(leaf_value_.data(), leaf_value_.size());
    }
    return io::seal(io::Family::isolation_forest, kFormatVersion, w.str());
}

IsolationForest IsolationForest::from_bytes(std::string_view bytes) {
    io::ByteReader r(io::unseal(bytes, io::Family::isolation_forest, kFormatVersion));
    IsolationForestConfig cfg;
    cfg.n_estimators = r.get<uint64_t>("n_estimators");
    cfg.max_samples = r.get<uint64_t>("max_samples");
    cfg.max_features = r.get<uint64_t>("max_features");
    cfg.contamination = r.get<double>("contamination");
    cfg.bootstrap = r.get_flag("bootstrap");
    cfg.seed = r.get<uint64_t>("seed");
    try {
        cfg.validate();
    } catch (const std::invalid_argument& e) {
        io::corruption(e.what());
    }
    IsolationForest f(cfg);
    if (!r.get_flag("fitted flag")) {
        r.expect_end();
        return f;
    }
    f.max_samples_ = r.get<uint64_t>("max_samples_");
    f.n_features_in_ = r.get<uint64_t>("n_features_in");
    f.offset_ = r.get<double>("offset");
    if (f.max_samples_ == 0 || f.n_features_in_ == 0 || f.n_features_in_ > std::numeric_limits<uint32_t>::max() ||
        !std::isfinite(f.offset_))
        io::corruption("fitted header: expected positive sizes and a finite offset");
    const auto n_trees = r.get<uint64_t>("tree count");
    if (n_trees != cfg.n_estimators)
        io::corruption("tree count: expected " + std::to_string(cfg.n_estimators) + ", got " + std::to_string(n_trees));
    if (n_trees + 1 > r.remaining() / sizeof(uint32_t)) io::corruption("tree offsets: truncated");
    f.tree_offset_.resize(n_trees + 1);
    r.get_array(f.tree_offset_.data(), f.tree_offset_.size(), "tree offsets");
    const auto n_nodes = r.get<uint64_t>("node count");
    constexpr size_t kNodeBytes = sizeof(double) * 2 + sizeof(uint32_t) * 2;
    if (n_nodes == 0 || n_nodes > r.remaining() / kNodeBytes)
        io::corruption("node count: expected 1.." + std::to_string(r.remaining() / kNodeBytes) + ", got " +
                       std::to_string(n_nodes));
    if (f.tree_offset_.front() != 0 || f.tree_offset_.back() != n_nodes)
        io::corruption("tree offsets: expected 0 .. node count");
    for (size_t t = 0; t < n_trees; ++t)
        if (f.tree_offset_[t + 1] <= f.tree_offset_[t]) io::corruption("tree offsets: expected increasing values");
    f.nodes_.resize(n_nodes);
    for (auto& node : f.nodes_) {
        node.threshold = r.get<double>("threshold");
        node.feature = r.get<uint32_t>("feature");
        node.left = r.get<uint32_t>("child");
    }
    f.leaf_value_.resize(n_nodes);
    r.get_array(f.leaf_value_.data(), n_nodes, "leaf values");
    r.expect_end();
    // Every walk must stay inside its tree and read an existing feature (a leaf
    // reads its feature too, branch-free, so it must be 0), and every node but the root
    // must have exactly one parent: a node reached by two paths at different depths
    // would be placed outside the complete-tree layouts.
    std::vector<uint8_t> parents;
    for (size_t t = 0; t < n_trees; ++t) {
        const uint32_t base = f.tree_offset_[t], count = f.tree_offset_[t + 1] - base;
        parents.assign(count, 0);
        for (uint32_t i = 0; i < count; ++i) {
            const IsolationNode& node = f.nodes_[base + i];
            const double value = f.leaf_value_[base + i];
            if (node.left == i) {
                if (node.threshold != kInf || node.feature != 0 || !std::isfinite(value) || value < 0.0)
                    io::corruption("leaf " + std::to_string(i) + " of tree " + std::to_string(t));
            } else if (node.left <= i || node.left >= count - 1 || node.feature >= f.n_features_in_ ||
                       !std::isfinite(node.threshold) || parents[node.left]++ || parents[node.left + 1]++) {
                io::corruption("split " + std::to_string(i) + " of tree " + std::to_string(t));
            }
        }
        for (uint32_t i = 1; i < count; ++i)
            if (parents[i] != 1)
                io::corruption("node " + std::to_string(i) + " of tree " + std::to_string(t) + ": no parent");
    }
    f.compute_tree_depths();
    f.build_heap_layout();
    return f;
}

}  // namespace anomaly_detection

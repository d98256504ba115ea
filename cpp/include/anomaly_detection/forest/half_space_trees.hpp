// Half-Space Trees (Tan, Ting and Liu, 2011) with River's semantics
// (river.anomaly.HalfSpaceTrees): complete trees of the given height over a
// box of feature limits, each split on a feature drawn with probability
// proportional to its current width, at a point uniform in the middle 70 % of
// it. Masses are counted over a window (l_mass) and pivoted into the reference
// masses (r_mass) every window_size observations; the score of a point sums
// r_mass * 2^depth along its path, stopping at a node with r_mass below
// 0.1 * window_size, normalised so that 1 is most anomalous. The trees are
// drawn with CPython's generator (see PythonRandom), so a seed builds the very
// trees River builds with it and scores agree to the last bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace anomaly_detection {

struct HalfSpaceTreesConfig {
    size_t n_trees = 10;       ///< >= 1
    size_t height = 8;         ///< levels below the root; a tree has 2^(height+1) - 1 nodes
    size_t window_size = 250;  ///< >= 1
    uint64_t seed = 0;         ///< as random.Random(seed)

    /// Throws std::invalid_argument naming the first invalid field.
    void validate() const;
};

class HalfSpaceTrees {
   public:
    /// limits[j] = (low, high) of feature j, low < high, both finite; the trees are
    /// built here. feature_names (optional, one per feature) travel with the bytes.
    HalfSpaceTrees(HalfSpaceTreesConfig config, std::vector<std::pair<double, double>> limits,
                   std::vector<std::string> feature_names = {});

    /// Learns one observation of n_features() values; a NaN value is a missing
    /// feature, which follows the child with the larger window mass, as River does.
    void learn_one(const double* x);
    /// Anomaly score in [0, 1] (higher is more anomalous); 0 during the first window.
    double score_one(const double* x) const;

    /// learn_one on each of n rows of n_features() values, in order.
    void learn_many(const double* rows, size_t n);
    /// score_one of each of n rows into out; does not learn.
    void score_many(const double* rows, size_t n, double* out) const;
    /// For each row in order, score it then learn it (progressive validation).
    void score_learn_many(const double* rows, size_t n, double* out);

    size_t n_features() const { return limits_.size(); }
    const HalfSpaceTreesConfig& config() const { return config_; }
    const std::vector<std::pair<double, double>>& limits() const { return limits_; }
    const std::vector<std::string>& feature_names() const { return feature_names_; }
    size_t counter() const { return counter_; }
    bool first_window() const { return first_window_; }

    std::string to_bytes() const;
    /// Throws std::invalid_argument ("possible corruption: ...") on bad bytes.
    static HalfSpaceTrees from_bytes(std::string_view bytes);

   private:
    HalfSpaceTrees() = default;
    void build();
    size_t nodes_per_tree() const { return (size_t{2} << config_.height) - 1; }
    size_t internal_per_tree() const { return (size_t{1} << config_.height) - 1; }

    HalfSpaceTreesConfig config_;
    std::vector<std::pair<double, double>> limits_;
    std::vector<std::string> feature_names_;
    // Trees are complete and stored in heap order (children of i at 2i+1, 2i+2),
    // one after the other; split arrays cover internal nodes, masses every node.
    std::vector<uint32_t> feature_;
    std::vector<double> threshold_;
    std::vector<uint64_t> l_mass_, r_mass_;
    size_t counter_ = 0;
    bool first_window_ = true;
};

}  // namespace anomaly_detection

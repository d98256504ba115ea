// IsolationForest: the configuration and fit (growing the trees).
#include "anomaly_detection/forest/isolation_forest.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <type_traits>

#include "anomaly_detection/forest/parallel.hpp"
#include "anomaly_detection/forest/random.hpp"
#include "anomaly_detection/io/bytes.hpp"
#include "anomaly_detection/stats/quantile.hpp"
#include "isolation_forest_detail.hpp"

namespace anomaly_detection {

using namespace iforest;

namespace {

size_t resolve_max_samples(size_t requested, size_t n_rows) {
    return requested == 0 ? std::min<size_t>(256, n_rows) : requested;
}

// Scratch space reused by one worker across the trees it grows.
struct GrowScratch {
    std::vector<uint32_t> rows, features, candidates, order;
    std::vector<double> columns;  // the tree's rows, feature-major: columns[j * m + i]
    std::vector<uint8_t> seen, gathered;
};

struct Tree {
    std::vector<IsolationNode> nodes;
    std::vector<double> values;
};

// Draws the rows of one tree: m distinct rows, or for bootstrap m draws with
// replacement reduced to the distinct rows (scikit-learn passes bootstrap
// counts as sample weights, so a tree sees each drawn row once).
void draw_rows(Xoshiro256& rng, size_t n, size_t m, bool bootstrap, GrowScratch& s) {
    s.rows.clear();
    if (s.seen.size() != n) s.seen.assign(n, 0);
    if (bootstrap) {
        for (size_t i = 0; i < m; ++i) {
            const auto r = static_cast<uint32_t>(rng.below(n));
            if (!s.seen[r]) {
                s.seen[r] = 1;
                s.rows.push_back(r);
            }
        }
    } else if (m * 2 <= n) {
        // Rejection: at most half the rows are taken, so a draw succeeds with p >= 1/2.
        while (s.rows.size() < m) {
            const auto r = static_cast<uint32_t>(rng.below(n));
            if (!s.seen[r]) {
                s.seen[r] = 1;
                s.rows.push_back(r);
            }
        }
    } else {
        s.order.resize(n);
        std::iota(s.order.begin(), s.order.end(), 0U);
        for (size_t i = 0; i < m; ++i) std::swap(s.order[i], s.order[i + rng.below(n - i)]);
        s.rows.assign(s.order.begin(), s.order.begin() + static_cast<std::ptrdiff_t>(m));
        return;
    }
    for (const auto r : s.rows) s.seen[r] = 0;  // clean for the next tree, in O(m) rather than O(n)
}

// Grows one tree on X, reading only its max_samples rows (narrow C rows gathered feature-major,
// as doubles; otherwise read in place).
template <typename T>
Tree grow_tree(const StridedRows<T>& X, const IsolationForestConfig& cfg, size_t max_samples, size_t n_features,
               size_t max_depth, size_t tree_index, GrowScratch& s) {
    Xoshiro256 rng(cfg.seed, tree_index);
    const size_t d = X.cols;
    // Features of this tree, drawn without replacement (partial Fisher-Yates).
    s.features.resize(d);
    std::iota(s.features.begin(), s.features.end(), 0U);
    for (size_t j = 0; j < n_features && n_features < d; ++j)
        std::swap(s.features[j], s.features[j + rng.below(d - j)]);
    s.features.resize(n_features);

    draw_rows(rng, X.rows, max_samples, cfg.bootstrap, s);
    const size_t m = s.rows.size();
    // Narrow C-ordered rows are gathered whole, row by row (each row's values share a cache line
    // or two). Otherwise a tree with more features than levels reads each node's own rows of the
    // feature it draws in place: a tree of 256 rows splits on up to 255 features, in Fortran order
    // each value of a row lies in another cache line, and a node at depth k holds ~m / 2^k rows
    // (~m x depth values per tree instead of m per drawn feature). With fewer features than
    // levels, each feature's column of the tree's rows is gathered when first drawn (fewer reads).
    const bool lazy = X.col_stride != 1 || n_features > kEagerFeatures;
    const bool in_place = lazy && n_features > max_depth;
    s.gathered.assign(n_features, lazy && !in_place ? 0 : 1);
    if (!in_place) s.columns.resize(m * n_features);
    const auto gather = [&](size_t j) {
        const T* column = X.data + static_cast<std::ptrdiff_t>(s.features[j]) * X.col_stride;
        double* out = s.columns.data() + j * m;
        for (size_t i = 0; i < m; ++i)
            out[i] = static_cast<double>(column[static_cast<std::ptrdiff_t>(s.rows[i]) * X.row_stride]);
        s.gathered[j] = 1;
    };
    if (!lazy) {
        for (size_t i = 0; i < m; ++i) {
            const T* row = X.data + static_cast<std::ptrdiff_t>(s.rows[i]) * X.row_stride;
            for (size_t j = 0; j < n_features; ++j) s.columns[j * m + i] = static_cast<double>(row[s.features[j]]);
        }
    }
    // s.order now holds row positions 0..m-1, partitioned in place node by node.
    s.order.resize(m);
    std::iota(s.order.begin(), s.order.end(), 0U);
    s.candidates.resize(n_features);

    Tree tree;
    tree.nodes.reserve(2 * m);
    tree.values.reserve(2 * m);
    tree.nodes.push_back({kInf, 0, 0});
    tree.values.push_back(0.0);
    struct Pending {
        uint32_t node, lo, hi, depth;
    };
    std::vector<Pending> stack{{0, 0, static_cast<uint32_t>(m), 0}};
    while (!stack.empty()) {
        const Pending p = stack.back();
        stack.pop_back();
        const size_t count = p.hi - p.lo;
        bool split = false;
        if (count >= 2 && p.depth < max_depth) {
            // Draw features until one is not constant in the node; a constant one
            // leaves the candidates, so the choice is uniform among the others.
            std::iota(s.candidates.begin(), s.candidates.end(), 0U);
            size_t n_candidates = n_features;
            while (n_candidates > 0 && !split) {
                const size_t pick = rng.below(n_candidates);
                const uint32_t j = s.candidates[pick];
                // In place: only this node's rows of the feature are read (see above).
                if (!s.gathered[j]) gather(j);
                const T* column = X.data + static_cast<std::ptrdiff_t>(s.features[j]) * X.col_stride;
                const double* col = in_place ? nullptr : s.columns.data() + j * m;
                const auto value = [&](uint32_t i) {
                    return in_place ? static_cast<double>(column[static_cast<std::ptrdiff_t>(s.rows[i]) * X.row_stride])
                                    : col[i];
                };
                double lo = kInf, hi = -kInf;
                for (uint32_t i = p.lo; i < p.hi; ++i) {
                    const double v = value(s.order[i]);
                    lo = std::min(lo, v);
                    hi = std::max(hi, v);
                }
                if (hi <= lo + kFeatureThreshold) {
                    s.candidates[pick] = s.candidates[--n_candidates];
                    continue;
                }
                const double u = rng.uniform01();
                double threshold = lo + (hi - lo) * u;
                // hi - lo overflows only for values beyond +-8.9e307; split there too.
                if (!std::isfinite(threshold)) threshold = std::min(lo * (1.0 - u) + hi * u, hi);
                if (threshold == hi) threshold = lo;
                auto mid = static_cast<uint32_t>(std::partition(s.order.begin() + p.lo, s.order.begin() + p.hi,
                                                                [&](uint32_t i) { return value(i) <= threshold; }) -
                                                 s.order.begin());
                const auto left = static_cast<uint32_t>(tree.nodes.size());
                tree.nodes[p.node] = {threshold, s.features[j], left};
                tree.nodes.push_back({kInf, 0, left});
                tree.nodes.push_back({kInf, 0, left + 1});
                tree.values.push_back(0.0);
                tree.values.push_back(0.0);
                stack.push_back({left + 1, mid, p.hi, p.depth + 1});
                stack.push_back({left, p.lo, mid, p.depth + 1});
                split = true;
            }
        }
        if (!split) {
            tree.nodes[p.node] = {kInf, 0, p.node};
            tree.values[p.node] = p.depth + average_path_length(static_cast<double>(count));
        }
    }
    return tree;
}

// numpy.percentile's default ("linear") on a copy of the values.
double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return linear_quantile(v.size(), q / 100.0, [&v](size_t k) { return v[k]; });
}

}  // namespace

double average_path_length(double n) {
    if (n <= 1.0) return 0.0;
    if (n == 2.0) return 1.0;
    return 2.0 * (std::log(n - 1.0) + kEulerGamma) - 2.0 * (n - 1.0) / n;
}

void IsolationForestConfig::validate() const {
    if (n_estimators == 0) throw std::invalid_argument("n_estimators: expected >= 1, got 0");
    if (n_estimators > 1000000)
        throw std::invalid_argument("n_estimators: expected at most 1000000, got " + std::to_string(n_estimators));
    if (!(contamination >= 0.0 && contamination <= 0.5))
        throw std::invalid_argument("contamination: expected 'auto' or a value in (0, 0.5], got " +
                                    std::to_string(contamination));
    if (max_samples > std::numeric_limits<uint32_t>::max() / 2)
        throw std::invalid_argument("max_samples: expected at most 2^31, got " + std::to_string(max_samples));
}

IsolationForest::IsolationForest(IsolationForestConfig config) : config_(config) { config_.validate(); }

void IsolationForest::require_fitted() const {
    if (!is_fitted()) throw std::runtime_error("IsolationForest is not fitted: call fit first");
}

double IsolationForest::offset() const {
    require_fitted();
    return offset_;
}
size_t IsolationForest::max_samples_used() const {
    require_fitted();
    return max_samples_;
}
size_t IsolationForest::n_features_in() const {
    require_fitted();
    return n_features_in_;
}

void IsolationForest::check_input(const MatrixRef& X, const char* what) const {
    if (X.rows() == 0 || X.cols() == 0)
        throw std::invalid_argument(std::string(what) + ": expected a non-empty 2-D array, got shape (" +
                                    std::to_string(X.rows()) + ", " + std::to_string(X.cols()) + ")");
    if (!X.allFinite()) throw std::invalid_argument(std::string(what) + ": expected finite values, got NaN or inf");
}

void IsolationForest::fit(Eigen::Ref<const RowMatrixXd> X, unsigned n_threads) {
    fit(StridedRows<double>{X.data(), static_cast<size_t>(X.rows()), static_cast<size_t>(X.cols()), X.outerStride(), 1},
        n_threads);
}

template <typename T>
void IsolationForest::fit(const StridedRows<T>& X, unsigned n_threads) {
    static_assert(std::is_same_v<T, double> || std::is_same_v<T, float>, "fit reads float or double rows");
    if (X.rows == 0 || X.cols == 0 || X.data == nullptr)
        throw std::invalid_argument("X: expected a non-empty 2-D array, got shape (" + std::to_string(X.rows) + ", " +
                                    std::to_string(X.cols) + ")");
    // The one pass over all of X (scikit-learn's validation makes one too, and a float32 copy).
    check_finite(X.data, 0, X.rows, X.cols, X.row_stride, X.col_stride);
    const size_t n = X.rows, d = X.cols;
    if (n > std::numeric_limits<uint32_t>::max())
        throw std::invalid_argument("X: expected at most 2^32 - 1 rows, got " + std::to_string(n));
    const size_t m = resolve_max_samples(config_.max_samples, n);
    if (m > n)
        throw std::invalid_argument("max_samples: expected at most n_samples (" + std::to_string(n) + "), got " +
                                    std::to_string(m));
    const size_t k = config_.max_features == 0 ? d : config_.max_features;
    if (k > d)
        throw std::invalid_argument("max_features: expected at most n_features (" + std::to_string(d) + "), got " +
                                    std::to_string(k));
    const auto max_depth = static_cast<size_t>(std::ceil(std::log2(static_cast<double>(std::max<size_t>(m, 2)))));

    const size_t n_trees = config_.n_estimators;
    n_threads = resolve_threads(n_threads);
    std::vector<Tree> trees(n_trees);
    std::vector<GrowScratch> scratch(worker_count(n_trees, n_threads));
    parallel_for(n_trees, n_threads,
                 [&](size_t t, unsigned w) { trees[t] = grow_tree(X, config_, m, k, max_depth, t, scratch[w]); });

    // Build into a fresh model and swap it in, so that a failure leaves *this as it was.
    IsolationForest fitted(config_);
    fitted.max_samples_ = m;
    fitted.n_features_in_ = d;
    size_t total = 0;
    for (const auto& tree : trees) total += tree.nodes.size();
    fitted.nodes_.reserve(total);
    fitted.leaf_value_.reserve(total);
    for (const auto& tree : trees) {
        fitted.tree_offset_.push_back(static_cast<uint32_t>(fitted.nodes_.size()));
        fitted.nodes_.insert(fitted.nodes_.end(), tree.nodes.begin(), tree.nodes.end());
        fitted.leaf_value_.insert(fitted.leaf_value_.end(), tree.values.begin(), tree.values.end());
    }
    fitted.tree_offset_.push_back(static_cast<uint32_t>(fitted.nodes_.size()));
    fitted.compute_tree_depths();
    fitted.build_heap_layout();
    if (config_.contamination > 0.0) {
        const Eigen::VectorXd scores = fitted.score_samples(X, n_threads);  // the training rows in place
        fitted.offset_ = percentile(std::vector<double>(scores.data(), scores.data() + scores.size()),
                                    100.0 * config_.contamination);
    } else {
        fitted.offset_ = -0.5;
    }
    *this = std::move(fitted);
}

template void IsolationForest::fit(const StridedRows<double>&, unsigned);
template void IsolationForest::fit(const StridedRows<float>&, unsigned);

void IsolationForest::compute_tree_depths() {
    // Children come after their parent, so one forward pass finds every depth.
    tree_depth_.assign(n_trees(), 0);
    std::vector<uint32_t> depth;
    for (size_t t = 0; t < n_trees(); ++t) {
        const IsolationNode* nodes = nodes_.data() + tree_offset_[t];
        const uint32_t count = tree_offset_[t + 1] - tree_offset_[t];
        depth.assign(count, 0);
        uint32_t deepest = 0;
        for (uint32_t i = 0; i < count; ++i) {
            if (nodes[i].left == i) {
                deepest = std::max(deepest, depth[i]);
            } else {
                depth[nodes[i].left] = depth[nodes[i].left + 1] = depth[i] + 1;
            }
        }
        if (deepest > 255) io::corruption("tree depth: expected at most 255, got " + std::to_string(deepest));
        tree_depth_[t] = static_cast<uint8_t>(deepest);
    }
}

}  // namespace anomaly_detection

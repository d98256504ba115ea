// Isolation Forest (Liu, Ting and Zhou, 2008) with scikit-learn's semantics:
// each tree grows on max_samples rows drawn without replacement (or with, for
// bootstrap), on max_features features drawn without replacement; a node
// splits on a feature drawn uniformly among those not constant in the node, at
// a threshold uniform in [min, max) of that feature over the node's rows (rows
// <= threshold go left), until one distinct row is left or the depth reaches
// ceil(log2(max_samples)). A leaf holding n rows at depth d scores d + c(n).
// score_samples is -2^(-E[h] / c(max_samples)), the negated paper score, as in
// scikit-learn (higher is more normal).
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace anomaly_detection {

using RowMatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// Rows to score, with any strides (a C-ordered, Fortran-ordered or sliced array is read in
/// place); a RowMatrixXd or an Eigen::Ref<const RowMatrixXd> converts without a copy.
using MatrixRef = Eigen::Ref<const RowMatrixXd, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;

/// Rows read in place: element (i, j) at data[i * row_stride + j * col_stride] (strides in
/// elements, any order: C, Fortran, a slice). T: float or double (fit and scoring; checked
/// finite while read), or for scoring int8_t, uint8_t, int16_t, uint16_t or int32_t (exact as
/// doubles). Every value is compared as the double it converts to exactly, so the trees and
/// scores are those of the float64 array of the same values.
template <typename T>
struct StridedRows {
    const T* data = nullptr;
    size_t rows = 0, cols = 0;
    std::ptrdiff_t row_stride = 0, col_stride = 0;
};
template <typename T>
using IntegerRows = StridedRows<T>;

/// Parameters of an IsolationForest; counts are resolved (the Python facade
/// turns scikit-learn's "auto" and fractions into these).
struct IsolationForestConfig {
    size_t n_estimators = 100;  ///< number of trees, >= 1
    size_t max_samples = 0;     ///< rows per tree; 0 means "auto": min(256, n_samples)
    size_t max_features = 0;    ///< features per tree; 0 means all of them
    double contamination = 0;   ///< 0 means "auto" (offset -0.5), else the share of outliers, in (0, 0.5]
    bool bootstrap = false;     ///< draw rows with replacement
    uint64_t seed = 0;          ///< every random draw derives from it

    /// Throws std::invalid_argument naming the first invalid field.
    void validate() const;
};

/// c(n) of the paper as scikit-learn computes it (`_average_path_length`):
/// the average path length of an unsuccessful search in a binary search tree
/// of n items, 0 for n <= 1 and 1 for n == 2.
double average_path_length(double n);

/// One node of a fitted tree; 16 bytes, four to a cache line. The children of a
/// split are adjacent (right = left + 1). A leaf points at itself with an
/// infinite threshold, so a row walks a fixed number of steps without a branch.
struct IsolationNode {
    double threshold;
    uint32_t feature;
    uint32_t left;
};

class IsolationForest {
   public:
    /// Throws std::invalid_argument for an invalid config.
    explicit IsolationForest(IsolationForestConfig config = {});

    /// Grows the trees on X (rows are observations) and sets the offset.
    /// n_threads 0 means one per hardware thread; the model does not depend on it.
    /// Throws std::invalid_argument for an empty or non-finite X, or when
    /// max_samples / max_features exceed its rows / columns; leaves the model
    /// unchanged when it throws.
    void fit(Eigen::Ref<const RowMatrixXd> X, unsigned n_threads = 1);
    /// The same on float or double rows in place: one pass checks them finite (as scikit-learn's
    /// validation does), then only each tree's max_samples rows are read (no copy of X).
    template <typename T>
    void fit(const StridedRows<T>& X, unsigned n_threads = 1);

    /// Writes score_samples of each row of X to out[0 .. X.rows()).
    /// Throws std::runtime_error before fit, std::invalid_argument for a wrong
    /// number of columns or non-finite values.
    void score_samples(MatrixRef X, double* out, unsigned n_threads = 1) const;
    Eigen::VectorXd score_samples(MatrixRef X, unsigned n_threads = 1) const;

    /// score_samples - offset: negative for outliers.
    Eigen::VectorXd decision_function(MatrixRef X, unsigned n_threads = 1) const;

    /// Mean path length E[h(x)] over the trees (the paper's quantity).
    Eigen::VectorXd mean_path_length(MatrixRef X, unsigned n_threads = 1) const;

    /// The same three on rows read in place (float, double or integers): the scores of the same
    /// values as doubles, bit for bit, without converting them first. Float rows are checked
    /// finite block by block as they are scored (one pass over X).
    template <typename T>
    Eigen::VectorXd score_samples(const StridedRows<T>& X, unsigned n_threads = 1) const;
    template <typename T>
    Eigen::VectorXd decision_function(const StridedRows<T>& X, unsigned n_threads = 1) const;
    template <typename T>
    Eigen::VectorXd mean_path_length(const StridedRows<T>& X, unsigned n_threads = 1) const;

    /// The same quantity by the plain node-by-node walk, one row and tree at a time:
    /// the definition the fast layouts must reproduce bit for bit (used by tests).
    Eigen::VectorXd mean_path_length_reference(MatrixRef X) const;

    /// Nodes of every tree, concatenated (indices are tree-local); for inspection.
    const std::vector<IsolationNode>& nodes() const { return nodes_; }
    /// Which scoring walk applies: "rank", "heap" or "node" (the fallbacks for very
    /// wide data, many split values per feature, or very deep trees).
    /// On x86-64 CPUs with AVX2 the rank layout compares the top levels of each tree at
    /// once: "rank-avx2-8bit" (levels 0-3 on 8-bit top ranks: up to 64 features, at most
    /// 255 distinct top-slot splits per feature) or else "rank-avx2-16bit" (levels 0-4 on
    /// 16-bit ranks: up to 16 features, under 32,767 split values per feature).
    const char* scoring_layout() const;
    /// Whether this CPU (and build) can take the AVX2 walk.
    static bool vector_walk_supported();
    /// Allows (default) or forbids this forest the AVX2 walk (the rank layout's top levels, and
    /// levels 0-2 of the heap walk on Fortran-ordered float64 rows); returns the previous
    /// setting. For tests and benchmarks: both walks give the same scores bit for bit.
    bool set_vector_walk(bool enabled) { return std::exchange(vector_walk_, enabled); }

    bool is_fitted() const { return !tree_offset_.empty(); }
    const IsolationForestConfig& config() const { return config_; }
    double offset() const;            ///< offset_ of scikit-learn
    size_t max_samples_used() const;  ///< max_samples_ of scikit-learn
    size_t n_features_in() const;     ///< columns seen by fit
    size_t n_trees() const { return is_fitted() ? tree_offset_.size() - 1 : 0; }
    size_t n_nodes() const { return nodes_.size(); }

    /// Versioned, checksummed bytes of the config and the fitted trees.
    std::string to_bytes() const;
    /// Throws std::invalid_argument ("possible corruption: ...") on bad bytes.
    static IsolationForest from_bytes(std::string_view bytes);

   private:
    bool vector_walk_ = true;  // whether the AVX2 walk may be taken (set_vector_walk)
    void require_fitted() const;
    void check_input(const MatrixRef& X, const char* what) const;
    template <typename T>
    void rank_block(const T* x0, std::ptrdiff_t row_stride, std::ptrdiff_t col_stride, size_t count,
                    uint32_t* ranks) const;
    template <typename T>
    void rank_path_sum(const T* X, size_t n, std::ptrdiff_t row_stride, std::ptrdiff_t col_stride, double* out,
                       unsigned n_threads) const;
    bool uses_vector_walk() const;
    template <typename T>
    void walk_path_sum(const StridedRows<T>& X, double* out, unsigned n_threads) const;
    template <typename T>
    void path_length_sum(const StridedRows<T>& X, double* out, unsigned n_threads) const;
    void to_scores(double* sums, Eigen::Index n) const;
    void compute_tree_depths();
    void build_heap_layout();
    void build_rank_layout();
    void build_top8();

    IsolationForestConfig config_;
    size_t max_samples_ = 0;
    size_t n_features_in_ = 0;
    double offset_ = -0.5;
    std::vector<IsolationNode> nodes_;   // every tree, concatenated; indices are tree-local
    std::vector<double> leaf_value_;     // depth + c(n) at leaves, 0 at splits; parallel to nodes_
    std::vector<uint32_t> tree_offset_;  // first node of each tree, then the total (n_trees + 1)
    std::vector<uint8_t> tree_depth_;    // steps that take every row of a tree to its leaf
    // Scoring copy of the trees, derived from the above (never serialised): each tree
    // padded to a complete tree of its depth D in heap order (root 1, children of h at
    // 2h and 2h + 1), so a step is h = 2h + (x > threshold) with no child index to load.
    // A leaf above depth D continues through "always left" splits (threshold +inf).
    // Empty when the padding would cost too much memory (very deep trees).
    std::vector<double> heap_threshold_;  // [heap_offset_[t] + h], h in 1 .. 2^D - 1
    std::vector<uint32_t> heap_feature_;  // feature * rows per scoring block, same indexing
    std::vector<double> heap_leaf_;       // [heap_offset_[t] + h - 2^D], h in 2^D .. 2^(D+1) - 1
    std::vector<size_t> heap_offset_;     // first slot of each tree (n_trees + 1)
    // Rank layout of the same heap slots (preferred; empty when it does not apply). The
    // split values of feature f, sorted and unique, are T_f[0 .. K_f); for any double x,
    // x > T_f[k] exactly when rank_f(x) = #{k' : T_f[k'] < x} > k. A slot packs
    // (k << 16) | feature * rows per block into 32 bits and a block holds rank << 16, so a
    // step is an unsigned compare of two 32-bit loads: the same path, hence the same score.
    struct RankFeature {
        double lo = 0, scale = 0;  // bucket of x: floor((x - lo) * scale), clamped to [0, buckets)
        size_t buckets = 1;        // rank_start_ entries of this feature
        size_t window = 0;         // most values in one bucket (0 when the feature splits nothing)
        size_t values = 0;         // offset of T_f in rank_value_ (followed by `window` +inf)
        size_t starts = 0;         // offset of its buckets in rank_start_
        uint32_t n_values = 0;     // K_f
        int64_t int_lo = 0;        // integers int_lo .. int_lo + int_count - 1 have their rank
        uint64_t int_count = 0;    //   in rank_int_[ints ..] (0: no table)
        size_t ints = 0;
    };
    std::vector<uint32_t> rank_node_;   // same indexing as heap_threshold_
    std::vector<double> rank_value_;    // T_f of every feature, each padded with +inf
    std::vector<uint16_t> rank_start_;  // per feature and bucket: #{T_f in lower buckets}
    std::vector<uint16_t> rank_int_;    // per feature with a table: rank of each integer
    std::vector<RankFeature> rank_feature_;
    std::vector<uint8_t> top8_map_;  // per feature: rank -> #{top-slot k below it}
    std::vector<size_t> top8_map_offset_;
    std::vector<uint8_t> top8_slots_;  // per tree: 16 k' ^ 0x80, 16 pshufb bytes per chunk (slots 0-15)
    size_t top8_chunks_ = 0;           // 16-feature chunks of a row's top ranks
    bool rank_top_ = false;            // at most 16 features, every K_f < 2^15 - 1: the 16-bit AVX2 top levels apply
};

}  // namespace anomaly_detection

// Merging t-digest (Dunning & Ertl) for quantiles of a stream.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace anomaly_detection {

/// Quantiles, ranks and trimmed means in O(compression) memory, most accurate in the tails.
/// Points are buffered and folded into centroids with the k1 (arcsine) scale function.
class TDigest {
   public:
    struct Centroid {
        double mean;
        double weight;
    };

    explicit TDigest(double compression = 100.0);

    double compression() const { return compression_; }
    /// Total weight added.
    double total_weight() const { return total_weight_ + buffer_weight_; }
    bool empty() const { return total_weight() == 0.0; }
    double min() const;
    double max() const;
    size_t memory_bytes() const;
    /// Centroids after folding in the buffer.
    std::vector<Centroid> centroids() const;

    /// Adds values with weights (null means weight 1). Values must be finite, weights
    /// finite and positive; a bad entry throws std::invalid_argument and adds nothing.
    void add(const double* values, const double* weights, size_t n);
    /// Value below which a fraction q of the weight lies (q in [0, 1]); NaN when empty.
    double quantile(double q) const;
    /// Fraction of the weight below x (points equal to x count half); NaN when empty.
    double cdf(double x) const;
    /// Mean of the values between quantiles lo and hi (0 <= lo < hi <= 1); NaN when empty.
    double trimmed_mean(double lo, double hi) const;
    /// Folds other digests in; refuses another compression. When the total weight would exceed
    /// the largest double: invalid_argument and nothing changes, or with scale_to_fit every weight
    /// (this digest's and the others') is first halved as often as needed (at least the smallest
    /// normal double): quantiles, cdf and trimmed means stay those of the true weights, and
    /// total_weight() is the true total halved as often.
    void merge(const std::vector<const TDigest*>& others, bool scale_to_fit = false);
    void clear();

    std::string to_bytes() const;
    static TDigest from_bytes(std::string_view blob);

   private:
    void flush() const;
    void add_bulk(const double* values, size_t n);
    void add_sorted_chunk(const double* values, size_t m);
    /// False (and nothing added) when a value is NaN or infinite.
    bool add_bucketed_chunk(const double* values, size_t m);
    /// Upper quantile a centroid that starts at q0 may reach (the k1 scale's unit step).
    double q_limit(double q0) const;
    void fold(std::vector<Centroid>& points, double total) const;
    void fold_sorted(std::vector<Centroid>& points, double total) const;

    double compression_;
    size_t buffer_capacity_;
    // Centroids and the unmerged buffer are folded lazily, also from const readers.
    mutable std::vector<Centroid> centroids_;
    mutable std::vector<Centroid> buffer_;
    mutable double total_weight_ = 0.0;
    mutable double buffer_weight_ = 0.0;
    double min_;
    double max_;
};

}  // namespace anomaly_detection

// A shape-novelty detector: fuzzy adaptive resonance theory (Carpenter, Grossberg &
// Rosen, Neural Networks 4, 1991) over a downsampled sliding window, after ARTime
// (the NAB leader), kept causal and of fixed size for the ensemble.
//
// Every kMean points, their mean, scaled to [0, 1] by a fixed range (set once: the
// ensemble gives the 1%-99% range of its first 300 points widened by half of it on each
// side; clipped), enters a window of the last kWidth means. The window, complement-coded
// (I = [a, 1 - a], |I| = kWidth), is matched against at most kCategories categories:
// choice |I ^ w| / (0.001 + |w|), match |I ^ w| / |I| (^ the element-wise minimum). The
// category of highest choice among those matching at least the vigilance learns the
// input (w <- rate (I ^ w) + (1 - rate) w); with none, a new category is made while
// there is room. The raw score is 1 - the best match (0 while there is one category):
// a window unlike every shape learned. The score holds between windows.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "anomaly_detection/io/bytes.hpp"

namespace anomaly_detection {

class FuzzyArt {
   public:
    static constexpr size_t kMean = 4;         // points per mean
    static constexpr size_t kWidth = 8;        // means per window
    static constexpr size_t kCategories = 16;  // at most this many categories
    static constexpr double kVigilance = 0.9;  // a category learns an input matching at least this
    static constexpr double kRate = 0.1;       // its learning rate
    static constexpr double kChoiceAlpha = 0.001;

    /// The range [lo, lo + span] mapped onto [0, 1]; span > 0.
    void set_range(double lo, double span);
    bool has_range() const { return span_ > 0; }
    /// Takes one value; returns the raw score in [0, 1] (that of the last complete window).
    double update(double value);
    /// A score exists (a window has been matched).
    bool scored() const { return scored_; }
    size_t categories() const { return used_; }

    void serialize(io::ByteWriter& w) const;
    void deserialize(io::ByteReader& r);

   private:
    void match_window();

    double lo_ = 0.0, span_ = 0.0;
    double acc_ = 0.0;
    uint64_t acc_n_ = 0;                   // points in acc_ (< kMean)
    uint64_t filled_ = 0;                  // means in the window (at most kWidth)
    std::array<double, kWidth> window_{};  // the last means, oldest first
    uint64_t used_ = 0;
    std::array<std::array<double, 2 * kWidth>, kCategories> w_{};
    double last_ = 0.0;
    bool scored_ = false;
};

}  // namespace anomaly_detection

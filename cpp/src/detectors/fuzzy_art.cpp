#include "anomaly_detection/detectors/fuzzy_art.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace anomaly_detection {

void FuzzyArt::set_range(double lo, double span) {
    lo_ = lo;
    span_ = span;
}

double FuzzyArt::update(double value) {
    acc_ += value;
    // a sum beyond the largest double stays the largest: its mean saturates the window the same
    if (!std::isfinite(acc_)) acc_ = std::copysign(std::numeric_limits<double>::max(), acc_);
    if (++acc_n_ < kMean) return last_;
    const double mean = acc_ / static_cast<double>(kMean);
    acc_ = 0.0;
    acc_n_ = 0;
    std::copy(window_.begin() + 1, window_.end(), window_.begin());
    window_[kWidth - 1] = std::clamp((mean - lo_) / span_, 0.0, 1.0);
    if (filled_ < kWidth) ++filled_;
    if (filled_ == kWidth) match_window();
    return last_;
}

void FuzzyArt::match_window() {
    std::array<double, 2 * kWidth> in;
    for (size_t i = 0; i < kWidth; ++i) {
        in[i] = window_[i];
        in[kWidth + i] = 1.0 - window_[i];
    }
    double best_match = 0.0, best_choice = -1.0;
    size_t best = kCategories;
    for (size_t j = 0; j < used_; ++j) {
        double m = 0.0, norm = 0.0;
        for (size_t i = 0; i < 2 * kWidth; ++i) {
            m += std::min(in[i], w_[j][i]);
            norm += w_[j][i];
        }
        const double match = m / static_cast<double>(kWidth);
        best_match = std::max(best_match, match);
        const double choice = m / (kChoiceAlpha + norm);
        if (match >= kVigilance && choice > best_choice) {
            best_choice = choice;
            best = j;
        }
    }
    if (best < kCategories) {
        for (size_t i = 0; i < 2 * kWidth; ++i)
            w_[best][i] = kRate * std::min(in[i], w_[best][i]) + (1.0 - kRate) * w_[best][i];
    } else if (used_ < kCategories) {
        w_[used_++] = in;
    }
    last_ = used_ > 1 ? 1.0 - best_match : 0.0;
    scored_ = true;
}

void FuzzyArt::serialize(io::ByteWriter& w) const {
    w.put<double>(lo_);
    w.put<double>(span_);
    w.put<double>(acc_);
    w.put<uint64_t>(acc_n_);
    w.put<uint64_t>(filled_);
    w.put_array(window_.data() + (kWidth - filled_), filled_);
    w.put<uint64_t>(used_);
    for (size_t j = 0; j < used_; ++j) w.put_array(w_[j].data(), 2 * kWidth);
    w.put<double>(last_);
    w.put<uint8_t>(scored_ ? 1 : 0);
}

void FuzzyArt::deserialize(io::ByteReader& r) {
    auto finite = [&r](const char* what) {
        const double x = r.get<double>(what);
        if (!std::isfinite(x)) io::corruption(std::string(what) + ": expected a finite value");
        return x;
    };
    auto unit = [](double x, const char* what) {
        if (!(x >= 0.0 && x <= 1.0)) io::corruption(std::string(what) + ": expected a value in [0, 1]");
    };
    *this = FuzzyArt();
    lo_ = finite("ensemble shape range");
    span_ = finite("ensemble shape range");
    if (span_ < 0) io::corruption("ensemble shape range: expected a span >= 0");
    acc_ = finite("ensemble shape sum");
    acc_n_ = r.get<uint64_t>("ensemble shape count");
    filled_ = r.get<uint64_t>("ensemble shape window");
    if (acc_n_ >= kMean || filled_ > kWidth || (span_ == 0 && (acc_n_ != 0 || filled_ != 0)))
        io::corruption("ensemble shape window: inconsistent counts");
    for (size_t i = kWidth - filled_; i < kWidth; ++i) {
        window_[i] = finite("ensemble shape window");
        unit(window_[i], "ensemble shape window");
    }
    used_ = r.get<uint64_t>("ensemble shape categories");
    if (used_ > kCategories) io::corruption("ensemble shape categories: expected at most 16");
    for (size_t j = 0; j < used_; ++j)
        for (double& x : w_[j]) {
            x = finite("ensemble shape category");
            unit(x, "ensemble shape category");
        }
    last_ = finite("ensemble shape score");
    unit(last_, "ensemble shape score");
    const auto scored = r.get<uint8_t>("ensemble shape flag");
    if (scored > 1 || (scored == 1 && used_ == 0)) io::corruption("ensemble shape flag: inconsistent");
    scored_ = scored == 1;
}

}  // namespace anomaly_detection

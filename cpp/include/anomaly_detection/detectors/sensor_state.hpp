// The state of one sensor: its window and the running statistics every method
// needs, and the scoring of a new point against them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "anomaly_detection/detectors/ensemble.hpp"
#include "anomaly_detection/detectors/method.hpp"
#include "anomaly_detection/io/bytes.hpp"
#include "anomaly_detection/stats/ewma.hpp"
#include "anomaly_detection/stats/order_statistics.hpp"
#include "anomaly_detection/stats/ring_buffer.hpp"
#include "anomaly_detection/stats/rolling_moments.hpp"

namespace anomaly_detection {

/// The verdict on one point.
struct Detection {
    double value = 0.0;
    double timestamp = 0.0;
    /// In [0, 1], grows with how unusual the point is.
    double score = 0.0;
    /// The score the flag is raised on: for the ensemble, the score with its alarm
    /// logic applied (one alarm per incident); the score itself for the other methods.
    double alert_score = 0.0;
    /// The method's raw statistic (z, modified z, IQR distance, ...).
    double deviation = 0.0;
    /// What the method expected (mean, median, ...).
    double expected = 0.0;
    bool is_anomaly = false;
    /// Number of past points the point was scored against.
    uint64_t window_count = 0;
};

/// Summary of a sensor's state.
struct SensorSummary {
    uint64_t points_seen = 0;
    uint64_t anomalies = 0;
    uint64_t window_count = 0;
    double mean = 0.0;
    double stddev = 0.0;
    double min = 0.0;
    double max = 0.0;
    double last_timestamp = 0.0;
};

/// Where a batch of detections is written (n elements each).
struct BatchOutput {
    bool* is_anomaly;
    double* scores;
    double* deviations;
    double* expected;
    uint64_t* window_counts;
    double* alert_scores = nullptr;  ///< optional
};

class SensorState {
   public:
    explicit SensorState(const DetectorConfig& config);

    /// Rebuilds a sensor's state from its window alone, as a shared store keeps
    /// it: the last `window_size` of the n points enter the window in order; EWMA
    /// and CUSUM statistics and the ensemble are replayed over them (so they equal a state that
    /// started at the window's oldest point). `seen` is the sensor's point count.
    static SensorState from_window(const DetectorConfig& config, const double* values, const double* timestamps,
                                   size_t n, uint64_t seen);

    /// As from_window, but the ensemble continues from `checkpoint`, its state
    /// after the first `checkpoint_seen` points of the stream, by replaying only
    /// the last seen - checkpoint_seen window points. (A state rebuilt from a
    /// window has learned fewer points than its position in the stream:
    /// checkpoint->seen() <= checkpoint_seen.) Since EnsembleState::update is
    /// deterministic, that is exactly the state of one process that saw every
    /// point. A checkpoint that is absent, newer than `seen` or older than the
    /// window reaches is not used: the ensemble is then replayed over the whole
    /// window. `exact` (if given) says whether the result equals the state of a
    /// process that saw every point. Other methods ignore the checkpoint.
    static SensorState from_checkpoint(const DetectorConfig& config, const double* values, const double* timestamps,
                                       size_t n, uint64_t seen, std::optional<EnsembleState>&& checkpoint,
                                       uint64_t checkpoint_seen, bool* exact = nullptr);

    /// Moves the ensemble state out (empty for other methods); the sensor state
    /// must not score again after this.
    std::optional<EnsembleState> release_ensemble() { return std::move(ensemble_); }

    /// Scores `value` against the window, then (unless it is a flagged point
    /// and the config excludes those) adds it. `value` must be finite.
    Detection update(double value, double timestamp);

    /// Scores n points in order into `out` (n elements each): equal, element by
    /// element and in the state it leaves, to n calls of update. Values and
    /// timestamps must be finite: with `check_inputs`, the first entry that is not
    /// raises std::invalid_argument (as check_finite_batch) and the state is left as
    /// it was (the outputs are then undefined); without, the caller has checked them.
    /// (z-score, EWMA and CUSUM check each block as their kernel reaches it: no pass
    /// of its own over the batch.)
    void update_batch(const double* values, const double* timestamps, size_t n, const BatchOutput& out,
                      bool check_inputs = true);

    size_t window_count() const { return values_.size(); }
    uint64_t seen() const { return seen_; }
    /// The sensor's point count from which its points are past the warm-up: min_samples, and for
    /// the ensemble no earlier than its EnsembleState::live_from (in the sensor's points: an
    /// ensemble rebuilt from a window learned fewer); UINT64_MAX while its likelihoods are not live.
    uint64_t live_from() const;
    /// The window, oldest first.
    void window(std::vector<double>& values, std::vector<double>& timestamps) const;
    SensorSummary summary() const;

    void serialize(io::ByteWriter& w) const;
    /// Reads what serialize wrote for a registry with `config`, in registry format
    /// `version` (format 3 added the rolling moments' scale and the ensemble's level
    /// and context features, which start afresh from older blobs).
    static SensorState deserialize(io::ByteReader& r, const DetectorConfig& config, uint16_t version);

   private:
    /// Adds a point to the window and its statistics; when a glitch leaves the
    /// window, rebuilds what it touched (see on_collapse).
    void push(double value, double timestamp);
    /// As push, for rebuilding a saved or shared state: nothing is rebuilt (push
    /// itself adds that); returns what the rolling moments did.
    RollingMoments::Step push_window(double value, double timestamp);
    /// The window and its order statistics (MAD, IQR) take a point; the rolling
    /// moments do not (push_window, or the batches' advance_moments, move them).
    void push_values(double value, double timestamp);
    /// A value that dominated the window's spread left it (RollingMoments::Step::collapsed):
    /// the EWMA chart statistic is replayed over the window and the CUSUM sums restart, so
    /// that the glitch changes no verdict beyond the window that held it.
    template <typename Window>
    void on_collapse(const Window& window);
    /// update, except that (for the methods other than the ensemble) `score` and
    /// `alert_score` hold the argument of normal_score, for the caller to score many
    /// points in one vectorised pass (the flag does not depend on the score).
    Detection update_unscored(double value, double timestamp);
    template <bool Scored>
    Detection step(double value, double timestamp);
    /// The batch kernel of z-score, EWMA and CUSUM when every point enters the window.
    void update_batch_moments(const double* values, const double* timestamps, size_t n, const BatchOutput& out,
                              bool check_inputs);
    /// The moments and EWMA statistic of a batch that enters the window whole (what
    /// n pushes leave in moments_, ewma_stat_ and cusum_), without touching the rings.
    void advance_moments(const double* values, size_t n);
    void update_batch_iqr(const double* values, const double* timestamps, size_t n, const BatchOutput& out);
    void rebuild_derived();

    DetectorConfig config_;
    RingBuffer<double> values_;
    RingBuffer<double> timestamps_;
    RollingMoments moments_;
    std::optional<OrderStatistics> order_;
    double ewma_stat_ = 0.0;  // EWMA chart statistic
    bool ewma_started_ = false;
    Cusum cusum_;
    std::optional<EnsembleState> ensemble_;  // Method::ensemble only
    uint64_t seen_ = 0;
    uint64_t anomalies_ = 0;
};

/// Scores m points that follow a window given as arrays (the shared-store path:
/// the store returns the window as it was before the points were appended).
/// Equal to detect on a registry whose sensor holds that window.
void detect_after_window(const DetectorConfig& config, const double* window_values, const double* window_timestamps,
                         size_t n, uint64_t seen, const double* values, const double* timestamps, size_t m,
                         const BatchOutput& out);

/// As detect_after_window, but the ensemble continues from a checkpoint at
/// `checkpoint_seen` (see SensorState::from_checkpoint). On entry `ensemble`
/// holds the checkpoint (or nothing); on return it holds the ensemble's state
/// after the m points, at seen + m (nothing for other methods). Returns whether the scores are exact,
/// i.e. equal those of one process that saw every point. Inputs are validated
/// before `ensemble` is touched: on an exception it is unchanged.
bool detect_after_checkpoint(const DetectorConfig& config, const double* window_values, const double* window_timestamps,
                             size_t n, uint64_t seen, const double* values, const double* timestamps, size_t m,
                             std::optional<EnsembleState>& ensemble, uint64_t checkpoint_seen, const BatchOutput& out);

/// Throws std::invalid_argument naming the first of n values or timestamps that is
/// not finite ("values[i]: expected a finite number, got nan", prefixed by `what`).
void check_finite_batch(const double* values, const double* timestamps, size_t n, const std::string& what);

/// The score in [0, 1] for a standard-normal-like deviation: 1 minus its
/// two-sided tail probability, erf(|z| / sqrt 2).
double normal_score(double z);
/// out[i] = normal_score(factor * z[i]) for n points, equal to it element by
/// element (vectorised where the platform's vector math library is found).
void normal_scores(const double* z, double factor, double* out, size_t n);

}  // namespace anomaly_detection

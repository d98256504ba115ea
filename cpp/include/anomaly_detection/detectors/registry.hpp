// Thread-safe registry of sensor states: the embedded store.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "anomaly_detection/detectors/sensor_state.hpp"

namespace anomaly_detection {

/// Raised when creating a sensor would exceed DetectorConfig::max_sensors.
class SensorLimitError : public std::length_error {
   public:
    using std::length_error::length_error;
};

class SensorRegistry {
   public:
    /// Validates `config` (std::invalid_argument on a bad field).
    explicit SensorRegistry(const DetectorConfig& config);

    const DetectorConfig& config() const { return config_; }

    /// Scores one point of `sensor`, creating the sensor on first use.
    Detection detect(const std::string& sensor, double value, double timestamp);

    /// Scores n points of one sensor in order; identical to n calls of
    /// detect. Every value must be finite (checked before anything changes).
    /// Output arrays have n elements.
    void detect_batch(const std::string& sensor, const double* values, const double* timestamps, size_t n,
                      const BatchOutput& out);

    /// One sensor's batch for detect_many.
    struct BatchJob {
        std::string sensor;
        const double* values;
        const double* timestamps;
        size_t n;
        BatchOutput out;
    };
    /// Scores several sensors' batches, the sensors in parallel on up to `threads`
    /// threads (0: one per hardware thread); each job's result equals detect_batch
    /// on it. Sensor names must be distinct and valid, values and timestamps finite,
    /// and the sensors to create within max_sensors: all is checked before any
    /// sensor is created or scored.
    void detect_many(const std::vector<BatchJob>& jobs, size_t threads = 0);

    /// Replaces (or creates) a sensor with the state a shared store describes:
    /// its window (n points, oldest first), its point count and, for the
    /// ensemble, a checkpoint at `checkpoint_seen` (see SensorState::from_checkpoint; copied). Used
    /// to carry a sensor over into the embedded store when the shared one fails.
    void restore(const std::string& sensor, const double* values, const double* timestamps, size_t n, uint64_t seen,
                 const EnsembleState* checkpoint, uint64_t checkpoint_seen);

    /// False when the sensor is unknown.
    bool window(const std::string& sensor, std::vector<double>& values, std::vector<double>& timestamps) const;
    bool summary(const std::string& sensor, SensorSummary& out) const;
    /// The sensor's point count and SensorState::live_from; false when the sensor is unknown.
    bool progress(const std::string& sensor, uint64_t& seen, uint64_t& live_from) const;
    /// Forgets a sensor; returns whether it existed.
    bool reset(const std::string& sensor);
    void clear();
    std::vector<std::string> sensors() const;
    size_t size() const;

    /// Versioned, checksummed snapshot of the config and every sensor.
    std::string to_bytes() const;

    /// fork() while other threads may be inside the registry (pthread_atfork's prepare /
    /// parent / child). lock_for_fork waits for the calls in progress to end and makes new
    /// ones wait (every method that takes a lock holds a pass of the registry's fork gate for
    /// its duration); the parent calls unlock_after_fork, the child unlock_after_fork_in_child,
    /// on the thread that forked. So the child holds no lock of a thread it does not have, and
    /// whole calls only. Nothing is written to the sensors (a lock per sensor taken and released
    /// would copy each sensor's memory page in parent and child after the fork). Between lock
    /// and unlock the locking thread may call nothing else of the registry.
    void lock_for_fork();
    void unlock_after_fork();
    void unlock_after_fork_in_child();
    /// Throws std::invalid_argument on corrupt or truncated bytes.
    static std::unique_ptr<SensorRegistry> from_bytes(const std::string& bytes);

   private:
    struct Entry {
        explicit Entry(SensorState s) : state(std::move(s)) {}
        mutable std::mutex mutex;
        SensorState state;
    };
    // The fork gate: a pass per call in progress (public methods only; none calls another).
    // Lookups take the caller's pass, so a call that reaches a sensor's lock has one.
    class Pass;
    std::shared_ptr<Entry> get_or_create(const Pass& pass, const std::string& sensor);
    std::shared_ptr<Entry> find(const Pass& pass, const std::string& sensor) const;

    mutable std::atomic<uint64_t> passes_{0};
    mutable std::atomic<bool> forking_{false};
    mutable std::mutex fork_mutex_;  // held by the forking thread: new calls wait on it

    DetectorConfig config_;
    mutable std::shared_mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<Entry>> sensors_;
};

}  // namespace anomaly_detection

#include "anomaly_detection/detectors/registry.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <utility>

namespace anomaly_detection {

namespace {
// Version 2 added Method::ensemble (and its per-sensor state). Version 3: the
// scale of each sensor's rolling sums (a power of two, 1 unless a glitch beyond
// 2^480 is in the window), the ensemble's level and context features (in older
// blobs they start afresh) and the config's alert cooldown (100 points in older
// blobs). Version 4: the config's alert cooldown in seconds (0, i.e. in points, in
// older blobs) and the ensemble's time of its last alarm. Version 5: the ensemble's
// running estimate of the sampling interval (older blobs start it from their period).
// Version 6: the ensemble's shape, scale and cusum features (older blobs start them
// afresh). Version 7: the ensemble's period estimate of untimed points (older blobs
// take their timestamps as they come). Version 8: the ensemble's polyres feature (older
// blobs start it afresh). Older blobs load.
constexpr uint16_t kRegistryVersion = 8;

}  // namespace

// Held for the whole of a public call that takes a lock. While a fork is being prepared a new
// call waits for it to end (on fork_mutex_), holding no lock of the registry.
class SensorRegistry::Pass {
   public:
    explicit Pass(const SensorRegistry& r) : r_(r) {
        for (;;) {
            r_.passes_.fetch_add(1);  // seq_cst, as forking_'s store and load: one of the two sees the other
            if (!r_.forking_.load()) return;
            r_.passes_.fetch_sub(1);
            std::lock_guard wait(r_.fork_mutex_);
        }
    }
    ~Pass() { r_.passes_.fetch_sub(1); }
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;

   private:
    const SensorRegistry& r_;
};

SensorRegistry::SensorRegistry(const DetectorConfig& config) : config_(config) { config_.validate(); }

std::shared_ptr<SensorRegistry::Entry> SensorRegistry::find(const Pass&, const std::string& sensor) const {
    std::shared_lock lock(mutex_);
    auto it = sensors_.find(sensor);
    return it == sensors_.end() ? nullptr : it->second;
}

std::shared_ptr<SensorRegistry::Entry> SensorRegistry::get_or_create(const Pass& pass, const std::string& sensor) {
    if (auto e = find(pass, sensor)) return e;
    check_sensor_name(sensor);
    std::unique_lock lock(mutex_);
    auto it = sensors_.find(sensor);
    if (it != sensors_.end()) return it->second;
    if (config_.max_sensors && sensors_.size() >= config_.max_sensors)
        throw SensorLimitError("sensor limit reached: max_sensors=" + std::to_string(config_.max_sensors) +
                               ", cannot add '" + sensor + "'");
    auto e = std::make_shared<Entry>(SensorState(config_));
    sensors_.emplace(sensor, e);
    return e;
}

Detection SensorRegistry::detect(const std::string& sensor, double value, double timestamp) {
    const Pass pass(*this);
    if (!std::isfinite(value))
        throw std::invalid_argument("value: expected a finite number, got " + std::to_string(value));
    if (!std::isfinite(timestamp)) throw std::invalid_argument("timestamp: expected a finite number");
    auto e = get_or_create(pass, sensor);
    std::lock_guard lock(e->mutex);
    return e->state.update(value, timestamp);
}

void SensorRegistry::detect_batch(const std::string& sensor, const double* values, const double* timestamps, size_t n,
                                  const BatchOutput& out) {
    const Pass pass(*this);
    if (n == 0) return;
    // The sensor's state checks the values and timestamps as it scores them (a bad one
    // leaves it unchanged), without a pass of its own over the batch.
    if (auto e = find(pass, sensor)) {
        std::lock_guard lock(e->mutex);
        e->state.update_batch(values, timestamps, n, out);
        return;
    }
    // A new sensor is scored on a state of its own and entered only after the batch
    // passed the checks: a bad batch creates nothing. A non-finite entry is reported
    // before the sensor limit, as when every entry was checked first.
    check_sensor_name(sensor);
    {
        std::shared_lock lock(mutex_);
        if (config_.max_sensors && sensors_.size() >= config_.max_sensors) {
            lock.unlock();
            check_finite_batch(values, timestamps, n, "");
            get_or_create(pass, sensor);  // throws SensorLimitError unless a sensor left meanwhile
        }
    }
    if (auto e = find(pass, sensor)) {  // created meanwhile (by another thread, or just above)
        std::lock_guard lock(e->mutex);
        e->state.update_batch(values, timestamps, n, out);
        return;
    }
    SensorState fresh(config_);
    fresh.update_batch(values, timestamps, n, out);
    std::unique_lock lock(mutex_);
    auto it = sensors_.find(sensor);
    if (it == sensors_.end()) {
        if (config_.max_sensors && sensors_.size() >= config_.max_sensors)
            throw SensorLimitError("sensor limit reached: max_sensors=" + std::to_string(config_.max_sensors) +
                                   ", cannot add '" + sensor + "'");
        sensors_.emplace(sensor, std::make_shared<Entry>(std::move(fresh)));
        return;
    }
    // Another thread created the sensor while this batch was scored: the batch follows
    // that thread's points instead (scored again, on the sensor's state).
    auto e = it->second;
    lock.unlock();
    std::lock_guard entry_lock(e->mutex);
    e->state.update_batch(values, timestamps, n, out, /*check_inputs=*/false);
}

namespace {
// Runs task(i) for every i in [0, count) on up to `threads` threads, the calling thread
// among them; each takes the next index from a shared counter. The first exception is
// kept and rethrown once every thread has joined. A thread that cannot be started
// leaves its share to the others.
template <typename Task>
void run_parallel(size_t count, size_t threads, const Task& task) {
    std::atomic<size_t> next{0};
    std::exception_ptr failure;
    std::mutex failure_mutex;
    auto work = [&] {
        for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < count;) {
            try {
                task(i);
            } catch (...) {
                std::lock_guard lock(failure_mutex);
                if (!failure) failure = std::current_exception();
            }
        }
    };
    threads = std::min(threads, count);
    std::vector<std::thread> pool;
    if (threads > 1) {
        pool.reserve(threads - 1);
        try {
            for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
        } catch (const std::system_error&) {  // fewer threads: the others take the work
        }
    }
    work();
    for (auto& t : pool) t.join();
    if (failure) std::rethrow_exception(failure);
}
}  // namespace

void SensorRegistry::detect_many(const std::vector<BatchJob>& jobs, size_t threads) {
    const Pass pass(*this);
    std::unordered_set<std::string_view> names;
    for (const auto& job : jobs) {
        check_sensor_name(job.sensor);
        if (!names.insert(job.sensor).second)
            throw std::invalid_argument("sensor '" + job.sensor + "': given twice (one batch per sensor)");
    }
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());

    // Phase 1, on the workers: every value and timestamp of every job is checked, in
    // chunks (a long job does not keep one thread busy while the others wait). Only on a
    // failure is the check run again on this thread, job by job in order, for the error
    // the first bad job gives (the message of check_finite_batch, naming the sensor).
    constexpr size_t kChunk = size_t{1} << 16;
    std::vector<std::pair<size_t, size_t>> chunks;  // (job, first point)
    size_t points = 0;
    for (size_t j = 0; j < jobs.size(); ++j) {
        points += jobs[j].n;
        for (size_t b = 0; b < jobs[j].n; b += kChunk) chunks.emplace_back(j, b);
    }
    // A thread of its own only for two chunks' worth of points or more: below, starting
    // it costs about what it would save.
    const size_t check_threads = std::max<size_t>(1, std::min(threads, points / (2 * kChunk)));
    std::atomic<bool> bad{false};
    run_parallel(chunks.size(), check_threads, [&](size_t c) {
        if (bad.load(std::memory_order_relaxed)) return;
        const auto& job = jobs[chunks[c].first];
        const size_t b = chunks[c].second, e = std::min(job.n, b + kChunk);
        try {
            check_finite_batch(job.values + b, job.timestamps + b, e - b, "");
        } catch (const std::invalid_argument&) {
            bad.store(true, std::memory_order_relaxed);
        }
    });
    if (bad.load())
        for (const auto& job : jobs)
            check_finite_batch(job.values, job.timestamps, job.n, "sensor '" + job.sensor + "': ");

    size_t new_sensors = 0;
    for (const auto& job : jobs)
        if (job.n && !find(pass, job.sensor)) ++new_sensors;
    {
        std::shared_lock lock(mutex_);
        if (config_.max_sensors && sensors_.size() + new_sensors > config_.max_sensors)
            throw SensorLimitError("sensor limit reached: max_sensors=" + std::to_string(config_.max_sensors) +
                                   ", cannot add " + std::to_string(new_sensors) + " sensors");
    }
    // Phase 2, on the workers: each job scored on its sensor's state, the longest first
    // (so that the last job to start is a short one).
    std::vector<std::shared_ptr<Entry>> entries(jobs.size());
    std::vector<size_t> order;
    order.reserve(jobs.size());
    for (size_t j = 0; j < jobs.size(); ++j)
        if (jobs[j].n) {
            entries[j] = get_or_create(pass, jobs[j].sensor);
            order.push_back(j);
        }
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return jobs[a].n > jobs[b].n; });
    run_parallel(order.size(), threads, [&](size_t k) {
        const size_t j = order[k];
        std::lock_guard lock(entries[j]->mutex);
        entries[j]->state.update_batch(jobs[j].values, jobs[j].timestamps, jobs[j].n, jobs[j].out,
                                       /*check_inputs=*/false);  // checked in phase 1
    });
}

void SensorRegistry::restore(const std::string& sensor, const double* values, const double* timestamps, size_t n,
                             uint64_t seen, const EnsembleState* checkpoint, uint64_t checkpoint_seen) {
    const Pass pass(*this);
    check_sensor_name(sensor);
    if (checkpoint && checkpoint->threshold() != config_.threshold)
        throw std::invalid_argument("checkpoint: made for another threshold");
    std::optional<EnsembleState> ensemble;
    if (checkpoint) ensemble.emplace(*checkpoint);
    auto e = std::make_shared<Entry>(
        SensorState::from_checkpoint(config_, values, timestamps, n, seen, std::move(ensemble), checkpoint_seen));
    std::unique_lock lock(mutex_);
    auto it = sensors_.find(sensor);
    if (it == sensors_.end() && config_.max_sensors && sensors_.size() >= config_.max_sensors)
        throw SensorLimitError("sensor limit reached: max_sensors=" + std::to_string(config_.max_sensors) +
                               ", cannot add '" + sensor + "'");
    sensors_[sensor] = std::move(e);
}

bool SensorRegistry::window(const std::string& sensor, std::vector<double>& values,
                            std::vector<double>& timestamps) const {
    const Pass pass(*this);
    auto e = find(pass, sensor);
    if (!e) return false;
    std::lock_guard lock(e->mutex);
    e->state.window(values, timestamps);
    return true;
}

bool SensorRegistry::summary(const std::string& sensor, SensorSummary& out) const {
    const Pass pass(*this);
    auto e = find(pass, sensor);
    if (!e) return false;
    std::lock_guard lock(e->mutex);
    out = e->state.summary();
    return true;
}

bool SensorRegistry::progress(const std::string& sensor, uint64_t& seen, uint64_t& live_from) const {
    const Pass pass(*this);
    auto e = find(pass, sensor);
    if (!e) return false;
    std::lock_guard lock(e->mutex);
    seen = e->state.seen();
    live_from = e->state.live_from();
    return true;
}

bool SensorRegistry::reset(const std::string& sensor) {
    const Pass pass(*this);
    std::unique_lock lock(mutex_);
    return sensors_.erase(sensor) > 0;
}

void SensorRegistry::clear() {
    const Pass pass(*this);
    std::unique_lock lock(mutex_);
    sensors_.clear();
}

std::vector<std::string> SensorRegistry::sensors() const {
    const Pass pass(*this);
    std::shared_lock lock(mutex_);
    std::vector<std::string> names;
    names.reserve(sensors_.size());
    for (const auto& kv : sensors_) names.push_back(kv.first);
    return names;
}

size_t SensorRegistry::size() const {
    const Pass pass(*this);
    std::shared_lock lock(mutex_);
    return sensors_.size();
}

void SensorRegistry::lock_for_fork() {
    fork_mutex_.lock();
    forking_.store(true);
    while (passes_.load() != 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
}

void SensorRegistry::unlock_after_fork() {
    forking_.store(false);
    fork_mutex_.unlock();
}

void SensorRegistry::unlock_after_fork_in_child() {
    // A thread of the parent may have been between its count and its look at forking_.
    passes_.store(0);
    forking_.store(false);
    fork_mutex_.unlock();  // a plain mutex: no owner is checked
}

std::string SensorRegistry::to_bytes() const {
    const Pass pass(*this);
    io::ByteWriter w;
    w.put<uint8_t>(static_cast<uint8_t>(config_.method));
    w.put<uint64_t>(config_.window_size);
    w.put<double>(config_.threshold);
    w.put<uint64_t>(config_.min_samples);
    w.put<uint8_t>(config_.include_anomalies ? 1 : 0);
    w.put<double>(config_.ewma_alpha);
    w.put<double>(config_.cusum_k);
    w.put<uint64_t>(config_.max_sensors);
    w.put<uint64_t>(config_.alert_cooldown);
    w.put<double>(config_.alert_cooldown_seconds);
    std::shared_lock lock(mutex_);
    // Sensors in name order, so that equal registries give equal bytes (the map's order
    // depends on its history).
    std::vector<const decltype(sensors_)::value_type*> sorted;
    sorted.reserve(sensors_.size());
    for (const auto& kv : sensors_) sorted.push_back(&kv);
    std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
    w.put<uint64_t>(sorted.size());
    for (const auto* kv : sorted) {
        w.put_string(kv->first);
        std::lock_guard entry_lock(kv->second->mutex);
        kv->second->state.serialize(w);
    }
    return io::seal(io::Family::sensor_registry, kRegistryVersion, w.str());
}

std::unique_ptr<SensorRegistry> SensorRegistry::from_bytes(const std::string& bytes) {
    uint16_t version = 0;
    io::ByteReader r(io::unseal(bytes, io::Family::sensor_registry, kRegistryVersion, &version));
    DetectorConfig c;
    const auto method = r.get<uint8_t>("method");
    const auto last = version >= 2 ? Method::ensemble : Method::cusum;
    if (method > static_cast<uint8_t>(last)) io::corruption("method: unknown code " + std::to_string(method));
    c.method = static_cast<Method>(method);
    c.window_size = r.get<uint64_t>("window size");
    c.threshold = r.get<double>("threshold");
    c.min_samples = r.get<uint64_t>("min samples");
    c.include_anomalies = r.get_flag("include anomalies");
    c.ewma_alpha = r.get<double>("ewma alpha");
    c.cusum_k = r.get<double>("cusum k");
    c.max_sensors = r.get<uint64_t>("max sensors");
    if (version >= 3) c.alert_cooldown = r.get<uint64_t>("alert cooldown");
    if (version >= 4) c.alert_cooldown_seconds = r.get<double>("alert cooldown seconds");
    try {
        c.validate();
    } catch (const std::invalid_argument& e) {
        io::corruption(std::string("config: ") + e.what());
    }
    const auto count = r.get<uint64_t>("sensor count");
    // Each sensor takes at least a name length and its counters: a larger
    // count than the remaining bytes can hold is corrupt, not a huge allocation.
    if (count > r.remaining() / 16) io::corruption("sensor count: " + std::to_string(count) + " exceeds the data");
    auto reg = std::make_unique<SensorRegistry>(c);
    for (uint64_t i = 0; i < count; ++i) {
        auto name = r.get_string(kMaxSensorNameBytes, "sensor name");
        if (!is_valid_sensor_name(name)) io::corruption("sensor name: invalid");
        auto state = SensorState::deserialize(r, reg->config_, version);
        if (!reg->sensors_.emplace(name, std::make_shared<Entry>(std::move(state))).second)
            io::corruption("sensor name: duplicate '" + name + "'");
    }
    r.expect_end("sensor registry");
    return reg;
}

}  // namespace anomaly_detection

// The registry's fork protocol (lock_for_fork / unlock_after_fork / unlock_after_fork_in_child).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "anomaly_detection/detectors/registry.hpp"

using namespace anomaly_detection;

namespace {

DetectorConfig zscore() {
    DetectorConfig c;
    c.window_size = 16;
    c.min_samples = 4;
    return c;
}

// Output arrays of a batch of n points.
struct Outputs {
    explicit Outputs(size_t n) : flags(n), scores(n), deviations(n), expected(n), counts(n) {}
    BatchOutput out() {
        return {reinterpret_cast<bool*>(flags.data()), scores.data(), deviations.data(), expected.data(),
                counts.data()};
    }
    std::vector<char> flags;
    std::vector<double> scores, deviations, expected;
    std::vector<uint64_t> counts;
};

uint64_t seen(const SensorRegistry& reg, const std::string& sensor) {
    SensorSummary s;
    return reg.summary(sensor, s) ? s.points_seen : 0;
}

// Exit status of a child that got `seconds` to run `body` (SIGALRM kills a hung one).
template <typename F>
int in_child(F body, unsigned seconds = 10) {
    const pid_t pid = fork();
    if (pid == 0) {
        alarm(seconds);
        _exit(body() ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

}  // namespace

TEST(SensorRegistryFork, LockedForForkOtherThreadsWaitThenGoOn) {
    SensorRegistry reg(zscore());
    reg.detect("s", 1.0, 1.0);
    reg.lock_for_fork();
    std::atomic<bool> old_done{false}, new_done{false}, read_done{false};
    std::thread a([&] {
        reg.detect("s", 2.0, 2.0);  // a known sensor: its lock
        old_done = true;
    });
    std::thread b([&] {
        reg.detect("n", 2.0, 2.0);  // a new sensor: the registry's lock for writing
        new_done = true;
    });
    std::thread c([&] {
        read_done = reg.size() > 0;  // the registry's lock for reading
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    EXPECT_FALSE(old_done);
    EXPECT_FALSE(new_done);
    EXPECT_FALSE(read_done);
    reg.unlock_after_fork();
    a.join();
    b.join();
    c.join();
    EXPECT_TRUE(old_done && new_done && read_done);
    EXPECT_EQ(seen(reg, "s"), 2u);
    EXPECT_EQ(seen(reg, "n"), 1u);
}

TEST(SensorRegistryFork, LockWaitsForABatchInProgressAndTheChildHasWholeBatches) {
    constexpr size_t n = 400'000;
    SensorRegistry reg(zscore());
    std::vector<double> values(n), stamps(n);
    for (size_t i = 0; i < n; ++i) {
        values[i] = static_cast<double>(i % 7);
        stamps[i] = static_cast<double>(i);
    }
    std::atomic<bool> stop{false};
    std::atomic<int> batches{0};
    std::thread worker([&] {
        Outputs o(n);
        while (!stop) {
            reg.detect_batch("s", values.data(), stamps.data(), n, o.out());
            ++batches;
        }
    });
    while (batches == 0) std::this_thread::yield();
    for (int round = 0; round < 3; ++round) {
        reg.lock_for_fork();  // waits for the batch in progress
        const int status = in_child([&] {
            reg.unlock_after_fork_in_child();
            const uint64_t had = seen(reg, "s");
            reg.detect("s", 1.0, 1e9);      // the sensor's lock
            reg.detect("fresh", 1.0, 1.0);  // the registry's, for writing
            return had % n == 0 && had > 0 && seen(reg, "s") == had + 1 && seen(reg, "fresh") == 1;
        });
        reg.unlock_after_fork();
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "round " << round << ": status " << status << (WIFSIGNALED(status) ? " (hung: killed)" : "");
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop = true;
    worker.join();
    EXPECT_EQ(seen(reg, "s"), static_cast<uint64_t>(batches) * n);  // the parent lost nothing
}

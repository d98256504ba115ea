// A minimal fork-join loop for the forest kernels: tasks are handed out by an
// atomic counter, so uneven tasks (trees of different sizes, a short last
// block of rows) still balance. A worker's exception is kept in an
// exception_ptr and rethrown on the calling thread after every worker joined,
// never lost and never escaping a std::thread (which would terminate).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace anomaly_detection {

/// Number of workers for a request: 0 means one per hardware thread.
inline unsigned resolve_threads(unsigned requested) {
    if (requested != 0) return requested;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : hw;
}

/// Calls fn(task, worker) for every task in [0, n_tasks) on up to n_threads
/// threads (the caller is worker 0); worker ids are < the returned count.
template <typename Fn>
void parallel_for(size_t n_tasks, unsigned n_threads, Fn&& fn) {
    const auto workers = static_cast<unsigned>(std::min<size_t>(std::max(1u, n_threads), std::max<size_t>(n_tasks, 1)));
    if (workers == 1) {
        for (size_t i = 0; i < n_tasks; ++i) fn(i, 0u);
        return;
    }
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::vector<std::exception_ptr> errors(workers);
    auto work = [&](unsigned w) {
        try {
            for (size_t i; !failed.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < n_tasks;) fn(i, w);
        } catch (...) {
            errors[w] = std::current_exception();
            failed = true;
        }
    };
    std::vector<std::thread> threads;
    threads.reserve(workers - 1);
    for (unsigned w = 1; w < workers; ++w) {
        try {
            threads.emplace_back(work, w);
        } catch (...) {
            break;  // no more threads to be had: the workers already running take the rest
        }
    }
    work(0);
    for (auto& t : threads) t.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

/// Workers parallel_for will use for n_tasks tasks (for sizing scratch space).
inline unsigned worker_count(size_t n_tasks, unsigned n_threads) {
    return static_cast<unsigned>(std::min<size_t>(std::max(1u, n_threads), std::max<size_t>(n_tasks, 1)));
}

}  // namespace anomaly_detection

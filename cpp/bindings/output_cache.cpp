// The bounded cache of freed output memory (see output_cache.hpp).
#include "output_cache.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace anomaly_detection::bindings {

namespace {

// A block: a header (its capacity) and then the array's data, 64-byte aligned.
constexpr std::size_t kHeader = 64;

struct Block {
    std::size_t capacity;  // usable bytes after the header
};

void* data_of(Block* b) { return reinterpret_cast<unsigned char*>(b) + kHeader; }
Block* block_of(void* data) { return reinterpret_cast<Block*>(static_cast<unsigned char*>(data) - kHeader); }

Block* new_block(std::size_t bytes) {
    // Rounded up to 64 bytes; aligned_alloc wants a multiple of the alignment.
    const std::size_t capacity = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, kHeader + capacity);
    if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // As NumPy does for its large arrays: ask for transparent huge pages on the whole pages
    // inside the block (advice only; ignored where THP is off).
    const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    const auto begin = (reinterpret_cast<std::uintptr_t>(p) + page - 1) / page * page;
    const auto end = (reinterpret_cast<std::uintptr_t>(p) + kHeader + capacity) / page * page;
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
    auto* b = static_cast<Block*>(p);
    b->capacity = capacity;
    return b;
}

class OutputCache {
   public:
    // A cached block of at least `bytes` and at most a quarter more, the smallest such; or null.
    Block* take(std::size_t bytes) {
        std::lock_guard<std::mutex> lock(mutex_);
        auto best = blocks_.end();
        const std::size_t most = bytes + bytes / 4;
        for (auto it = blocks_.begin(); it != blocks_.end(); ++it) {
            const std::size_t c = (*it)->capacity;
            if (c >= bytes && c <= most && (best == blocks_.end() || c < (*best)->capacity)) best = it;
        }
        if (best == blocks_.end()) {
            ++misses_;
            return nullptr;
        }
        Block* b = *best;
        blocks_.erase(best);
        held_ -= b->capacity;
        ++hits_;
        return b;
    }

    // Keeps the block if the limits allow, else frees it.
    void give_back(Block* b) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!closed_ && blocks_.size() < max_blocks_ && held_ + b->capacity <= max_bytes_) {
                blocks_.push_back(b);
                held_ += b->capacity;
                return;
            }
        }
        std::free(b);
    }

    // Frees every cached block; returns the bytes freed.
    std::size_t release() {
        std::vector<Block*> blocks;
        std::size_t bytes = 0;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            blocks.swap(blocks_);
            bytes = held_;
            held_ = 0;
        }
        for (Block* b : blocks) std::free(b);
        return bytes;
    }

    // Empties the cache for good (interpreter exit): blocks given back later are freed.
    void close() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            closed_ = true;
        }
        release();
    }

    // fork(): the mutex is held across it, so a child never inherits it locked by a thread
    // that does not exist there (pthread_atfork's prepare / parent / child).
    void lock_for_fork() { mutex_.lock(); }
    void unlock_after_fork() { mutex_.unlock(); }

    void set_limits(std::size_t max_blocks, std::size_t max_bytes) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            max_blocks_ = max_blocks;
            max_bytes_ = max_bytes;
        }
        release();
    }

    py::dict info() {
        std::lock_guard<std::mutex> lock(mutex_);
        py::dict d;
        d["buffers"] = blocks_.size();
        d["bytes"] = held_;
        d["max_buffers"] = max_blocks_;
        d["max_bytes"] = max_bytes_;
        d["min_array_bytes"] = kOutputCacheMinBytes;
        d["hits"] = hits_;
        d["misses"] = misses_;
        return d;
    }

   private:
    std::mutex mutex_;
    std::vector<Block*> blocks_;
    std::size_t held_ = 0;
    std::size_t max_blocks_ = 8;
    std::size_t max_bytes_ = std::size_t{256} << 20;
    std::uint64_t hits_ = 0, misses_ = 0;
    bool closed_ = false;
};

// Never destroyed: capsules may be freed after static destructors would have run; the
// cache is emptied (and closed) by an atexit hook instead.
OutputCache& cache() {
    static auto* c = new OutputCache();
    return *c;
}

// Benchmarks only: NumPy's allocation for every array, the cache left as it is.
std::atomic<bool> bypass{false};

}  // namespace

py::array pooled_array(const py::dtype& dtype, std::size_t n) {
    const auto itemsize = static_cast<std::size_t>(dtype.itemsize());
    const std::size_t bytes = n * itemsize;
    const std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(n)};
    if (bytes < kOutputCacheMinBytes || bypass.load(std::memory_order_relaxed))
        return py::array(dtype, shape, std::vector<py::ssize_t>{});
    Block* b = cache().take(bytes);
    if (!b) b = new_block(bytes);
    void* data = data_of(b);
    py::capsule owner;
    try {
        owner = py::capsule(data, [](void* p) { cache().give_back(block_of(p)); });
    } catch (...) {
        cache().give_back(b);
        throw;
    }
    const std::vector<py::ssize_t> strides{static_cast<py::ssize_t>(itemsize)};
    return py::array(dtype, shape, strides, data, owner);
}

void bind_output_cache(py::module_& m) {
    m.def(
        "release_memory", [] { return cache().release(); },
        "Free the output memory kept for reuse and return how many bytes were freed.\n\n"
        "``detect_batch`` and its kin keep the memory of up to 8 freed output arrays of 1 MiB or\n"
        "more (256 MiB in all) to give to the next batch of a similar size; arrays still in use\n"
        "are not touched.");
    m.def(
        "_output_cache_info", [] { return cache().info(); },
        "The output cache's blocks, bytes, limits and hit/miss counts (tests and benchmarks).");
    m.def(
        "_set_output_cache_limits",
        [](std::size_t max_buffers, std::size_t max_bytes) { cache().set_limits(max_buffers, max_bytes); },
        py::arg("max_buffers"), py::arg("max_bytes"),
        "Set the output cache's limits (0 keeps nothing) and empty it (tests and benchmarks).");
    m.def(
        "_bypass_output_cache", [](bool on) { bypass.store(on); }, py::arg("on"),
        "Give every output array NumPy's own memory, the cache left as it is (benchmarks' A/B).");
    // Emptied (and closed: blocks given back later are freed) before the interpreter
    // releases the module, so nothing stays allocated after it.
    py::module_::import("atexit").attr("register")(py::cpp_function([] { cache().close(); }));
#if defined(__unix__) || defined(__APPLE__)
    pthread_atfork([] { cache().lock_for_fork(); }, [] { cache().unlock_after_fork(); },
                   [] { cache().unlock_after_fork(); });
#endif
}

}  // namespace anomaly_detection::bindings

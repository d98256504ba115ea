// fork() while other threads are inside the core (pthread_atfork's prepare / parent / child,
// run from Python's os.register_at_fork by anomaly_detection._fork).
//
// The prepare step (_core._lock_for_fork) takes the locks of the live registries and sketches
// without the GIL, waiting for the calls in progress, and then needs the GIL back. So no thread
// may wait for one of those locks while it holds the GIL:
// - a sketch's lock is taken by a GilSafeLock: with the GIL held, a lock it cannot take at once
//   is waited for without the GIL;
// - a registry takes its locks inside the core: with the GIL held, a call goes through
//   unless_forking, which releases the GIL for the call while a prepare step is under way
//   (fork_pending: set with the GIL held before the first lock is taken, so a call that saw it
//   unset ran to its end, GIL held, before any was).
// A thread that works without the GIL drops its locks before it takes the GIL back.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <mutex>
#include <utility>

#include "fast_method.hpp"

namespace anomaly_detection::bindings {

namespace py = pybind11;

/// Prepare steps under way (read and written with the GIL held).
inline std::atomic<int> g_fork_pending{0};

inline bool fork_pending() { return g_fork_pending.load(std::memory_order_relaxed) != 0; }

/// f() for a registry call made with the GIL held: without the GIL while a fork's prepare step
/// holds or takes the registries' locks.
template <typename F>
decltype(auto) unless_forking(F&& f) {
    if (!fork_pending()) return std::forward<F>(f)();
    py::gil_scoped_release release;
    return std::forward<F>(f)();
}

/// A lock_guard for a sketch's mutex that never waits for it while holding the GIL.
class GilSafeLock {
   public:
    explicit GilSafeLock(std::mutex& m) : m_(m) {
        if (m_.try_lock()) return;
        if (PyGILState_Check()) {
            py::gil_scoped_release release;
            m_.lock();
        } else {
            m_.lock();
        }
    }
    ~GilSafeLock() { m_.unlock(); }
    GilSafeLock(const GilSafeLock&) = delete;
    GilSafeLock& operator=(const GilSafeLock&) = delete;

   private:
    std::mutex& m_;
};

/// The fork handlers of a bound class T (T::lock_for_fork, unlock_after_fork,
/// unlock_after_fork_in_child), found by the exact type of an instance.
struct ForkHandlers {
    PyTypeObject* type;
    void* (*native)(PyObject*);
    void (*lock)(void*);
    void (*unlock)(void*);
    void (*unlock_in_child)(void*);
};

void add_fork_handlers(const ForkHandlers& h);

template <typename T>
void fork_lockable(const py::handle& cls) {
    add_fork_handlers(
        {reinterpret_cast<PyTypeObject*>(cls.ptr()), [](PyObject* o) -> void* { return native_self<T>(o); },
         [](void* p) { static_cast<T*>(p)->lock_for_fork(); }, [](void* p) { static_cast<T*>(p)->unlock_after_fork(); },
         [](void* p) { static_cast<T*>(p)->unlock_after_fork_in_child(); }});
}

/// _core._lock_for_fork(objects) and _core._unlock_after_fork(locked, in_child).
void bind_fork(py::module_& m);

}  // namespace anomaly_detection::bindings

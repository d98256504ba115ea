// The fork protocol's entry points (see fork.hpp).
#include "fork.hpp"

#include <vector>

namespace anomaly_detection::bindings {

namespace {

std::vector<ForkHandlers>& handlers() {
    static auto* h = new std::vector<ForkHandlers>();  // filled at import, never destroyed
    return *h;
}

const ForkHandlers* handlers_of(PyObject* o) {
    for (const auto& h : handlers())
        if (Py_TYPE(o) == h.type) return &h;
    return nullptr;
}

// The native objects among `objects` (others are skipped), locked in their order.
py::list lock_for_fork(const py::list& objects) {
    struct Target {
        const ForkHandlers* h;
        void* p;
    };
    std::vector<Target> targets;
    py::list locked;
    for (py::handle o : objects) {
        const ForkHandlers* h = handlers_of(o.ptr());
        void* p = h ? h->native(o.ptr()) : nullptr;
        if (!p) continue;
        targets.push_back({h, p});
        locked.append(o);
    }
    if (targets.empty()) return locked;
    g_fork_pending.fetch_add(1, std::memory_order_relaxed);  // with the GIL: see fork.hpp
    {
        py::gil_scoped_release release;  // calls in progress end and take the GIL back
        for (const auto& t : targets) t.h->lock(t.p);
    }
    return locked;
}

void unlock_after_fork(const py::list& locked, bool in_child) {
    if (locked.empty()) return;
    for (py::handle o : locked) {
        const ForkHandlers* h = handlers_of(o.ptr());
        void* p = h ? h->native(o.ptr()) : nullptr;
        if (!p) continue;  // not possible: these were locked
        (in_child ? h->unlock_in_child : h->unlock)(p);
    }
    g_fork_pending.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace

void add_fork_handlers(const ForkHandlers& h) { handlers().push_back(h); }

void bind_fork(py::module_& m) {
    m.def("_lock_for_fork", &lock_for_fork, py::arg("objects"),
          "fork()'s prepare step: take the locks of the registries and sketches among `objects` (others are "
          "skipped), in order, waiting without the GIL for the calls in progress; returns the objects locked. "
          "Only anomaly_detection._fork's hook calls it.");
    m.def("_unlock_after_fork", &unlock_after_fork, py::arg("locked"), py::arg("in_child"),
          "fork()'s parent or child step: release the locks _lock_for_fork took (in the child they are made "
          "anew).");
}

}  // namespace anomaly_detection::bindings

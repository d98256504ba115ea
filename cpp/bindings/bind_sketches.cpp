// Bindings of the sketches: one bind_<family>.cpp per family, the item conversion they
// share in items.{hpp,cpp}; this file registers them.
#include <pybind11/pybind11.h>

#include "anomaly_detection/sketches/bloom.hpp"
#include "anomaly_detection/sketches/count_min.hpp"
#include "anomaly_detection/sketches/cuckoo.hpp"
#include "anomaly_detection/sketches/errors.hpp"
#include "anomaly_detection/sketches/hyperloglog.hpp"
#include "anomaly_detection/sketches/t_digest.hpp"
#include "anomaly_detection/sketches/top_k.hpp"
#include "fork.hpp"
#include "items.hpp"

namespace py = pybind11;

namespace anomaly_detection::bindings {
void bind_count_min(py::module_& m);
void bind_hyperloglog(py::module_& m);
void bind_t_digest(py::module_& m);
void bind_bloom(py::module_& m);
void bind_cuckoo(py::module_& m);
void bind_top_k(py::module_& m);
}  // namespace anomaly_detection::bindings

void bind_sketches(py::module_& m) {
    using namespace anomaly_detection;
    using namespace anomaly_detection::bindings;
    py::register_exception<anomaly_detection::FilterFullError>(m, "FilterFullError", PyExc_RuntimeError);
    bind_count_min(m);
    bind_hyperloglog(m);
    bind_t_digest(m);
    bind_bloom(m);
    bind_cuckoo(m);
    bind_top_k(m);
    // Each sketch's mutex is held across a fork (fork.hpp).
    fork_lockable<Guarded<CountMinSketch>>(m.attr("CountMinSketch"));
    fork_lockable<Guarded<HyperLogLog>>(m.attr("HyperLogLog"));
    fork_lockable<Guarded<TDigest>>(m.attr("TDigest"));
    fork_lockable<Guarded<BloomFilter>>(m.attr("BloomFilter"));
    fork_lockable<Guarded<CuckooFilter>>(m.attr("CuckooFilter"));
    fork_lockable<Guarded<TopK>>(m.attr("TopK"));
}

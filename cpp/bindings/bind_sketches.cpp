// Bindings of the sketches: one bind_<family>.cpp per family, the item conversion they
// share in items.{hpp,cpp}; this file registers them.
#include <pybind11/pybind11.h>

#include "anomaly_detection/sketches/errors.hpp"

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
    using namespace anomaly_detection::bindings;
    py::register_exception<anomaly_detection::FilterFullError>(m, "FilterFullError", PyExc_RuntimeError);
    bind_count_min(m);
    bind_hyperloglog(m);
    bind_t_digest(m);
    bind_bloom(m);
    bind_cuckoo(m);
    bind_top_k(m);
}

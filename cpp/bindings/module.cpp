// The _core extension: one bind_<family> function per family of the core.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_detectors(py::module_& m);
void bind_forest(py::module_& m);
void bind_io(py::module_& m);
void bind_points(py::module_& m);
void bind_sketches(py::module_& m);
namespace anomaly_detection::bindings {
void bind_output_cache(py::module_& m);
void bind_fork(py::module_& m);
}  // namespace anomaly_detection::bindings

PYBIND11_MODULE(_core, m) {
    m.doc() = "Native core of anomaly_detection (private: use the anomaly_detection package).";
    bind_detectors(m);
    bind_forest(m);
    bind_io(m);
    bind_points(m);
    bind_sketches(m);
    anomaly_detection::bindings::bind_output_cache(m);
    anomaly_detection::bindings::bind_fork(m);
}

// Bindings of the text encoders of anomaly_detection/io (used by the Redis codec).
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "anomaly_detection/io/json_text.hpp"
#include "common.hpp"

namespace py = pybind11;
using anomaly_detection::bindings::DoubleArray;

namespace {

// Points from which the text is written without the GIL. A Redis append's ~100 points take
// ~10 us: giving the GIL up and taking it back costs more than that in a server whose other
// threads want it (the worker thread waits for the event loop to hand it back).
constexpr size_t kReleaseGilFrom = 2048;

py::bytes json_point_entries_py(const DoubleArray& values, const DoubleArray& timestamps) {
    if (values.ndim() != 1 || timestamps.ndim() != 1 || values.shape(0) != timestamps.shape(0))
        throw std::invalid_argument("json_point_entries: expected 1-D values and timestamps of one length");
    const auto n = static_cast<size_t>(values.shape(0));
    std::string text;
    if (n < kReleaseGilFrom) {
        text = anomaly_detection::io::json_point_entries(values.data(), timestamps.data(), n);
    } else {
        py::gil_scoped_release release;
        text = anomaly_detection::io::json_point_entries(values.data(), timestamps.data(), n);
    }
    return py::bytes(text);
}

}  // namespace

void bind_io(py::module_& m) {
    m.def("json_point_entries", &json_point_entries_py, py::arg("values"), py::arg("timestamps"),
          "b'{\"value\":v,\"timestamp\":t}' per point joined by newlines, each number as Python's repr "
          "writes it; ValueError if a number is not finite or the arrays differ in shape.");
}

// Helpers shared by the bindings: the input array type and the zero-copy hand-over of results.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <type_traits>
#include <utility>

namespace anomaly_detection::bindings {

namespace py = pybind11;

/// A C-contiguous float64 array; other dtypes and layouts are converted once.
using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

/// Hands a vector of doubles (std::vector or Eigen) to NumPy without copying: the array
/// owns it through a capsule.
template <typename Vector>
py::array_t<double> to_numpy(Vector&& v) {
    static_assert(!std::is_lvalue_reference_v<Vector>, "to_numpy takes the vector: pass std::move(v)");
    auto* heap = new Vector(std::move(v));
    py::capsule owner(heap, [](void* p) { delete static_cast<Vector*>(p); });
    return py::array_t<double>(static_cast<py::ssize_t>(heap->size()), heap->data(), owner);
}

}  // namespace anomaly_detection::bindings

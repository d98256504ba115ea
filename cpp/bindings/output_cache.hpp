// A bounded cache of the memory of freed output arrays (detect_batch and its kin).
//
// An output array of 1 MiB or more gets its memory from here: a cached block of a similar
// size if there is one (no page faults, no zeroing by the kernel), else a fresh one. The
// capsule that owns the array's memory gives the block back when NumPy frees the array (and
// every view of it); the cache keeps it if it holds fewer than its buffer and byte limits
// (8 blocks, 256 MiB by default), else frees it at once. Blocks are only ever handed to one
// array at a time, so a result the caller keeps is never written by a later call.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>

namespace anomaly_detection::bindings {

namespace py = pybind11;

/// The smallest array (in bytes) whose memory goes through the cache.
inline constexpr std::size_t kOutputCacheMinBytes = std::size_t{1} << 20;

/// Memory for an uninitialised 1-D array of n elements of `itemsize` bytes: cached or fresh
/// for n * itemsize >= kOutputCacheMinBytes, else NumPy's own. The array owns it (its base).
py::array pooled_array(const py::dtype& dtype, std::size_t n);

template <typename T>
py::array_t<T> pooled_array(std::size_t n) {
    return py::reinterpret_steal<py::array_t<T>>(pooled_array(py::dtype::of<T>(), n).release());
}

/// Registers release_memory() and the cache's private introspection on the module, and the
/// emptying of the cache at interpreter exit.
void bind_output_cache(py::module_& m);

}  // namespace anomaly_detection::bindings

// Helpers shared by the bindings: the input array type and the zero-copy hand-over of results.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

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

/// A new NumPy array of n elements for a batch's results, its memory its own (freed when
/// the array goes). On Linux, an array of 4 MiB or more gets a mapping of its own, aligned
/// to 2 MiB and rounded up to whole 2 MiB with transparent huge pages asked for on it
/// (MADV_HUGEPAGE, this mapping only): every page of it can then be a huge page. NumPy's
/// own allocation (malloc, madvise of the whole pages inside) leaves the unaligned ends of
/// each array to 4 KiB pages, whose faults cost several times more per byte on a VM: for
/// the five arrays of a 4 M-point batch, 3.8 against 2.8-3.0 ns per point (touching every
/// page, measured in C). The price: up to 2 MiB more of resident memory per large array.
/// Elsewhere, or if the mapping fails, NumPy allocates as usual.
template <typename T>
py::array_t<T> fresh_array(size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t bytes = n * sizeof(T);
    if (bytes >= (size_t{4} << 20)) {
        const size_t len = (bytes + kHuge - 1) & ~(kHuge - 1);
        void* m = mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            const auto start = reinterpret_cast<uintptr_t>(m);
            const uintptr_t aligned = (start + kHuge - 1) & ~(uintptr_t{kHuge} - 1);
            // Keep [aligned, aligned + len): the slack on either side goes back at once.
            if (aligned > start) munmap(m, aligned - start);
            if (start + kHuge > aligned) munmap(reinterpret_cast<void*>(aligned + len), start + kHuge - aligned);
            void* p = reinterpret_cast<void*>(aligned);
            madvise(p, len, MADV_HUGEPAGE);  // a hint: without it (THP off) the pages are small
            struct Mapping {
                void* p;
                size_t len;
            };
            // The capsule owns the mapping from here on (its destructor unmaps it, also
            // when the array cannot be made).
            py::capsule owner(new Mapping{p, len}, [](void* q) {
                auto* mapping = static_cast<Mapping*>(q);
                munmap(mapping->p, mapping->len);
                delete mapping;
            });
            return py::array_t<T>(static_cast<py::ssize_t>(n), static_cast<T*>(p), owner);
        }
    }
#endif
    return py::array_t<T>(static_cast<py::ssize_t>(n));
}

}  // namespace anomaly_detection::bindings

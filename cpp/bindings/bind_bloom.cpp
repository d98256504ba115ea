// Bindings of the Bloom filter sketch.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "anomaly_detection/sketches/bloom.hpp"
#include "anomaly_detection/sketches/errors.hpp"
#include "items.hpp"

namespace anomaly_detection::bindings {

void bind_bloom(py::module_& m) {
    using G = Guarded<BloomFilter>;
    py::class_<G>(m, "BloomFilter", "Scalable Bloom filter.")
        .def(py::init<uint64_t, double, uint32_t, bool>(), py::arg("capacity"), py::arg("error_rate"),
             py::arg("expansion") = 2, py::arg("non_scaling") = false, "A filter for capacity items at error_rate.")
        .def_property_readonly("capacity", [](const G& g) { return g.sketch.capacity(); })
        .def_property_readonly("error_rate", [](const G& g) { return g.sketch.error_rate(); })
        .def_property_readonly("expansion", [](const G& g) { return g.sketch.expansion(); })
        .def_property_readonly("non_scaling", [](const G& g) { return g.sketch.non_scaling(); })
        .def_property_readonly("size",
                               [](const G& g) {
                                   GilSafeLock l(g.mutex);
                                   return g.sketch.size();
                               })
        .def_property_readonly("layer_count",
                               [](const G& g) {
                                   GilSafeLock l(g.mutex);
                                   return g.sketch.layer_count();
                               })
        .def_property_readonly("memory_bytes",
                               [](const G& g) {
                                   GilSafeLock l(g.mutex);
                                   return g.sketch.memory_bytes();
                               })
        .def_property_readonly("bit_count", [](const G& g) { return g.sketch.bit_count(); })
        .def_property_readonly("hash_count", [](const G& g) { return g.sketch.hash_count(); })
        .def("add", flags_of<BloomFilter>(&BloomFilter::add), py::arg("items"),
             "Add items; True for each item that was not present.")
        .def("exists", flags_of<BloomFilter>(&BloomFilter::exists), py::arg("items"),
             "True where the item may be present, False where it surely is not.")
        .def("positions", positions_of<BloomFilter>(&BloomFilter::bit_positions, &BloomFilter::hash_count),
             py::arg("items"), "Bit offsets of each item in the first layer, shape (n, hash_count).")
        .def("to_bytes", &to_blob<BloomFilter>, "Versioned, checksummed bytes.")
        .def_static("from_bytes", &from_blob<BloomFilter>, py::arg("data"),
                    "Load bytes from to_bytes; ValueError when they are corrupt.");
}

}  // namespace anomaly_detection::bindings

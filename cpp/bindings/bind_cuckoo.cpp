// Bindings of the cuckoo filter sketch.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "anomaly_detection/sketches/cuckoo.hpp"
#include "anomaly_detection/sketches/errors.hpp"
#include "items.hpp"

namespace anomaly_detection::bindings {

void bind_cuckoo(py::module_& m) {
    using G = Guarded<CuckooFilter>;
    py::class_<G>(m, "CuckooFilter", "Cuckoo filter with deletions.")
        .def(py::init<uint64_t, uint32_t, uint32_t, uint32_t, uint64_t>(), py::arg("capacity"),
             py::arg("bucket_size") = 2, py::arg("max_iterations") = 20, py::arg("expansion") = 1, py::arg("seed") = 0,
             "A filter for about capacity items.")
        .def_property_readonly("capacity", [](const G& g) { return g.sketch.capacity(); })
        .def_property_readonly("bucket_size", [](const G& g) { return g.sketch.bucket_size(); })
        .def_property_readonly("max_iterations", [](const G& g) { return g.sketch.max_iterations(); })
        .def_property_readonly("expansion", [](const G& g) { return g.sketch.expansion(); })
        .def_property_readonly("size",
                               [](const G& g) {
                                   GilSafeLock l(g.mutex);
                                   return g.sketch.size();
                               })
        .def_property_readonly("deletions",
                               [](const G& g) {
                                   GilSafeLock l(g.mutex);
                                   return g.sketch.deletions();
                               })
        .def_property_readonly("filter_count",
                               [](const G& g) {
                                   GilSafeLock l(g.mutex);
                                   return g.sketch.filter_count();
                               })
        .def_property_readonly("bucket_count",
                               [](const G& g) {
                                   GilSafeLock l(g.mutex);
                                   return g.sketch.bucket_count();
                               })
        .def_property_readonly("memory_bytes",
                               [](const G& g) {
                                   GilSafeLock l(g.mutex);
                                   return g.sketch.memory_bytes();
                               })
        .def(
            "add",
            [](G& g, py::handle items) {
                OneItem one;
                if (one_item(items, one)) {
                    GilSafeLock lock(g.mutex);
                    g.sketch.add(&one.hash, 1);
                    return;
                }
                const ItemBatch b = to_items(items);
                run(g, b.size(), [&](CuckooFilter& s) { s.add(b.hashes.data(), b.size()); });
            },
            py::arg("items"), "Add items (duplicates allowed); FilterFullError when one cannot fit.")
        .def("add_nx", flags_of<CuckooFilter>(&CuckooFilter::add_nx), py::arg("items"),
             "Add items not yet present; True for each item added.")
        .def("exists", flags_of<CuckooFilter>(&CuckooFilter::exists), py::arg("items"),
             "True where the item may be present.")
        .def("delete", flags_of<CuckooFilter>(&CuckooFilter::remove), py::arg("items"),
             "Remove one copy of each item; True where a copy was found.")
        .def("count", counts_of<CuckooFilter>(&CuckooFilter::count), py::arg("items"),
             "Copies of each item's fingerprint (may overcount).")
        .def_property_readonly("first_filter_buckets", [](const G& g) { return g.sketch.first_filter_buckets(); })
        .def(
            "slots",
            [](G& g, py::handle items) {
                const ItemBatch b = to_items(items);
                const auto n = static_cast<py::ssize_t>(b.size());
                py::array_t<uint8_t> fp(n);
                py::array_t<uint64_t> b1(n), b2(n);
                uint8_t* pf = fp.mutable_data();
                uint64_t* p1 = b1.mutable_data();
                uint64_t* p2 = b2.mutable_data();
                run(g, b.size(), [&](CuckooFilter& s) { s.first_filter_slots(b.hashes.data(), b.size(), pf, p1, p2); });
                return py::make_tuple(fp, b1, b2);
            },
            py::arg("items"), "(fingerprints, first buckets, second buckets) in the first sub-filter.")
        .def("to_bytes", &to_blob<CuckooFilter>, "Versioned, checksummed bytes.")
        .def_static("from_bytes", &from_blob<CuckooFilter>, py::arg("data"),
                    "Load bytes from to_bytes; ValueError when they are corrupt.");
}

}  // namespace anomaly_detection::bindings

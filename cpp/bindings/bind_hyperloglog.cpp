// Bindings of the HyperLogLog sketch.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "anomaly_detection/sketches/errors.hpp"
#include "anomaly_detection/sketches/hyperloglog.hpp"
#include "fast_method.hpp"
#include "items.hpp"

namespace anomaly_detection::bindings {

namespace {
using G = Guarded<HyperLogLog>;

// add(item) of one str, bytes or int.
bool add_one(G& g, PyObject* const* args, Py_ssize_t nargs, PyObject*& result) {
    OneItem one;
    if (nargs != 1 || !one_item(args[0], one)) return false;
    bool changed = false;
    {
        GilSafeLock lock(g.mutex);
        changed = g.sketch.add(&one.hash, 1);
    }
    result = PyBool_FromLong(changed);
    return true;
}
}  // namespace

void bind_hyperloglog(py::module_& m) {
    py::class_<G> cls(m, "HyperLogLog", "HyperLogLog distinct counter.");
    cls.def(py::init<int, bool>(), py::arg("precision") = 14, py::arg("redis_compatible") = false,
            "2^precision registers (precision 4..18); Redis-compatible registers need precision 14.")
        .def_property_readonly("precision", [](const G& g) { return g.sketch.precision(); })
        .def_property_readonly("redis_compatible", [](const G& g) { return g.sketch.redis_compatible(); })
        .def(
            "to_redis",
            [](const G& g) {
                std::string out;
                {
                    GilSafeLock l(g.mutex);
                    out = g.sketch.to_redis();
                }
                return py::bytes(out);
            },
            "The dense Redis HLL string (SET it, then PFCOUNT / PFMERGE it).")
        .def_static(
            "from_redis",
            [](const py::bytes& data) { return std::make_unique<G>(HyperLogLog::from_redis(std::string_view(data))); },
            py::arg("data"), "Read a Redis HLL string (GET of a PFADD key); ValueError when it is not one.")
        .def_property_readonly("memory_bytes", [](const G& g) { return g.sketch.memory_bytes(); })
        .def_property_readonly("standard_error", [](const G& g) { return g.sketch.standard_error(); })
        .def_property_readonly(
            "hip_valid",
            [](const G& g) {
                GilSafeLock l(g.mutex);
                return g.sketch.hip_valid();
            },
            "Whether count() is the HIP estimate (false after a merge or from Redis's bytes).")
        .def(
            "_add",
            [](G& g, py::handle items) {
                OneItem one;
                if (one_item(items, one)) {
                    GilSafeLock lock(g.mutex);
                    return g.sketch.add(&one.hash, 1);
                }
                const ItemBatch b = to_items(items);
                bool changed = false;
                run(g, b.size(), [&](HyperLogLog& s) { changed = s.add(b.hashes.data(), b.size()); });
                return changed;
            },
            py::arg("items"), "add() for any items (the general path).")
        .def(
            "count",
            [](const G& g) {
                GilSafeLock l(g.mutex);
                return g.sketch.count();
            },
            "Estimated number of distinct items.")
        .def(
            "merge",
            [](G& g, const std::vector<const G*>& others) {
                std::vector<HyperLogLog> copies;
                for (const G* o : others) copies.push_back(o->copy());
                GilSafeLock lock(g.mutex);
                HyperLogLog merged = g.sketch;
                for (const auto& c : copies) merged.merge(c);
                g.sketch = std::move(merged);
            },
            py::arg("others"), "Fold other sketches of the same precision in.")
        .def(
            "clear",
            [](G& g) {
                GilSafeLock l(g.mutex);
                g.sketch.clear();
            },
            "Forget every item.")
        .def("to_bytes", &to_blob<HyperLogLog>, "Versioned, checksummed bytes.")
        .def_static("from_bytes", &from_blob<HyperLogLog>, py::arg("data"),
                    "Load bytes from to_bytes; ValueError when they are corrupt.")
        .def_static(
            "hash_items",
            [](py::handle items) {
                const ItemBatch b = to_items(items);
                py::array_t<uint64_t> out(static_cast<py::ssize_t>(b.size()));
                std::copy(b.hashes.begin(), b.hashes.end(), out.mutable_data());
                return out;
            },
            py::arg("items"), "The 64-bit xxHash64 of each item (what every sketch hashes).");
    def_fast<G, add_one, kGeneralAdd>(cls, "add",
                                      "add($self, items, /)\n--\n\nAdd items; True when a register changed.");
    def_install_forward<G, add_one, kGeneralAdd>(cls);
}

}  // namespace anomaly_detection::bindings

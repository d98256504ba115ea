// Bindings of the count-min sketch.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "anomaly_detection/sketches/count_min.hpp"
#include "anomaly_detection/sketches/errors.hpp"
#include "fast_method.hpp"
#include "items.hpp"

namespace anomaly_detection::bindings {

namespace {

/// Count-min's hot path, a 1-D integer array with one int increment: the ints are
/// hashed a chunk at a time into a buffer that stays in L1 and added chunk by
/// chunk, instead of materialising (and page-faulting) an 8-byte hash per item.
/// Only when the whole batch cannot overflow (so chunking keeps "all or nothing");
/// nullopt sends every other case down the general path.
template <typename G>
std::optional<py::object> count_min_int_array(G& g, py::handle items, py::handle increments) {
    if (!py::isinstance<py::array>(items) || !PyLong_CheckExact(increments.ptr())) return std::nullopt;
    auto a = py::reinterpret_borrow<py::array>(items);
    const char kind = a.dtype().kind();
    if (a.ndim() != 1 || (kind != 'i' && kind != 'u')) return std::nullopt;
    int overflow = 0;
    const long long inc = PyLong_AsLongLongAndOverflow(increments.ptr(), &overflow);
    if (overflow != 0 || inc < 0 || static_cast<uint64_t>(inc) > CountMinSketch::kMaxCounter) {
        PyErr_Clear();
        return std::nullopt;
    }
    std::vector<uint64_t> bits;  // the items as 8-byte two's complement, as push_ints hashes them
    const uint64_t* data = nullptr;
    py::object keep;
    if (kind == 'i') {
        auto arr = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
        keep = arr;
        data = reinterpret_cast<const uint64_t*>(arr.data());
    } else {
        auto arr = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>::ensure(a);
        keep = arr;
        data = arr.data();
    }
    const auto n = static_cast<size_t>(a.shape(0));
    U64Out out(n, false);
    uint64_t* po = out.data();
    bool done = false;
    run(g, n, [&](CountMinSketch& s) {
        const uint64_t room = CountMinSketch::kMaxCounter - std::min(s.total(), CountMinSketch::kMaxCounter);
        if (inc != 0 && n > room / static_cast<uint64_t>(inc))
            return;  // may overflow: the general path checks and undoes
        constexpr size_t kChunk = 1024;
        uint64_t hashes[kChunk];
        for (size_t begin = 0; begin < n; begin += kChunk) {
            const size_t count = std::min(kChunk, n - begin);
            for (size_t i = 0; i < count; ++i) hashes[i] = hash_int_bits(data[begin + i]);
            s.incrby(hashes, nullptr, count, po + begin, static_cast<uint64_t>(inc));
        }
        done = true;
    });
    if (!done) return std::nullopt;
    return out.result();
}

}  // namespace

namespace {
using G = Guarded<CountMinSketch>;

// incrby(item) or incrby(item, increment) of one str, bytes or int and one int.
bool incrby_one(G& g, PyObject* const* args, Py_ssize_t nargs, PyObject*& result) {
    OneItem one;
    uint64_t inc = 1, estimate = 0;
    if (nargs < 1 || nargs > 2 || (nargs == 2 && !one_count(args[1], inc)) || !one_item(args[0], one)) return false;
    {
        GilSafeLock lock(g.mutex);
        g.sketch.incrby(&one.hash, nullptr, 1, &estimate, inc);  // all or nothing: may throw before any change
    }
    result = PyLong_FromUnsignedLongLong(estimate);
    return true;
}
}  // namespace

void bind_count_min(py::module_& m) {
    py::class_<G> cls(m, "CountMinSketch", "Count-min sketch with saturating 32-bit counters.");
    cls.def(py::init<uint32_t, uint32_t, bool, uint64_t>(), py::arg("width"), py::arg("depth"),
            py::arg("conservative") = false, py::arg("seed") = 0, "A sketch of depth rows of width counters.")
        .def_static(
            "from_error",
            [](double epsilon, double delta, bool conservative, uint64_t seed) {
                return std::make_unique<G>(CountMinSketch::from_error(epsilon, delta, conservative, seed));
            },
            py::arg("epsilon"), py::arg("delta"), py::arg("conservative") = false, py::arg("seed") = 0,
            "A sketch whose error is at most epsilon * total with probability 1 - delta.")
        .def_property_readonly("width", [](const G& g) { return g.sketch.width(); })
        .def_property_readonly("depth", [](const G& g) { return g.sketch.depth(); })
        .def_property_readonly("conservative", [](const G& g) { return g.sketch.conservative(); })
        .def_property_readonly("seed", [](const G& g) { return g.sketch.seed(); })
        .def_property_readonly("total",
                               [](const G& g) {
                                   GilSafeLock l(g.mutex);
                                   return g.sketch.total();
                               })
        .def_property_readonly("memory_bytes", [](const G& g) { return g.sketch.memory_bytes(); })
        .def(
            "_incrby",
            [](G& g, py::handle items, py::handle increments) -> py::object {
                OneItem one;
                uint64_t one_inc = 0, estimate = 0;
                if (one_item(items, one) && one_count(increments, one_inc)) {
                    GilSafeLock lock(g.mutex);
                    g.sketch.incrby(&one.hash, nullptr, 1, &estimate, one_inc);
                    return py::int_(estimate);
                }
                if (auto fused = count_min_int_array(g, items, increments)) return *fused;
                const ItemBatch b = to_items(items);
                const auto inc = to_increments(increments, b.size());
                U64Out out(b.size(), b.scalar);
                uint64_t* po = out.data();
                run(g, b.size(),
                    [&](CountMinSketch& s) { s.incrby(b.hashes.data(), inc.data(), b.size(), po, inc.constant); });
                return out.result();
            },
            py::arg("items"), py::arg("increments") = 1, "incrby() for any items (the general path).")
        .def("query", counts_of<CountMinSketch>(&CountMinSketch::query), py::arg("items"),
             "Estimated counts (never below the true counts).")
        .def("positions", positions_of<CountMinSketch>(&CountMinSketch::positions, &CountMinSketch::depth),
             py::arg("items"), "Counter indices (row * width + column), shape (n, depth).")
        .def(
            "merge",
            [](G& g, const std::vector<const G*>& others, const std::vector<uint64_t>& weights) {
                std::vector<CountMinSketch> copies;
                copies.reserve(others.size());
                for (const G* o : others) copies.push_back(o->copy());
                std::vector<const CountMinSketch*> ptrs;
                for (const auto& c : copies) ptrs.push_back(&c);
                GilSafeLock lock(g.mutex);
                g.sketch.merge(ptrs, weights);
            },
            py::arg("others"), py::arg("weights"), "this += sum(weights[i] * others[i]), saturating.")
        .def(
            "counters",
            [](const G& g) {
                GilSafeLock lock(g.mutex);
                const auto& c = g.sketch.counters();
                py::array_t<uint32_t> out(static_cast<py::ssize_t>(c.size()));
                std::copy(c.begin(), c.end(), out.mutable_data());
                return out;
            },
            "A copy of the counters, row after row.")
        .def(
            "load_counters",
            [](G& g, const py::array_t<uint32_t, py::array::c_style | py::array::forcecast>& c) {
                if (c.ndim() != 1) throw std::invalid_argument("counters: expected a 1-D array");
                GilSafeLock lock(g.mutex);
                g.sketch.load_counters(c.data(), static_cast<size_t>(c.shape(0)));
            },
            py::arg("counters"), "Replace every counter (row after row); total becomes the largest row sum.")
        .def(
            "clear",
            [](G& g) {
                GilSafeLock l(g.mutex);
                g.sketch.clear();
            },
            "Reset every counter.")
        .def("to_bytes", &to_blob<CountMinSketch>, "Versioned, checksummed bytes.")
        .def_static("from_bytes", &from_blob<CountMinSketch>, py::arg("data"),
                    "Load bytes from to_bytes; ValueError when they are corrupt.");
    def_fast<G, incrby_one, kGeneralIncrby>(
        cls, "incrby",
        "incrby($self, items, increments=1, /)\n--\n\n"
        "Add increments (one int or one per item); returns the new estimates. All or nothing.");
    def_install_forward<G, incrby_one, kGeneralIncrby>(cls);
}

}  // namespace anomaly_detection::bindings

// Bindings of the top-k sketch.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "anomaly_detection/sketches/errors.hpp"
#include "anomaly_detection/sketches/top_k.hpp"
#include "fast_method.hpp"
#include "items.hpp"

namespace anomaly_detection::bindings {

namespace {
using G = Guarded<TopK>;

// incrby(item) or incrby(item, increment) of one str, bytes or int and one int.
bool incrby_one(G& g, PyObject* const* args, Py_ssize_t nargs, PyObject*& result) {
    OneItem one;
    uint64_t inc = 1;
    if (nargs < 1 || nargs > 2 || (nargs == 2 && !one_count(args[1], inc)) || !one_item(args[0], one)) return false;
    TopK::Entry expelled;
    bool pushed = false;
    {
        GilSafeLock lock(g.mutex);
        pushed = g.sketch.incrby_one(one.text, one.kind, one.hash, inc, expelled);  // checks before any change
    }
    if (!pushed) {
        Py_INCREF(Py_None);
        result = Py_None;
        return true;
    }
    try {  // counted already: an error here is raised, not retried
        result = decode(expelled).release().ptr();
    } catch (py::error_already_set& e) {
        e.restore();
        result = nullptr;
    }
    return true;
}

// add(item) of one str, bytes or int: incrby(item, 1).
bool add_one(G& g, PyObject* const* args, Py_ssize_t nargs, PyObject*& result) {
    return nargs == 1 && incrby_one(g, args, 1, result);
}

// incrby() for any items: one item, batches (lists, NumPy arrays), errors.
py::object incrby_general(G& g, py::handle items, py::handle increments) {
    OneItem one;
    uint64_t one_inc = 0;
    if (one_item(items, one) && one_count(increments, one_inc)) {
        std::vector<std::pair<size_t, TopK::Entry>> expelled;  // allocates only if one is pushed out
        {
            GilSafeLock lock(g.mutex);
            g.sketch.incrby(&one.text, &one.kind, &one.hash, &one_inc, 1, &expelled);
        }
        return expelled.empty() ? py::object(py::none()) : decode(expelled[0].second);
    }
    ItemBatch b = to_items(items, true, true);
    const auto parsed = to_increments(increments, b.size());
    // The core reads a null increment array as "1 each": the common case copies nothing.
    const bool ones = parsed.per_item.empty() && parsed.constant == 1;
    const auto inc = ones ? std::vector<uint64_t>{} : parsed.expanded(b.size());
    const uint64_t* pinc = ones ? nullptr : inc.data();
    std::vector<std::pair<size_t, TopK::Entry>> expelled;
    const TopK::ItemText text = [&b](size_t i, uint8_t& kind) { return b.text_at(i, kind); };
    // A NumPy array is grouped by its cells first, hashing only distinct items;
    // cells that cannot be (wider, not ASCII) change nothing and are hashed here,
    // with the GIL held again (hash_source may release it, and may raise).
    bool grouped = false;
    if (b.unhashed()) {
        run(g, b.size(), [&](TopK& s) {
            grouped = s.add_cells(b.source_data, b.source_width, b.cell_format(), b.size(), pinc, text, &expelled);
        });
        if (!grouped) b.hash_source();
    }
    if (!grouped) run(g, b.size(), [&](TopK& s) { s.add_batch(b.hashes.data(), pinc, b.size(), text, &expelled); });
    if (b.scalar) return expelled.empty() ? py::object(py::none()) : decode(expelled[0].second);
    // One None per item, filled without a pybind11 accessor per element.
    PyObject* out = PyList_New(static_cast<Py_ssize_t>(b.size()));
    if (!out) throw py::error_already_set();
    auto list = py::reinterpret_steal<py::list>(out);
    for (size_t i = 0; i < b.size(); ++i) {
        Py_INCREF(Py_None);
        PyList_SET_ITEM(out, static_cast<Py_ssize_t>(i), Py_None);
    }
    for (const auto& [i, item] : expelled) list[i] = decode(item);
    return std::move(list);
}
}  // namespace

void bind_top_k(py::module_& m) {
    py::class_<G> cls(m, "TopK", "HeavyKeeper top-k.");
    cls.def(py::init<uint32_t, uint32_t, uint32_t, double, uint64_t>(), py::arg("k"), py::arg("width") = 8,
            py::arg("depth") = 7, py::arg("decay") = 0.9, py::arg("seed") = 0, "Keep the k heaviest items.")
        .def_property_readonly("k", [](const G& g) { return g.sketch.k(); })
        .def_property_readonly("width", [](const G& g) { return g.sketch.width(); })
        .def_property_readonly("depth", [](const G& g) { return g.sketch.depth(); })
        .def_property_readonly("decay", [](const G& g) { return g.sketch.decay(); })
        .def_property_readonly("memory_bytes",
                               [](const G& g) {
                                   GilSafeLock l(g.mutex);
                                   return g.sketch.memory_bytes();
                               })
        .def("_incrby", &incrby_general, py::arg("items"), py::arg("increments") = 1,
             "incrby() for any items (the general path).")
        .def(
            "_add", [](G& g, py::handle items) { return incrby_general(g, items, py::int_(1)); }, py::arg("items"),
            "incrby(items, 1) for any items (the general path of add).")
        .def(
            "query",
            [](G& g, py::handle items) {
                ItemBatch b = to_items(items, true);
                b.materialize();
                std::vector<uint8_t> in(b.size());
                run(g, b.size(), [&](TopK& s) {
                    for (size_t i = 0; i < b.size(); ++i) in[i] = s.query(b.texts[i], b.hashes[i]) ? 1 : 0;
                });
                return result_flags(in, b.scalar);
            },
            py::arg("items"), "True where the item is in the top k.")
        .def(
            "count",
            [](G& g, py::handle items) {
                const ItemBatch b = to_items(items);
                U64Out out(b.size(), b.scalar);
                uint64_t* po = out.data();
                run(g, b.size(), [&](TopK& s) {
                    for (size_t i = 0; i < b.size(); ++i) po[i] = s.count(b.hashes[i]);
                });
                return out.result();
            },
            py::arg("items"), "Estimated counts from the buckets.")
        .def(
            "list",
            [](const G& g, bool with_count) {
                std::vector<TopK::Entry> entries;
                {
                    GilSafeLock l(g.mutex);
                    entries = g.sketch.list();
                }
                py::list out;
                for (const auto& e : entries) {
                    if (with_count)
                        out.append(py::make_tuple(decode(e), e.count));
                    else
                        out.append(decode(e));
                }
                return out;
            },
            py::arg("with_count") = false, "The top k, heaviest first (with counts: (item, count) pairs).")
        .def(
            "merge",
            [](G& g, const std::vector<const G*>& others) {
                std::vector<TopK> copies;
                for (const G* o : others) copies.push_back(o->copy());
                GilSafeLock lock(g.mutex);
                TopK merged = g.sketch;
                for (const auto& c : copies) merged.merge(c);
                g.sketch = std::move(merged);
            },
            py::arg("others"), "Fold other top-k sketches with the same parameters in.")
        .def("to_bytes", &to_blob<TopK>, "Versioned, checksummed bytes.")
        .def_static("from_bytes", &from_blob<TopK>, py::arg("data"),
                    "Load bytes from to_bytes; ValueError when they are corrupt.");
    def_fast<G, incrby_one, kGeneralIncrby>(
        cls, "incrby",
        "incrby($self, items, increments=1, /)\n--\n\n"
        "Add increments (1..2^32-1); returns the item each one pushed out of the top k, or None.");
    // The user-facing class forwards add and incrby: one installer for both names.
    cls.def_static(
        "_install_fast_method",
        [](py::handle wrapper, const std::string& name) {
            if (name == "add")
                install_forward<G, add_one, kGeneralAdd>(wrapper, name);
            else
                install_forward<G, incrby_one, kGeneralIncrby>(wrapper, name);
        },
        py::arg("cls"), py::arg("name"),
        "Make cls.<name> (a Python method that calls this class's incrby on self._native: add with increment 1, "
        "or incrby) call it with no Python frame.");
}

}  // namespace anomaly_detection::bindings

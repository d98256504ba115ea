// Bindings of the t-digest sketch.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "anomaly_detection/sketches/errors.hpp"
#include "anomaly_detection/sketches/t_digest.hpp"
#include "fast_method.hpp"
#include "items.hpp"

namespace anomaly_detection::bindings {

namespace {
using G = Guarded<TDigest>;

// add(value) or add(value, None) of one float.
bool add_one(G& g, PyObject* const* args, Py_ssize_t nargs, PyObject*& result) {
    if (nargs < 1 || nargs > 2 || (nargs == 2 && args[1] != Py_None) || !PyFloat_CheckExact(args[0])) return false;
    const double v = PyFloat_AS_DOUBLE(args[0]);
    {
        GilSafeLock lock(g.mutex);
        g.sketch.add(&v, nullptr, 1);  // checks the value before adding it
    }
    Py_INCREF(Py_None);
    result = Py_None;
    return true;
}
}  // namespace

void bind_t_digest(py::module_& m) {
    py::class_<G> cls(m, "TDigest", "Merging t-digest.");
    cls.def(py::init<double>(), py::arg("compression") = 100.0, "A digest of about compression centroids.")
        .def_property_readonly("compression", [](const G& g) { return g.sketch.compression(); })
        .def_property_readonly("total_weight",
                               [](const G& g) {
                                   GilSafeLock l(g.mutex);
                                   return g.sketch.total_weight();
                               })
        .def_property_readonly("memory_bytes",
                               [](const G& g) {
                                   GilSafeLock l(g.mutex);
                                   return g.sketch.memory_bytes();
                               })
        .def(
            "min",
            [](const G& g) {
                GilSafeLock l(g.mutex);
                return g.sketch.min();
            },
            "Smallest value (NaN when empty).")
        .def(
            "max",
            [](const G& g) {
                GilSafeLock l(g.mutex);
                return g.sketch.max();
            },
            "Largest value (NaN when empty).")
        .def(
            "_add",
            [](G& g, py::handle values, py::handle weights) {
                if (PyFloat_CheckExact(values.ptr()) && weights.is_none()) {  // one value: no arrays
                    const double v = PyFloat_AS_DOUBLE(values.ptr());
                    GilSafeLock lock(g.mutex);
                    g.sketch.add(&v, nullptr, 1);
                    return;
                }
                const DoubleArray v = to_doubles(values, "values");
                std::optional<DoubleArray> w;
                if (!weights.is_none()) {
                    w = to_doubles(weights, "weights");
                    if (w->size() != v.size())
                        throw std::invalid_argument("weights: expected " + std::to_string(v.size()) + " weights, got " +
                                                    std::to_string(w->size()));
                }
                const size_t n = static_cast<size_t>(v.size());
                const double* pv = v.data();
                const double* pw = w ? w->data() : nullptr;
                run(g, n, [&](TDigest& s) { s.add(pv, pw, n); });
            },
            py::arg("values"), py::arg("weights") = py::none(), "add() for any values (the general path).")
        .def(
            "quantile",
            [](G& g, py::handle q) -> py::object {
                const DoubleArray qs = to_doubles(q, "q");
                py::array_t<double> out(qs.size());
                const size_t n = static_cast<size_t>(qs.size());
                const double* pq = qs.data();
                double* po = out.mutable_data();
                run(g, n, [&](TDigest& s) {
                    for (size_t i = 0; i < n; ++i) po[i] = s.quantile(pq[i]);
                });
                return result(out, qs.ndim() == 0);
            },
            py::arg("q"), "Values at quantiles q in [0, 1] (NaN when empty).")
        .def(
            "cdf",
            [](G& g, py::handle x) -> py::object {
                const DoubleArray xs = to_doubles(x, "x");
                py::array_t<double> out(xs.size());
                const size_t n = static_cast<size_t>(xs.size());
                const double* px = xs.data();
                double* po = out.mutable_data();
                run(g, n, [&](TDigest& s) {
                    for (size_t i = 0; i < n; ++i) po[i] = s.cdf(px[i]);
                });
                return result(out, xs.ndim() == 0);
            },
            py::arg("x"), "Fraction of the weight below x (NaN when empty).")
        .def(
            "trimmed_mean",
            [](const G& g, double lo, double hi) {
                GilSafeLock l(g.mutex);
                return g.sketch.trimmed_mean(lo, hi);
            },
            py::arg("low"), py::arg("high"), "Mean of the values between quantiles low and high.")
        .def(
            "centroids",
            [](const G& g) {
                std::vector<TDigest::Centroid> c;
                {
                    GilSafeLock l(g.mutex);
                    c = g.sketch.centroids();
                }
                py::array_t<double> means(static_cast<py::ssize_t>(c.size())),
                    weights(static_cast<py::ssize_t>(c.size()));
                for (size_t i = 0; i < c.size(); ++i) {
                    means.mutable_data()[i] = c[i].mean;
                    weights.mutable_data()[i] = c[i].weight;
                }
                return py::make_tuple(means, weights);
            },
            "(means, weights) of the centroids.")
        .def(
            "merge",
            [](G& g, const std::vector<const G*>& others, bool scale_to_fit) {
                std::vector<TDigest> copies;
                for (const G* o : others) copies.push_back(o->copy());
                std::vector<const TDigest*> ptrs;
                for (const auto& c : copies) ptrs.push_back(&c);
                GilSafeLock lock(g.mutex);
                g.sketch.merge(ptrs, scale_to_fit);
            },
            py::arg("others"), py::arg("scale_to_fit") = false,
            "Fold other digests of the same compression in; scale_to_fit halves every weight as often as a "
            "total beyond the largest double needs (else ValueError).")
        .def(
            "clear",
            [](G& g) {
                GilSafeLock l(g.mutex);
                g.sketch.clear();
            },
            "Forget every value.")
        .def("to_bytes", &to_blob<TDigest>, "Versioned, checksummed bytes.")
        .def_static("from_bytes", &from_blob<TDigest>, py::arg("data"),
                    "Load bytes from to_bytes; ValueError when they are corrupt.");
    def_fast<G, add_one, kGeneralAdd>(
        cls, "add", "add($self, values, weights=None, /)\n--\n\nAdd finite values with positive weights (default 1).");
    def_install_forward<G, add_one, kGeneralAdd>(cls);
}

}  // namespace anomaly_detection::bindings

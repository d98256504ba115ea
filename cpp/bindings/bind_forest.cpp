// Bindings of the forest family: IsolationForest and HalfSpaceTrees.
//
// Arrays arrive as py::array_t<double, c_style | forcecast>: pybind11 converts
// float32, integer and Fortran-ordered input to a C-contiguous float64 copy (and
// passes a matching array through untouched). Shape and finiteness are checked
// while the GIL is held, because the array object may only be inspected with
// it; the O(n) work then runs without the GIL on a view of the buffer, which
// stays alive because the array_t argument holds a reference for the call.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

#include "anomaly_detection/forest/isolation_forest.hpp"

namespace py = pybind11;
using namespace anomaly_detection;

namespace {

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using MatrixView = Eigen::Map<const RowMatrixXd>;

// Checks a 2-D, non-empty, finite matrix and returns a view of it.
MatrixView matrix_view(const DoubleArray& X, const char* name = "X") {
    if (X.ndim() != 2)
        throw std::invalid_argument(std::string(name) + ": expected a 2-D array (n_samples, n_features), got " +
                                    std::to_string(X.ndim()) + "-D");
    if (X.shape(0) == 0 || X.shape(1) == 0)
        throw std::invalid_argument(std::string(name) + ": expected a non-empty array, got shape (" +
                                    std::to_string(X.shape(0)) + ", " + std::to_string(X.shape(1)) + ")");
    const double* p = X.data();
    const auto size = static_cast<size_t>(X.size());
    for (size_t i = 0; i < size; ++i)
        if (!std::isfinite(p[i]))
            throw std::invalid_argument(std::string(name) + ": expected finite values, got " +
                                        std::to_string(p[i]) + " at row " + std::to_string(i / X.shape(1)) +
                                        ", column " + std::to_string(i % X.shape(1)));
    return MatrixView(p, X.shape(0), X.shape(1));
}

py::array_t<double> to_numpy(Eigen::VectorXd&& v) {
    auto* heap = new Eigen::VectorXd(std::move(v));
    py::capsule owner(heap, [](void* p) { delete static_cast<Eigen::VectorXd*>(p); });
    return py::array_t<double>(heap->size(), heap->data(), owner);
}

// Runs a scoring method of the forest on X without the GIL.
template <typename Method>
py::array_t<double> score_with(const IsolationForest& f, const DoubleArray& X, unsigned n_threads, Method method) {
    const MatrixView view = matrix_view(X);
    Eigen::VectorXd out;
    {
        py::gil_scoped_release release;
        out = (f.*method)(view, n_threads);
    }
    return to_numpy(std::move(out));
}

void bind_isolation_forest(py::module_& m) {
    py::class_<IsolationForest>(m, "IsolationForest",
                                "Isolation Forest with scikit-learn's semantics (private core of "
                                "anomaly_detection.forest.IsolationForest).")
        .def(py::init([](size_t n_estimators, size_t max_samples, size_t max_features, double contamination,
                         bool bootstrap, uint64_t seed) {
                 return IsolationForest(
                     IsolationForestConfig{n_estimators, max_samples, max_features, contamination, bootstrap, seed});
             }),
             py::arg("n_estimators") = 100, py::arg("max_samples") = 0, py::arg("max_features") = 0,
             py::arg("contamination") = 0.0, py::arg("bootstrap") = false, py::arg("seed") = 0,
             "Counts are resolved: max_samples 0 is 'auto', max_features 0 is all, contamination 0 is 'auto'.")
        .def(
            "fit",
            [](IsolationForest& f, const DoubleArray& X, unsigned n_threads) {
                const MatrixView view = matrix_view(X);
                py::gil_scoped_release release;
                f.fit(view, n_threads);
            },
            py::arg("X"), py::arg("n_threads") = 1,
            "Grow the trees on X (releases the GIL); n_threads 0 means one per core.")
        .def(
            "score_samples",
            [](const IsolationForest& f, const DoubleArray& X, unsigned n_threads) {
                using Fn = Eigen::VectorXd (IsolationForest::*)(Eigen::Ref<const RowMatrixXd>, unsigned) const;
                return score_with(f, X, n_threads, static_cast<Fn>(&IsolationForest::score_samples));
            },
            py::arg("X"), py::arg("n_threads") = 1, "Negated anomaly score of each row (lower is more abnormal).")
        .def(
            "decision_function",
            [](const IsolationForest& f, const DoubleArray& X, unsigned n_threads) {
                return score_with(f, X, n_threads, &IsolationForest::decision_function);
            },
            py::arg("X"), py::arg("n_threads") = 1, "score_samples - offset: negative for outliers.")
        .def(
            "mean_path_length",
            [](const IsolationForest& f, const DoubleArray& X, unsigned n_threads) {
                return score_with(f, X, n_threads, &IsolationForest::mean_path_length);
            },
            py::arg("X"), py::arg("n_threads") = 1, "Mean path length E[h(x)] of each row over the trees.")
        .def_property_readonly("is_fitted", &IsolationForest::is_fitted, "Whether fit has run.")
        .def_property_readonly("offset", &IsolationForest::offset, "offset_ (RuntimeError before fit).")
        .def_property_readonly("max_samples_used", &IsolationForest::max_samples_used, "Rows per tree of the fit.")
        .def_property_readonly("n_features_in", &IsolationForest::n_features_in, "Columns seen by fit.")
        .def_property_readonly("n_trees", &IsolationForest::n_trees, "Number of fitted trees.")
        .def_property_readonly("n_nodes", &IsolationForest::n_nodes, "Nodes of every tree together.")
        .def_property_readonly(
            "config",
            [](const IsolationForest& f) {
                const auto& c = f.config();
                return py::make_tuple(c.n_estimators, c.max_samples, c.max_features, c.contamination, c.bootstrap,
                                      c.seed);
            },
            "(n_estimators, max_samples, max_features, contamination, bootstrap, seed) as resolved counts.")
        .def("to_bytes", [](const IsolationForest& f) { return py::bytes(f.to_bytes()); },
             "Versioned, checksummed bytes of the config and the trees.")
        .def_static(
            "from_bytes", [](const py::bytes& b) { return IsolationForest::from_bytes(std::string_view(b)); },
            py::arg("data"), "Restore from to_bytes; raises ValueError on corrupt bytes.");
}

}  // namespace

void bind_forest(py::module_& m) { bind_isolation_forest(m); }

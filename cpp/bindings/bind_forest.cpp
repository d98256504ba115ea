// Bindings of the forest family: IsolationForest and HalfSpaceTrees.
//
// Arrays arrive as py::array_t<double, c_style | forcecast>: pybind11 converts
// float32, integer and Fortran-ordered input to a C-contiguous float64 copy (and
// passes a matching array through untouched). IsolationForest's fit and scoring
// methods take any array instead and read float64 and float32 (scoring: also small
// integers) in place whatever its strides (see strided_rows), converting the rest
// the same way; the core checks the values finite as it reads them. The shape is
// checked while the GIL is held, because the array object may only be inspected
// with it; the O(n) work then runs without the GIL on a view of the buffer, which
// stays alive because the array argument holds a reference for the call.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "anomaly_detection/forest/half_space_trees.hpp"
#include "anomaly_detection/forest/isolation_forest.hpp"
#include "common.hpp"

namespace py = pybind11;
using namespace anomaly_detection;

namespace {

using bindings::DoubleArray;
using bindings::to_numpy;
using MatrixView = Eigen::Map<const RowMatrixXd>;

// Checks a 2-D, non-empty, finite matrix and returns a view of it (finite_known: converted
// from integers, which are finite).
MatrixView matrix_view(const DoubleArray& X, const char* name = "X", bool finite_known = false) {
    if (X.ndim() != 2)
        throw std::invalid_argument(std::string(name) + ": expected a 2-D array (n_samples, n_features), got " +
                                    std::to_string(X.ndim()) + "-D");
    if (X.shape(0) == 0 || X.shape(1) == 0)
        throw std::invalid_argument(std::string(name) + ": expected a non-empty array, got shape (" +
                                    std::to_string(X.shape(0)) + ", " + std::to_string(X.shape(1)) + ")");
    const double* p = X.data();
    const auto size = static_cast<size_t>(X.size());
    for (size_t i = 0; i < size && !finite_known; ++i)
        if (!std::isfinite(p[i]))
            throw std::invalid_argument(std::string(name) + ": expected finite values, got " + std::to_string(p[i]) +
                                        " at row " + std::to_string(i / X.shape(1)) + ", column " +
                                        std::to_string(i % X.shape(1)));
    return MatrixView(p, X.shape(0), X.shape(1));
}

enum class Scoring { score, decision, path_length };

template <typename Rows>
Eigen::VectorXd run_scoring(const IsolationForest& f, const Rows& X, unsigned n_threads, Scoring what) {
    switch (what) {
        case Scoring::score:
            return f.score_samples(X, n_threads);
        case Scoring::decision:
            return f.decision_function(X, n_threads);
        default:
            return f.mean_path_length(X, n_threads);
    }
}

// A 2-D, non-empty, aligned native array of type T with positive strides (C or Fortran order,
// a slice), as a view the core reads in place: integers are finite and exact as doubles; the
// core checks floats finite as it reads them.
template <typename T>
bool strided_rows(const py::array& X, StridedRows<T>* rows) {
    const auto item = static_cast<py::ssize_t>(sizeof(T));
    if (X.ndim() != 2 || !py::isinstance<py::array_t<T>>(X) ||
        (X.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) == 0 || X.shape(0) == 0 || X.shape(1) == 0 ||
        X.strides(0) <= 0 || X.strides(1) <= 0 || X.strides(0) % item != 0 || X.strides(1) % item != 0)
        return false;
    *rows = StridedRows<T>{static_cast<const T*>(X.data()), static_cast<size_t>(X.shape(0)),
                           static_cast<size_t>(X.shape(1)), X.strides(0) / item, X.strides(1) / item};
    return true;
}

template <typename T>
bool score_in_place(const IsolationForest& f, const py::array& X, unsigned n_threads, Scoring what,
                    Eigen::VectorXd* out) {
    StridedRows<T> rows;
    if (!strided_rows(X, &rows)) return false;
    py::gil_scoped_release release;
    *out = run_scoring(f, rows, n_threads, what);
    return true;
}

// Runs a scoring method of the forest on X without the GIL: float64, float32 and integer
// arrays of up to 32 bits in place, anything else converted once to C-ordered float64.
py::array_t<double> score_with(const IsolationForest& f, const py::array& X, unsigned n_threads, Scoring what) {
    Eigen::VectorXd out;
    if (score_in_place<double>(f, X, n_threads, what, &out) || score_in_place<float>(f, X, n_threads, what, &out) ||
        score_in_place<uint8_t>(f, X, n_threads, what, &out) || score_in_place<int8_t>(f, X, n_threads, what, &out) ||
        score_in_place<int16_t>(f, X, n_threads, what, &out) || score_in_place<uint16_t>(f, X, n_threads, what, &out) ||
        score_in_place<int32_t>(f, X, n_threads, what, &out))
        return to_numpy(std::move(out));
    const DoubleArray converted = DoubleArray::ensure(X);
    if (!converted) throw py::error_already_set();
    matrix_view(converted, "X", true);  // the shape; the core checks the values finite as it reads them
    const StridedRows<double> rows{converted.data(), static_cast<size_t>(converted.shape(0)),
                                   static_cast<size_t>(converted.shape(1)), converted.shape(1), 1};
    {
        py::gil_scoped_release release;
        out = run_scoring(f, rows, n_threads, what);
    }
    return to_numpy(std::move(out));
}

// Fits on float64 or float32 in place (any positive strides), anything else converted once.
void fit_with(IsolationForest& f, const py::array& X, unsigned n_threads) {
    StridedRows<double> rows64;
    StridedRows<float> rows32;
    if (strided_rows(X, &rows64)) {
        py::gil_scoped_release release;
        f.fit(rows64, n_threads);
    } else if (strided_rows(X, &rows32)) {
        py::gil_scoped_release release;
        f.fit(rows32, n_threads);
    } else {
        const DoubleArray converted = DoubleArray::ensure(X);
        if (!converted) throw py::error_already_set();
        const MatrixView view = matrix_view(converted, "X", true);  // the core checks the values finite
        py::gil_scoped_release release;
        f.fit(view, n_threads);
    }
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
            "fit", [](IsolationForest& f, const py::array& X, unsigned n_threads) { fit_with(f, X, n_threads); },
            py::arg("X"), py::arg("n_threads") = 1,
            "Grow the trees on X (releases the GIL); n_threads 0 means one per core.")
        .def(
            "score_samples",
            [](const IsolationForest& f, const py::array& X, unsigned n_threads) {
                return score_with(f, X, n_threads, Scoring::score);
            },
            py::arg("X"), py::arg("n_threads") = 1, "Negated anomaly score of each row (lower is more abnormal).")
        .def(
            "decision_function",
            [](const IsolationForest& f, const py::array& X, unsigned n_threads) {
                return score_with(f, X, n_threads, Scoring::decision);
            },
            py::arg("X"), py::arg("n_threads") = 1, "score_samples - offset: negative for outliers.")
        .def(
            "mean_path_length",
            [](const IsolationForest& f, const py::array& X, unsigned n_threads) {
                return score_with(f, X, n_threads, Scoring::path_length);
            },
            py::arg("X"), py::arg("n_threads") = 1, "Mean path length E[h(x)] of each row over the trees.")
        .def_property_readonly("is_fitted", &IsolationForest::is_fitted, "Whether fit has run.")
        .def_property_readonly("offset", &IsolationForest::offset, "offset_ (RuntimeError before fit).")
        .def_property_readonly("max_samples_used", &IsolationForest::max_samples_used, "Rows per tree of the fit.")
        .def_property_readonly("n_features_in", &IsolationForest::n_features_in, "Columns seen by fit.")
        .def_property_readonly("n_trees", &IsolationForest::n_trees, "Number of fitted trees.")
        .def_property_readonly("n_nodes", &IsolationForest::n_nodes, "Nodes of every tree together.")
        .def_property_readonly("scoring_layout", &IsolationForest::scoring_layout,
                               "Scoring walk: 'rank-avx2', 'rank', 'heap' or 'node' (RuntimeError before fit).")
        .def("set_vector_walk", &IsolationForest::set_vector_walk, py::arg("enabled"),
             "Allow (default) or forbid this forest the AVX2 walk; returns the previous setting. "
             "For tests and benchmarks: the scores are the same bit for bit.")
        .def_static("vector_walk_supported", &IsolationForest::vector_walk_supported,
                    "Whether this CPU and build can take the AVX2 walk.")
        .def_property_readonly(
            "config",
            [](const IsolationForest& f) {
                const auto& c = f.config();
                return py::make_tuple(c.n_estimators, c.max_samples, c.max_features, c.contamination, c.bootstrap,
                                      c.seed);
            },
            "(n_estimators, max_samples, max_features, contamination, bootstrap, seed) as resolved counts.")
        .def(
            "to_bytes", [](const IsolationForest& f) { return py::bytes(f.to_bytes()); },
            "Versioned, checksummed bytes of the config and the trees.")
        .def_static(
            "from_bytes", [](const py::bytes& b) { return IsolationForest::from_bytes(std::string_view(b)); },
            py::arg("data"), "Restore from to_bytes; raises ValueError on corrupt bytes.");
}

// Checks rows for HalfSpaceTrees: n_features columns, no infinity; NaN is a
// missing feature (a key absent from a dict), as in River.
const double* hst_rows(const HalfSpaceTrees& h, const DoubleArray& X, int ndim, size_t* n_rows) {
    if (X.ndim() != ndim)
        throw std::invalid_argument(std::string("x: expected a ") + std::to_string(ndim) + "-D array, got " +
                                    std::to_string(X.ndim()) + "-D");
    const auto width = static_cast<size_t>(X.shape(ndim - 1));
    if (width != h.n_features())
        throw std::invalid_argument("x: expected " + std::to_string(h.n_features()) + " features, got " +
                                    std::to_string(width));
    const double* p = X.data();
    for (py::ssize_t i = 0; i < X.size(); ++i)
        if (std::isinf(p[i])) throw std::invalid_argument("x: expected finite values, got inf");
    *n_rows = ndim == 1 ? 1 : static_cast<size_t>(X.shape(0));
    return p;
}

// Scores rows with a batch method of HalfSpaceTrees (const or not) without the GIL.
template <typename Model, typename Method>
py::array_t<double> hst_scores(Model& h, const DoubleArray& X, Method method) {
    size_t n;
    const double* rows = hst_rows(h, X, 2, &n);
    py::array_t<double> out(static_cast<py::ssize_t>(n));
    double* o = out.mutable_data();
    py::gil_scoped_release release;
    (h.*method)(rows, n, o);
    return out;
}

// HalfSpaceTrees plus what reading River's dicts needs. The model's features are
// named by Python keys (set_keys); each dict is read with PyDict_Next, and while it
// lists its keys in the order of the previous dict (the usual case: every dict of a
// stream built the same way), a key is matched by identity or by a string compare,
// with no lookup and no Python object made. Anything unusual (a value that is not a
// finite float or int, an integer too large) returns "not read", and the facade
// takes its checked Python path, which handles it or raises the ValueError.
class DictHalfSpaceTrees : public HalfSpaceTrees {
   public:
    explicit DictHalfSpaceTrees(HalfSpaceTrees core) : HalfSpaceTrees(std::move(core)), row_(n_features()) {}

    void set_keys(const py::sequence& keys) {
        if (static_cast<size_t>(py::len(keys)) != n_features())
            throw std::invalid_argument("keys: expected " + std::to_string(n_features()) + " keys, got " +
                                        std::to_string(py::len(keys)));
        py::dict index;
        for (size_t j = 0; j < n_features(); ++j) index[keys[j]] = py::int_(j);
        if (static_cast<size_t>(py::len(index)) != n_features())
            throw std::invalid_argument("keys: expected distinct keys");
        index_ = std::move(index);
        last_dict_ = nullptr;
        order_keys_.clear();
        order_features_.clear();
    }
    bool has_keys() const { return static_cast<bool>(index_); }

    // Fills row_ from the dict (NaN for an absent feature); false when the facade must
    // read it instead.
    bool read(PyObject* d) {
        if (!index_) return false;
#if PY_VERSION_HEX < 0x030C0000
        // PEP 509: a dict's version is globally unique and changes with every change to
        // the dict, so the same dict at the same version (score_one then learn_one of one
        // observation) holds the values already in row_; its values are floats and ints,
        // which cannot change. (The version is deprecated from Python 3.12: no shortcut.)
        const uint64_t version = reinterpret_cast<PyDictObject*>(d)->ma_version_tag;
        if (d == last_dict_ && version == last_version_) return true;
        last_dict_ = nullptr;
#endif
        if (!read_in_order(d) && !learn_order(d)) return false;
#if PY_VERSION_HEX < 0x030C0000
        last_dict_ = d;
        last_version_ = version;
#endif
        return true;
    }
    const double* row() const { return row_.data(); }

   private:
    static bool value_of(PyObject* v, double* out) {
        if (PyFloat_Check(v)) {
            *out = PyFloat_AS_DOUBLE(v);
            return std::isfinite(*out);
        }
        if (PyLong_CheckExact(v)) {
            *out = PyLong_AsDouble(v);
            if (*out == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                return false;
            }
            return true;
        }
        return false;
    }

    static bool same_key(PyObject* a, PyObject* b) {
        if (a == b) return true;
        if (PyUnicode_CheckExact(a) && PyUnicode_CheckExact(b)) {
            const Py_ssize_t n = PyUnicode_GET_LENGTH(a);
            return n == PyUnicode_GET_LENGTH(b) && PyUnicode_KIND(a) == PyUnicode_KIND(b) &&
                   std::memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), static_cast<size_t>(n) * PyUnicode_KIND(a)) == 0;
        }
        const int eq = PyObject_RichCompareBool(a, b, Py_EQ);
        if (eq < 0) PyErr_Clear();
        return eq == 1;
    }

    // The fast path: the dict has the keys of the previous one, in the same order.
    bool read_in_order(PyObject* d) {
        if (order_keys_.empty() || static_cast<size_t>(PyDict_GET_SIZE(d)) != order_keys_.size()) return false;
        std::fill(row_.begin(), row_.end(), std::numeric_limits<double>::quiet_NaN());
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        for (size_t i = 0; PyDict_Next(d, &pos, &key, &value); ++i) {
            if (!same_key(key, order_keys_[i].ptr())) return false;
            const int32_t j = order_features_[i];
            if (j >= 0 && !value_of(value, &row_[static_cast<size_t>(j)])) return false;
        }
        return true;
    }

    // Reads the dict by looking each key up, and remembers its order for the next one.
    bool learn_order(PyObject* d) {
        order_keys_.clear();
        order_features_.clear();
        std::fill(row_.begin(), row_.end(), std::numeric_limits<double>::quiet_NaN());
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        bool ok = true;
        while (PyDict_Next(d, &pos, &key, &value)) {
            PyObject* j = PyDict_GetItemWithError(index_.ptr(), key);
            if (j == nullptr && PyErr_Occurred()) throw py::error_already_set();
            const int32_t feature = j == nullptr ? -1 : static_cast<int32_t>(PyLong_AsLong(j));
            order_keys_.push_back(py::reinterpret_borrow<py::object>(key));
            order_features_.push_back(feature);
            if (feature >= 0 && !value_of(value, &row_[static_cast<size_t>(feature)])) ok = false;
        }
        return ok;
    }

    std::vector<double> row_;
    py::object index_;                     // key -> feature index; null until set_keys
    const PyObject* last_dict_ = nullptr;  // the dict row_ was read from (compared, never used)
    uint64_t last_version_ = 0;
    std::vector<py::object> order_keys_;
    std::vector<int32_t> order_features_;
};

// score_dict and learn_dict are plain CPython methods (METH_O) rather than pybind11
// ones: they run once per observation, and pybind11's dispatcher (overload resolution,
// argument casters) would cost more than reading the dict. self is always an instance
// of the bound type, so its C++ value is reached without a type lookup.
DictHalfSpaceTrees& dict_model(PyObject* self) {
    auto* inst = reinterpret_cast<py::detail::instance*>(self);
    return *static_cast<DictHalfSpaceTrees*>(inst->get_value_and_holder().value_ptr());
}

PyObject* score_dict(PyObject* self, PyObject* x) {
    try {
        DictHalfSpaceTrees& h = dict_model(self);
        if (!PyDict_Check(x) || !h.read(x)) Py_RETURN_NONE;
        return PyFloat_FromDouble(h.score_one(h.row()));
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

PyObject* learn_dict(PyObject* self, PyObject* x) {
    try {
        DictHalfSpaceTrees& h = dict_model(self);
        if (!PyDict_Check(x) || !h.read(x)) Py_RETURN_FALSE;
        h.learn_one(h.row());
        Py_RETURN_TRUE;
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

PyMethodDef dict_methods[] = {
    {"score_dict", score_dict, METH_O,
     "score_dict($self, x, /)\n--\n\nscore_one of a dict {key: value} (absent keys are missing features); "
     "None when the dict needs the facade's checks (a value that is not a finite float or int, or no set_keys)."},
    {"learn_dict", learn_dict, METH_O,
     "learn_dict($self, x, /)\n--\n\nlearn_one of a dict; False (nothing learned) when it needs the facade's "
     "checks."},
};

void bind_half_space_trees(py::module_& m) {
    auto cls = py::class_<DictHalfSpaceTrees>(m, "HalfSpaceTrees",
                               "Half-Space Trees with River's semantics (private core of "
                               "anomaly_detection.forest.HalfSpaceTrees). NaN marks a missing feature.")
        .def(py::init([](size_t n_trees, size_t height, size_t window_size, uint64_t seed,
                         std::vector<std::pair<double, double>> limits, std::vector<std::string> feature_names) {
                 return DictHalfSpaceTrees(HalfSpaceTrees(HalfSpaceTreesConfig{n_trees, height, window_size, seed},
                                                          std::move(limits), std::move(feature_names)));
             }),
             py::arg("n_trees"), py::arg("height"), py::arg("window_size"), py::arg("seed"), py::arg("limits"),
             py::arg("feature_names") = std::vector<std::string>{},
             "Build the trees over limits[j] = (low, high) of each feature.")
        .def(
            "learn_one",
            [](DictHalfSpaceTrees& h, const DoubleArray& x) {
                size_t n;
                h.learn_one(hst_rows(h, x, 1, &n));
            },
            py::arg("x"), "Learn one row of n_features values.")
        .def(
            "score_one",
            [](const DictHalfSpaceTrees& h, const DoubleArray& x) {
                size_t n;
                return h.score_one(hst_rows(h, x, 1, &n));
            },
            py::arg("x"), "Anomaly score of one row, in [0, 1].")
        .def("set_keys", &DictHalfSpaceTrees::set_keys, py::arg("keys"),
             "Name feature j by keys[j] for score_dict and learn_dict (distinct, hashable).")
        .def_property_readonly("has_keys", &DictHalfSpaceTrees::has_keys, "Whether set_keys has run.")
        .def(
            "learn_many",
            [](DictHalfSpaceTrees& h, const DoubleArray& X) {
                size_t n;
                const double* rows = hst_rows(h, X, 2, &n);
                py::gil_scoped_release release;
                h.learn_many(rows, n);
            },
            py::arg("X"), "Learn the rows in order (releases the GIL).")
        .def(
            "score_many",
            [](const DictHalfSpaceTrees& h, const DoubleArray& X) {
                return hst_scores(h, X, &HalfSpaceTrees::score_many);
            },
            py::arg("X"), "Score the rows without learning (releases the GIL).")
        .def(
            "score_learn_many",
            [](DictHalfSpaceTrees& h, const DoubleArray& X) {
                return hst_scores(h, X, &HalfSpaceTrees::score_learn_many);
            },
            py::arg("X"), "For each row in order: score it, then learn it (releases the GIL).")
        .def_property_readonly("n_features", &HalfSpaceTrees::n_features, "Number of features.")
        .def_property_readonly("limits", &HalfSpaceTrees::limits, "(low, high) of each feature.")
        .def_property_readonly("feature_names", &HalfSpaceTrees::feature_names, "Names of the features, or [].")
        .def_property_readonly(
            "config",
            [](const DictHalfSpaceTrees& h) {
                const auto& c = h.config();
                return py::make_tuple(c.n_trees, c.height, c.window_size, c.seed);
            },
            "(n_trees, height, window_size, seed).")
        .def("to_bytes", [](const DictHalfSpaceTrees& h) { return py::bytes(h.to_bytes()); },
             "Versioned, checksummed bytes of the parameters and masses.")
        .def_static(
            "from_bytes",
            [](const py::bytes& b) { return DictHalfSpaceTrees(HalfSpaceTrees::from_bytes(std::string_view(b))); },
            py::arg("data"), "Restore from to_bytes; raises ValueError on corrupt bytes.");
    for (PyMethodDef& def : dict_methods) {
        PyObject* method = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), &def);
        if (method == nullptr) throw py::error_already_set();
        cls.attr(def.ml_name) = py::reinterpret_steal<py::object>(method);
    }
}

}  // namespace

void bind_forest(py::module_& m) {
    bind_isolation_forest(m);
    bind_half_space_trees(m);
}

// Bindings of the streaming detectors and their registry (the embedded store).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <structmember.h>

#include <cmath>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "anomaly_detection/detectors/registry.hpp"
#include "common.hpp"
#include "fast_method.hpp"
#include "fork.hpp"
#include "output_cache.hpp"

namespace py = pybind11;
using namespace anomaly_detection;

namespace {

using bindings::DoubleArray;
using bindings::pooled_array;
using bindings::to_numpy;
using bindings::unless_forking;

py::tuple detection_tuple(const Detection& d) {
    // The order of AnomalyResult's fields after sensor_name, so the facade can unpack it.
    return py::make_tuple(d.value, d.timestamp, d.is_anomaly, d.score, d.deviation, d.expected, d.window_count);
}

// The output arrays of a batch, allocated while holding the GIL (large ones from the
// bounded cache of freed output memory, output_cache.hpp). Only the ensemble has
// alert scores of its own; for the other methods they are the scores, and the tuple
// holds the scores array twice (no sixth array to allocate and fill).
struct BatchArrays {
    BatchArrays(size_t n, bool own_alert_scores)
        : is_anomaly(pooled_array<bool>(n)),
          scores(pooled_array<double>(n)),
          deviations(pooled_array<double>(n)),
          expected(pooled_array<double>(n)),
          window_counts(pooled_array<uint64_t>(n)),
          alert_scores(own_alert_scores ? pooled_array<double>(n) : scores) {}
    BatchOutput out() {
        double* alerts = alert_scores.is(scores) ? nullptr : alert_scores.mutable_data();
        return {is_anomaly.mutable_data(), scores.mutable_data(),        deviations.mutable_data(),
                expected.mutable_data(),   window_counts.mutable_data(), alerts};
    }
    py::tuple tuple() const {
        return py::make_tuple(is_anomaly, scores, deviations, expected, window_counts, alert_scores);
    }

    py::array_t<bool> is_anomaly;
    py::array_t<double> scores, deviations, expected;
    py::array_t<uint64_t> window_counts;
    py::array_t<double> alert_scores;
};

void check_pair(const DoubleArray& values, const DoubleArray& timestamps, const std::string& what) {
    if (values.ndim() != 1)
        throw std::invalid_argument(what + "values: expected a 1-D array, got " + std::to_string(values.ndim()) + "-D");
    if (timestamps.ndim() != 1 || timestamps.shape(0) != values.shape(0))
        throw std::invalid_argument(what + "timestamps: expected a 1-D array of the same length as values (" +
                                    std::to_string(values.shape(0)) + ")");
}

py::tuple detect_batch(SensorRegistry& reg, const std::string& sensor, const DoubleArray& values,
                       const DoubleArray& timestamps) {
    // Shapes are checked while holding the GIL; the loop runs without it.
    check_pair(values, timestamps, "");
    const auto n = static_cast<size_t>(values.shape(0));
    BatchArrays arrays(n, reg.config().method == Method::ensemble);
    const double* v = values.data();
    const double* t = timestamps.data();
    const BatchOutput out = arrays.out();
    {
        py::gil_scoped_release release;
        reg.detect_batch(sensor, v, t, n, out);
    }
    return arrays.tuple();
}

py::list detect_many(SensorRegistry& reg, const std::vector<std::string>& sensors,
                     const std::vector<DoubleArray>& values, const std::vector<DoubleArray>& timestamps,
                     size_t threads) {
    if (values.size() != sensors.size() || timestamps.size() != sensors.size())
        throw std::invalid_argument("sensors, values, timestamps: expected lists of one length");
    std::vector<size_t> offsets(sensors.size() + 1, 0);
    for (size_t j = 0; j < sensors.size(); ++j) {
        check_pair(values[j], timestamps[j], "sensor '" + sensors[j] + "': ");
        offsets[j + 1] = offsets[j] + static_cast<size_t>(values[j].shape(0));
    }
    const bool ensemble = reg.config().method == Method::ensemble;
    // When a field's outputs for all the sensors reach the output cache's size, one array
    // per field holds them all, each sensor's outputs a slice of it: five or six blocks a
    // call, which the cache keeps for the next one (one block per sensor and field would
    // overflow it, and each fresh block costs the kernel's page zeroing in the workers).
    // Smaller calls give each sensor arrays of its own from NumPy's allocator, as before
    // (one large array from malloc would be mapped and zeroed afresh each call). The
    // converted inputs and the outputs live in this frame until the workers are done; the
    // GIL is released only around the scoring.
    const bool shared = offsets.back() * sizeof(double) >= bindings::kOutputCacheMinBytes;
    std::optional<BatchArrays> all;
    std::vector<BatchArrays> own;
    std::vector<SensorRegistry::BatchJob> jobs;
    jobs.reserve(sensors.size());
    if (shared) {
        all.emplace(offsets.back(), ensemble);
    } else {
        own.reserve(sensors.size());
    }
    for (size_t j = 0; j < sensors.size(); ++j) {
        const size_t at = offsets[j], n = offsets[j + 1] - at;
        BatchOutput out;
        if (shared) {
            const BatchOutput base = all->out();
            out = {base.is_anomaly + at, base.scores + at,        base.deviations + at,
                   base.expected + at,   base.window_counts + at, base.alert_scores ? base.alert_scores + at : nullptr};
        } else {
            own.emplace_back(n, ensemble);
            out = own.back().out();
        }
        jobs.push_back({sensors[j], values[j].data(), timestamps[j].data(), n, out});
    }
    {
        py::gil_scoped_release release;
        reg.detect_many(jobs, threads);
    }
    py::list out;
    if (!shared) {
        for (const auto& a : own) out.append(a.tuple());
        return out;
    }
    for (size_t j = 0; j < sensors.size(); ++j) {
        const py::slice part(static_cast<py::ssize_t>(offsets[j]), static_cast<py::ssize_t>(offsets[j + 1]), 1);
        py::object scores = all->scores[part];
        out.append(py::make_tuple(all->is_anomaly[part], scores, all->deviations[part], all->expected[part],
                                  all->window_counts[part], ensemble ? py::object(all->alert_scores[part]) : scores));
    }
    return out;
}

// Points (window and batch) from which detect_after_checkpoint_py scores without the GIL
// (always for the ensemble).
constexpr size_t kReleaseGilFrom = 2048;

py::tuple detect_after_checkpoint_py(const DetectorConfig& config, const DoubleArray& window_values,
                                     const DoubleArray& window_timestamps, uint64_t seen, const DoubleArray& values,
                                     const DoubleArray& timestamps, EnsembleState* checkpoint,
                                     std::optional<uint64_t> checkpoint_seen) {
    if (window_values.ndim() != 1 || window_timestamps.ndim() != 1 ||
        window_values.shape(0) != window_timestamps.shape(0))
        throw std::invalid_argument("window: expected 1-D values and timestamps of one length");
    if (values.ndim() != 1 || timestamps.ndim() != 1 || values.shape(0) != timestamps.shape(0))
        throw std::invalid_argument("values, timestamps: expected 1-D arrays of one length");
    const auto n = static_cast<size_t>(window_values.shape(0));
    const auto m = static_cast<size_t>(values.shape(0));
    BatchArrays arrays(m, config.method == Method::ensemble);
    const BatchOutput out = arrays.out();
    const double *wv = window_values.data(), *wt = window_timestamps.data(), *v = values.data(), *t = timestamps.data();
    // The checkpoint is moved in and the state after the points moved back into the
    // same Python object: no copy of its ~100 KB. The caller must not share that
    // object between threads during the call (the store takes it out of its cache).
    const uint64_t at = checkpoint_seen.value_or(checkpoint ? checkpoint->seen() : 0);
    std::optional<EnsembleState> ensemble;
    if (checkpoint) ensemble.emplace(std::move(*checkpoint));
    bool exact = false;
    {
        // Without the GIL for the ensemble and for large batches; a Redis append's ~100 points
        // of the other methods take a few us, less than giving the GIL up and taking it back in
        // a server whose event loop wants it meanwhile.
        std::optional<py::gil_scoped_release> release;
        if (config.method == Method::ensemble || m + n >= kReleaseGilFrom) release.emplace();
        try {
            exact = detect_after_checkpoint(config, wv, wt, n, seen, v, t, m, ensemble, at, out);
        } catch (...) {
            if (checkpoint) *checkpoint = std::move(*ensemble);  // unchanged: inputs are validated first
            throw;
        }
    }
    py::object state = py::none();
    if (ensemble) {
        if (checkpoint) {
            *checkpoint = std::move(*ensemble);
            state = py::cast(checkpoint, py::return_value_policy::reference);
        } else {
            state = py::cast(std::move(*ensemble));
        }
    }
    return py::make_tuple(arrays.is_anomaly, arrays.scores, arrays.deviations, arrays.expected, arrays.window_counts,
                          arrays.alert_scores, state, exact);
}

py::tuple detect_after_window_py(const DetectorConfig& config, const DoubleArray& window_values,
                                 const DoubleArray& window_timestamps, uint64_t seen, const DoubleArray& values,
                                 const DoubleArray& timestamps) {
    const py::tuple all = detect_after_checkpoint_py(config, window_values, window_timestamps, seen, values, timestamps,
                                                     nullptr, std::nullopt);
    return py::make_tuple(all[0], all[1], all[2], all[3], all[4], all[5]);
}

// detect_after_window for one point given as two floats, without output arrays: the shared
// store's single detect. Returns (value, timestamp, is_anomaly, score, deviation, expected,
// window_count), the order of the stores' point tuples.
py::tuple detect_point_after_window_py(const DetectorConfig& config, const DoubleArray& window_values,
                                       const DoubleArray& window_timestamps, uint64_t seen, double value,
                                       double timestamp) {
    if (window_values.ndim() != 1 || window_timestamps.ndim() != 1 ||
        window_values.shape(0) != window_timestamps.shape(0))
        throw std::invalid_argument("window: expected 1-D values and timestamps of one length");
    const auto n = static_cast<size_t>(window_values.shape(0));
    bool is_anomaly = false;
    double score = 0.0, deviation = 0.0, expected = 0.0, alert_score = 0.0;
    uint64_t window_count = 0;
    const BatchOutput out{&is_anomaly, &score,        &deviation,
                          &expected,   &window_count, config.method == Method::ensemble ? &alert_score : nullptr};
    const double *wv = window_values.data(), *wt = window_timestamps.data();
    {
        py::gil_scoped_release release;
        detect_after_window(config, wv, wt, n, seen, &value, &timestamp, 1, out);
    }
    return py::make_tuple(value, timestamp, is_anomaly, score, deviation, expected, window_count);
}

// detect(sensor, value, timestamp) with a str and two floats: the facade's hot path,
// without the dispatcher's argument conversion and py::arg handling.
constexpr char kGeneralDetect[] = "_detect";

// The point (str, float, float) of args[0..2] scored by `reg`; none when the name is not
// UTF-8 (a lone surrogate: the general method says so). Checks (finiteness, name, sensor
// limit) come before any change, so a throw leaves the general method to raise the same error.
std::optional<Detection> detect_point(SensorRegistry& reg, PyObject* const* args) {
    Py_ssize_t size = 0;
    const char* name = PyUnicode_AsUTF8AndSize(args[0], &size);
    if (name == nullptr) {
        PyErr_Clear();
        return std::nullopt;
    }
    const std::string sensor(name, static_cast<size_t>(size));
    const double value = PyFloat_AS_DOUBLE(args[1]), timestamp = PyFloat_AS_DOUBLE(args[2]);
    return unless_forking([&] { return reg.detect(sensor, value, timestamp); });
}

bool detect_one(SensorRegistry& reg, PyObject* const* args, Py_ssize_t nargs, PyObject*& result) {
    if (nargs != 3 || !PyUnicode_CheckExact(args[0]) || !PyFloat_CheckExact(args[1]) || !PyFloat_CheckExact(args[2]))
        return false;
    const std::optional<Detection> scored = detect_point(reg, args);
    if (!scored) return false;
    const Detection& d = *scored;
    PyObject* items[7] = {PyFloat_FromDouble(d.value),
                          PyFloat_FromDouble(d.timestamp),
                          PyBool_FromLong(d.is_anomaly),
                          PyFloat_FromDouble(d.score),
                          PyFloat_FromDouble(d.deviation),
                          PyFloat_FromDouble(d.expected),
                          PyLong_FromUnsignedLongLong(d.window_count)};
    PyObject* tuple = PyTuple_New(7);
    bool ok = tuple != nullptr;
    for (int i = 0; i < 7; ++i) {
        ok = ok && items[i] != nullptr;
        if (tuple != nullptr && items[i] != nullptr) {
            PyTuple_SET_ITEM(tuple, i, items[i]);  // steals
        } else {
            Py_XDECREF(items[i]);
        }
    }
    if (!ok) Py_CLEAR(tuple);  // the point was scored: the memory error is raised, not retried
    result = tuple;
    return true;
}

// AnomalyResult built here, without its Python __init__: the class (a slotted dataclass,
// registered once by results.py) and the offsets of its slots in field order.
struct PointResultType {
    PyTypeObject* type = nullptr;
    Py_ssize_t offsets[11] = {};
};
PointResultType g_point_result;

constexpr const char* kPointResultFields[11] = {"sensor_name", "value",     "timestamp", "is_anomaly",
                                                "score",       "deviation", "expected",  "window_count",
                                                "threshold",   "method",    "warming_up"};

void set_point_result_type(const py::type& cls) {
    auto* type = reinterpret_cast<PyTypeObject*>(cls.ptr());
    PointResultType r;
    r.type = type;
    for (int i = 0; i < 11; ++i) {
        PyObject* d = type->tp_dict != nullptr ? PyDict_GetItemString(type->tp_dict, kPointResultFields[i]) : nullptr;
        if (d == nullptr || Py_TYPE(d) != &PyMemberDescr_Type)
            throw py::type_error(std::string("point result type: ") + kPointResultFields[i] + " is not a slot");
        const PyMemberDef* member = reinterpret_cast<PyMemberDescrObject*>(d)->d_member;
        if (member->type != T_OBJECT_EX || (member->flags & READONLY) != 0)
            throw py::type_error(std::string("point result type: ") + kPointResultFields[i] +
                                 " is not a writable object slot");
        r.offsets[i] = member->offset;
    }
    if (type->tp_itemsize != 0) throw py::type_error("point result type: a variable-size type");
    Py_INCREF(type);  // kept for the life of the process
    g_point_result = r;
}

/// AnomalyResult(sensor_name, *d, threshold, method, d.window_count < learn) as a new
/// reference; nullptr with a Python error set.
PyObject* new_point_result(PyObject* sensor_name, const Detection& d, PyObject* threshold, PyObject* method,
                           unsigned long long learn) {
    if (g_point_result.type == nullptr) {
        PyErr_SetString(PyExc_RuntimeError, "the point result type is not registered");
        return nullptr;
    }
    Py_INCREF(sensor_name);
    Py_INCREF(threshold);
    Py_INCREF(method);
    PyObject* items[11] = {sensor_name,
                           PyFloat_FromDouble(d.value),
                           PyFloat_FromDouble(d.timestamp),
                           PyBool_FromLong(d.is_anomaly),
                           PyFloat_FromDouble(d.score),
                           PyFloat_FromDouble(d.deviation),
                           PyFloat_FromDouble(d.expected),
                           PyLong_FromUnsignedLongLong(d.window_count),
                           threshold,
                           method,
                           PyBool_FromLong(d.window_count < learn)};
    PyTypeObject* type = g_point_result.type;
    PyObject* obj = nullptr;
    bool ok = true;
    for (PyObject* item : items) ok = ok && item != nullptr;
    if (ok) obj = type->tp_alloc(type, 0);  // object.__new__: every slot NULL
    if (obj == nullptr) {
        for (PyObject* item : items) Py_XDECREF(item);
        return nullptr;
    }
    for (int i = 0; i < 11; ++i)
        *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(obj) + g_point_result.offsets[i]) = items[i];  // steals
    return obj;
}

// detect_result(sensor, value, timestamp, threshold, method, learn): detect() returning the
// AnomalyResult (warming up while the window count is below `learn`); the facade's hot path
// for the non-ensemble methods.
constexpr char kGeneralDetectResult[] = "_detect_result";

bool detect_result_one(SensorRegistry& reg, PyObject* const* args, Py_ssize_t nargs, PyObject*& result) {
    if (nargs != 6 || g_point_result.type == nullptr || !PyUnicode_CheckExact(args[0]) ||
        !PyFloat_CheckExact(args[1]) || !PyFloat_CheckExact(args[2]) || !PyLong_CheckExact(args[5]))
        return false;
    const unsigned long long learn = PyLong_AsUnsignedLongLong(args[5]);
    if (learn == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
        PyErr_Clear();
        return false;
    }
    const std::optional<Detection> scored = detect_point(reg, args);
    if (!scored) return false;
    const Detection& d = *scored;
    // The point was scored: a memory error is raised, not retried.
    result = new_point_result(args[0], d, args[3], args[4], learn);
    return true;
}

// registry.point_detector(threshold, method, learn): a callable f(sensor, value, timestamp)
// equal to registry.detect_result(sensor, value, timestamp, threshold, method, learn), with
// the three constants bound in C (the facade's detect passes no more than the point).
struct PointDetector {
    PyObject_HEAD vectorcallfunc vectorcall;
    PyObject* registry;   // the SensorRegistry instance
    PyObject* bound[3];   // threshold, method, learn
    PyObject* listeners;  // the facade's alert listeners (a list), or nullptr
};

PyObject* point_detector_call(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    auto* p = reinterpret_cast<PointDetector*>(self);
    const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != nullptr || nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "point detector: expected (sensor, value, timestamp)");
        return nullptr;
    }
    PyObject* full[6] = {args[0], args[1], args[2], p->bound[0], p->bound[1], p->bound[2]};
    return bindings::fast_entry<SensorRegistry, detect_result_one, kGeneralDetectResult>(p->registry, full, 6, nullptr);
}

void point_detector_dealloc(PyObject* self) {
    auto* p = reinterpret_cast<PointDetector*>(self);
    PyTypeObject* type = Py_TYPE(self);
    Py_XDECREF(p->registry);
    for (PyObject* o : p->bound) Py_XDECREF(o);
    Py_XDECREF(p->listeners);
    type->tp_free(self);
    Py_DECREF(type);  // a heap type
}

PyMemberDef point_detector_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, static_cast<Py_ssize_t>(offsetof(PointDetector, vectorcall)), READONLY,
     nullptr},
    {nullptr, 0, 0, 0, nullptr}};

PyType_Slot point_detector_slots[] = {{Py_tp_dealloc, reinterpret_cast<void*>(&point_detector_dealloc)},
                                      {Py_tp_call, reinterpret_cast<void*>(&PyVectorcall_Call)},
                                      {Py_tp_members, point_detector_members},
                                      {0, nullptr}};

PyType_Spec point_detector_spec{"anomaly_detection._core.PointDetector", static_cast<int>(sizeof(PointDetector)), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL, point_detector_slots};

PyObject* point_detector_type() {
    static PyObject* type = PyType_FromSpec(&point_detector_spec);  // kept for the process
    return type;
}

py::object make_point_detector(py::handle registry, py::object threshold, py::object method, py::int_ learn,
                               py::object listeners) {
    PyObject* type = point_detector_type();
    if (type == nullptr) throw py::error_already_set();
    auto* tp = reinterpret_cast<PyTypeObject*>(type);
    PyObject* obj = tp->tp_alloc(tp, 0);
    if (obj == nullptr) throw py::error_already_set();
    auto* p = reinterpret_cast<PointDetector*>(obj);
    p->vectorcall = &point_detector_call;
    p->registry = registry.inc_ref().ptr();
    p->bound[0] = threshold.release().ptr();
    p->bound[1] = method.release().ptr();
    p->bound[2] = learn.release().ptr();
    p->listeners = listeners.is_none() ? nullptr : listeners.release().ptr();
    return py::reinterpret_steal<py::object>(obj);
}

// StatisticalAnomalyDetector.detect for (str, float, float) with a finite value on the
// embedded store (self._native_detect a PointDetector): the point detector's fast path and
// the alert listeners, with no Python frame. Anything else, and any error, goes to the
// Python method `_detect_general` (checks come before any change, so it raises the same
// errors and does what the facade always did).
PyObject* facade_detect(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    static PyObject* const native_name = PyUnicode_InternFromString("_native_detect");
    static PyObject* const general_name = PyUnicode_InternFromString("_detect_general");
    static PyObject* const notify_name = PyUnicode_InternFromString("_notify");
    if (kwnames == nullptr && nargs == 3 && PyUnicode_CheckExact(args[0]) && PyFloat_CheckExact(args[1]) &&
        PyFloat_CheckExact(args[2]) && std::isfinite(PyFloat_AS_DOUBLE(args[1]))) {
        PyObject* nd = PyObject_GetAttr(self, native_name);
        if (nd == nullptr) {
            PyErr_Clear();
        } else if (reinterpret_cast<PyObject*>(Py_TYPE(nd)) == point_detector_type()) {
            auto* p = reinterpret_cast<PointDetector*>(nd);
            PyObject* result = nullptr;
            bool handled = false;
            if (SensorRegistry* reg = bindings::native_self<SensorRegistry>(p->registry)) {
                PyObject* full[6] = {args[0], args[1], args[2], p->bound[0], p->bound[1], p->bound[2]};
                try {
                    handled = detect_result_one(*reg, full, 6, result);
                } catch (...) {  // thrown before any change: the general method raises it again
                }
            }
            if (handled) {
                if (result != nullptr && p->listeners != nullptr && PyList_GET_SIZE(p->listeners) > 0 &&
                    *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(result) + g_point_result.offsets[3]) ==
                        Py_True) {
                    PyObject* ok = PyObject_CallMethodOneArg(self, notify_name, result);
                    if (ok == nullptr) Py_CLEAR(result);
                    Py_XDECREF(ok);
                }
                Py_DECREF(nd);
                return result;  // nullptr: a memory error after the point was scored
            }
            if (PyErr_Occurred()) PyErr_Clear();
            Py_DECREF(nd);
        } else {
            Py_DECREF(nd);
        }
    }
    const Py_ssize_t nkw = kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0;
    std::vector<PyObject*> all(static_cast<size_t>(1 + nargs + nkw));
    all[0] = self;
    std::copy(args, args + nargs + nkw, all.begin() + 1);
    return PyObject_VectorcallMethod(general_name, all.data(), static_cast<size_t>(1 + nargs), kwnames);
}

void install_facade_detect(py::handle cls, const std::string& doc) {
    static std::string kept_doc;
    static PyMethodDef def{};
    if (def.ml_name == nullptr) {
        kept_doc = "detect($self, sensor_name, value, timestamp=None)\n--\n\n" + doc;
        def = PyMethodDef{"detect", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&facade_detect)),
                          METH_FASTCALL | METH_KEYWORDS, kept_doc.c_str()};
    }
    PyObject* descr = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), &def);
    if (descr == nullptr) throw py::error_already_set();
    py::setattr(cls, "detect", py::reinterpret_steal<py::object>(descr));
}

}  // namespace

void bind_detectors(py::module_& m) {
    py::register_exception<SensorLimitError>(m, "SensorLimitError", PyExc_RuntimeError);

    m.def(
        "is_valid_sensor_name", [](std::string_view name) { return is_valid_sensor_name(name); }, py::arg("name"),
        "True when the name is usable as a sensor name (and a part of a Redis key).");
    m.def(
        "check_sensor_name", [](std::string_view name) { check_sensor_name(name); }, py::arg("name"),
        "Raise ValueError explaining why the name is not a valid sensor name.");
    m.def("normal_score", &normal_score, py::arg("z"), "erf(|z| / sqrt 2): one minus the two-sided tail probability.");

    py::class_<DetectorConfig>(m, "DetectorConfig", "Settings shared by every sensor of a registry.")
        .def(py::init<>())
        .def_property(
            "method", [](const DetectorConfig& c) { return std::string(method_name(c.method)); },
            [](DetectorConfig& c, const std::string& name) { c.method = parse_method(name); })
        .def_readwrite("window_size", &DetectorConfig::window_size)
        .def_readwrite("threshold", &DetectorConfig::threshold)
        .def_readwrite("min_samples", &DetectorConfig::min_samples)
        .def_readwrite("include_anomalies", &DetectorConfig::include_anomalies)
        .def_readwrite("ewma_alpha", &DetectorConfig::ewma_alpha)
        .def_readwrite("cusum_k", &DetectorConfig::cusum_k)
        .def_readwrite("max_sensors", &DetectorConfig::max_sensors)
        .def_readwrite("alert_cooldown", &DetectorConfig::alert_cooldown)
        .def_readwrite("alert_cooldown_seconds", &DetectorConfig::alert_cooldown_seconds)
        .def("validate", &DetectorConfig::validate, "Raise ValueError naming the first invalid field.");

    m.def("detect_after_window", &detect_after_window_py, py::arg("config"), py::arg("window_values"),
          py::arg("window_timestamps"), py::arg("seen"), py::arg("values"), py::arg("timestamps"),
          "Score points that follow a window given as arrays (the shared-store path); returns "
          "(is_anomaly, scores, deviations, expected, window_counts, alert_scores).");

    m.def("detect_point_after_window", &detect_point_after_window_py, py::arg("config"), py::arg("window_values"),
          py::arg("window_timestamps"), py::arg("seen"), py::arg("value"), py::arg("timestamp"),
          "detect_after_window of one point, without arrays (the shared store's single detect); returns "
          "(value, timestamp, is_anomaly, score, deviation, expected, window_count).");

    py::class_<EnsembleState>(
        m, "EnsembleState", "The ensemble's state for one sensor: a checkpoint a shared store keeps beside the window.")
        .def(py::init<double>(), py::arg("threshold"), "A new state (nothing seen) alarming at `threshold` in (0, 1].")
        .def_property_readonly("seen", &EnsembleState::seen, "Points the state has learned from.")
        .def_property_readonly("threshold", &EnsembleState::threshold, "The alarm level in (0, 1].")
        .def_property_readonly(
            "live_from",
            [](const EnsembleState& s) -> std::optional<uint64_t> {
                const uint64_t from = s.live_from();
                if (from == UINT64_MAX) return std::nullopt;
                return from;
            },
            "The state's own point count from which its points are past the warm-up (300, or later where the "
            "likelihoods' warm-up in time lasted longer); None while its likelihoods are not live yet.")
        .def(
            "to_bytes", [](const EnsembleState& s) { return py::bytes(s.to_bytes()); },
            "Versioned, checksummed bytes of the state.")
        .def_static(
            "from_bytes",
            [](const py::bytes& b, double threshold, uint64_t cooldown, double cooldown_seconds) {
                std::string_view data = b;
                return EnsembleState::from_bytes(data, threshold, cooldown, cooldown_seconds);
            },
            py::arg("data"), py::arg("threshold"), py::arg("cooldown") = EnsembleParams::kCooldown,
            py::arg("cooldown_seconds") = 0.0,
            "Restore a state (alarming at `threshold`, `cooldown` points held after an alarm, or with "
            "`cooldown_seconds` > 0 and `cooldown` 0 the points less than that many seconds after it); raises "
            "ValueError on corrupt bytes.");

    m.def(
        "detect_after_checkpoint", &detect_after_checkpoint_py, py::arg("config"), py::arg("window_values"),
        py::arg("window_timestamps"), py::arg("seen"), py::arg("values"), py::arg("timestamps"),
        py::arg("checkpoint") = py::none(), py::arg("checkpoint_seen") = py::none(),
        "As detect_after_window, but the ensemble continues from `checkpoint`, its state after the first "
        "`checkpoint_seen` <= seen points of the stream (default: checkpoint.seen), replaying only the window's "
        "last seen - checkpoint_seen points; "
        "without a usable checkpoint it is rebuilt from the window. The checkpoint object is advanced in place. "
        "Returns (is_anomaly, scores, deviations, expected, window_counts, alert_scores, state, exact): `state` is the "
        "ensemble's state after the points (None for other methods), `exact` whether the scores equal those of "
        "one process that saw every point.");

    py::class_<SensorRegistry> registry(m, "SensorRegistry",
                                        "Thread-safe per-sensor windows and scoring (the embedded store).");
    registry.def(py::init<const DetectorConfig&>(), py::arg("config"))
        .def_property_readonly("config", &SensorRegistry::config)
        .def(
            "_detect",
            [](SensorRegistry& reg, const std::string& sensor, double value, double timestamp) {
                return detection_tuple(unless_forking([&] { return reg.detect(sensor, value, timestamp); }));
            },
            py::arg("sensor"), py::arg("value"), py::arg("timestamp"), "detect() for any arguments (the general path).")
        .def(
            "_detect_result",
            [](SensorRegistry& reg, const std::string& sensor, double value, double timestamp,
               const py::object& threshold, const py::object& method, unsigned long long learn) {
                const Detection d = unless_forking([&] { return reg.detect(sensor, value, timestamp); });
                const py::str name(sensor);
                PyObject* r = new_point_result(name.ptr(), d, threshold.ptr(), method.ptr(), learn);
                if (r == nullptr) throw py::error_already_set();
                return py::reinterpret_steal<py::object>(r);
            },
            py::arg("sensor"), py::arg("value"), py::arg("timestamp"), py::arg("threshold"), py::arg("method"),
            py::arg("learn"), "detect_result() for any arguments (the general path).")
        .def(
            "point_detector",
            [](py::object self, py::object threshold, py::object method, py::int_ learn, py::object listeners) {
                return make_point_detector(self, std::move(threshold), std::move(method), std::move(learn),
                                           std::move(listeners));
            },
            py::arg("threshold"), py::arg("method"), py::arg("learn"), py::arg("listeners") = py::none(),
            "A callable f(sensor, value, timestamp) equal to detect_result(sensor, value, timestamp, threshold, "
            "method, learn); `listeners` is the facade's list of alert listeners.")
        .def("detect_batch", &detect_batch, py::arg("sensor"), py::arg("values"), py::arg("timestamps"),
             "Score points in order (releases the GIL); returns (is_anomaly, scores, deviations, expected, "
             "window_counts, alert_scores).")
        .def("detect_many", &detect_many, py::arg("sensors"), py::arg("values"), py::arg("timestamps"),
             py::arg("threads") = 0,
             "Score several sensors' batches, the sensors in parallel threads without the GIL (threads=0: one per "
             "hardware thread); everything is checked before anything changes. Returns one (is_anomaly, scores, "
             "deviations, expected, window_counts, alert_scores) per sensor, in order.")
        .def(
            "restore",
            [](SensorRegistry& reg, const std::string& sensor, const DoubleArray& values, const DoubleArray& timestamps,
               uint64_t seen, const EnsembleState* checkpoint, std::optional<uint64_t> checkpoint_seen) {
                if (values.ndim() != 1 || timestamps.ndim() != 1 || values.shape(0) != timestamps.shape(0))
                    throw std::invalid_argument("values, timestamps: expected 1-D arrays of one length");
                const double *v = values.data(), *t = timestamps.data();
                const auto n = static_cast<size_t>(values.shape(0));
                const uint64_t at = checkpoint_seen.value_or(checkpoint ? checkpoint->seen() : 0);
                unless_forking([&] { reg.restore(sensor, v, t, n, seen, checkpoint, at); });
            },
            py::arg("sensor"), py::arg("values"), py::arg("timestamps"), py::arg("seen"),
            py::arg("checkpoint") = py::none(), py::arg("checkpoint_seen") = py::none(),
            "Replace a sensor by the state a shared store describes: its window, point count and (ensemble) a "
            "checkpoint at `checkpoint_seen` (default: checkpoint.seen), which is copied.")
        .def(
            "window",
            [](const SensorRegistry& reg, const std::string& sensor) -> py::object {
                std::vector<double> values, timestamps;
                if (!unless_forking([&] { return reg.window(sensor, values, timestamps); })) return py::none();
                return py::make_tuple(to_numpy(std::move(values)), to_numpy(std::move(timestamps)));
            },
            py::arg("sensor"), "(values, timestamps) of the window, oldest first, or None for an unknown sensor.")
        .def(
            "summary",
            [](const SensorRegistry& reg, const std::string& sensor) -> py::object {
                SensorSummary s;
                if (!unless_forking([&] { return reg.summary(sensor, s); })) return py::none();
                py::dict d;
                d["points_seen"] = s.points_seen;
                d["anomalies"] = s.anomalies;
                d["window_count"] = s.window_count;
                d["mean"] = s.mean;
                d["stddev"] = s.stddev;
                d["min"] = s.min;
                d["max"] = s.max;
                d["last_timestamp"] = s.last_timestamp;
                return std::move(d);
            },
            py::arg("sensor"), "Counters and window statistics of a sensor, or None for an unknown sensor.")
        .def(
            "progress",
            [](const SensorRegistry& reg,
               const std::string& sensor) -> std::optional<std::tuple<uint64_t, std::optional<uint64_t>>> {
                uint64_t seen = 0, live_from = 0;
                if (!unless_forking([&] { return reg.progress(sensor, seen, live_from); })) return std::nullopt;
                return std::make_tuple(seen, live_from == UINT64_MAX ? std::nullopt : std::optional(live_from));
            },
            py::arg("sensor"),
            "(points seen, the point count from which the sensor's points are past the warm-up: min_samples, for "
            "the ensemble no earlier than its likelihoods went live, None while they are not) or None for an "
            "unknown sensor.")
        .def(
            "reset",
            [](SensorRegistry& reg, const std::string& sensor) {
                return unless_forking([&] { return reg.reset(sensor); });
            },
            py::arg("sensor"), "Forget a sensor; returns whether it existed.")
        .def(
            "clear", [](SensorRegistry& reg) { unless_forking([&] { reg.clear(); }); }, "Forget every sensor.")
        .def(
            "sensors", [](const SensorRegistry& reg) { return unless_forking([&] { return reg.sensors(); }); },
            "Names of the known sensors.")
        .def("__len__", [](const SensorRegistry& reg) { return unless_forking([&] { return reg.size(); }); })
        .def(
            "to_bytes",
            [](const SensorRegistry& reg) { return py::bytes(unless_forking([&] { return reg.to_bytes(); })); },
            "Versioned, checksummed snapshot of the config and every sensor.")
        .def_static(
            "from_bytes", [](const py::bytes& b) { return SensorRegistry::from_bytes(std::string(b)); },
            py::arg("data"), "Restore a snapshot; raises ValueError on corrupt bytes.");
    bindings::fork_lockable<SensorRegistry>(registry);  // its locks held across a fork (fork.hpp)
    bindings::def_fast<SensorRegistry, detect_one, kGeneralDetect>(
        registry, "detect",
        "detect($self, sensor, value, timestamp, /)\n--\n\n"
        "Score one point; returns (value, timestamp, is_anomaly, score, deviation, expected, window_count).");
    bindings::def_fast<SensorRegistry, detect_result_one, kGeneralDetectResult>(
        registry, "detect_result",
        "detect_result($self, sensor, value, timestamp, threshold, method, learn, /)\n--\n\n"
        "Score one point; returns the registered point result type (AnomalyResult) built without its __init__, "
        "warming up while the window count is below learn.");
    m.def("_install_detect", &install_facade_detect, py::arg("cls"), py::arg("doc"),
          "Make cls.detect (StatisticalAnomalyDetector's) a method descriptor for the embedded store's hot case, "
          "falling back to cls._detect_general.");
    m.def("_set_point_result_type", &set_point_result_type, py::arg("cls"),
          "Register the class detect_result builds (AnomalyResult: a slotted class with its fields as writable "
          "object slots).");
}

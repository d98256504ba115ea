// Binding of the HTTP batch's plain points: the Python objects of a parsed JSON batch adapted to
// one pair of float64 arrays per sensor in one pass (the service's `point_groups`, api/models.py,
// which states the rule and is tested against its definition). Nothing of detection here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace py = pybind11;

namespace {

struct Group {
    std::vector<double> values;
    std::vector<double> stamps;
};

// An exact int or float as a double; false for another type or an int beyond float64.
bool plain_number(PyObject* o, double& out) {
    if (PyFloat_CheckExact(o)) {
        out = PyFloat_AS_DOUBLE(o);
        return true;
    }
    if (PyLong_CheckExact(o)) {
        out = PyLong_AsDouble(o);
        if (out == -1.0 && PyErr_Occurred()) {  // OverflowError: beyond float64
            PyErr_Clear();
            return false;
        }
        return true;
    }
    return false;
}

PyObject* interned(const char* text) {
    PyObject* s = PyUnicode_InternFromString(text);
    if (s == nullptr) throw py::error_already_set();
    return s;  // kept for the life of the process
}

// d[key] held, or a null object where d has no key.
py::object lookup(PyObject* d, PyObject* key) {
    PyObject* found = PyDict_GetItemWithError(d, key);
    if (found == nullptr && PyErr_Occurred()) throw py::error_already_set();
    return py::reinterpret_borrow<py::object>(found);
}

py::array_t<double> to_array(const std::vector<double>& xs) {
    py::array_t<double> out(static_cast<py::ssize_t>(xs.size()));
    if (!xs.empty()) std::memcpy(out.mutable_data(), xs.data(), xs.size() * sizeof(double));
    return out;
}

py::object group_points(const py::handle& items, double now) {
    static PyObject* const k_type = interned("type");
    static PyObject* const k_name = interned("sensor_name");
    static PyObject* const k_value = interned("value");
    static PyObject* const k_stamp = interned("timestamp");
    if (!PyList_CheckExact(items.ptr())) return py::none();
    PyObject* list = items.ptr();
    py::dict index;  // sensor name -> its group's position (first appearance order)
    std::vector<Group> groups;
    std::vector<py::object> names;
    // Everything read from the list is held (the list's size read afresh each item): a dict lookup
    // may run a key's __eq__ (a key that is not a str; never in parsed JSON), which may change
    // the list and its items; borrowed, they crashed the process.
    py::object last_name;  // the previous item's name object (items often come by sensor)
    size_t last = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); ++i) {
        const auto held = py::reinterpret_borrow<py::object>(PyList_GET_ITEM(list, i));
        PyObject* item = held.ptr();
        if (!PyDict_CheckExact(item)) return py::none();
        const Py_ssize_t size = PyDict_GET_SIZE(item);
        if (size != 3 && size != 4) return py::none();
        const py::object type = lookup(item, k_type);
        const py::object name_held = lookup(item, k_name);
        const py::object value_held = lookup(item, k_value);
        const py::object stamp_held = size == 4 ? lookup(item, k_stamp) : py::object();
        PyObject* name = name_held.ptr();
        PyObject* value = value_held.ptr();
        PyObject* stamp = stamp_held.ptr();
        if (!type || !name || !value || (size == 4 && !stamp)) return py::none();  // another key
        if (!PyUnicode_CheckExact(type.ptr()) || PyUnicode_CompareWithASCIIString(type.ptr(), "point") != 0)
            return py::none();
        if (!PyUnicode_CheckExact(name)) return py::none();
        double v = 0.0;
        double t = now;
        if (!plain_number(value, v) || !std::isfinite(v)) return py::none();
        if (stamp != nullptr && stamp != Py_None && (!plain_number(stamp, t) || !std::isfinite(t))) return py::none();
        if (name != last_name.ptr()) {
            PyObject* at = PyDict_GetItemWithError(index.ptr(), name);
            if (at == nullptr) {
                if (PyErr_Occurred()) throw py::error_already_set();
                last = groups.size();
                groups.emplace_back();
                names.push_back(py::reinterpret_borrow<py::object>(name));
                index[py::handle(name)] = py::int_(last);
            } else {
                last = PyLong_AsSize_t(at);
            }
            last_name = name_held;
        }
        groups[last].values.push_back(v);
        groups[last].stamps.push_back(t);
    }
    py::dict out;
    for (size_t g = 0; g < groups.size(); ++g)
        out[names[g]] = py::make_tuple(to_array(groups[g].values), to_array(groups[g].stamps));
    return std::move(out);
}

}  // namespace

void bind_points(py::module_& m) {
    m.def("group_points", &group_points, py::arg("items"), py::arg("now"),
          "{sensor: (values, timestamps)} as float64 arrays in item order, each sensor in order of first "
          "appearance, when items is a list of dicts {'type': 'point', 'sensor_name': str, 'value': "
          "int|float[, 'timestamp': int|float|None]} with finite numbers (a missing or None timestamp is "
          "now); else None.");
}

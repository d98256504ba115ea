// One-item entry points that CPython calls without pybind11's dispatcher.
//
// A pybind11 method call costs about as much as a whole DataSketches update (overload
// loop, argument vectors, casters, a bound-method object per call). The sketches' hot
// one-item methods are therefore also registered as METH_FASTCALL method descriptors on
// the pybind11 class: CPython calls them directly, as it calls a method of a built-in
// type. The fast function handles the one-item case only; anything else (batches,
// keywords, other types, a C++ exception) goes to the general pybind11 method of the
// class, which does the conversions and raises the errors it always raised. The class,
// its instances and every other method stay pybind11's.
#pragma once

#include <pybind11/pybind11.h>
#include <structmember.h>

#include <stdexcept>
#include <string>
#include <typeinfo>

namespace anomaly_detection::bindings {

namespace py = pybind11;

/// The C++ object of a pybind11 instance of G (or of a Python subclass); nullptr when
/// its __init__ has not run.
template <typename G>
G* native_self(PyObject* self) {
    static const py::detail::type_info* info = py::detail::get_type_info(typeid(G));
    auto* inst = reinterpret_cast<py::detail::instance*>(self);
    const py::detail::value_and_holder vh = inst->get_value_and_holder(info, false);
    return vh.inst && vh.holder_constructed() ? vh.template value_ptr<G>() : nullptr;
}

/// A one-item fast path: false when the call is not its case (nothing changed, no Python
/// error set); true when it handled the call, with `result` a new reference or nullptr
/// with a Python error set. It may throw only before it changes anything.
template <typename G>
using FastPath = bool (*)(G&, PyObject* const* args, Py_ssize_t nargs, PyObject*& result);

/// Names of the general methods the fast entries fall back to.
inline constexpr char kGeneralAdd[] = "_add";
inline constexpr char kGeneralIncrby[] = "_incrby";

template <typename G, FastPath<G> Fast, const char* General>
PyObject* fast_entry(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    if (kwnames == nullptr) {
        if (G* g = native_self<G>(self)) {
            try {
                PyObject* result = nullptr;
                if (Fast(*g, args, nargs, result)) return result;
            } catch (...) {  // thrown before any change: the general method raises it again
            }
            if (PyErr_Occurred()) PyErr_Clear();
        }
    }
    // The general method: conversions, batches and errors as they always were.
    PyObject* general = PyObject_GetAttrString(self, General);
    if (general == nullptr) return nullptr;
    PyObject* result = PyObject_Vectorcall(general, args, static_cast<size_t>(nargs), kwnames);
    Py_DECREF(general);
    return result;
}

/// Registers `name` on `cls` as a method descriptor calling Fast, falling back to the
/// class's method `General`. `doc` starts with a text signature ("name($self, x, /)\n--\n\n").
template <typename G, FastPath<G> Fast, const char* General>
void def_fast(py::handle cls, const char* name, const char* doc) {
    static PyMethodDef def{name,
                           reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&fast_entry<G, Fast, General>)),
                           METH_FASTCALL | METH_KEYWORDS, doc};
    PyObject* descr = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), &def);
    if (descr == nullptr) throw py::error_already_set();
    py::setattr(cls, name, py::reinterpret_steal<py::object>(descr));
}

/// The fast entry reached from a Python class that holds the native object in its
/// `_native` attribute (the sketches' user-facing classes): CPython calls it with no
/// Python frame for the forwarding method.
template <typename G, FastPath<G> Fast, const char* General>
PyObject* forward_entry(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames);

/// The interned name "_native".
inline PyObject* attr_native() {
    static PyObject* const name = PyUnicode_InternFromString("_native");
    return name;
}

/// Where instances of the class install_forward<G, Fast, General> was installed on keep
/// `_native`: that class and the byte offset of its `_native` slot (see forward_entry).
struct NativeSlot {
    PyTypeObject* cls = nullptr;
    Py_ssize_t offset = 0;
};

template <typename G, FastPath<G> Fast, const char* General>
NativeSlot& native_slot() {
    static NativeSlot slot;
    return slot;
}

template <typename G, FastPath<G> Fast, const char* General>
PyObject* forward_entry(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    PyObject* const attr = attr_native();
    // An instance of exactly the installed class reads its `_native` slot in place (the
    // generic attribute protocol looks the name up in the type's MRO and calls the slot's
    // descriptor: ~10 ns per call); subclasses and unset slots take that protocol.
    const NativeSlot& slot = native_slot<G, Fast, General>();
    if (Py_TYPE(self) == slot.cls) {
        if (PyObject* native = *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(self) + slot.offset)) {
            Py_INCREF(native);
            PyObject* result = fast_entry<G, Fast, General>(native, args, nargs, kwnames);
            Py_DECREF(native);
            return result;
        }
    }
    PyObject* native = PyObject_GetAttr(self, attr);
    if (native == nullptr) return nullptr;
    PyObject* result = fast_entry<G, Fast, General>(native, args, nargs, kwnames);
    Py_DECREF(native);
    return result;
}

/// Replaces the method `name` of the Python class `cls` (whose instances hold a G in
/// `_native` and whose method only calls the native one with the same arguments) by a
/// method descriptor with its docstring that calls Fast, falling back to `General`.
template <typename G, FastPath<G> Fast, const char* General>
void install_forward(py::handle cls, const std::string& name) {
    static std::string kept_name, kept_doc;  // the PyMethodDef outlives the call
    static PyMethodDef def{};
    if (!kept_name.empty()) {  // a descriptor already points at def: never rewrite it
        if (kept_name != name) throw std::logic_error("install_forward: already installed as " + kept_name);
        py::setattr(
            cls, name.c_str(),
            py::reinterpret_steal<py::object>(PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), &def)));
        return;
    }
    kept_name = name;
    kept_doc = py::str(py::getattr(cls.attr(name.c_str()), "__doc__", py::str("")));
    def = PyMethodDef{kept_name.c_str(),
                      reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&forward_entry<G, Fast, General>)),
                      METH_FASTCALL | METH_KEYWORDS, kept_doc.c_str()};
    PyObject* descr = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), &def);
    if (descr == nullptr) throw py::error_already_set();
    py::setattr(cls, name.c_str(), py::reinterpret_steal<py::object>(descr));
    // The slot shortcut when the class's `_native` is a plain object slot (__slots__).
    PyObject* found = _PyType_Lookup(reinterpret_cast<PyTypeObject*>(cls.ptr()), attr_native());  // borrowed
    if (found != nullptr && Py_TYPE(found) == &PyMemberDescr_Type) {
        const PyMemberDef* member = reinterpret_cast<PyMemberDescrObject*>(found)->d_member;
        if (member->type == T_OBJECT_EX && !(member->flags & READONLY))
            native_slot<G, Fast, General>() = NativeSlot{reinterpret_cast<PyTypeObject*>(cls.ptr()), member->offset};
    }
}

/// Registers the static `_install_fast_method(cls, name)` on the native class `native`: the
/// user-facing Python class calls it once to make its forwarding method `name` reach Fast
/// through install_forward.
template <typename G, FastPath<G> Fast, const char* General>
void def_install_forward(py::class_<G>& native) {
    native.def_static(
        "_install_fast_method",
        [](py::handle wrapper, const std::string& name) { install_forward<G, Fast, General>(wrapper, name); },
        py::arg("cls"), py::arg("name"),
        "Make cls.<name> (a Python method that calls this class's method of that name on self._native) call it with "
        "no Python frame.");
}

}  // namespace anomaly_detection::bindings

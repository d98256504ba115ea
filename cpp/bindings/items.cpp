// Item conversion for the sketch bindings (see items.hpp).
#include "items.hpp"

#include <algorithm>
#include <cstring>

namespace anomaly_detection::bindings {

std::string type_name(py::handle o) { return py::str(py::type::handle_of(o).attr("__name__")); }

bool is_scalar_item(py::handle o) {
    PyObject* p = o.ptr();
    // Exact str and int first: single-item calls are dominated by this kind of overhead.
    if (PyUnicode_Check(p) || PyLong_CheckExact(p) || PyBytes_Check(p) || PyByteArray_Check(p)) return true;
    return PyIndex_Check(p) && !PyBool_Check(p) && !py::isinstance<py::array>(o);
}

void push_object(ItemBatch& b, py::handle o, size_t index) {
    PyObject* p = o.ptr();
    if (PyUnicode_Check(p)) {
        Py_ssize_t n = 0;
        const char* s = PyUnicode_AsUTF8AndSize(p, &n);  // UnicodeEncodeError (a ValueError) for lone surrogates
        if (!s) throw py::error_already_set();
        b.push(std::string_view(s, static_cast<size_t>(n)));
        return;
    }
    if (PyBytes_Check(p)) {
        b.push(std::string_view(PyBytes_AS_STRING(p), static_cast<size_t>(PyBytes_GET_SIZE(p))));
        return;
    }
    if (PyByteArray_Check(p)) {
        b.push(std::string_view(PyByteArray_AS_STRING(p), static_cast<size_t>(PyByteArray_GET_SIZE(p))));
        return;
    }
    if (PyLong_CheckExact(p)) {
        int overflow = 0;
        const long long v = PyLong_AsLongLongAndOverflow(p, &overflow);
        if (overflow == 0) {
            if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
            b.push_int(static_cast<uint64_t>(v));
            return;
        }
    }
    if (PyIndex_Check(p) && !PyBool_Check(p)) {
        // Integers (NumPy integer scalars included) are their 64 bits.
        auto as_int = py::reinterpret_steal<py::object>(PyNumber_Index(p));
        if (!as_int) throw py::error_already_set();
        int overflow = 0;
        const long long v = PyLong_AsLongLongAndOverflow(as_int.ptr(), &overflow);
        if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
        if (overflow == 0) {
            b.push_int(static_cast<uint64_t>(v));
            return;
        }
        const unsigned long long u = overflow > 0 ? PyLong_AsUnsignedLongLong(as_int.ptr()) : 0;
        if (overflow < 0 || (u == static_cast<unsigned long long>(-1) && PyErr_Occurred())) {
            PyErr_Clear();
            throw std::invalid_argument("items[" + std::to_string(index) +
                                        "]: expected an integer in [-2**63, 2**64), got " +
                                        std::string(py::str(as_int)));
        }
        b.push_int(u);
        return;
    }
    throw std::invalid_argument("items[" + std::to_string(index) + "]: expected str, bytes or int, got " +
                                type_name(o));
}

void set_source(ItemBatch& b, py::array arr, char kind) {
    b.source_data = static_cast<const char*>(arr.data());
    b.source_width = static_cast<size_t>(arr.itemsize());
    b.source_count = static_cast<size_t>(arr.shape(0));
    b.source_kind = kind;
    b.source = std::move(arr);
    if (!b.defer_hash) b.hash_source();
}

template <typename Int>
void push_ints(ItemBatch& b, const py::array& a) {
    // Other integer widths are converted to 64 bits (signed or not, as the values are).
    set_source(b, py::array_t<Int, py::array::c_style | py::array::forcecast>::ensure(a), 'i');
}

void append_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xC0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xE0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    }
}

// NumPy 'U' (UCS-4) and 'S' (bytes) arrays: fixed-width cells, trailing NULs are padding.
// A 'U' cell as UTF-8 into out; false when it holds a code point that is not Unicode.
bool ucs4_to_utf8(const char* cell, size_t width, std::string& out) {
    size_t len = width / 4;
    char32_t c = 0;
    while (len > 0 && (std::memcpy(&c, cell + 4 * (len - 1), 4), c == 0)) --len;
    // Plain ASCII (the usual case for metric, endpoint and user names) is narrowed in one
    // branch-free loop; anything else goes through the UTF-8 encoder.
    out.resize(len);
    char32_t any = 0;
    for (size_t j = 0; j < len; ++j) {
        std::memcpy(&c, cell + 4 * j, 4);
        any |= c;
        out[j] = static_cast<char>(c);
    }
    if (any < 0x80) return true;
    out.clear();
    for (size_t j = 0; j < len; ++j) {
        std::memcpy(&c, cell + 4 * j, 4);
        if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
        append_utf8(out, c);
    }
    return true;
}

std::string_view bytes_cell(const char* cell, size_t width) {
    while (width > 0 && cell[width - 1] == 0) --width;
    return {cell, width};
}

std::string_view ItemBatch::text_at(size_t i, uint8_t& kind) {
    if (!source_data) {
        kind = kinds[i];
        return texts[i];
    }
    const char* cell = source_data + i * source_width;
    kind = TopK::kText;
    if (source_kind == 'i') {
        uint64_t bits = 0;
        std::memcpy(&bits, cell, 8);
        unsigned char b[8];
        int_item_bytes(bits, b);
        scratch.assign(reinterpret_cast<const char*>(b), 8);
        kind = TopK::kInteger;
        return scratch;
    }
    if (source_kind == 'S') return bytes_cell(cell, source_width);
    ucs4_to_utf8(cell, source_width, scratch);  // validated when the batch was hashed
    return scratch;
}

void push_fixed_width(ItemBatch& b, const py::array& a, char kind) {
    py::object arr = a;
    if (kind == 'U' && !a.dtype().attr("isnative").cast<bool>())  // UCS-4 in the other byte order ('>U')
        arr = a.attr("astype")(a.dtype().attr("newbyteorder")("="));
    set_source(b, py::module_::import("numpy").attr("ascontiguousarray")(arr), kind);
}

void ItemBatch::hash_source() {
    const char* data = source_data;
    const size_t n = source_count, width = source_width;
    hashes.resize(n);
    hashed = true;
    MaybeReleaseGil release(n);
    if (source_kind == 'i') {
        for (size_t i = 0; i < n; ++i) {
            uint64_t bits = 0;
            std::memcpy(&bits, data + 8 * i, 8);
            hashes[i] = hash_int_bits(bits);
        }
        return;
    }
    if (source_kind == 'S') {
        for (size_t i = 0; i < n; ++i) hashes[i] = hash_item(bytes_cell(data + i * width, width));
        return;
    }
    if (width <= 4 * 64) {
        // Short cells: ASCII narrowed into a stack buffer, no string at all.
        char buf[64];
        size_t i = 0;
        for (; i < n; ++i) {
            const char* cell = data + i * width;
            size_t len = width / 4;
            uint32_t c = 0;
            while (len > 0 && (std::memcpy(&c, cell + 4 * (len - 1), 4), c == 0)) --len;
            uint32_t any = 0;
            for (size_t j = 0; j < len; ++j) {
                std::memcpy(&c, cell + 4 * j, 4);
                any |= c;
                buf[j] = static_cast<char>(c);
            }
            if (any >= 0x80) break;  // not ASCII: the general loop below from here on
            hashes[i] = hash_item(std::string_view(buf, len));
        }
        if (i == n) return;
    }
    std::string text;
    for (size_t i = 0; i < n; ++i) {
        if (!ucs4_to_utf8(data + i * width, width, text)) {
            hashes.clear();
            hashed = false;
            throw std::invalid_argument("items[" + std::to_string(i) + "]: not a valid Unicode string");
        }
        hashes[i] = hash_item(text);
    }
}

ItemBatch to_items(py::handle items, bool keep_text, bool defer_hash) {
    ItemBatch b;
    b.keep_text = keep_text;
    b.defer_hash = defer_hash;
    if (is_scalar_item(items)) {
        b.scalar = true;
        push_object(b, items, 0);
        return b;
    }
    if (py::isinstance<py::array>(items)) {
        auto a = py::reinterpret_borrow<py::array>(items);
        if (a.ndim() == 0) {
            b.scalar = true;
            push_object(b, a.attr("item")(), 0);
            return b;
        }
        if (a.ndim() != 1)
            throw std::invalid_argument("items: expected a 1-D array, got " + std::to_string(a.ndim()) + "-D");
        const char kind = a.dtype().kind();
        if (kind == 'i') {
            push_ints<int64_t>(b, a);
        } else if (kind == 'u') {
            push_ints<uint64_t>(b, a);
        } else if (kind == 'U' || kind == 'S') {
            push_fixed_width(b, a, kind);
        } else if (kind == 'O') {
            size_t i = 0;
            for (auto o : a) push_object(b, o, i++);
        } else {
            throw std::invalid_argument("items: expected an array of integers or strings, got dtype " +
                                        std::string(py::str(a.dtype())));
        }
        return b;
    }
    if (PyDict_Check(items.ptr()) || PySet_Check(items.ptr()) || !py::isinstance<py::iterable>(items))
        throw std::invalid_argument("items: expected str, bytes, int, or a sequence or array of them, got " +
                                    type_name(items));
    size_t i = 0;
    for (auto o : items) push_object(b, o, i++);
    return b;
}

Increments to_increments(py::handle inc, size_t n) {
    if (PyLong_CheckExact(inc.ptr())) {
        int overflow = 0;
        const long long x = PyLong_AsLongLongAndOverflow(inc.ptr(), &overflow);
        if (overflow == 0 && x >= 0) {
            Increments out;
            out.constant = static_cast<uint64_t>(x);
            return out;
        }
        PyErr_Clear();
    }
    if (PyIndex_Check(inc.ptr()) && !PyBool_Check(inc.ptr()) && !py::isinstance<py::array>(inc)) {
        const auto v = py::reinterpret_steal<py::object>(PyNumber_Index(inc.ptr()));
        if (!v) throw py::error_already_set();
        int overflow = 0;
        const long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
        if (overflow != 0 || x < 0)
            throw std::invalid_argument("increments: expected a non-negative 64-bit integer, got " +
                                        std::string(py::str(v)));
        Increments out;
        out.constant = static_cast<uint64_t>(x);
        return out;
    }
    py::array a = py::module_::import("numpy").attr("asarray")(inc);
    const char kind = a.dtype().kind();
    if (a.ndim() != 1 || static_cast<size_t>(a.shape(0)) != n)
        throw std::invalid_argument("increments: expected one integer or a 1-D array of " + std::to_string(n) +
                                    " integers");
    if (kind != 'i' && kind != 'u')
        throw std::invalid_argument("increments: expected integers, got dtype " + std::string(py::str(a.dtype())));
    Increments out;
    out.per_item.resize(n);
    if (kind == 'u') {
        auto u = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>::ensure(a);
        std::copy(u.data(), u.data() + n, out.per_item.begin());
    } else {
        auto s = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
        for (size_t i = 0; i < n; ++i) {
            if (s.data()[i] < 0)
                throw std::invalid_argument("increments[" + std::to_string(i) + "]: expected >= 0, got " +
                                            std::to_string(s.data()[i]));
            out.per_item[i] = static_cast<uint64_t>(s.data()[i]);
        }
    }
    if (n == 0) out.constant = 0;
    return out;
}

DoubleArray to_doubles(py::handle values, const char* what) {
    if (PyUnicode_Check(values.ptr()) || PyBytes_Check(values.ptr()))
        throw std::invalid_argument(std::string(what) + ": expected numbers, got " + type_name(values));
    auto arr = DoubleArray::ensure(values);
    if (!arr) throw std::invalid_argument(std::string(what) + ": expected a number or a 1-D array of numbers");
    if (arr.ndim() > 1)
        throw std::invalid_argument(std::string(what) + ": expected a 1-D array, got " + std::to_string(arr.ndim()) +
                                    "-D");
    return arr;
}

py::object decode(const TopK::Entry& e) {
    if (e.kind == TopK::kInteger) {
        uint64_t bits = 0;
        for (int i = 7; i >= 0; --i) bits = (bits << 8) | static_cast<unsigned char>(e.item[static_cast<size_t>(i)]);
        return py::int_(static_cast<int64_t>(bits));
    }
    PyObject* o = PyUnicode_DecodeUTF8(e.item.data(), static_cast<Py_ssize_t>(e.item.size()), "surrogateescape");
    if (!o) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(o);
}

}  // namespace anomaly_detection::bindings

// Bindings of the sketches: items in, hashes out, then the C++ core without the GIL.
//
// Items may be str, bytes, ints (NumPy integer scalars included), or a 1-D sequence or
// NumPy array of them. A single item gives a single result, a batch a NumPy array.
// Python objects are read while holding the GIL; NumPy arrays of ints or fixed-width
// strings are read straight from their buffer, so their hashing also runs without it.
// Each sketch carries a mutex because the GIL no longer serialises the updates.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <mutex>
#include <optional>

#include "anomaly_detection/sketches/bloom.hpp"
#include "anomaly_detection/sketches/count_min.hpp"
#include "anomaly_detection/sketches/cuckoo.hpp"
#include "anomaly_detection/sketches/errors.hpp"
#include "anomaly_detection/sketches/hash.hpp"
#include "anomaly_detection/sketches/hyperloglog.hpp"
#include "anomaly_detection/sketches/t_digest.hpp"
#include "anomaly_detection/sketches/top_k.hpp"
#include "common.hpp"

namespace py = pybind11;
using namespace anomaly_detection;

namespace {

// Batches smaller than this are not worth the cost of releasing and retaking the GIL.
constexpr size_t kReleaseThreshold = 2048;

class MaybeReleaseGil {
   public:
    explicit MaybeReleaseGil(size_t n) {
        if (n >= kReleaseThreshold) release_.emplace();
    }

   private:
    std::optional<py::gil_scoped_release> release_;
};

/// Items converted to hashes (and, for top-k, to the bytes and kind the heap keeps).
struct ItemBatch {
    std::vector<uint64_t> hashes;
    std::vector<std::string> texts;
    std::vector<uint8_t> kinds;
    bool scalar = false;
    bool keep_text = false;

    void push(std::string_view s) {
        hashes.push_back(hash_item(s));
        if (keep_text) {
            texts.emplace_back(s);
            kinds.push_back(TopK::kText);
        }
    }
    void push_int(uint64_t bits) {
        hashes.push_back(hash_int_bits(bits));
        if (keep_text) {
            unsigned char b[8];
            int_item_bytes(bits, b);
            texts.emplace_back(reinterpret_cast<const char*>(b), 8);
            kinds.push_back(TopK::kInteger);
        }
    }
    size_t size() const { return unhashed() ? source_count : hashes.size(); }
    bool unhashed() const { return source_data && !hashed; }

    // A NumPy array's items are not copied out as texts: text_at reads item i back from
    // its buffer when the core asks for it (only items that may enter a top-k heap).
    py::object source;  // keeps the buffer alive; released with the GIL held
    const char* source_data = nullptr;
    size_t source_width = 0;
    size_t source_count = 0;
    char source_kind = 0;  // 'i' (64-bit ints), 'U' (UCS-4) or 'S' (bytes)
    std::string scratch;
    // An array's items are hashed when it is read unless defer_hash is set: then hashed
    // stays false until hash_source() (a top-k first tries grouping the cells unhashed).
    bool defer_hash = false;
    bool hashed = false;
    void hash_source();
    CellFormat cell_format() const {
        return source_kind == 'i' ? CellFormat::int64 : source_kind == 'S' ? CellFormat::bytes : CellFormat::utf32;
    }

    std::string_view text_at(size_t i, uint8_t& kind);
    /// Fills texts and kinds for every item (for callers that need them all).
    void materialize() {
        if (!source_data) return;
        if (unhashed()) hash_source();
        texts.resize(size());
        kinds.resize(size());
        for (size_t i = 0; i < size(); ++i) texts[i] = std::string(text_at(i, kinds[i]));
        source_data = nullptr;
    }
};

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

ItemBatch to_items(py::handle items, bool keep_text = false, bool defer_hash = false) {
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

/// One str, bytes or int item read in place, with no batch and no allocation: the fast
/// path of one-item calls, which are otherwise dominated by building a batch of one.
/// False for anything else (other types, ints beyond 64 bits, strings that are not
/// valid UTF-8); the general path then takes the item, and raises what it raises.
struct OneItem {
    uint64_t hash = 0;
    std::string_view text;  // what a top-k keeps: the UTF-8 or raw bytes, or int_bytes
    uint8_t kind = TopK::kText;
    unsigned char int_bytes[8] = {};
    OneItem() = default;
    OneItem(const OneItem&) = delete;  // text may point into int_bytes
};

bool one_item(py::handle o, OneItem& out) {
    PyObject* p = o.ptr();
    if (PyUnicode_CheckExact(p)) {
        Py_ssize_t n = 0;
        const char* s = PyUnicode_AsUTF8AndSize(p, &n);
        if (!s) {
            PyErr_Clear();
            return false;
        }
        out.text = std::string_view(s, static_cast<size_t>(n));
    } else if (PyBytes_CheckExact(p)) {
        out.text = std::string_view(PyBytes_AS_STRING(p), static_cast<size_t>(PyBytes_GET_SIZE(p)));
    } else if (PyLong_CheckExact(p)) {
        int overflow = 0;
        const long long v = PyLong_AsLongLongAndOverflow(p, &overflow);
        if (overflow != 0) return false;
        const auto bits = static_cast<uint64_t>(v);
        int_item_bytes(bits, out.int_bytes);
        out.text = std::string_view(reinterpret_cast<const char*>(out.int_bytes), 8);
        out.kind = TopK::kInteger;
        out.hash = hash_int_bits(bits);
        return true;
    } else {
        return false;
    }
    out.hash = hash_item(out.text);
    return true;
}

/// A non-negative int that fits 64 bits, read in place; false for anything else.
bool one_count(py::handle o, uint64_t& out) {
    if (!PyLong_CheckExact(o.ptr())) return false;
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(o.ptr(), &overflow);
    if (overflow != 0 || v < 0) return false;
    out = static_cast<uint64_t>(v);
    return true;
}

/// Non-negative integer increments: one int for every item, or one per item.
struct Increments {
    uint64_t constant = 1;
    std::vector<uint64_t> per_item;  // empty when one constant applies to every item
    const uint64_t* data() const { return per_item.empty() ? nullptr : per_item.data(); }
    /// Materialised per-item values (for cores that take no constant).
    std::vector<uint64_t> expanded(size_t n) const {
        return per_item.empty() ? std::vector<uint64_t>(n, constant) : per_item;
    }
};

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

using bindings::DoubleArray;

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

/// Integer results: a Python int for a single item (no array allocated), else an array.
class U64Out {
   public:
    U64Out(size_t n, bool scalar) {
        if (!scalar) array_.emplace(static_cast<py::ssize_t>(n));
    }
    uint64_t* data() { return array_ ? array_->mutable_data() : &value_; }
    py::object result() { return array_ ? py::object(std::move(*array_)) : py::object(py::int_(value_)); }

   private:
    uint64_t value_ = 0;
    std::optional<py::array_t<uint64_t>> array_;
};

template <typename T>
py::object result(py::array_t<T>& out, bool scalar) {
    if (!scalar) return std::move(out);
    if constexpr (std::is_same_v<T, bool>)
        return py::bool_(out.data()[0]);
    else
        return py::cast(out.data()[0]);
}

py::object result_flags(std::vector<uint8_t>& flags, bool scalar) {
    if (scalar) return py::bool_(flags[0] != 0);
    py::array_t<bool> out(static_cast<py::ssize_t>(flags.size()));
    std::copy(flags.begin(), flags.end(), out.mutable_data());
    return std::move(out);
}

/// A top-k item as Python sees it: an int, or a str (items given as bytes may not be
/// UTF-8; surrogateescape keeps every byte).
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

/// A sketch and the mutex that replaces the GIL while the core runs.
template <typename S>
struct Guarded {
    template <typename... A>
    explicit Guarded(A&&... a) : sketch(std::forward<A>(a)...) {}
    explicit Guarded(S&& s) : sketch(std::move(s)) {}
    S copy() const {
        std::lock_guard lock(mutex);
        return sketch;
    }
    S sketch;
    mutable std::mutex mutex;
};

template <typename S>
using Handle = std::unique_ptr<Guarded<S>>;

template <typename S>
Handle<S> from_blob(const py::bytes& data) {
    return std::make_unique<Guarded<S>>(S::from_bytes(std::string_view(data)));
}

template <typename S>
py::bytes to_blob(const Guarded<S>& g) {
    std::string blob;
    {
        std::lock_guard lock(g.mutex);
        blob = g.sketch.to_bytes();
    }
    return py::bytes(blob);
}

// Runs f(sketch) under the sketch's mutex, without the GIL when the batch is large.
template <typename S, typename F>
void run(Guarded<S>& g, size_t n, F&& f) {
    MaybeReleaseGil release(n);
    std::lock_guard lock(g.mutex);
    f(g.sketch);
}

py::array_t<uint64_t> positions_array(size_t n, size_t per_item) {
    return py::array_t<uint64_t>({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(per_item)});
}

// Bindings for the core's batch methods f(hashes, n, out): one flag per item, one count
// per item, or a row of positions per item.
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

/// A batch method f(hashes, n, out) called for one str, bytes or int item without building
/// a batch; false (nothing called) when items is not one such item.
template <typename S, typename Method, typename Out>
bool call_one(Guarded<S>& g, py::handle items, Method method, Out& out) {
    OneItem one;
    if (!one_item(items, one)) return false;
    std::lock_guard lock(g.mutex);
    (g.sketch.*method)(&one.hash, 1, &out);
    return true;
}

template <typename S, typename Method>
auto flags_of(Method method) {
    return [method](Guarded<S>& g, py::handle items) -> py::object {
        uint8_t flag = 0;
        if (call_one(g, items, method, flag)) return py::bool_(flag != 0);
        const ItemBatch b = to_items(items);
        std::vector<uint8_t> flags(b.size());
        run(g, b.size(), [&](S& s) { (s.*method)(b.hashes.data(), b.size(), flags.data()); });
        return result_flags(flags, b.scalar);
    };
}

template <typename S, typename Method>
auto counts_of(Method method) {
    return [method](Guarded<S>& g, py::handle items) -> py::object {
        uint64_t count = 0;
        if (call_one(g, items, method, count)) return py::int_(count);
        const ItemBatch b = to_items(items);
        U64Out out(b.size(), b.scalar);
        uint64_t* po = out.data();
        run(g, b.size(), [&](S& s) { (s.*method)(b.hashes.data(), b.size(), po); });
        return out.result();
    };
}

template <typename S, typename Method, typename Width>
auto positions_of(Method method, Width per_item) {
    return [method, per_item](Guarded<S>& g, py::handle items) {
        const ItemBatch b = to_items(items);
        auto out = positions_array(b.size(), (g.sketch.*per_item)());
        uint64_t* po = out.mutable_data();
        run(g, b.size(), [&](S& s) { (s.*method)(b.hashes.data(), b.size(), po); });
        return out;
    };
}

// ---------------------------------------------------------------------------------------------

void bind_count_min(py::module_& m) {
    using G = Guarded<CountMinSketch>;
    py::class_<G>(m, "CountMinSketch", "Count-min sketch with saturating 32-bit counters.")
        .def(py::init<uint32_t, uint32_t, bool, uint64_t>(), py::arg("width"), py::arg("depth"),
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
                                   std::lock_guard l(g.mutex);
                                   return g.sketch.total();
                               })
        .def_property_readonly("memory_bytes", [](const G& g) { return g.sketch.memory_bytes(); })
        .def(
            "incrby",
            [](G& g, py::handle items, py::handle increments) -> py::object {
                OneItem one;
                uint64_t one_inc = 0, estimate = 0;
                if (one_item(items, one) && one_count(increments, one_inc)) {
                    std::lock_guard lock(g.mutex);
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
            py::arg("items"), py::arg("increments") = 1,
            "Add increments (one int or one per item); returns the new estimates. All or nothing.")
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
                std::lock_guard lock(g.mutex);
                g.sketch.merge(ptrs, weights);
            },
            py::arg("others"), py::arg("weights"), "this += sum(weights[i] * others[i]), saturating.")
        .def(
            "counters",
            [](const G& g) {
                std::lock_guard lock(g.mutex);
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
                std::lock_guard lock(g.mutex);
                g.sketch.load_counters(c.data(), static_cast<size_t>(c.shape(0)));
            },
            py::arg("counters"), "Replace every counter (row after row); total becomes the largest row sum.")
        .def(
            "clear",
            [](G& g) {
                std::lock_guard l(g.mutex);
                g.sketch.clear();
            },
            "Reset every counter.")
        .def("to_bytes", &to_blob<CountMinSketch>, "Versioned, checksummed bytes.")
        .def_static("from_bytes", &from_blob<CountMinSketch>, py::arg("data"),
                    "Load bytes from to_bytes; ValueError when they are corrupt.");
}

void bind_hyperloglog(py::module_& m) {
    using G = Guarded<HyperLogLog>;
    py::class_<G>(m, "HyperLogLog", "HyperLogLog distinct counter.")
        .def(py::init<int, bool>(), py::arg("precision") = 14, py::arg("redis_compatible") = false,
             "2^precision registers (precision 4..18); Redis-compatible registers need precision 14.")
        .def_property_readonly("precision", [](const G& g) { return g.sketch.precision(); })
        .def_property_readonly("redis_compatible", [](const G& g) { return g.sketch.redis_compatible(); })
        .def(
            "to_redis",
            [](const G& g) {
                std::string out;
                {
                    std::lock_guard l(g.mutex);
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
                std::lock_guard l(g.mutex);
                return g.sketch.hip_valid();
            },
            "Whether count() is the HIP estimate (false after a merge or from Redis's bytes).")
        .def(
            "add",
            [](G& g, py::handle items) {
                OneItem one;
                if (one_item(items, one)) {
                    std::lock_guard lock(g.mutex);
                    return g.sketch.add(&one.hash, 1);
                }
                const ItemBatch b = to_items(items);
                bool changed = false;
                run(g, b.size(), [&](HyperLogLog& s) { changed = s.add(b.hashes.data(), b.size()); });
                return changed;
            },
            py::arg("items"), "Add items; True when a register changed.")
        .def(
            "count",
            [](const G& g) {
                std::lock_guard l(g.mutex);
                return g.sketch.count();
            },
            "Estimated number of distinct items.")
        .def(
            "merge",
            [](G& g, const std::vector<const G*>& others) {
                std::vector<HyperLogLog> copies;
                for (const G* o : others) copies.push_back(o->copy());
                std::lock_guard lock(g.mutex);
                HyperLogLog merged = g.sketch;
                for (const auto& c : copies) merged.merge(c);
                g.sketch = std::move(merged);
            },
            py::arg("others"), "Fold other sketches of the same precision in.")
        .def(
            "clear",
            [](G& g) {
                std::lock_guard l(g.mutex);
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
}

void bind_t_digest(py::module_& m) {
    using G = Guarded<TDigest>;
    py::class_<G>(m, "TDigest", "Merging t-digest.")
        .def(py::init<double>(), py::arg("compression") = 100.0, "A digest of about compression centroids.")
        .def_property_readonly("compression", [](const G& g) { return g.sketch.compression(); })
        .def_property_readonly("total_weight",
                               [](const G& g) {
                                   std::lock_guard l(g.mutex);
                                   return g.sketch.total_weight();
                               })
        .def_property_readonly("memory_bytes",
                               [](const G& g) {
                                   std::lock_guard l(g.mutex);
                                   return g.sketch.memory_bytes();
                               })
        .def(
            "min",
            [](const G& g) {
                std::lock_guard l(g.mutex);
                return g.sketch.min();
            },
            "Smallest value (NaN when empty).")
        .def(
            "max",
            [](const G& g) {
                std::lock_guard l(g.mutex);
                return g.sketch.max();
            },
            "Largest value (NaN when empty).")
        .def(
            "add",
            [](G& g, py::handle values, py::handle weights) {
                if (PyFloat_CheckExact(values.ptr()) && weights.is_none()) {  // one value: no arrays
                    const double v = PyFloat_AS_DOUBLE(values.ptr());
                    std::lock_guard lock(g.mutex);
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
            py::arg("values"), py::arg("weights") = py::none(), "Add finite values with positive weights (default 1).")
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
                std::lock_guard l(g.mutex);
                return g.sketch.trimmed_mean(lo, hi);
            },
            py::arg("low"), py::arg("high"), "Mean of the values between quantiles low and high.")
        .def(
            "centroids",
            [](const G& g) {
                std::vector<TDigest::Centroid> c;
                {
                    std::lock_guard l(g.mutex);
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
            [](G& g, const std::vector<const G*>& others) {
                std::vector<TDigest> copies;
                for (const G* o : others) copies.push_back(o->copy());
                std::vector<const TDigest*> ptrs;
                for (const auto& c : copies) ptrs.push_back(&c);
                std::lock_guard lock(g.mutex);
                g.sketch.merge(ptrs);
            },
            py::arg("others"), "Fold other digests of the same compression in.")
        .def(
            "clear",
            [](G& g) {
                std::lock_guard l(g.mutex);
                g.sketch.clear();
            },
            "Forget every value.")
        .def("to_bytes", &to_blob<TDigest>, "Versioned, checksummed bytes.")
        .def_static("from_bytes", &from_blob<TDigest>, py::arg("data"),
                    "Load bytes from to_bytes; ValueError when they are corrupt.");
}

void bind_bloom(py::module_& m) {
    using G = Guarded<BloomFilter>;
    py::class_<G>(m, "BloomFilter", "Scalable Bloom filter.")
        .def(py::init<uint64_t, double, uint32_t, bool>(), py::arg("capacity"), py::arg("error_rate"),
             py::arg("expansion") = 2, py::arg("non_scaling") = false, "A filter for capacity items at error_rate.")
        .def_property_readonly("capacity", [](const G& g) { return g.sketch.capacity(); })
        .def_property_readonly("error_rate", [](const G& g) { return g.sketch.error_rate(); })
        .def_property_readonly("expansion", [](const G& g) { return g.sketch.expansion(); })
        .def_property_readonly("non_scaling", [](const G& g) { return g.sketch.non_scaling(); })
        .def_property_readonly("size",
                               [](const G& g) {
                                   std::lock_guard l(g.mutex);
                                   return g.sketch.size();
                               })
        .def_property_readonly("layer_count",
                               [](const G& g) {
                                   std::lock_guard l(g.mutex);
                                   return g.sketch.layer_count();
                               })
        .def_property_readonly("memory_bytes",
                               [](const G& g) {
                                   std::lock_guard l(g.mutex);
                                   return g.sketch.memory_bytes();
                               })
        .def_property_readonly("bit_count", [](const G& g) { return g.sketch.bit_count(); })
        .def_property_readonly("hash_count", [](const G& g) { return g.sketch.hash_count(); })
        .def("add", flags_of<BloomFilter>(&BloomFilter::add), py::arg("items"),
             "Add items; True for each item that was not present.")
        .def("exists", flags_of<BloomFilter>(&BloomFilter::exists), py::arg("items"),
             "True where the item may be present, False where it surely is not.")
        .def("positions", positions_of<BloomFilter>(&BloomFilter::bit_positions, &BloomFilter::hash_count),
             py::arg("items"), "Bit offsets of each item in the first layer, shape (n, hash_count).")
        .def("to_bytes", &to_blob<BloomFilter>, "Versioned, checksummed bytes.")
        .def_static("from_bytes", &from_blob<BloomFilter>, py::arg("data"),
                    "Load bytes from to_bytes; ValueError when they are corrupt.");
}

void bind_cuckoo(py::module_& m) {
    using G = Guarded<CuckooFilter>;
    py::class_<G>(m, "CuckooFilter", "Cuckoo filter with deletions.")
        .def(py::init<uint64_t, uint32_t, uint32_t, uint32_t, uint64_t>(), py::arg("capacity"),
             py::arg("bucket_size") = 2, py::arg("max_iterations") = 20, py::arg("expansion") = 1, py::arg("seed") = 0,
             "A filter for about capacity items.")
        .def_property_readonly("capacity", [](const G& g) { return g.sketch.capacity(); })
        .def_property_readonly("bucket_size", [](const G& g) { return g.sketch.bucket_size(); })
        .def_property_readonly("max_iterations", [](const G& g) { return g.sketch.max_iterations(); })
        .def_property_readonly("expansion", [](const G& g) { return g.sketch.expansion(); })
        .def_property_readonly("size",
                               [](const G& g) {
                                   std::lock_guard l(g.mutex);
                                   return g.sketch.size();
                               })
        .def_property_readonly("deletions",
                               [](const G& g) {
                                   std::lock_guard l(g.mutex);
                                   return g.sketch.deletions();
                               })
        .def_property_readonly("filter_count",
                               [](const G& g) {
                                   std::lock_guard l(g.mutex);
                                   return g.sketch.filter_count();
                               })
        .def_property_readonly("bucket_count",
                               [](const G& g) {
                                   std::lock_guard l(g.mutex);
                                   return g.sketch.bucket_count();
                               })
        .def_property_readonly("memory_bytes",
                               [](const G& g) {
                                   std::lock_guard l(g.mutex);
                                   return g.sketch.memory_bytes();
                               })
        .def(
            "add",
            [](G& g, py::handle items) {
                OneItem one;
                if (one_item(items, one)) {
                    std::lock_guard lock(g.mutex);
                    g.sketch.add(&one.hash, 1);
                    return;
                }
                const ItemBatch b = to_items(items);
                run(g, b.size(), [&](CuckooFilter& s) { s.add(b.hashes.data(), b.size()); });
            },
            py::arg("items"), "Add items (duplicates allowed); FilterFullError when one cannot fit.")
        .def("add_nx", flags_of<CuckooFilter>(&CuckooFilter::add_nx), py::arg("items"),
             "Add items not yet present; True for each item added.")
        .def("exists", flags_of<CuckooFilter>(&CuckooFilter::exists), py::arg("items"),
             "True where the item may be present.")
        .def("delete", flags_of<CuckooFilter>(&CuckooFilter::remove), py::arg("items"),
             "Remove one copy of each item; True where a copy was found.")
        .def("count", counts_of<CuckooFilter>(&CuckooFilter::count), py::arg("items"),
             "Copies of each item's fingerprint (may overcount).")
        .def_property_readonly("first_filter_buckets", [](const G& g) { return g.sketch.first_filter_buckets(); })
        .def(
            "slots",
            [](G& g, py::handle items) {
                const ItemBatch b = to_items(items);
                const auto n = static_cast<py::ssize_t>(b.size());
                py::array_t<uint8_t> fp(n);
                py::array_t<uint64_t> b1(n), b2(n);
                uint8_t* pf = fp.mutable_data();
                uint64_t* p1 = b1.mutable_data();
                uint64_t* p2 = b2.mutable_data();
                run(g, b.size(), [&](CuckooFilter& s) { s.first_filter_slots(b.hashes.data(), b.size(), pf, p1, p2); });
                return py::make_tuple(fp, b1, b2);
            },
            py::arg("items"), "(fingerprints, first buckets, second buckets) in the first sub-filter.")
        .def("to_bytes", &to_blob<CuckooFilter>, "Versioned, checksummed bytes.")
        .def_static("from_bytes", &from_blob<CuckooFilter>, py::arg("data"),
                    "Load bytes from to_bytes; ValueError when they are corrupt.");
}

void bind_top_k(py::module_& m) {
    using G = Guarded<TopK>;
    py::class_<G>(m, "TopK", "HeavyKeeper top-k.")
        .def(py::init<uint32_t, uint32_t, uint32_t, double, uint64_t>(), py::arg("k"), py::arg("width") = 8,
             py::arg("depth") = 7, py::arg("decay") = 0.9, py::arg("seed") = 0, "Keep the k heaviest items.")
        .def_property_readonly("k", [](const G& g) { return g.sketch.k(); })
        .def_property_readonly("width", [](const G& g) { return g.sketch.width(); })
        .def_property_readonly("depth", [](const G& g) { return g.sketch.depth(); })
        .def_property_readonly("decay", [](const G& g) { return g.sketch.decay(); })
        .def_property_readonly("memory_bytes",
                               [](const G& g) {
                                   std::lock_guard l(g.mutex);
                                   return g.sketch.memory_bytes();
                               })
        .def(
            "incrby",
            [](G& g, py::handle items, py::handle increments) -> py::object {
                OneItem one;
                uint64_t one_inc = 0;
                if (one_item(items, one) && one_count(increments, one_inc)) {
                    std::vector<std::pair<size_t, TopK::Entry>> expelled;  // allocates only if one is pushed out
                    {
                        std::lock_guard lock(g.mutex);
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
                        grouped = s.add_cells(b.source_data, b.source_width, b.cell_format(), b.size(), pinc, text,
                                              &expelled);
                    });
                    if (!grouped) b.hash_source();
                }
                if (!grouped)
                    run(g, b.size(), [&](TopK& s) { s.add_batch(b.hashes.data(), pinc, b.size(), text, &expelled); });
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
            },
            py::arg("items"), py::arg("increments") = 1,
            "Add increments (1..2^32-1); returns the item each one pushed out of the top k, or None.")
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
                    std::lock_guard l(g.mutex);
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
                std::lock_guard lock(g.mutex);
                TopK merged = g.sketch;
                for (const auto& c : copies) merged.merge(c);
                g.sketch = std::move(merged);
            },
            py::arg("others"), "Fold other top-k sketches with the same parameters in.")
        .def("to_bytes", &to_blob<TopK>, "Versioned, checksummed bytes.")
        .def_static("from_bytes", &from_blob<TopK>, py::arg("data"),
                    "Load bytes from to_bytes; ValueError when they are corrupt.");
}

}  // namespace

void bind_sketches(py::module_& m) {
    py::register_exception<FilterFullError>(m, "FilterFullError", PyExc_RuntimeError);
    bind_count_min(m);
    bind_hyperloglog(m);
    bind_t_digest(m);
    bind_bloom(m);
    bind_cuckoo(m);
    bind_top_k(m);
}

// Item conversion for the sketch bindings: items in, hashes out, then the C++ core without the GIL.
//
// Items may be str, bytes, ints (NumPy integer scalars included), or a 1-D sequence or
// NumPy array of them. A single item gives a single result, a batch a NumPy array.
// Python objects are read while holding the GIL; NumPy arrays of ints or fixed-width
// strings are read straight from their buffer, so their hashing also runs without it.
// Each sketch carries a mutex because the GIL no longer serialises the updates.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "anomaly_detection/sketches/hash.hpp"
#include "anomaly_detection/sketches/top_k.hpp"
#include "common.hpp"
#include "fork.hpp"

namespace anomaly_detection::bindings {

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

std::string type_name(py::handle o);

/// Reads items (one, or a 1-D sequence or array of them) into hashes; keep_text keeps what a
/// top-k stores, defer_hash leaves an array unhashed until hash_source().
ItemBatch to_items(py::handle items, bool keep_text = false, bool defer_hash = false);

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

inline bool one_item(py::handle o, OneItem& out) {
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
inline bool one_count(py::handle o, uint64_t& out) {
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

Increments to_increments(py::handle inc, size_t n);

/// A number or a 1-D array of numbers as float64 (str and bytes refused).
DoubleArray to_doubles(py::handle values, const char* what);

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

inline py::object result_flags(std::vector<uint8_t>& flags, bool scalar) {
    if (scalar) return py::bool_(flags[0] != 0);
    py::array_t<bool> out(static_cast<py::ssize_t>(flags.size()));
    std::copy(flags.begin(), flags.end(), out.mutable_data());
    return std::move(out);
}

/// A top-k item as Python sees it: an int, or a str (items given as bytes may not be
/// UTF-8; surrogateescape keeps every byte).
py::object decode(const TopK::Entry& e);

/// A sketch and the mutex that replaces the GIL while the core runs.
template <typename S>
struct Guarded {
    template <typename... A>
    explicit Guarded(A&&... a) : sketch(std::forward<A>(a)...) {}
    explicit Guarded(S&& s) : sketch(std::move(s)) {}
    S copy() const {
        GilSafeLock lock(mutex);
        return sketch;
    }
    // fork() (fork.hpp): the mutex held across it, made free again in parent and child.
    void lock_for_fork() { mutex.lock(); }
    void unlock_after_fork() { mutex.unlock(); }
    void unlock_after_fork_in_child() { mutex.unlock(); }  // a plain mutex: no owner is checked
    S sketch;
    mutable std::mutex mutex;  // taken through GilSafeLock only
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
        GilSafeLock lock(g.mutex);
        blob = g.sketch.to_bytes();
    }
    return py::bytes(blob);
}

// Runs f(sketch) under the sketch's mutex, without the GIL when the batch is large.
template <typename S, typename F>
void run(Guarded<S>& g, size_t n, F&& f) {
    MaybeReleaseGil release(n);
    GilSafeLock lock(g.mutex);
    f(g.sketch);
}

inline py::array_t<uint64_t> positions_array(size_t n, size_t per_item) {
    return py::array_t<uint64_t>({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(per_item)});
}

// Bindings for the core's batch methods f(hashes, n, out): one flag per item, one count
// per item, or a row of positions per item.
/// A batch method f(hashes, n, out) called for one str, bytes or int item without building
/// a batch; false (nothing called) when items is not one such item.
template <typename S, typename Method, typename Out>
bool call_one(Guarded<S>& g, py::handle items, Method method, Out& out) {
    OneItem one;
    if (!one_item(items, one)) return false;
    GilSafeLock lock(g.mutex);
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

}  // namespace anomaly_detection::bindings

// Shared by the fuzz targets: turns a fuzz input into a blob whose checksum is valid, so
// that mutations reach the field checks behind it instead of stopping at the checksum.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "anomaly_detection/io/bytes.hpp"

namespace fuzz {

/// Inputs of even length get a valid payload size and checksum; odd ones stay as they are
/// (so the header checks are fuzzed too).
inline std::string reseal(const uint8_t* data, size_t size) {
    namespace io = anomaly_detection::io;
    std::string blob(reinterpret_cast<const char*>(data), size);
    if (blob.size() >= io::kHeaderSize && blob.size() % 2 == 0) {
        const std::string_view payload(blob.data() + io::kHeaderSize, blob.size() - io::kHeaderSize);
        io::ByteWriter w;
        w.put<uint64_t>(payload.size());
        w.put<uint64_t>(io::fnv1a64(payload.data(), payload.size()));
        std::memcpy(&blob[8], w.str().data(), 16);
    }
    return blob;
}

}  // namespace fuzz

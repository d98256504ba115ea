// Errors specific to sketches.
#pragma once

#include <stdexcept>

namespace anomaly_detection {

/// A filter has no room for an item and may not grow (Python: FilterFullError).
class FilterFullError : public std::runtime_error {
   public:
    using std::runtime_error::runtime_error;
};

}  // namespace anomaly_detection

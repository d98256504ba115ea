#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "anomaly_detection/io/json_text.hpp"

using anomaly_detection::io::append_float_repr;
using anomaly_detection::io::json_point_entries;

namespace {
std::string repr(double v) {
    std::string s;
    append_float_repr(s, v);
    return s;
}
}  // namespace

TEST(JsonText, WritesFloatsAsPythonRepr) {
    EXPECT_EQ(repr(50.0), "50.0");
    EXPECT_EQ(repr(-0.0), "-0.0");
    EXPECT_EQ(repr(0.1), "0.1");
    EXPECT_EQ(repr(0.0001), "0.0001");
    EXPECT_EQ(repr(0.00001), "1e-05");
    EXPECT_EQ(repr(1.5e-7), "1.5e-07");
    EXPECT_EQ(repr(9999999999999998.0), "9999999999999998.0");
    EXPECT_EQ(repr(1e16), "1e+16");
    EXPECT_EQ(repr(1.25e100), "1.25e+100");
    EXPECT_EQ(repr(1764892800.123456), "1764892800.123456");
    EXPECT_EQ(repr(-123.456), "-123.456");
    EXPECT_EQ(repr(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
    EXPECT_EQ(repr(5e-324), "5e-324");
}

TEST(JsonText, JoinsPointEntriesAndRefusesNonFinite) {
    const double v[] = {1.0, -2.5}, t[] = {1700000000.0, 1700000000.5};
    EXPECT_EQ(json_point_entries(v, t, 2),
              "{\"value\":1.0,\"timestamp\":1700000000.0}\n{\"value\":-2.5,\"timestamp\":1700000000.5}");
    EXPECT_EQ(json_point_entries(v, t, 0), "");
    // repeated numbers (copied from the text before them) and a change of sign in the bits
    const double rv[] = {-0.0, -0.0, 0.0, 1.25e100, 1.25e100, 7.0}, rt[] = {5.0, 5.0, 5.0, 5.0, 6.5, 6.5};
    EXPECT_EQ(json_point_entries(rv, rt, 6),
              "{\"value\":-0.0,\"timestamp\":5.0}\n{\"value\":-0.0,\"timestamp\":5.0}\n"
              "{\"value\":0.0,\"timestamp\":5.0}\n{\"value\":1.25e+100,\"timestamp\":5.0}\n"
              "{\"value\":1.25e+100,\"timestamp\":6.5}\n{\"value\":7.0,\"timestamp\":6.5}");
    const double bad[] = {1.0, std::nan("")};
    EXPECT_THROW(json_point_entries(bad, t, 2), std::invalid_argument);
    std::string out = "x";
    EXPECT_THROW(append_float_repr(out, std::numeric_limits<double>::infinity()), std::invalid_argument);
    EXPECT_EQ(out, "x");
}

// Fuzz target for the model and state deserialisers: IsolationForest, HalfSpaceTrees, the
// ensemble's checkpoint and the detector registry's snapshot. Any input must load or
// throw std::invalid_argument, never crash, hang or leak; what loads must score a row
// and serialise back to bytes that load to the same bytes.
//
// scripts/fuzz.sh builds it with -fsanitize=fuzzer,address,undefined and runs it over
// seed blobs that the same binary writes first (FUZZ_WRITE_SEEDS=DIR: it writes one small
// valid blob of each kind there and exits). As in fuzz_sketches.cpp, inputs of even length
// get a valid checksum, so that mutations reach the field checks behind it.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "anomaly_detection/detectors/ensemble.hpp"
#include "anomaly_detection/detectors/registry.hpp"
#include "anomaly_detection/forest/half_space_trees.hpp"
#include "anomaly_detection/forest/isolation_forest.hpp"
#include "anomaly_detection/io/bytes.hpp"
#include "reseal.hpp"

using namespace anomaly_detection;

namespace {

// `reloads`: what the model saves after use must load again (a refusal is a find: a snapshot
// the library wrote and cannot read).
template <typename Load, typename Use, typename Save>
void check(std::string_view blob, Load load, Use use, Save save, bool reloads = true) {
    std::string again;
    try {
        auto model = load(blob);
        use(model);
        again = save(model);
    } catch (const std::invalid_argument&) {
        return;
    }
    try {  // the round trip is stable
        if (save(load(again)) != again) __builtin_trap();
    } catch (const std::invalid_argument&) {
        if (reloads) __builtin_trap();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string blob = fuzz::reseal(data, size);
    check(
        blob, [](std::string_view b) { return IsolationForest::from_bytes(b); },
        [](IsolationForest& f) {
            // A model may claim up to 2^32 - 1 features; a row that wide is not the loader's
            // problem, so only models of reasonable width score here.
            if (!f.is_fitted() || f.n_features_in() > 4096) return;
            // One row of ones, one of the largest finite values: both must score in [-1, 0].
            for (const double v : {1.0, 1e308}) {
                RowMatrixXd row = RowMatrixXd::Constant(1, static_cast<Eigen::Index>(f.n_features_in()), v);
                const double s = f.score_samples(row)(0);
                if (!(s >= -1.0 && s <= 0.0)) __builtin_trap();
            }
        },
        [](const IsolationForest& f) { return f.to_bytes(); });
    check(
        blob, [](std::string_view b) { return HalfSpaceTrees::from_bytes(b); },
        [](HalfSpaceTrees& h) {
            std::vector<double> row(h.n_features(), 0.5);
            const double s = h.score_one(row.data());
            if (!(s >= 0.0 && s <= 1.0)) __builtin_trap();
            h.learn_one(row.data());
        },
        [](const HalfSpaceTrees& h) { return h.to_bytes(); });
    check(
        blob, [](std::string_view b) { return EnsembleState::from_bytes(b, 0.5); },
        [](EnsembleState& e) {  // an ordinary value, then values whose squares and steps overflow
            const double t = static_cast<double>(e.seen());
            for (const double v : {1.0, std::numeric_limits<double>::max(), -std::numeric_limits<double>::max(), 1e160})
                e.update(v, t);
        },
        [](const EnsembleState& e) { return e.to_bytes(); });
    check(
        blob, [](std::string_view b) { return SensorRegistry::from_bytes(std::string(b)); },
        [](std::unique_ptr<SensorRegistry>& r) {
            for (const auto& name : r->sensors())
                for (const double v : {1.0, std::numeric_limits<double>::max(), -1e308}) r->detect(name, v, 1e9);
        },
        [](const std::unique_ptr<SensorRegistry>& r) { return r->to_bytes(); });
    return 0;
}

// With FUZZ_WRITE_SEEDS=DIR in the environment: one small valid blob of each kind into
// DIR, then exit.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const char* to = std::getenv("FUZZ_WRITE_SEEDS");
    if (!to) return 0;
    const std::string dir = to;
    auto write = [&](const std::string& name, const std::string& bytes) {
        std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
    };
    RowMatrixXd X(64, 3);
    for (Eigen::Index i = 0; i < X.rows(); ++i)
        for (Eigen::Index j = 0; j < X.cols(); ++j) X(i, j) = std::sin(static_cast<double>(i * 7 + j * 3));
    IsolationForestConfig fc;
    fc.n_estimators = 4;
    fc.max_samples = 32;
    IsolationForest forest(fc);
    forest.fit(X);
    write("model_isolation_forest.bin", forest.to_bytes());

    HalfSpaceTreesConfig hc;
    hc.n_trees = 2;
    hc.height = 3;
    hc.window_size = 8;
    HalfSpaceTrees hst(hc, {{0.0, 1.0}, {0.0, 1.0}}, {"a", "b"});
    for (int i = 0; i < 20; ++i) {
        const double row[2] = {0.05 * i, 1.0 - 0.05 * i};
        hst.learn_one(row);
    }
    write("model_half_space_trees.bin", hst.to_bytes());

    EnsembleState ensemble(0.5);
    for (int i = 0; i < 400; ++i) ensemble.update(std::sin(i * 0.1) + (i == 350 ? 5.0 : 0.0), i);
    write("state_ensemble_checkpoint.bin", ensemble.to_bytes());

    for (const Method m : {Method::zscore, Method::mad, Method::ewma, Method::ensemble}) {
        DetectorConfig c;
        c.method = m;
        c.window_size = 16;
        c.min_samples = 4;
        c.threshold = m == Method::ensemble ? 0.5 : m == Method::mad ? 3.5 : 3.0;
        SensorRegistry reg(c);
        for (int i = 0; i < 40; ++i) reg.detect("s1", std::cos(i * 0.3), i);
        reg.detect("s2", 1.0, 0);
        write("state_registry_" + std::to_string(static_cast<int>(m)) + ".bin", reg.to_bytes());
    }
    std::exit(0);
}

// The forest's finiteness check alone: the portable loop (any_non_finite_portable, `v - v` in 16 lanes)
// beside the AVX2 one (any_non_finite_avx2), GB/s over a Fortran tile (500 runs of 64), 8 MB and 128 MB.
// Build and run (benchmarks/README.md, round 5 at scale):
//   g++ -std=c++17 -O3 -DNDEBUG benchmarks/bench_finite.cpp -o build/bench_finite && nice build/bench_finite
#include <tuple>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
#include "../cpp/src/forest/isolation_forest_detail.hpp"
using namespace anomaly_detection::iforest;
template <typename T, typename F>
double gbps(const std::vector<T>& x, size_t outer, size_t inner, size_t stride, F f, int reps) {
    bool sink = false;
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) { asm volatile("" : : "r"(x.data()) : "memory"); sink |= f(x.data(), outer, (std::ptrdiff_t)stride, inner); }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (sink) std::puts("?");
    return double(outer * inner * sizeof(T)) * reps / s / 1e9;
}
int main() {
    std::mt19937_64 rng(1); std::normal_distribution<double> n;
    using C = std::tuple<size_t, size_t, int>;
    for (auto [outer, inner, reps] : std::vector<C>{C{500, 64, 20000}, C{1, 1 << 20, 200}, C{1, 1 << 24, 10}}) {
        std::vector<double> x(outer * inner); for (auto& v : x) v = n(rng);
        std::vector<float> y(outer * inner); for (auto& v : y) v = (float)n(rng);
        for (int rep = 0; rep < 3; ++rep)
            std::printf("%zux%zu f64 portable %.1f avx2 %.1f GB/s | f32 portable %.1f avx2 %.1f GB/s\n", outer, inner,
                gbps(x, outer, inner, inner, any_non_finite_portable<double>, reps), gbps(x, outer, inner, inner, any_non_finite_avx2<double>, reps),
                gbps(y, outer, inner, inner, any_non_finite_portable<float>, reps), gbps(y, outer, inner, inner, any_non_finite_avx2<float>, reps));
    }
}

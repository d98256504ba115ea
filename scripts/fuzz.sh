#!/usr/bin/env bash
# Fuzzes the deserialisers with libFuzzer under AddressSanitizer and UndefinedBehaviorSanitizer
# for a bounded time: the sketches (tests/fuzz/fuzz_sketches.cpp, from a copy of the golden
# blobs) and the models and detector state (tests/fuzz/fuzz_models.cpp, from seed blobs it
# writes itself), each for SECONDS. The inputs of earlier finds (tests/fuzz/regressions/)
# are in both corpora, so a fixed find that comes back fails at once. Exits non-zero on any
# crash, sanitizer report, leak or timeout; the input that caused it is left in
# build/fuzz/artifacts/.
# Usage: scripts/fuzz.sh [SECONDS] [sketches|models]   (default 60, both; needs clang and
# libclang-rt-<N>-dev, and Eigen: the cmeel-eigen of the active Python, or EIGEN_INCLUDE)
#
# By default each run takes a random seed and goes on for SECONDS: exploration, to run long by
# hand. With FUZZ_RUNS=N it runs N inputs from seed FUZZ_SEED (default 1), SECONDS only a cap:
# the same inputs on every machine for the same code, which is what CI runs (.ci/run), so that
# CI fails on a change, never on the luck of a seed; a find of a long random run goes into
# tests/fuzz/regressions/ with its fix.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
only=${2:-}
cxx=${FUZZ_CXX:-clang++}
out=${FUZZ_DIR:-build/fuzz}
command -v "$cxx" >/dev/null 2>&1 || { echo "fuzz.sh: $cxx not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
purelib=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)
eigen=${EIGEN_INCLUDE:-$purelib/cmeel.prefix/include/eigen3}
[ -d "$eigen" ] || eigen=/usr/include/eigen3
[ -d "$eigen" ] || { echo "fuzz.sh: Eigen not found (pip install cmeel-eigen, or set EIGEN_INCLUDE)" >&2; exit 1; }

rm -rf "$out/artifacts"
mkdir -p "$out/artifacts"
# -fno-sanitize-recover makes every UBSan finding fatal, so it fails the run.
flags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=all -Icpp/include -isystem "$eigen")

build() {  # name, then the extra sources of its target
  local name=$1
  shift
  "$cxx" "${flags[@]}" -fsanitize=fuzzer,address,undefined "tests/fuzz/fuzz_$name.cpp" "$@" -o "$out/fuzz_$name"
  rm -rf "$out/corpus_$name" && mkdir -p "$out/corpus_$name"
  cp tests/fuzz/regressions/*.bin "$out/corpus_$name/"
}
repeatable=()
[ -n "${FUZZ_RUNS:-}" ] && repeatable=(-runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}")
run() {
  "$out/fuzz_$1" -max_total_time="$seconds" "${repeatable[@]}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/" "$out/corpus_$1"
}

if [ -z "$only" ] || [ "$only" = sketches ]; then
  build sketches cpp/src/sketches/*.cpp
  cp tests/python/golden/sketch_*.bin "$out/corpus_sketches/"
  run sketches
fi
if [ -z "$only" ] || [ "$only" = models ]; then
  build models cpp/src/forest/*.cpp cpp/src/detectors/*.cpp cpp/src/stats/*.cpp
  FUZZ_WRITE_SEEDS="$out/corpus_models" "$out/fuzz_models"
  run models
fi

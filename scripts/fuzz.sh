#!/usr/bin/env bash
# Fuzzes the sketch deserialisers (tests/fuzz/fuzz_sketches.cpp) with libFuzzer under
# AddressSanitizer and UndefinedBehaviorSanitizer for a bounded time, starting from a
# copy of the golden blobs and of the inputs of earlier finds (tests/fuzz/regressions/,
# run first, so a fixed find that comes back fails at once). Exits non-zero on any crash, sanitizer report, leak or
# timeout; the input that caused it is left in build/fuzz/artifacts/.
# Usage: scripts/fuzz.sh [SECONDS]   (default 60; needs clang and libclang-rt-<N>-dev)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
cxx=${FUZZ_CXX:-clang++}
out=${FUZZ_DIR:-build/fuzz}
command -v "$cxx" >/dev/null 2>&1 || { echo "fuzz.sh: $cxx not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }

rm -rf "$out/corpus" "$out/artifacts"
mkdir -p "$out/corpus" "$out/artifacts"
cp tests/python/golden/sketch_*.bin tests/fuzz/regressions/*.bin "$out/corpus/"

# -fno-sanitize-recover makes every UBSan finding fatal, so it fails the run.
"$cxx" -std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=all -Icpp/include tests/fuzz/fuzz_sketches.cpp cpp/src/sketch_*.cpp \
  -o "$out/fuzz_sketches"

"$out/fuzz_sketches" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$out/artifacts/" "$out/corpus"

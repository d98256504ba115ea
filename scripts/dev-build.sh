#!/usr/bin/env bash
# Incremental developer build: compiles the core and the _core module into
# build/dev (or $BUILD_DIR) and places the module inside python/anomaly_detection,
# so that `PYTHONPATH=python pytest` runs against the working tree.
# Options: --tests also builds the C++ tests (ctest --test-dir build/dev).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
BUILD_DIR=${BUILD_DIR:-build/dev}
TESTS=OFF
[ "${1:-}" = "--tests" ] && TESTS=ON
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$(command -v "$PY")" \
  -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" -DANOMALY_BUILD_TESTS=$TESTS -DANOMALY_WARNINGS_AS_ERRORS=ON >/dev/null
cmake --build "$BUILD_DIR"
cp "$BUILD_DIR"/_core*.so python/anomaly_detection/

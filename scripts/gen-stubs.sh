#!/usr/bin/env bash
# Regenerates python/anomaly_detection/_core.pyi from the installed (or in-tree,
# with PYTHONPATH=python) extension; with --check, fails if the checked-in stub differs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
python -m pybind11_stubgen anomaly_detection._core -o "$out" --numpy-array-use-type-var >/dev/null
generated="$out/anomaly_detection/_core.pyi"
if [ "${1:-}" = "--check" ]; then
  if ! diff -u python/anomaly_detection/_core.pyi "$generated"; then
    echo "_core.pyi is stale: run scripts/gen-stubs.sh (after building) and commit it" >&2
    exit 1
  fi
else
  cp "$generated" python/anomaly_detection/_core.pyi
fi
rm -rf "$out"

#!/usr/bin/env bash
# Fetch the labelled data the evaluation tests and benchmarks read, from the public repositories,
# laid out as ../shared/data beside the project is (where the tests look; README, "Development"):
#   nab/data/<category>/<file>.csv       NAB's 58 series              (numenta/NAB, MIT)
#   nab/labels/combined_{windows,labels}.json
#   nab/profiles.json                    NAB's scoring profiles (config/profiles.json)
#   nab/anchor_scores/<detector>/<category>/<file>.csv   timestamp,anomaly_score of the published
#                                        detectors, from NAB's results folder
#   adbench/<n>_<name>.npz               12 classical sets of ADBench (Minqi824/ADBench, BSD-2-Clause)
# Needs git, curl and python3, and internet access.
set -euo pipefail

NAB_REPO=https://github.com/numenta/NAB.git
ADBENCH_RAW=https://raw.githubusercontent.com/Minqi824/ADBench
ANCHORS=(ARTime numenta contextOSE earthgeckoSkyline knncad relativeEntropy randomCutForest windowedGaussian)
ADBENCH_SETS=(4_breastw 6_cardio 14_glass 18_Ionosphere 23_mammography 29_Pima 30_satellite 32_shuttle
  38_thyroid 42_WBC 45_wine 47_yeast)

usage() {
  cat <<EOF
usage: bash scripts/get-data.sh [--dry-run] [--only nab|adbench] [--nab-ref REF] [--adbench-ref REF] [DIR]

Fetch NAB (all 58 files, labels, profiles and the anchor detectors' scores) and 12 ADBench
classical sets into DIR (default: \$ANOMALY_DATA_DIR, else ../shared/data beside the project,
where the tests look). Parts already present in DIR are kept.

  --dry-run          print what would be fetched and where, fetch nothing
  --only PART        fetch only nab or only adbench
  --nab-ref REF      branch or tag of numenta/NAB (default master)
  --adbench-ref REF  branch, tag or commit of Minqi824/ADBench (default main)
  -h, --help         this help

Then run the tests with ANOMALY_DATA_DIR=DIR if DIR is not the default.
EOF
}

die() { echo "get-data.sh: error: $*" >&2; echo "try: bash scripts/get-data.sh --help" >&2; exit 2; }

dry_run=0; only=""; nab_ref=master; adbench_ref=main; dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --dry-run) dry_run=1 ;;
    --only) [ $# -ge 2 ] || die "--only needs nab or adbench"; only=$2; shift ;;
    --nab-ref) [ $# -ge 2 ] || die "--nab-ref needs a value"; nab_ref=$2; shift ;;
    --adbench-ref) [ $# -ge 2 ] || die "--adbench-ref needs a value"; adbench_ref=$2; shift ;;
    -*) die "unknown option $1" ;;
    *) [ -z "$dir" ] || die "one DIR only, got '$dir' and '$1'"; dir=$1 ;;
  esac
  shift
done
case "$only" in ""|nab|adbench) ;; *) die "--only takes nab or adbench, got '$only'" ;; esac
if [ -z "$dir" ]; then
  dir=${ANOMALY_DATA_DIR:-$(cd "$(dirname "$0")/.." && pwd)/../shared/data}
fi

run() {  # print a command; run it unless --dry-run
  echo "+ $*"
  [ "$dry_run" -eq 1 ] || "$@"
}

fetch_nab() {
  local out=$dir/nab
  if [ -d "$out/data" ]; then echo "nab: $out/data exists, kept"; return; fi
  echo "nab: numenta/NAB@$nab_ref -> $out (58 series, labels, profiles, anchor scores of ${ANCHORS[*]})"
  local tmp=TMPDIR
  [ "$dry_run" -eq 1 ] || tmp=$(mktemp -d)
  # A sparse, blob-less clone: only the folders used here, not the results of every detector.
  run git clone -q --depth 1 --filter=blob:none --sparse --branch "$nab_ref" "$NAB_REPO" "$tmp/NAB"
  run git -C "$tmp/NAB" sparse-checkout set data labels config "${ANCHORS[@]/#/results/}"
  run mkdir -p "$out/labels" "$out/anchor_scores"
  run cp -R "$tmp/NAB/data" "$out/data"
  run cp "$tmp/NAB/labels/combined_windows.json" "$tmp/NAB/labels/combined_labels.json" "$out/labels/"
  run cp "$tmp/NAB/config/profiles.json" "$out/profiles.json"
  # results/<det>/<category>/<det>_<file>.csv -> anchor_scores/<det>/<category>/<file>.csv, two columns
  for det in "${ANCHORS[@]}"; do
    run python3 - "$tmp/NAB/results/$det" "$out/anchor_scores/$det" "$det" <<'EOF'
import csv, pathlib, sys
src, dst, det = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
for path in sorted(src.glob(f"*/{det}_*.csv")):
    target = dst / path.parent.name / path.name[len(det) + 1:]
    target.parent.mkdir(parents=True, exist_ok=True)
    with path.open(newline="") as f, target.open("w", newline="") as g:
        rows = csv.DictReader(f)
        out = csv.writer(g, lineterminator="\n")
        out.writerow(["timestamp", "anomaly_score"])
        out.writerows([r["timestamp"], r["anomaly_score"]] for r in rows)
EOF
  done
  run rm -rf "$tmp"
}

fetch_adbench() {
  local out=$dir/adbench
  echo "adbench: Minqi824/ADBench@$adbench_ref -> $out (${#ADBENCH_SETS[@]} classical sets)"
  run mkdir -p "$out"
  for name in "${ADBENCH_SETS[@]}"; do
    if [ -f "$out/$name.npz" ]; then echo "adbench: $name.npz exists, kept"; continue; fi
    run curl -fsSL --retry 3 -o "$out/$name.npz" "$ADBENCH_RAW/$adbench_ref/adbench/datasets/Classical/$name.npz"
  done
}

[ "$dry_run" -eq 1 ] && echo "dry run: nothing is fetched or written"
[ "$only" = adbench ] || fetch_nab
[ "$only" = nab ] || fetch_adbench
[ "$dry_run" -eq 1 ] || echo "done: the tests find the data with ANOMALY_DATA_DIR=$dir"

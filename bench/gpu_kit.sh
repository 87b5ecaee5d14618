#!/usr/bin/env bash
# Build .gpu/, what a lent GPU machine needs to run bench/gpu_check.sh: that machine has PyTorch and most of ComfyUI's
# dependencies but no network and no ComfyUI (see the device library's KINDS.md). Run here, after `make setup`:
#
#   bash bench/gpu_kit.sh        # -> .gpu/ComfyUI (0.3.75, without its tokenizer files and tests), .gpu/whl, .gpu/stubs
#
# Then, on the device: the run tool with carry [".gpu"] and the command `bash bench/gpu_check.sh`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIT="${GPU_KIT:-$ROOT/.gpu}"  # GPU_KIT: another folder (the tests build one in a temporary folder)
rm -rf "$KIT" && mkdir -p "$KIT/whl" "$KIT/stubs/av"
# ComfyUI as make setup unpacked it, less what no benchmark reads (the tracked repo and this kit must stay < 64 MiB)
tar -C "$ROOT/.dev" --exclude='ComfyUI/comfy/text_encoders/*_tokenizer' --exclude='ComfyUI/tests' --exclude='ComfyUI/tests-unit' --exclude='__pycache__' \
  -cf - ComfyUI | tar -C "$KIT" -xf -
# ComfyUI's dependencies that the device image lacks, as pure-Python wheels, at the versions the tests use
"$ROOT/.dev/venv/bin/python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  -c "$ROOT/.ci/constraints.txt" -d "$KIT/whl" torchsde trampoline
# ComfyUI imports PyAV at start-up for its video types, which no benchmark uses; its wheel (36 MB) does not fit.
# A stand-in package: every name it is asked for is a placeholder that fails when called.
mkdir -p "$KIT/stubs/av/subtitles"
cat > "$KIT/stubs/av/_missing.py" <<'PY'
"""Stand-in for PyAV on the GPU machine (bench/gpu_kit.sh): ComfyUI 0.3.75 imports it for video types only."""


class Missing:
    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attr: str) -> "Missing":
        return Missing(f"{self.name}.{attr}")

    def __call__(self, *args, **kwargs):
        raise ImportError(f"{self.name}: PyAV is not on this machine")


def module_getattr(module: str):
    return lambda name: Missing(f"{module}.{name}")
PY
for m in __init__ container error subtitles/__init__ subtitles/stream; do
  name="av.${m%/__init__}"; name="${name%.__init__}"; name="${name//\//.}"
  printf 'from av._missing import module_getattr\n\n__getattr__ = module_getattr("%s")\n' "$name" \
    > "$KIT/stubs/av/$m.py"
done
du -sh "$KIT"

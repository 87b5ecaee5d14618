#!/usr/bin/env bash
# Issue 22's GPU check, on a lent GPU machine (device tool: carry [".gpu"], timeout_s 600). Build .gpu/ here first
# with `bash bench/gpu_kit.sh`. Writes to $OUT: nvidia-smi.txt, sd15_512.json/.md, sdxl_1024.json/.md, log.txt.
#   sd15 at 512^2 and sdxl at 1024^2, fp16, 50 steps: every preset, the generated-image edit, seconds and peak VRAM.
set -uo pipefail
OUT="${OUT:-bench/out/gpu}"
mkdir -p "$OUT" /tmp/site
exec > >(tee "$OUT/log.txt") 2>&1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl \
  || exit 1
export PYTHONPATH="/tmp/site:$PWD/.gpu/stubs" COMFYUI_PATH="$PWD/.gpu/ComfyUI" PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
for run in "sd15 512" "sdxl 1024"; do
  set -- $run
  timeout 280 python3 bench/run.py perf --model "$1" --size "$2" --device cuda --dtype fp16 \
    --json "$OUT/$1_$2.json" > "$OUT/$1_$2.md" || echo "perf $1 $2 failed: exit $?"
  tail -n 40 "$OUT/$1_$2.md"
done

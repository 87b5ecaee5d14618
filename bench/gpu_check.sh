#!/usr/bin/env bash
# Issue 22's GPU check, on a lent GPU machine (device tool: carry [".gpu"], timeout_s 600). Build .gpu/ here first
# with `bash bench/gpu_kit.sh`. Writes to $OUT: nvidia-smi.txt, sd15_512.json/.md, sdxl_1024.json/.md,
# backward_lever.txt, log.txt.
#   sd15 at 512^2 and sdxl at 1024^2, fp16, 50 steps: every preset, the generated-image edit, seconds and peak VRAM;
#   first, one batched backward against two (README, levers) on the full-width SD1.5 UNet at 512^2.
set -uo pipefail
OUT="${OUT:-bench/out/gpu}"
source "$(dirname "${BASH_SOURCE[0]}")/gpu_env.sh"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
timeout 60 python3 bench/run.py backward_lever --channels 320 --size 64 --device cuda --dtype fp16 \
  --out "$OUT/backward_lever.txt" || echo "backward_lever failed: exit $?"
for run in "sd15 512 230" "sdxl 1024 260"; do  # model, size, seconds at most (the device runs 600 s a call)
  set -- $run
  timeout "$3" python3 bench/run.py perf --model "$1" --size "$2" --device cuda --dtype fp16 \
    --json "$OUT/$1_$2.json" > "$OUT/$1_$2.md" || echo "perf $1 $2 failed: exit $?"
  tail -n 40 "$OUT/$1_$2.md"
done

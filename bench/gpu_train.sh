#!/usr/bin/env bash
# Issue 18's proxy training on a lent GPU machine (device tool: carry [".gpu"], timeout_s 600; build .gpu/ here first
# with `make gpu-kit`). A fresh ShapesText48 run for TRAIN_MINUTES on the GPU, its scenes rendered ahead by
# TRAIN_WORKERS processes so that the rendering keeps up with the GPU. Writes to $OUT: the EMA weights (7 MB),
# log.txt, nvidia-smi.txt; the checkpoint (28 MB, over the 16 MiB a returned file may have) stays at
# TRAIN_CHECKPOINT there. Settings, with their defaults:
#   TRAIN_DEVICE=cuda TRAIN_ARCH=pixel48 TRAIN_STEPS=12000 TRAIN_BATCH=64 TRAIN_MINUTES=7 TRAIN_WORKERS=14
#   TRAIN_AUTOCAST=bf16 TRAIN_UNTIL= (no step limit)
# Then, here: bench/run.py proxy_reconstruction and proxy_samples with --weights on the returned EMA
# (bench/PROXY_CARD.md), and shapesdrag2 --weights to judge edits with it.
set -uo pipefail
OUT="${OUT:-bench/out/gpu_train}"
source "$(dirname "${BASH_SOURCE[0]}")/gpu_env.sh"
python3 bench/run.py scripts.train_proxy --device "${TRAIN_DEVICE:-cuda}" --workers "${TRAIN_WORKERS:-14}" \
  --autocast "${TRAIN_AUTOCAST:-bf16}" --arch "${TRAIN_ARCH:-pixel48}" --steps "${TRAIN_STEPS:-12000}" \
  --batch "${TRAIN_BATCH:-64}" --minutes "${TRAIN_MINUTES:-7}" ${TRAIN_UNTIL:+--until "$TRAIN_UNTIL"} --threads 2 \
  --save-every 1000 --log-every 100 --checkpoint "${TRAIN_CHECKPOINT:-/tmp/shapestext48_gpu_checkpoint.safetensors}" \
  --weights "$OUT/shapestext48_gpu_ema.safetensors"

#!/usr/bin/env bash
# Issue 18's proxy training on a lent GPU machine (device tool: carry [".gpu"], timeout_s 600; build .gpu/ here first
# with `make gpu-kit`). A fresh ShapesText48 run for TRAIN_MINUTES on the GPU, its scenes rendered ahead by
# TRAIN_WORKERS processes so that the rendering keeps up with the GPU. The architecture is large48, not the
# CPU-trained pixel48, whose training to its schedule's end did not make it draw its prompts' shapes (PROXY_CARD).
# Writes to $OUT: the EMA weights in fp16 (12 MB), log.txt, nvidia-smi.txt; the checkpoint (about 100 MB, over the 16 MiB
# a returned file may have) stays at TRAIN_CHECKPOINT there. Settings, with their defaults:
#   TRAIN_DEVICE=cuda TRAIN_ARCH=large48 TRAIN_STEPS=6000 TRAIN_BATCH=128 TRAIN_MINUTES=5 TRAIN_WORKERS=14
#   TRAIN_AUTOCAST=bf16 TRAIN_UNTIL= (no step limit)
# Then, here: bench/run.py proxy_reconstruction and proxy_samples with --weights on the returned EMA
# (bench/PROXY_CARD.md), and shapesdrag2 --weights to judge edits with it.
set -uo pipefail
OUT="${OUT:-bench/out/gpu_train}"
source "$(dirname "${BASH_SOURCE[0]}")/gpu_env.sh"
python3 bench/run.py scripts.train_proxy --device "${TRAIN_DEVICE:-cuda}" --workers "${TRAIN_WORKERS:-14}" \
  --autocast "${TRAIN_AUTOCAST:-bf16}" --arch "${TRAIN_ARCH:-large48}" --steps "${TRAIN_STEPS:-6000}" \
  --batch "${TRAIN_BATCH:-128}" --minutes "${TRAIN_MINUTES:-5}" ${TRAIN_UNTIL:+--until "$TRAIN_UNTIL"} --threads 2 \
  --save-every 1000 --log-every 100 --checkpoint "${TRAIN_CHECKPOINT:-/tmp/shapestext48_gpu_checkpoint.safetensors}" \
  --weights "$OUT/shapestext48_gpu_ema.safetensors" --weights-dtype fp16

# Sourced by bench/gpu_check.sh and bench/gpu_train.sh on a lent GPU machine, after they set OUT: the output copied
# to $OUT/log.txt, nvidia-smi's report to $OUT/nvidia-smi.txt, the kit's wheels installed offline, then ComfyUI and
# the PyAV stand-in taken from the kit. GPU_KIT: another kit folder (default .gpu, built by `make gpu-kit`); SITE:
# where the wheels go (default /tmp/site).
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
KIT="${GPU_KIT:-$PWD/.gpu}"
SITE="${SITE:-/tmp/site}"
mkdir -p "$SITE"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$KIT"/whl/*.whl \
  || exit 1
export PYTHONPATH="$SITE:$KIT/stubs" COMFYUI_PATH="$KIT/ComfyUI" PYTHONUNBUFFERED=1

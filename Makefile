# Dragon Drag Edit developer commands. Every target sets up what it needs first.
PY := .dev/venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test conformance lint bench bench-shapes32 perf gpu-kit fuzz train-toy train-proxy clean-env

setup:
	@bash .ci/setup_env.sh

# A move and a point drag on built-in scenes with the project's small model; prints where the PNGs are.
demo: setup
	$(PY) bench/run.py demo

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

# The official DragonDiffusion code (OFFICIAL_DIR, default ../shared/reference/DragonDiffusion, in its own venv)
# and the pack on the same random weights of SD1.5's architecture, step by step, in every mode; writes
# bench/results/conformance.md and fails when a stage is over tolerance (docs/conformance.md).
conformance: setup
	bash bench/conformance/run.sh

lint: setup
	$(PY) -m ruff check .

# ShapesDrag v2 on the prompt-conditioned proxy model: every mode, both presets, Preview, the pack's start noise,
# guidance off and the references (a), (b), (c), with the contact sheet (estimated at about an hour on 2 CPU cores).
bench: setup
	$(PY) bench/run.py shapesdrag2 --sheet docs/shapesdrag2_sheet.png

# ShapesDrag on the Shapes32 toy model: every mode, the copy-paste baseline and the ablations (about 19 min).
bench-shapes32: setup
	$(PY) bench/run.py shapesdrag

# What each edit costs against plain ComfyUI sampling (every preset, a generated-image edit, a re-edit), on the
# proxy model, counted and timed; writes bench/results/perf_proxy_cpu.md (see bench/perf.py for the GPU form).
perf: setup
	$(PY) bench/run.py perf --threads 1 --out bench/results/perf_proxy_cpu.md

# What a lent GPU machine needs for bench/gpu_check.sh (issue 22's GPU check) and bench/gpu_train.sh (issue 18's
# training), in .gpu/ (carry it to the device).
gpu-kit: setup
	bash bench/gpu_kit.sh

# 1,000 seeded fuzz cases through a real ComfyUI server; prints the outcome counts (FUZZ_CASES=N to change).
FUZZ_CASES ?= 1000
fuzz: setup
	DRAGON_FUZZ_CASES=$(FUZZ_CASES) $(PY) -m pytest tests/test_fuzz.py -q

# Retrain the Shapes32 toy model from scratch (about 90 min on 2 CPU cores).
train-toy: setup
	$(PY) bench/run.py scripts.train_toy

# Train the prompt-conditioned proxy model for up to PROXY_MINUTES more minutes, resuming from its checkpoint
# (bench/weights/shapestext48_checkpoint.safetensors); run it again to go on. PROXY_ARGS is the run's recipe since
# step 7,000 (bench/PROXY_CARD.md). The checkpoint has reached its 12,000 steps: it now says so and writes nothing.
# The EMA weights go to bench/out/, not over the benchmarks' judge (bench/weights/shapestext48.safetensors), which
# changes only with a rerun of the benchmarks.
PROXY_MINUTES ?= 60
PROXY_ARGS ?= --steps 12000 --autocast off
train-proxy: setup
	$(PY) bench/run.py scripts.train_proxy --minutes $(PROXY_MINUTES) $(PROXY_ARGS) \
		--weights bench/out/shapestext48_ema.safetensors

clean-env:
	rm -rf .dev

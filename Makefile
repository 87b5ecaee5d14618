# Dragon Drag Edit developer commands. Every target sets up what it needs first.
PY := .dev/venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench perf train-toy clean-env

setup:
	@bash .ci/setup_env.sh

# A move and a point drag on built-in scenes with the project's small model; prints where the PNGs are.
demo: setup
	$(PY) bench/run.py demo

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check .

# ShapesDrag benchmark: every mode, the copy-paste baseline and the ablations (about 17 min on 2 CPU cores).
bench: setup
	$(PY) bench/run.py shapesdrag

# Cost of one move edit against plain ComfyUI sampling on the small model (see bench/perf.py for the GPU form).
perf: setup
	$(PY) bench/run.py perf --threads 1

# Retrain the Shapes32 toy model from scratch (about 90 min on 2 CPU cores).
train-toy: setup
	$(PY) bench/run.py train_toy

clean-env:
	rm -rf .dev

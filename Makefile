# Two commands for a newcomer: `make run` (the toy study) and `make test`. Both bootstrap .venv
# from the pinned requirements on a fresh machine (CPU torch: torch==2.13.0 is a local wheel here).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
CONFIG ?= config.yaml
STUDY = $(shell $(BIN)/python -c "import yaml; print(yaml.safe_load(open('$(CONFIG)'))['study'])")

.PHONY: run test bench gpu-check report dry-run clean

$(BIN)/snakemake: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# `ftscale run` is snakemake that recovers after a crash (kill -9, power loss) and refuses a second
# run in this directory (src/ftscale/runtime/launch.py).
run: $(BIN)/snakemake
	$(BIN)/ftscale run --cores $(CORES) --configfile $(CONFIG)
	$(BIN)/ftscale run --cores 1 --configfile $(CONFIG) --report results/$(STUDY)/report.html

dry-run: $(BIN)/snakemake
	$(BIN)/snakemake -n --configfile $(CONFIG)

test: $(BIN)/snakemake
	$(BIN)/pytest -q $(PYTEST_ARGS)

# Figures, not assertions: each prints its table and merges it into results/bench/summary.json.
bench: $(BIN)/snakemake
	$(BIN)/python bench/run.py
	$(BIN)/python bench/bench_speed.py
	$(BIN)/python bench/bench_accumulation.py
	$(BIN)/python bench/bench_memory.py
	$(BIN)/python bench/bench_fitting.py
	$(BIN)/python bench/bench_analyze.py
	$(BIN)/python bench/bench_select.py
	$(BIN)/python bench/bench_synthetic.py
	$(BIN)/python bench/bench_grid.py
	$(BIN)/python bench/bench_startup.py
	$(BIN)/python bench/bench_slurm.py

# On a CUDA machine: the tiny study on GPU vs CPU, 1B-shaped steps' tokens/s and MFU, a sharded step
# with 2+ GPUs (bench/gpu_check.py; under 8 minutes on one modern GPU). No GPU: says so, exits 0;
# `make gpu-check DEVICE=cuda` (on a GPU node, to check the torch install) exits 1 without CUDA.
DEVICE ?= auto
gpu-check: $(BIN)/snakemake
	$(BIN)/python bench/gpu_check.py --device $(DEVICE)

clean:
	rm -rf results/ .snakemake/

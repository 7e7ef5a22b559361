# Every target that needs the environment sets it up first (once).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch build to install. Here the local mirror serves these versions; elsewhere
# override, e.g. `make setup TORCH_SPEC="torch torchvision"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=

DEMO ?= demo
DEMO_SIZE ?= 64
# random keeps the demo offline; use imagenet once resnet50-0676ba61.pth is in the torch hub cache
DEMO_WEIGHTS ?= random

.PHONY: setup test lint demo bench benchmark clean-demo reproduce reproduce-fixtures

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The layer contracts (pyproject.toml [tool.importlinter]), checked on a plain (non-editable) install
# of the package: the editable one maps folders, which import-linter's file walk does not follow.
LINT_DIR := build/lint
lint: setup
	rm -rf $(LINT_DIR)
	$(BIN)/pip install -q --no-deps --no-build-isolation --target $(LINT_DIR) .
	cd $(LINT_DIR) && PYTHONPATH=$(abspath $(LINT_DIR)) $(abspath $(BIN))/lint-imports $(CURDIR)/pyproject.toml

# Benchmark v2 "in the wild" videos -> ResNet-50 conv4 cache -> VAVA training -> embeddings -> report,
# alignment plot and aligned video. DEMO_VAVA is the VAVA setting trained (docs/results/ says why).
DEMO_VAVA ?= --set loss.cost=normalised --set loss.unit_embeddings=true --set loss.virtual=partial \
	--set loss.phi_schedule=budget --set loss.align_weight=0.2
demo: setup
	$(BIN)/vava data synth $(DEMO)/data --benchmark 2 --wild --actions 3 --videos 8 --size $(DEMO_SIZE) --seed 0
	$(BIN)/vava extract --dataset folder --root $(DEMO)/data --cache $(DEMO)/cache --weights $(DEMO_WEIGHTS) \
		--image-size $(DEMO_SIZE) > $(DEMO)/extract.out
	tail -n 1 $(DEMO)/extract.out > $(DEMO)/features.txt
	rm -rf $(DEMO)/runs/vava  # the demo retrains each time (synth rewrites the videos, so extract does too)
	$(BIN)/vava train --features $$(cat $(DEMO)/features.txt) --objective vava --config synthetic $(DEMO_VAVA) \
		--out $(DEMO)/runs/vava
	$(BIN)/vava embed --run $(DEMO)/runs/vava
	$(BIN)/vava align --run $(DEMO)/runs/vava fill_006 fill_007 --out $(DEMO)/aligned.mp4
	$(BIN)/vava evaluate --run $(DEMO)/runs/vava
	@echo "features:   $$(cat $(DEMO)/features.txt)"
	@echo "run:        $(DEMO)/runs/vava (config.yaml, train_log.csv, checkpoints/, embeddings.h5, report.md)"
	@echo "alignment:  $(DEMO)/runs/vava/plots/alignment.png (two val videos of one action, phases in colour)"
	@echo "aligned:    $(DEMO)/aligned.mp4 (fill_007 re-timed to follow fill_006)"

# The comparison on synthetic benchmark v2 (docs/results/): per setting one dataset (4 actions x 30
# videos: 20 train + 10 val each) and one extraction, then every objective and reference row on that
# feature set for each seed (plan `benchmark`), and in the wild setting the balanced VAVA ablations.
# `make -j2 benchmark` runs the two settings side by side, one thread each (about 2 h on 2 cores).
# Runs go to $(BENCH)/ (reused when the target runs again); tables to docs/results/.
BENCH ?= benchmark
BENCH_SEEDS ?= 0,1,2
BENCH_THREADS ?= 1
# steps of every trained run; empty = the synthetic preset's 200 (e.g. BENCH_STEPS=2000 on a GPU)
BENCH_STEPS ?=
BENCH_SWEEP = --seeds $(BENCH_SEEDS) $(if $(BENCH_STEPS),--steps $(BENCH_STEPS))

benchmark: benchmark-clean benchmark-wild

benchmark-%: setup
	[ -f $(BENCH)/$*/data/manifest.jsonl ] || $(BIN)/vava data synth $(BENCH)/$*/data --benchmark 2 --$* \
		--actions 4 --videos 30 --val-fraction 0.34 --size 64 --frames 40:80 --seed 0
	OMP_NUM_THREADS=$(BENCH_THREADS) $(BIN)/vava extract --root $(BENCH)/$*/data --cache $(BENCH)/cache \
		--weights random --image-size 64 --workers 1 --quiet > $(BENCH)/$*/extract.out
	tail -n 1 $(BENCH)/$*/extract.out > $(BENCH)/$*/features.txt
	OMP_NUM_THREADS=$(BENCH_THREADS) $(BIN)/vava sweep --features $$(cat $(BENCH)/$*/features.txt) --plan benchmark \
		$(BENCH_SWEEP) --out $(BENCH)/$*/runs --results docs/results/$*.md
	[ $* != wild ] || OMP_NUM_THREADS=$(BENCH_THREADS) $(BIN)/vava sweep --features $$(cat $(BENCH)/$*/features.txt) \
		--plan benchmark-ablations $(BENCH_SWEEP) --out $(BENCH)/$*/runs --results docs/results/wild-ablations.md

# A real dataset end to end (docs/reproduction.md): extract once (cached) -> train each objective ->
# embed -> evaluate -> $(REPRO_OUT)/results.md (results-per-action.md with --per-action). Rerunning skips
# what is finished. REPRO_ARGS passes any other `vava reproduce` option, e.g. --per-action,
# --dataset-option background=drop, --fps 10, --kendall-stride 2.
DATASET ?=
ROOT ?=
OBJECTIVES ?= vava tcc lav
REPRO_OUT ?= reproductions/$(DATASET)
REPRO_ARGS ?=

reproduce: setup
	@[ -n "$(DATASET)" ] && [ -n "$(ROOT)" ] || { echo "usage: make reproduce DATASET=pouring ROOT=/path/to/pouring" \
		"[OBJECTIVES=\"vava tcc lav\"] [REPRO_OUT=...] [REPRO_ARGS=\"--per-action ...\"]" >&2; exit 2; }
	$(BIN)/vava reproduce --dataset $(DATASET) --root $(ROOT) --out $(REPRO_OUT) --objectives "$(OBJECTIVES)" $(REPRO_ARGS)

# Every adapter's tiny fixture through `make reproduce` (CI): each protocol variant, few steps, random weights.
FIXTURES ?= build/fixtures
TINY_REPRO := --weights random --image-size 32 --steps 2 --set data.frames_per_video=4 --set data.batch_pairs=1 \
	--set model.conv_channels=8 --set model.fc_channels=8 --set checkpoint_every=2
reproduce-fixtures: setup
	rm -rf $(FIXTURES)
	set -e; for dataset in $$($(BIN)/vava data fixture --list); do \
		$(BIN)/vava data fixture --dataset $$dataset $(FIXTURES)/$$dataset/data; \
		$(MAKE) --no-print-directory reproduce DATASET=$$dataset ROOT=$(FIXTURES)/$$dataset/data \
			REPRO_OUT=$(FIXTURES)/$$dataset/joint OBJECTIVES="vava tcc" REPRO_ARGS="$(TINY_REPRO)"; \
		$(MAKE) --no-print-directory reproduce DATASET=$$dataset ROOT=$(FIXTURES)/$$dataset/data \
			REPRO_OUT=$(FIXTURES)/$$dataset/per-action OBJECTIVES="vava" REPRO_ARGS="$(TINY_REPRO) --per-action"; \
	done
	[ ! -d $(FIXTURES)/ikea_asm ] || $(MAKE) --no-print-directory reproduce DATASET=ikea_asm \
		ROOT=$(FIXTURES)/ikea_asm/data REPRO_OUT=$(FIXTURES)/ikea_asm/no-background OBJECTIVES="vava" \
		REPRO_ARGS="$(TINY_REPRO) --dataset-option background=drop"

bench: setup
	$(BIN)/python bench/bench_extract.py
	$(BIN)/python bench/bench_cache.py
	$(BIN)/python bench/bench_vava_loss.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_embedder.py
	$(BIN)/python bench/bench_softdtw.py
	$(BIN)/python bench/bench_evaluate.py
	$(BIN)/python bench/bench_align.py

clean-demo:
	rm -rf $(DEMO)

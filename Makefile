# Every target that needs the environment sets it up first (once).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch build to install. Here the local mirror serves these versions; elsewhere
# override, e.g. `make setup TORCH_SPEC="torch torchvision"`, or on a CPU-only machine that reaches PyTorch's
# index (no CUDA libraries): `make setup TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cpu"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=
# test worker processes (pytest-xdist): auto = one per core, 0 = none (in this process)
TEST_WORKERS ?= auto

DEMO ?= demo
DEMO_SIZE ?= 64
# random keeps the demo offline; use imagenet once resnet50-0676ba61.pth is in the torch hub cache
DEMO_WEIGHTS ?= random

.PHONY: setup test lint demo bench benchmark recipe clean-demo reproduce reproduce-fixtures protocol2-tables FORCE

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The layer contracts (pyproject.toml [tool.importlinter]), checked on the source folders themselves,
# and no command-line flag spelt below the CLI (pipeline/).
lint: setup
	$(BIN)/python tools/lint_imports.py --no-cache --config pyproject.toml
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/core/test_errors.py::test_no_flag_literal_below_the_cli

# Benchmark 3 "in the wild" videos (idle, cut-away and distraction background; a third of them reordered)
# -> ResNet-50 conv4 cache -> VAVA training (the synthetic recipe, DEMO_STEPS steps) -> embeddings -> report,
# alignment plot and aligned video. README.md and docs/results/ say what it shows and why these settings.
DEMO_STEPS ?= 1000
demo: setup
	$(BIN)/vava data synth $(DEMO)/data --wild --nonmonotonic 0.3 --actions 2 --videos 20 --frames 30:50 \
		--size $(DEMO_SIZE) --seed 0
	$(BIN)/vava extract --dataset folder --root $(DEMO)/data --cache $(DEMO)/cache --weights $(DEMO_WEIGHTS) \
		--image-size $(DEMO_SIZE) > $(DEMO)/extract.out
	tail -n 1 $(DEMO)/extract.out > $(DEMO)/features.txt
	rm -rf $(DEMO)/runs/vava  # the demo retrains each time (synth rewrites the videos, so extract does too)
	$(BIN)/vava train --features $$(cat $(DEMO)/features.txt) --objective vava --config synthetic \
		--steps $(DEMO_STEPS) --out $(DEMO)/runs/vava
	$(BIN)/vava embed --run $(DEMO)/runs/vava
	$(BIN)/vava align --run $(DEMO)/runs/vava fill_014 fill_015 --out $(DEMO)/aligned.mp4
	$(BIN)/vava evaluate --run $(DEMO)/runs/vava
	@echo "features:   $$(cat $(DEMO)/features.txt)"
	@echo "run:        $(DEMO)/runs/vava (config.yaml, train_log.csv, checkpoints/, embeddings.h5, report.md)"
	@echo "alignment:  $(DEMO)/runs/vava/plots/alignment.png (two val videos of one action, phases in colour)"
	@echo "aligned:    $(DEMO)/aligned.mp4 (fill_015 re-timed to follow fill_014)"

# The comparison on synthetic benchmark 3 (docs/results/): per setting one dataset (4 actions x 30
# videos: 20 train + 10 val each) and one extraction, then every objective and reference row on that
# feature set for each seed (plan `benchmark`), and in the wild setting VAVA's ablations (plan
# `benchmark-ablations`). Each trained run takes 8-10 min on one core (3000 steps of the synthetic
# preset, then embedding and evaluation), so a setting's 30 trained runs take about 5 h on one core;
# `make -j2 benchmark` runs the two settings side by side, one thread each. Runs go to $(BENCH)/ and are
# reused when the target runs again (an interrupted sweep goes on where it stopped); tables to docs/results/.
# `make ladder-wild` (or -clean) runs the sanity ladder (`vava diagnose`) of the synthetic preset on the same
# features; `make recipe` the sweep that found the preset (docs/results/recipe.md).
BENCH ?= benchmark
BENCH_SEEDS ?= 0,1,2
BENCH_THREADS ?= 1
# steps of every trained run; empty = the synthetic preset's
BENCH_STEPS ?=
# config overrides of every trained run, KEY=VALUE separated by spaces (docs/results' protocol 2:
# BENCH_STEPS=24000 BENCH_SET=optim.schedule=cosine)
BENCH_SET ?=
BENCH_SWEEP = --seeds $(BENCH_SEEDS) $(if $(BENCH_STEPS),--steps $(BENCH_STEPS)) $(foreach s,$(BENCH_SET),--set $(s))
BENCH_RUN = OMP_NUM_THREADS=$(BENCH_THREADS) $(BIN)/vava

benchmark: benchmark-clean benchmark-wild

# extract every time: a cached feature set is found at once, a removed one is made again. --scaler float: the
# path the results' sets were extracted with, so they are found again (64 px from 64 px: no resize, the same arrays).
# The videos get one fixed modification time (part of the fingerprint), so every machine that renders them makes
# the same feature set and runs built on several machines or sittings gather into one table (`vava gather`).
BENCH_MTIME ?= 2026-12-06 00:00:00 UTC
$(BENCH)/%/features.txt: FORCE | setup
	[ -f $(BENCH)/$*/data/manifest.jsonl ] || { $(BIN)/vava data synth $(BENCH)/$*/data --benchmark 3 --$* \
		--actions 4 --videos 30 --val-fraction 0.34 --size 64 --frames 40:80 --seed 0 && \
		find $(BENCH)/$*/data -type f -exec touch -d "$(BENCH_MTIME)" {} + ; }
	$(BENCH_RUN) extract --root $(BENCH)/$*/data --cache $(BENCH)/cache \
		--weights random --image-size 64 --scaler float --workers 1 --quiet > $(BENCH)/$*/extract.out
	tail -n 1 $(BENCH)/$*/extract.out > $@

benchmark-%: $(BENCH)/%/features.txt
	$(BENCH_RUN) sweep --features $$(cat $<) --plan benchmark $(BENCH_SWEEP) --out $(BENCH)/$*/runs \
		--results docs/results/$*.md
	[ $* != wild ] || $(BENCH_RUN) sweep --features $$(cat $<) --plan benchmark-ablations $(BENCH_SWEEP) \
		--out $(BENCH)/$*/runs --results docs/results/wild-ablations.md

# Budget protocol 2 (docs/results/README.md: 24000 steps, cosine schedule) is built in parts; each finished run's
# record is kept in $(P2)/records/SETTING/seed-S/NAME/ and the tables are gathered from them.
P2 := docs/results/protocol2
protocol2-tables: setup
	$(BIN)/vava gather --plan benchmark $(P2)/records/wild --out $(P2)/wild.md --loss-curves $(P2)/loss-curves-wild.png
	[ -z "$$(find $(P2)/records/wild -path '*/vava*/sweep_record.json' -print -quit)" ] || \
		$(BIN)/vava gather --plan benchmark-ablations $(P2)/records/wild --out $(P2)/wild-ablations.md
	[ ! -d $(P2)/records/clean ] || $(BIN)/vava gather --plan benchmark $(P2)/records/clean --out $(P2)/clean.md \
		--loss-curves $(P2)/loss-curves-clean.png

ladder-%: $(BENCH)/%/features.txt
	$(BENCH_RUN) diagnose --features $$(cat $<) --out $(BENCH)/$*/ladder --config synthetic

recipe: $(BENCH)/wild/features.txt
	$(BENCH_RUN) sweep --features $$(cat $<) --plan recipe $(BENCH_SWEEP) --out $(BENCH)/wild/recipe \
		--results docs/results/recipe-wild.md

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
	$(BIN)/python bench/bench_decode.py
	$(BIN)/python bench/bench_extract_ranks.py
	$(BIN)/python bench/bench_cache.py
	$(BIN)/python bench/bench_s3.py
	$(BIN)/python bench/bench_vava_loss.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_embedder.py
	$(BIN)/python bench/bench_softdtw.py
	$(BIN)/python bench/bench_evaluate.py
	$(BIN)/python bench/bench_align.py

clean-demo:
	rm -rf $(DEMO)

FORCE:

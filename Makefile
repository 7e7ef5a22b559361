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

ABLATIONS ?= ablations
ABLATION_STEPS ?= 200

.PHONY: setup test lint demo bench ablations clean-demo

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

# Synthetic "in the wild" videos -> ResNet-50 conv4 cache -> VAVA training -> embeddings -> aligned video, report.
demo: setup
	$(BIN)/vava data synth $(DEMO)/data --wild --actions 3 --videos 8 --size $(DEMO_SIZE) --frames 40:64 --seed 0
	$(BIN)/vava extract --dataset folder --root $(DEMO)/data --cache $(DEMO)/cache --weights $(DEMO_WEIGHTS) \
		--image-size $(DEMO_SIZE) > $(DEMO)/extract.out
	tail -n 1 $(DEMO)/extract.out > $(DEMO)/features.txt
	rm -rf $(DEMO)/runs/vava  # the demo retrains each time (synth rewrites the videos, so extract does too)
	$(BIN)/vava train --features $$(cat $(DEMO)/features.txt) --objective vava --config synthetic \
		--out $(DEMO)/runs/vava
	$(BIN)/vava embed --run $(DEMO)/runs/vava
	$(BIN)/vava align --run $(DEMO)/runs/vava fill_006 fill_007 --out $(DEMO)/aligned.mp4
	@echo "features:   $$(cat $(DEMO)/features.txt)"
	@echo "run:        $(DEMO)/runs/vava (config.yaml, train_log.csv, checkpoints/, embeddings.h5)"
	@echo "aligned:    $(DEMO)/aligned.mp4 (fill_007 re-timed to follow fill_006)"
	$(BIN)/vava evaluate --run $(DEMO)/runs/vava

# Every comparison row of the supplement on the synthetic benchmark, clean and wild: one dataset and
# one extraction per setting, then every objective and VAVA ablation trains on that one feature set.
# Tables go to docs/results/; runs to $(ABLATIONS)/ (reused when the target is run again).
ablations: setup
	for setting in clean wild; do \
		[ -f $(ABLATIONS)/$$setting/data/manifest.jsonl ] || $(BIN)/vava data synth $(ABLATIONS)/$$setting/data \
			--$$setting --actions 3 --videos 10 --size 64 --frames 40:80 --seed 0 || exit 1; \
		$(BIN)/vava extract --root $(ABLATIONS)/$$setting/data --cache $(ABLATIONS)/cache --weights random \
			--image-size 64 --quiet > $(ABLATIONS)/$$setting/extract.out || exit 1; \
		tail -n 1 $(ABLATIONS)/$$setting/extract.out > $(ABLATIONS)/$$setting/features.txt; \
		$(BIN)/vava sweep --features $$(cat $(ABLATIONS)/$$setting/features.txt) --plan ablations \
			--out $(ABLATIONS)/$$setting/runs --steps $(ABLATION_STEPS) --results docs/results/$$setting.md || exit 1; \
	done

bench: setup
	$(BIN)/python bench/bench_extract.py
	$(BIN)/python bench/bench_cache.py
	$(BIN)/python bench/bench_vava_loss.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_softdtw.py
	$(BIN)/python bench/bench_evaluate.py
	$(BIN)/python bench/bench_align.py

clean-demo:
	rm -rf $(DEMO)

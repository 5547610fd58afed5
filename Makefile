# siambench: the common runs. `make pretrain && make eval-all` is the main job;
# `make test` runs the tests. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= byol_shapes
RUN ?= $(CONFIG)
CKPT ?= checkpoints/$(RUN)
RESULTS ?= results
DATA_ROOT ?=

.PHONY: install test test-fast pretrain eval-all report bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# Everything but the tests marked slow (learning, end-to-end, multi-process): the loop while developing.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# BYOL on the embedded shapes data; resumes if the run folder already has checkpoints.
pretrain: $(STAMP)
	$(VENV)/bin/siambench pretrain --config $(CONFIG) name=$(RUN) --resume auto

# Every evaluation for CKPT (default: make pretrain's run); embedded data unless DATA_ROOT is set.
# Resumable: records already in RESULTS are not recomputed. Ends with the summary table.
eval-all: $(STAMP)
	$(VENV)/bin/siambench eval-all --ckpt $(CKPT) --results $(RESULTS) $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

report: $(STAMP)
	$(VENV)/bin/siambench report $(RESULTS) --plots $(RESULTS)/plots

bench: $(STAMP)
	$(PY) benchmarks/pretrain_step.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

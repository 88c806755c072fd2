# The README's two commands: `make repro` runs the pipeline, `make test` runs the tests; `make help` lists the rest.
# Both create or update .venv from the pinned lock first; when it is current that costs nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
# The stamp is newer than the lock once the lock is installed, so make skips the install.
STAMP := $(VENV)/.installed
# uv makes .venv and installs the lock (several times faster than pip). It comes from the package index too, pinned,
# installed once by the Python that runs make into a folder of its own version: nothing else to have beforehand.
UV_VERSION := 0.13.9
UV := $(abspath .uv/$(UV_VERSION))/bin/uv
# The lock is requirements.in resolved for every platform and Python version at once (`uv pip compile
# --universal`), as the package index stood on LOCK_DATE, so that resolving it again gives the same file
# (tests/test_lock.py checks it does). To move a pin: edit requirements.in, set LOCK_DATE to today, `make lock`.
LOCK_DATE := 2026-11-24T00:00:00Z
LOCK_PYTHON := 3.11

# Stage commands in dvc.yaml call `python`; it must be the venv's.
export PATH := $(BIN):$(PATH)
# Quiet TensorFlow's C++ start-up banner; errors still print.
export TF_CPP_MIN_LOG_LEVEL ?= 2
# Values a user (or a workflow's dispatch input) passes, e.g. `make sweep GRID='...'`, reach the recipes as
# environment variables, byte for byte, and are quoted there ("$$GRID"): never pasted into a shell line, where
# quotes, ';', $( ) or backticks in them would run as commands. `$(value ...)` keeps make itself from expanding
# a '$' in them. The *_ARGS ones hold several options: split on spaces (globbing off, `set -f`), nothing else.
SHARE ?= 1/1
TEST_WORKERS ?= auto
DASHBOARD_PORT ?= 8080
USER_VALUES := GRID SHARE SHARES SWEEP SWEEP_ARGS GATE_ARGS TUNE_ARGS PYTEST_ARGS TEST_WORKERS DASHBOARD_PORT PYTHON
$(foreach name,$(USER_VALUES),$(eval override $(name) := $$(value $(name))))
export $(USER_VALUES)

.PHONY: help repro reproduce test check test-latest mutation gate power tune dashboard tune-promote sweep sweep-collect site venv lock clean-venv
.DEFAULT_GOAL := help

# `make help` (and a bare `make`): every target with its one line, the text after `## ` on the target's line.
help:  ## list the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(firstword $(MAKEFILE_LIST)) | sed -E 's/^([a-z-]+):.*## (.*)/\1|\2/' | \
	  awk -F'|' '{ printf "make %-15s %s\n", $$1, $$2 }'

# params.yaml is checked whole first: DVC would start stages before the one with a bad value rejects it. What a stopped
# run left (a journal, temporaries) is repaired next, before DVC hashes the outputs (fmnist/plumbing/transaction.py).
repro: $(STAMP)  ## set up .venv, check params.yaml, run the pipeline (dvc repro)
	python -m fmnist.schema
	python -m fmnist.plumbing.transaction
	dvc repro

# PYTEST_ARGS goes through pytest's own PYTEST_ADDOPTS, which splits it as a shell would (-k 'a and b') but runs nothing.
# The tests run on every core (pytest-xdist; TEST_WORKERS=0 for one process), each module on one worker: a module's
# set-up (a copy of the tiny pipeline, a remote, a study) is made once, and the heaviest modules start first.
PYTEST := PYTEST_ADDOPTS="$${PYTEST_ADDOPTS:-} $$PYTEST_ARGS" python -m pytest -n "$$TEST_WORKERS" --dist loadscope --no-loadscope-reorder
test: $(STAMP)  ## set up .venv, run the tests (PYTEST_ARGS: more pytest options)
	$(PYTEST)

# The edit-test loop, in about a minute: ruff (pyproject.toml's rules), then the tests that start no process and load
# no TensorFlow, which tests/conftest.py marks `quick` from what each one uses (its body, its fixtures, the helpers
# they call, its module's imports). One process: collecting is most of the time. make test still runs every test.
RUFF_VERSION := 0.17.6
check: $(STAMP)  ## ruff and the quick tests (no process, no TensorFlow), in about a minute
	$(UV) pip install --quiet --python $(BIN)/python ruff==$(RUFF_VERSION)
	ruff check fmnist stages tests benchmarks
	PYTEST_ADDOPTS="$${PYTEST_ADDOPTS:-} $$PYTEST_ARGS" python -m pytest -m quick -q

# The metric gate: params.yaml `gates` minimums and max drop against `gates.reference` (main).
# Pass options through GATE_ARGS, e.g. make gate GATE_ARGS="--ref HEAD~1".
gate: $(STAMP)  ## the metric gate: minimums, and no drop against main (GATE_ARGS)
	set -f; python -m stages.gate $$GATE_ARGS

power: $(STAMP)  ## the seeds each gated mean needs to detect a drop of gates.detect, from the committed spread
	python -m stages.gate --power

# A full reproduction, as CI checks it: every stage runs (--force: also those whose outputs are all in git, which
# DVC would skip as up to date), each one that completes is logged, then this run's means must match HEAD's
# within their spread, and every stage whose metrics are compared must be in the log.
RUN_LOG := .dvc/tmp/stages-run.log
reproduce: $(STAMP)  ## force every stage, then check the means against HEAD's spread
	python -m fmnist.schema
	python -m fmnist.plumbing.transaction
	mkdir -p $(dir $(RUN_LOG)) && rm -f $(RUN_LOG)
	FMNIST_RUN_LOG="$(abspath $(RUN_LOG))" dvc repro --force
	python -m stages.gate --reproduces HEAD --ran $(RUN_LOG)

# The report site from the committed reports: static, offline (plotly.js shipped in it); Pages publishes it.
site: $(STAMP)  ## build site/: the reports as an offline HTML site (open site/index.html)
	python -m fmnist.tools.site

# The Optuna study of params.yaml `tune` (each trial a DVC experiment); TUNE_ARGS e.g. "--storage URL --trials N".
tune: $(STAMP)  ## the Optuna study of params.yaml tune; run again to resume (TUNE_ARGS)
	python -m fmnist.schema
	set -f; python -m fmnist.tools.tune $$TUNE_ARGS

# The study (tuning/study.db, fetched with DVC where missing) in optuna-dashboard: DASHBOARD_PORT, default 8080.
dashboard: $(STAMP)  ## the tuning study in optuna-dashboard at http://127.0.0.1:8080
	python -m fmnist.tools.tune dashboard --port "$$DASHBOARD_PORT"

# The study's best trial becomes the variant `tuned` in params.yaml; `make repro` then trains and reports it.
tune-promote: $(STAMP)  ## the study's best trial becomes the variant tuned
	python -m fmnist.tools.tune promote

# A grid of params.yaml values as DVC experiments, split over machines (fmnist/tools/sweep.py, docs/scaling.md). Every machine runs its share and pushes it; one collects:
#   make sweep GRID='variants.dropout30.hidden.0.dropout=0.1,0.2,0.3,0.5' SHARE=2/4
#   make sweep-collect GRID='...' SHARES=4
# SWEEP names the experiments (default: sweep-, a hash of the grid and the commit); SWEEP_ARGS passes more options.
sweep: $(STAMP)  ## run this machine's share of a grid as DVC experiments (GRID, SHARE, SWEEP)
	python -m fmnist.schema
	set -f; python -m fmnist.tools.sweep run --grid "$$GRID" --share "$$SHARE" $${SWEEP:+--name "$$SWEEP"} $$SWEEP_ARGS

sweep-collect: $(STAMP)  ## pull every share's points, write reports/sweeps/<SWEEP>.md (GRID, SHARES)
	set -f; python -m fmnist.tools.sweep collect --grid "$$GRID" $${SHARES:+--shares "$$SHARES"} $${SWEEP:+--name "$$SWEEP"} $$SWEEP_ARGS

# Mutation testing of the statistics that decide pass or fail (pyproject.toml [tool.mutmut]): a developer tool,
# installed on demand, not part of the lock.
# It fails below MUTATION_MIN percent of the mutants killed (mutmut's own score: killed and timed out over those
# tested); the weekly workflow runs it.
MUTMUT_VERSION := 3.8.1
MUTATION_MIN := 80
mutation: $(STAMP)  ## mutation testing of the pass/fail statistics (mutmut), at least MUTATION_MIN% killed
	$(UV) pip install --quiet --python $(BIN)/python mutmut==$(MUTMUT_VERSION)
	rm -rf mutants
	mutmut run
	mutmut results
	mutmut export-cicd-stats
	python -c 'import json, sys; s = json.load(open("mutants/mutmut-cicd-stats.json")); \
	  tested = s["total"] - s["skipped"]; killed = s["killed"] + s["timeout"]; score = 100 * killed / max(tested, 1); \
	  print(f"mutation score {score:.1f}%: {killed} of {tested} mutants killed; at least {sys.argv[1]}% required"); \
	  sys.exit(score < float(sys.argv[1]))' $(MUTATION_MIN)

# The tests against the newest releases of requirements.in's packages, unpinned, in .venv-latest (the scheduled
# workflow .github/workflows/latest.yml): an upgrade's breakage shows here before users meet it. Prints what
# differs from the lock first.
test-latest: | $(UV)  ## the tests against the newest releases, unpinned, in .venv-latest
	rm -rf .venv-latest && $(UV) venv --quiet --python "$$PYTHON" .venv-latest
	sed -E 's/[=<>!~]=[^ ;#]*//; s/[[:space:]]*#.*//' requirements.in | grep -v '^$$' > .venv-latest/requirements-latest.txt
	$(UV) pip install --quiet --python .venv-latest/bin/python -r .venv-latest/requirements-latest.txt
	$(UV) pip freeze --python .venv-latest/bin/python > .venv-latest/freeze.txt
	@echo "newer than the lock (requirements.txt):"; sed -E 's/[[:space:]]*;.*//' requirements.txt | \
	  grep -vxF -f - .venv-latest/freeze.txt || echo "  nothing"
	PATH="$(abspath .venv-latest)/bin:$$PATH" $(PYTEST)

venv: $(STAMP)  ## create or update .venv from requirements.txt only

# --seed: pip in .venv as well, as `python -m venv` gives, for a user's own `pip install` after `source .venv/bin/activate`.
# --compile-bytecode: the .pyc files now, as pip writes them; uv leaves them out by default, and where Python may not
# write them (PYTHONDONTWRITEBYTECODE, as on some CI machines) every process would compile TensorFlow again: its
# import took 25 s instead of 11 s here.
$(STAMP): requirements.txt | $(UV)
	test -x $(BIN)/python || $(UV) venv --quiet --seed --python "$$PYTHON" $(VENV)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.txt
	touch $@

# -qq: pip's errors only (a machine's own pip configuration can add warnings about index locations).
$(UV):
	"$$PYTHON" -m pip install --quiet --quiet --disable-pip-version-check --target $(abspath .uv/$(UV_VERSION)) \
	  uv==$(UV_VERSION)

# Written to a new file, then moved: uv would otherwise take the old lock's pins as preferences, and keep a
# hand-edited one.
lock: | $(UV)  ## regenerate requirements.txt, the universal lock of requirements.in (uv pip compile)
	$(UV) pip compile --quiet --universal --python-version $(LOCK_PYTHON) --exclude-newer $(LOCK_DATE) \
	  --custom-compile-command "make lock" requirements.in -o requirements.txt.new
	mv requirements.txt.new requirements.txt

clean-venv:  ## delete .venv
	rm -rf $(VENV)

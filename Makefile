# Each user-facing target sets up .venv first (idempotent: reinstalls only when pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lrexp-installed
ARGS ?=
PYTEST_ARGS ?=
# pytest-xdist processes for `make test`; 0 runs the suite in one process. worksteal: an idle
# worker takes queued tests from a busy one, so the slow tests do not pile up on one worker.
PYTEST_WORKERS ?= 2
# torch intra-op threads in each test process: one per worker, so two workers do not run four
# threads on two cores (the suite: 19 min 46 s with 1, 20 min 59 s with torch's default of 2)
TEST_TORCH_THREADS ?= 1

.PHONY: setup train test lint docs docs-serve bench bench-compare calibrate gallery clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

train: setup  ## train the default configuration (digits, MLP, SGD, cosine); ARGS="schedule=step ..."
	$(PY) train.py $(ARGS)

test: setup  ## run the whole test suite, slow tests included
	OMP_NUM_THREADS=$(TEST_TORCH_THREADS) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/pre-commit run --all-files

# Mermaid's browser bundle for the site's diagrams, from the npm registry (git-ignored)
MERMAID_JS := docs/assets/javascripts/mermaid.min.js
$(MERMAID_JS): scripts/fetch-mermaid.sh
	scripts/fetch-mermaid.sh

docs: setup $(MERMAID_JS)  ## build the manual into site/; --strict: a broken link or a page left out of nav fails
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

docs-serve: setup $(MERMAID_JS)  ## serve the manual at http://127.0.0.1:8000, rebuilt on every change
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve --dev-addr 127.0.0.1:8000

bench: setup  ## ms per optimizer step: plain PyTorch vs lrexp vs a stock Lightning template
	$(PY) scripts/bench.py $(ARGS)

bench-compare: setup  ## lrexp-compare on 50 runs x 10k LR points: SQLite, PostgreSQL, a server, MLflow's client
	$(PY) scripts/bench_compare.py $(ARGS)

calibrate: setup  ## lrexp-compare's verdicts by simulation: error rate at Δ=0, CI coverage, seed plans
	$(PY) scripts/verdict_calibration.py $(ARGS)

gallery: setup  ## redraw docs/schedules.png
	$(PY) -m lrexp.plot_schedules --gallery docs/schedules.png

clean:
	rm -rf outputs multirun .pytest_cache site

# Keepstone: `make run` starts the whole demo stack, `make test` runs the suite.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# The Forge Custom UI (manifest.yml's `panel` resource) is committed in manifest/build/panel with the digest
# of its sources; connector/customui.py rebuilds it with esbuild from npm only when a source has changed.
PYTEST_ARGS ?=

.PHONY: install run test test-slow test-all bench lint fmt clean

PIP     := $(BIN)/pip install -qq --disable-pip-version-check -c constraints.txt
RUN_STAMP := $(VENV)/.installed-run

# What the demo needs (no test tools, no npm): `make run` on a fresh clone installs only this.
$(RUN_STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "Installing Keepstone into $(VENV) ..."
	@$(PIP) -e .
	@touch $(RUN_STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e '.[test]'
	@touch $(STAMP) $(RUN_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error && touch $(NODE_STAMP); \
	else echo "npm not found: Azurite and Forge-manifest tests will be skipped"; fi

install: $(STAMP) $(NODE_STAMP)
	@$(BIN)/python -m connector.customui --if-stale

# The demo shows the Forge app by default, from the committed Custom UI: no npm on the run path.
run: $(RUN_STAMP)
	@$(BIN)/python -m connector.customui --if-stale
	@$(BIN)/keepstone run

# Three test processes on two cores: most tests wait on servers, browsers and subprocesses (each worker
# used about 45% of a core at -n 2, and the suite took 14.5 min), so a third one shortens the wall time.
# The few tests that judge pacing on the real clock run after them, alone: on a machine the suite itself
# keeps saturated, a process descheduled for a few hundred ms bunches its requests into 429s.
# The sources are compiled first: with PYTHONDONTWRITEBYTECODE set (as on the CI machine) every process
# the tests start (workers, CLI runs, killed copies) compiled backend/ and the rest again, ~0.45 s each.
test: install
	@$(BIN)/python -m compileall -q -j 0 backend connector keepstone sandbox bench tests
	$(BIN)/python -m pytest -n 3 -m "not slow and not pacing" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m "pacing and not slow" $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: none selected

test-slow: install
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

test-all: install
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) node_modules .pytest_cache build *.egg-info var

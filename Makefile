# recforge: `make demo` and `make test` are all a new user needs (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test browser lint typecheck bench-eval bench-train clean

# torch is pinned first on its own: `pip install torch==2.13.0` takes the CPU wheel on this machine;
# an unpinned torch (or one pulled in by another package) would download the multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/recforge quickstart

# the suite, then the built wheel in a fresh venv from outside the tree (what a release user gets);
# the page test drives Debian's chromium, installed here when apt can (root); skipped otherwise
test: install browser
	$(BIN)/python -m pytest -q
	bash scripts/wheel_smoke.sh $(BIN)/python

browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		timeout 600 apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; } || \
		echo "chromium not installed: the browser test will be skipped"

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

bench-eval: install
	$(BIN)/python benchmarks/bench_evaluation.py

bench-train: install
	$(BIN)/python benchmarks/bench_training_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache

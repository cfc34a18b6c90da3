# Set-up and entry points. `make test` and `make example` do all set-up from nothing:
# Debian packages (apt-get, as root), Caffe built into a cache folder (or reused), .venv/.
#
#   make test       set up, then run the test suite
#   make example    set up, then train the example nets and write results/ and figures
#   make sweep      set up, then the detector study's learning-rate sweeps (results/study_sweep.json)
#   make study      set up, then the detector study at the swept rates (results/study.json, figures)
#   make bench      set up, then run the speed benchmark; its output is saved in results/bench.txt
#   make docs       write the generated parts of README.md and docs/ (tables, figures, API)
#
# PYTHON picks the interpreter the venv is made from (default: python3 on PATH).
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PIP_INSTALL := $(VPY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt

.PHONY: setup system-packages caffe test example example-quick sweep study bench docs clean-venv

setup: caffe $(VENV)/.project-installed

system-packages:
	@scripts/install_system_packages.sh

$(VENV)/bin/python: | system-packages
	@echo "[setup] creating $(VENV) from $$($(PYTHON) -c 'import sys; print(sys.executable)')"
	@$(PYTHON) -m venv $(VENV)

$(VENV)/.requirements-installed: requirements/constraints.txt requirements/caffe-runtime.txt requirements/dev.txt | $(VENV)/bin/python
	@echo "[setup] installing Python packages into $(VENV)"
	@$(PIP_INSTALL) -r requirements/dev.txt
	@touch $@

$(VENV)/.project-installed: setup.py $(VENV)/.requirements-installed
	@$(PIP_INSTALL) --no-deps -e .
	@touch $@

# Always asks the build script: it answers from its cache in a second when nothing changed.
caffe: $(VENV)/.requirements-installed
	@root=$$(scripts/build_caffe.sh $(VPY)) && scripts/wire_venv.sh $(VENV) "$$root"

test: setup
	$(VPY) -m ruff check .
	$(VPY) -m pytest tests

example: setup
	$(VPY) -m examples.run_all

example-quick: setup
	$(VPY) -m examples.run_all --quick

sweep: setup
	$(VPY) -m examples.study --sweep

study: setup
	$(VPY) -m examples.study

# The docs' speed figures are generated from the committed output of one run (make docs).
BENCH_OUTPUT := results/bench.txt

bench: setup
	bash -o pipefail -c '$(VPY) -m benchmarks.run | tee $(BENCH_OUTPUT).partial'
	mv $(BENCH_OUTPUT).partial $(BENCH_OUTPUT)

# Every number in README.md and docs/ that comes from results/ is written here, never typed:
# tables from results/results.json, speed figures from results/bench.txt, the API from docstrings.
docs: setup
	$(VPY) -m tools.docs

clean-venv:
	rm -rf $(VENV)

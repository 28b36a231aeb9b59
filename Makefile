# Two commands do everything on a fresh clone:  make book  |  make test
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book test venv data tfds-venv browser browser-check rerun bench gpu-check clean

venv: $(STAMP)
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

data: venv
	bash scripts/fetch_data.sh
	bash scripts/fetch_static.sh

## Headless Chromium for the browser test (Debian's; skipped with a note where it cannot install).
browser:
	bash scripts/setup_browser.sh

tfds-venv: venv
	bash scripts/setup_tfds_venv.sh

## Build the whole book with default parameters (HTML in _build/html).
book: venv data
	$(PY) scripts/build_book.py

## Run the test suite (the data/tfds set-up it needs is done first), on TEST_WORKERS processes
## (pytest-xdist; tests/conftest.py groups the tests; TEST_WORKERS=0: one process).
TEST_WORKERS ?= 2
test: venv data tfds-venv browser
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope

## Re-run one chapter with new parameters and rebuild the book around it:
##   make rerun CHAPTER=01_phase_diagram PARAMS=book/params/01_phase_diagram/paper.yaml
## SCHEDULER=local:4 | tcp://host:port computes the sweep points on a Dask cluster
## (EARLYTRAIN_SCHEDULER; README "Running the paper presets on a cluster").
## The cost is estimated first; a run estimated over an hour asks before it starts, unless YES=1.
rerun: venv data
	$(if $(SCHEDULER),EARLYTRAIN_SCHEDULER=$(SCHEDULER) )$(PY) scripts/rerun_chapter.py $(if $(filter 1 y yes true,$(YES)),--yes )$(CHAPTER) $(PARAMS)

bench: venv data
	$(PY) bench/bench_sweep.py
	$(PY) bench/bench_engine.py
	$(PY) bench/bench_sharpness.py
	$(PY) bench/bench_cnn_sharpness.py
	$(PY) bench/bench_cluster.py

## On whatever accelerator JAX sees (a reduced run on a CPU-only machine), in under 8 minutes:
## devices and versions, the numerics-pinning tests, timed critical points, a Myrtle point;
## writes bench/gpu_check.json (bench/README.md, "gpu-check").
gpu-check: venv data
	$(PY) bench/gpu_check.py

## Open every page of the built book (make book first) in headless Chromium and check it.
browser-check: venv
	$(PY) scripts/browser_check.py _build/html

clean:
	rm -rf _build _runs

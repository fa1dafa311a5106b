# Two entry points (see README): `make matrix` (the main job) and `make test`; `make report
# IMPL=...` runs one implementation.
# Both bootstrap .venv with pip by themselves, every implementation's optional dependencies
# included (.[all]); re-running is a no-op once it is up to date.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
PY := $(VENV)/bin/python
IMPL ?= torchvision

.PHONY: report matrix test controls bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,all]'
	touch $(STAMP)

report: $(STAMP)
	$(PY) -m pytest conformance --detspec-impl $(IMPL) --detspec-report-dir reports -q

matrix: $(STAMP)
	$(VENV)/bin/detspec matrix --report-dir reports

test: $(STAMP)
	$(PY) -m pytest -n auto -q

# every negative control caught when its test runs alone, in a fresh interpreter (slow: ~3 min)
controls: $(STAMP)
	$(PY) -m tests.controls_alone

bench: $(STAMP)
	$(PY) -m benchmarks.boxes
	$(PY) -m benchmarks.rpn_targets
	$(PY) -m benchmarks.proposals
	$(PY) -m benchmarks.roi_head

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf reports .hypothesis .pytest_cache

# Quick start: `make demo` (set up what predict needs, then segment sample images with the bundled model),
# `make test-quick` (the quick tier) and `make test` (everything; CI runs this). Every path below is relative to
# this checkout (ROOT), so `make -f path/to/Makefile demo` works from anywhere too.
ROOT := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
PYTHON ?= python3.11
VENV ?= $(ROOT).venv
BIN := $(VENV)/bin
HASH := $(shell cat $(ROOT)pyproject.toml | md5sum | cut -c1-12)
STAMP := $(VENV)/.installed-all-$(HASH)
BASE_STAMP := $(VENV)/.installed-base-$(HASH)
SAMPLES ?= $(abspath $(ROOT)../shared/data/coco-person-mini/val/000000172648.jpg \
                    $(ROOT)../shared/data/coco-person-mini/val/000000311002.jpg)
# Progress per test file, the 15 slowest tests at the end.
PYTEST := cd $(ROOT) && $(BIN)/python -m pytest -p no:cacheprovider -o console_output_style=progress --durations=15

.PHONY: setup setup-base demo test test-quick

# Everything: the package with its export and test extras.
setup: $(STAMP)

$(STAMP): $(ROOT)pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e "$(ROOT)[export,test]"
	rm -f $(VENV)/.installed-* && touch $@ $(BASE_STAMP)

# Only what predict, eval and train need (no converters, no test tools).
setup-base: $(BASE_STAMP)

$(BASE_STAMP): $(ROOT)pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e "$(ROOT)"
	rm -f $(VENV)/.installed-base-* && touch $@

demo: setup-base
	$(BIN)/bbe-mobile predict $(SAMPLES) --out predictions

test: setup
	$(PYTEST)
	bash $(ROOT)ios_demo/test.sh
	bash $(ROOT)android_demo/grouper/test.sh

test-quick: setup
	$(PYTEST) -m "not slow"

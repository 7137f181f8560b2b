# Quick start: `make demo` (set up, then segment sample images with the bundled model) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)
SAMPLES ?= ../shared/data/coco-person-mini/val/000000172648.jpg ../shared/data/coco-person-mini/val/000000311002.jpg

.PHONY: setup demo test test-python test-swift test-kotlin

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[export,test]"
	rm -f $(VENV)/.installed-* && touch $@

demo: setup
	$(BIN)/bbe-mobile predict $(SAMPLES) --out predictions

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider
	bash ios_demo/test.sh
	bash android_demo/grouper/test.sh

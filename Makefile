# The README's two commands: `make demo` and `make test`. Both bootstrap everything they need
# (a .venv with the Python deps, the IPFS daemon for tests) and are quick when already set up.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= tf-cpu,dev,dp

.PHONY: demo test install ipfs chromium lint typecheck check clean

demo: $(STAMP)
	bash scripts/install_bwrap.sh
	$(PY) -m decentralml.cli.main demo

test: $(STAMP) ipfs chromium
	bash scripts/install_bwrap.sh
	bash scripts/with_ipfs.sh $(PY) -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

ipfs:
	bash scripts/install_ipfs.sh

# Debian's chromium + chromedriver for the dashboard's browser test (apt-get, as root)
chromium:
	bash scripts/install_chromium.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check decentralml tests bench examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

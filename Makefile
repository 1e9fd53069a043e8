# The README's two commands: `make demo` and `make test`. Both bootstrap everything they need
# (a .venv with the Python deps, the IPFS daemon, bubblewrap, chromium and, for `make test`, the
# pallet's Rust toolchain) and are quick when already set up.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
EXTRAS ?= tf-cpu,dev,dp
DEMO_EXTRAS ?= tf-cpu

.PHONY: demo test test-runtime pallet install ipfs runtime chopsticks chain chromium lint typecheck check clean

# `make chain PORT=9955` serves the runtime on another port.
PORT ?= 9944
CHOPSTICKS_STAMP := chain/chopsticks/node_modules/.installed

demo: $(DEMO_STAMP)
	bash scripts/install_bwrap.sh
	$(PY) -m decentralml.cli.main demo

# The chain tests run against the chains in TEST_CHAINS (tests/fixtures/chains.py). The Rust
# runtime (`runtime`) is not in the default set yet: its wasm build has not been verified to
# complete (docs/runtime.md, "Status"); `make test-runtime` runs the suite against both chains.
# The pallet's FRAME tests (mock runtime, no wasm) always run.
TEST_CHAINS ?= devnode

test: $(STAMP) ipfs chromium chopsticks pallet
	bash scripts/install_bwrap.sh
	DECENTRALML_TEST_CHAINS=$(TEST_CHAINS) bash scripts/with_ipfs.sh $(PY) -m pytest $(PYTEST_ARGS)

test-runtime: runtime
	$(MAKE) test TEST_CHAINS=devnode,runtime

# pallet-decentralml's FRAME tests against its mock runtime (cargo, target dir outside the clone)
pallet:
	bash scripts/test_pallet.sh

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# The demo needs the SDK and TensorFlow, not the dev tools; pip's progress stays visible, since
# the first install downloads TensorFlow (a few hundred MB) and takes minutes.
$(DEMO_STAMP): pyproject.toml
	@echo "make demo: installing decentralml[$(DEMO_EXTRAS)] into $(VENV) (minutes the first time)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --progress-bar on pip
	$(PY) -m pip install --progress-bar on -e ".[$(DEMO_EXTRAS)]"
	touch $(DEMO_STAMP)

ipfs:
	bash scripts/install_ipfs.sh

# The wasm and raw genesis chain spec in .tools/runtime/, after the pallet's FRAME tests (cargo is
# incremental: a no-op rebuild takes seconds; its target dir is outside the clone, see the script).
runtime:
	bash scripts/build_runtime.sh

chopsticks: $(CHOPSTICKS_STAMP)

$(CHOPSTICKS_STAMP): chain/chopsticks/package-lock.json
	bash scripts/install_chopsticks.sh

# One command for a local node running the real runtime (Ctrl-C to stop).
chain: $(STAMP) chopsticks
	bash scripts/build_runtime.sh --no-test
	$(PY) -m decentralml.cli.main node --port $(PORT)

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

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

# The editable install's own bytecode, written once: sandboxed tasks import the SDK from a
# read-only mount and could never cache it themselves (pip compiles everything else it installs).
COMPILE = $(PY) -m compileall -q decentralml

.PHONY: demo test pallet install ipfs runtime chopsticks chain chromium lint typecheck check clean

# `make chain PORT=9955` serves the runtime on another port.
PORT ?= 9944
CHOPSTICKS_STAMP := chain/chopsticks/node_modules/.installed

demo: $(DEMO_STAMP)
	bash scripts/install_bwrap.sh
	$(PY) -m decentralml.cli.main demo

# The chain tests run against both chains (tests/fixtures/chains.py): the devnode and the Rust
# runtime served by Chopsticks. `runtime` builds the pallet, the runtime's wasm and its chain spec
# and runs the Rust tests (the pallet's FRAME tests among them); cargo's target dir is outside the
# clone, so after the first build it is incremental. `make test TEST_CHAINS=devnode` skips nothing
# on the Rust side but runs the Python chain tests against the devnode only.
TEST_CHAINS ?= devnode,runtime

test: $(STAMP) ipfs chromium chopsticks runtime
	bash scripts/install_bwrap.sh
	DECENTRALML_TEST_CHAINS=$(TEST_CHAINS) bash scripts/with_ipfs.sh $(PY) -m pytest $(PYTEST_ARGS)

# pallet-decentralml's FRAME tests alone against its mock runtime (the quick loop; `runtime` runs
# them too)
pallet:
	bash scripts/test_pallet.sh

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	$(COMPILE)
	touch $(STAMP)

# The demo needs the SDK and TensorFlow, not the dev tools; pip's progress stays visible, since
# the first install downloads TensorFlow (a few hundred MB) and takes minutes.
$(DEMO_STAMP): pyproject.toml
	@echo "make demo: installing decentralml[$(DEMO_EXTRAS)] into $(VENV) (minutes the first time)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --progress-bar on pip
	$(PY) -m pip install --progress-bar on -e ".[$(DEMO_EXTRAS)]"
	$(COMPILE)
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

# ruff, and clippy (-D warnings) + rustfmt --check over the Cargo workspace
lint: $(STAMP)
	$(VENV)/bin/ruff check decentralml tests bench examples
	bash scripts/build_runtime.sh --no-test --lint

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

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

.PHONY: demo test test-network pallet install ipfs runtime node chopsticks chain network \
	network-stop chromium lint typecheck check clean

# `make chain PORT=9955` serves the runtime on another port.
PORT ?= 9944
CHOPSTICKS_STAMP := chain/chopsticks/node_modules/.installed

demo: $(DEMO_STAMP)
	bash scripts/install_bwrap.sh
	$(PY) -m decentralml.cli.main demo

# decentralml-node, once built (`make node`), lives in cargo's target dir outside the clone.
CARGO_TARGET ?= $(or $(DECENTRALML_CARGO_TARGET_DIR),$(HOME)/.cache/decentralml/cargo-target)
NODE_BIN ?= $(or $(DECENTRALML_NODE_BIN),$(CARGO_TARGET)/debug/decentralml-node)
comma := ,

# The chain tests run against both chains (tests/fixtures/chains.py): the devnode and the Rust
# runtime served by Chopsticks; and, when decentralml-node is already built on this machine, the
# node tier too (the chain suite against `decentralml-node --dev` and the four-validator network
# test, tests/chain/test_network.py), as `make test-network` runs it. `runtime` builds the pallet, the runtime's wasm and its chain spec
# and runs the Rust tests (the pallet's FRAME tests among them); cargo's target dir is outside the
# clone, so after the first build it is incremental. `make test TEST_CHAINS=devnode` skips nothing
# on the Rust side but runs the Python chain tests against the devnode only.
TEST_CHAINS ?= devnode,runtime$(if $(wildcard $(NODE_BIN)),$(comma)node)

test: $(STAMP) ipfs chromium chopsticks runtime
	bash scripts/install_bwrap.sh
	DECENTRALML_TEST_CHAINS=$(TEST_CHAINS) bash scripts/with_ipfs.sh $(PY) -m pytest $(PYTEST_ARGS)

# The node tier: builds decentralml-node if needed (about 20 minutes cold), then the chain suite
# against `decentralml-node --dev` and the four-validator network under faults.
test-network: $(STAMP) node
	DECENTRALML_TEST_CHAINS=node $(PY) -m pytest tests/chain tests/docs/test_network_md.py \
		tests/examples/test_federated_mnist.py::test_one_round_against_the_node $(PYTEST_ARGS)

# pallet-decentralml's FRAME tests alone against its mock runtime (the quick loop; `runtime` runs
# them too)
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

# decentralml-node (and the runtime it embeds): $(NODE_BIN)
node:
	bash scripts/build_runtime.sh --no-test --node

chopsticks: $(CHOPSTICKS_STAMP)

$(CHOPSTICKS_STAMP): chain/chopsticks/package-lock.json
	bash scripts/install_chopsticks.sh

# One command for a local node running the real runtime (Ctrl-C to stop): decentralml-node --dev
# once the node is built (`make node`), Chopsticks before that.
chain: $(STAMP) chopsticks
	bash scripts/build_runtime.sh --no-test
ifneq ($(wildcard $(NODE_BIN)),)
	$(NODE_BIN) --dev --rpc-port $(PORT) --rpc-cors all --no-prometheus --no-telemetry --no-mdns
else
	$(PY) -m decentralml.cli.main node --port $(PORT)
endif

# Four validators (//Alice, //Bob, //Charlie, //Dave) on loopback, RPC on ports 9951-9954; returns
# once GRANDPA finalizes and prints the URLs. `make network-stop` stops them.
network: $(STAMP) node
	$(PY) scripts/local_network.py start

network-stop: $(STAMP)
	$(PY) scripts/local_network.py stop

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

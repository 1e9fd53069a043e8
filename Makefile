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
comma := ,

# The editable install's own bytecode, written once: sandboxed tasks import the SDK from a
# read-only mount and could never cache it themselves.
COMPILE = $(PY) -m compileall -q decentralml

.PHONY: demo test test-fast test-py310 test-network pallet install lock bench-env ipfs runtime \
	node chopsticks chain network network-stop chromium lint typecheck check clean

# `make chain PORT=9955` serves the runtime on another port.
PORT ?= 9944
CHOPSTICKS_STAMP := chain/chopsticks/node_modules/.installed

demo: $(DEMO_STAMP)
	bash scripts/install_bwrap.sh
	$(PY) -m decentralml.cli.main demo

# decentralml-node, once built (`make node`), lives in cargo's target dir outside the clone.
CARGO_TARGET ?= $(or $(DECENTRALML_CARGO_TARGET_DIR),$(HOME)/.cache/decentralml/cargo-target)
NODE_BIN ?= $(or $(DECENTRALML_NODE_BIN),$(CARGO_TARGET)/debug/decentralml-node)

# The chain tests run against both chains (tests/fixtures/chains.py): the devnode and the Rust
# runtime served by Chopsticks; and, when decentralml-node is already built on this machine, the
# node tier too (the chain suite against `decentralml-node --dev` and the four-validator network
# test, tests/chain/test_network.py), as `make test-network` runs it. `runtime` builds the pallet,
# the runtime's wasm and its chain spec and runs the Rust tests (the pallet's FRAME tests among
# them); cargo's target dir is outside the clone, so after the first build it is incremental.
# `make test TEST_CHAINS=devnode` skips nothing on the Rust side but runs the Python chain tests
# against the devnode only.
# Without the node binary the node tier is skipped, with the reason (`make node` builds it).
TEST_CHAINS ?= devnode,runtime$(if $(wildcard $(NODE_BIN)),$(comma)node)

# Tests run in TEST_WORKERS pytest-xdist processes: most of a test's time is spent waiting (for a
# block, a subprocess, a sandbox), so more workers than cores pays; tests marked with one
# xdist_group (the four-validator network's) share a worker, so one network runs at a time
# (pyproject.toml keeps pytest < 9.2, under which --dist loadgroup honours the mark; the
# network's fixture fails if the mark is ignored). Every `decentralml-node --dev` has its own
# base path and OS-chosen ports. TEST_WORKERS=0 runs in-process.
TEST_WORKERS ?= 3

test: $(STAMP) ipfs chromium chopsticks runtime
	bash scripts/install_bwrap.sh
	DECENTRALML_TEST_CHAINS=$(TEST_CHAINS) bash scripts/with_ipfs.sh $(PY) -m pytest -n $(TEST_WORKERS) \
		--dist loadgroup $(PYTEST_ARGS)

# The inner loop (minutes): all but the slow, TensorFlow, IPFS and Rust-runtime tiers, against
# the devnode (and polkadot.js against it); nothing to build.
test-fast: $(STAMP) chopsticks
	bash scripts/install_bwrap.sh
	DECENTRALML_TEST_CHAINS=devnode $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow and not ipfs and not tf" $(PYTEST_ARGS)

# The node tier: builds decentralml-node if needed (about 25 minutes cold), then the chain suite
# against `decentralml-node --dev` and the four-validator network under faults.
test-network: $(STAMP) node
	DECENTRALML_TEST_CHAINS=node $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup tests/chain \
		tests/docs/test_network_md.py \
		tests/examples/test_federated_mnist.py::test_one_round_against_the_node $(PYTEST_ARGS)

# pallet-decentralml's FRAME tests alone against its mock runtime (the quick loop; `runtime` runs
# them too)
pallet:
	bash scripts/test_pallet.sh

install: $(STAMP)

# The environments come from uv.lock (every package pinned, with hashes), installed by uv: one
# universal lock covers every extra and Python 3.10-3.13, `uv lock --check` tells whether it still
# satisfies pyproject.toml (tests/test_lock.py), and installing from its cache takes seconds where
# pip takes minutes. uv itself comes from PyPI through pip, hash-checked
# (scripts/uv-requirements.txt). `make lock` re-resolves within pyproject.toml's ranges.
UV := .tools/uv/bin/uv
UV_ENV := UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON=$(PYTHON) UV_PYTHON_DOWNLOADS=never

$(UV): scripts/uv-requirements.txt
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
		--upgrade --target .tools/uv --require-hashes -r scripts/uv-requirements.txt
	touch $(UV)

$(STAMP): pyproject.toml uv.lock $(UV)
	$(UV_ENV) $(UV) sync --locked --quiet $(addprefix --extra ,$(subst $(comma), ,$(EXTRAS)))
	$(COMPILE)
	touch $(STAMP)

# The demo needs the SDK and TensorFlow, not the dev tools (kept if `make test` installed them).
$(DEMO_STAMP): pyproject.toml uv.lock $(UV)
	@echo "make demo: installing decentralml[$(DEMO_EXTRAS)] from uv.lock into $(VENV) (a minute the first time)"
	$(UV_ENV) $(UV) sync --locked --inexact $(addprefix --extra ,$(subst $(comma), ,$(DEMO_EXTRAS)))
	$(COMPILE)
	touch $(DEMO_STAMP)

# The oldest Python requires-python allows: the fast tier in an environment of its own, from the
# same lock (needs a python3.10 on PATH)
test-py310:
	$(MAKE) test-fast VENV=.venv-py310 PYTHON=python3.10

# Flower, for bench/flower_compare.py only (the `bench` extra, from the same lock)
bench-env: $(STAMP)
	$(UV_ENV) $(UV) sync --locked --inexact --quiet $(addprefix --extra ,$(subst $(comma), ,$(EXTRAS))) --extra bench

# Re-resolve uv.lock within pyproject.toml's ranges (newest versions), then `make test`.
lock: $(UV)
	$(UV) lock --upgrade

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

# ruff, the import contracts (layers, no cycles: [tool.importlinter] in pyproject.toml), the
# declared dependencies against the imports (deptry, [tool.deptry]), and clippy (-D warnings)
# + rustfmt --check over the Cargo workspace
lint: $(STAMP)
	$(VENV)/bin/ruff check decentralml tests bench examples
	$(VENV)/bin/lint-imports
	$(VENV)/bin/deptry decentralml
	bash scripts/build_runtime.sh --no-test --lint

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

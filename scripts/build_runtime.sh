#!/usr/bin/env bash
# Build the Rust side (pallet-decentralml, decentralml-runtime, decentralml-chain-spec and, with
# --node or once it has been built, decentralml-node), run its tests, and put the artifacts the
# Python side reads in a fixed place:
#
#   .tools/runtime/decentralml_runtime.compact.compressed.wasm   the runtime (wasm32v1-none, release)
#   .tools/runtime/chain-spec-raw.json                           raw genesis chain spec with :code
#   $CARGO_TARGET_DIR/debug/decentralml-node                     the node (with --node)
#
# Everything is ONE dev-profile `cargo build --workspace` + `cargo test --workspace` (the wasm is
# built in release by substrate-wasm-builder inside it): mixing in `--release` native builds would
# compile the polkadot-sdk twice. The cargo target dir lives outside the clone so later runs are
# incremental; an up-to-date run takes seconds.
#
# Usage: scripts/build_runtime.sh [--no-test] [--lint] [--node]
#   --no-test   skip `cargo test --workspace`
#   --lint      also `cargo clippy --workspace --all-targets -- -D warnings` and `cargo fmt --check`
#   --node      also build decentralml-node (about 20 more minutes cold; installs the Debian
#               packages its build needs). Once the node is built, every run rebuilds it too, so
#               it never serves a stale runtime.
# Environment:
#   DECENTRALML_CARGO_TARGET_DIR   cargo target dir (default: ~/.cache/decentralml/cargo-target)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/.tools/runtime"
RUN_TESTS=1
LINT=0
NODE=0

for arg in "$@"; do
  case "$arg" in
    --no-test) RUN_TESTS=0 ;;
    --lint | --clippy) LINT=1 ;;
    --node) NODE=1 ;;
    -h | --help)
      awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *)
      echo "build_runtime.sh: unknown option '$arg' (known: --no-test, --lint, --node)" >&2
      exit 2
      ;;
  esac
done

started=$(date +%s)
step_started=$started
step() {
  local now
  now=$(date +%s)
  printf '[build_runtime] %-34s %4ss (total %ss)\n' "$1" "$((now - step_started))" "$((now - started))"
  step_started=$now
}

# -- toolchain ------------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "[build_runtime] cargo not found: installing the Rust toolchain with rustup (minimal profile)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
if ! rustup target list --installed | grep -qx 'wasm32v1-none'; then
  rustup target add wasm32v1-none
fi
if [ "$LINT" = 1 ]; then
  rustup component list --installed | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
fi
step "toolchain ($(rustc --version | cut -d' ' -f2))"

export CARGO_TARGET_DIR="${DECENTRALML_CARGO_TARGET_DIR:-$HOME/.cache/decentralml/cargo-target}"
NODE_BIN="$CARGO_TARGET_DIR/debug/decentralml-node"
[ -x "$NODE_BIN" ] && NODE=1

# The node's build needs protoc (libp2p's protobuf code) and clang; install what is missing from
# Debian's packages (as root, or with sudo).
if [ "$NODE" = 1 ] && ! { command -v protoc && command -v clang; } >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "[build_runtime] installing protobuf-compiler, clang and libclang-dev (apt-get)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    protobuf-compiler clang libclang-dev >/dev/null
fi
# Without the node, build (and test) everything else; with it, build everything in one cargo
# invocation (the crates the two share compile once, with one feature set).
if [ "$NODE" = 1 ]; then
  BUILD_SET=(--workspace)
else
  BUILD_SET=(--workspace --exclude decentralml-node)
fi
export WASM_BUILD_TYPE=release
# The target dir is outside the clone, so substrate-wasm-builder cannot find our Cargo.lock by
# walking up from it; without this hint it resolves a fresh, unpinned lockfile for the wasm build.
export WASM_BUILD_WORKSPACE_HINT="$ROOT"
unset SKIP_WASM_BUILD
mkdir -p "$CARGO_TARGET_DIR"
cd "$ROOT"

# -- build, test, lint ----------------------------------------------------------------------------
cargo build "${BUILD_SET[@]}" --locked
step "cargo build ${BUILD_SET[*]}"

if [ "$RUN_TESTS" = 1 ]; then
  # the node has no tests of its own (tests/chain/test_network.py drives the binary)
  cargo test --workspace --exclude decentralml-node --locked
  step "cargo test --workspace"
fi

if [ "$LINT" = 1 ]; then
  cargo clippy "${BUILD_SET[@]}" --all-targets --locked -- -D warnings
  cargo fmt --all -- --check
  step "clippy + rustfmt"
fi

# -- artifacts ------------------------------------------------------------------------------------
WASM="$CARGO_TARGET_DIR/debug/wbuild/decentralml-runtime/decentralml_runtime.compact.compressed.wasm"
if [ ! -s "$WASM" ]; then
  echo "build_runtime.sh: the runtime wasm is missing: $WASM" >&2
  exit 1
fi
mkdir -p "$OUT"
# copy-then-rename: a reader (the Python side) never sees a half-written file
cp "$WASM" "$OUT/.decentralml_runtime.wasm.tmp"
mv "$OUT/.decentralml_runtime.wasm.tmp" "$OUT/decentralml_runtime.compact.compressed.wasm"
"$CARGO_TARGET_DIR/debug/decentralml-chain-spec" \
  --wasm "$OUT/decentralml_runtime.compact.compressed.wasm" --out "$OUT/chain-spec-raw.json"
step "artifacts"

echo "[build_runtime] wasm:       $OUT/decentralml_runtime.compact.compressed.wasm ($(wc -c <"$OUT/decentralml_runtime.compact.compressed.wasm") bytes)"
echo "[build_runtime] chain spec: $OUT/chain-spec-raw.json"
if [ "$NODE" = 1 ]; then
  echo "[build_runtime] node:       $NODE_BIN"
fi

#!/usr/bin/env bash
# pallet-decentralml's FRAME tests (mock runtime: every call, every reachable error, the escrow
# invariant as a proptest), with the committed Cargo.lock. Only the pallet and its dependencies
# are compiled: no wasm, no runtime, so no binaryen C++ build (scripts/build_runtime.sh does
# those). The target dir is outside the clone, so later runs are incremental.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "test_pallet.sh: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
    exit 1
  fi
fi
export CARGO_TARGET_DIR="${DECENTRALML_CARGO_TARGET_DIR:-$HOME/.cache/decentralml/cargo-target}"
mkdir -p "$CARGO_TARGET_DIR"
cd "$ROOT"
started=$(date +%s)
cargo test -p pallet-decentralml --locked
echo "[test_pallet] pallet-decentralml FRAME tests passed in $(( $(date +%s) - started ))s"

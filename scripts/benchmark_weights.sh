#!/usr/bin/env bash
# Regenerate pallets/decentralml/src/weights.rs from the pallet's FRAME benchmarks, run on this
# machine, and the devnode's copy of the table (decentralml/devnode/pallets/decentralml_weights.py).
#
#   1. builds the runtime's wasm with `--features runtime-benchmarks` (it then has the Benchmark
#      runtime API; `cargo check` is enough: substrate-wasm-builder builds the wasm in the build
#      script) and keeps it as .tools/runtime/decentralml_runtime-benchmarks.wasm;
#   2. builds decentralml-node with `--features benchmark` (its `benchmark pallet` subcommand;
#      SKIP_WASM_BUILD: this binary never runs its own runtime) and keeps it as
#      decentralml-node-benchmarks;
#   3. `benchmark pallet --runtime <that wasm>` runs every benchmark of benchmarking.rs in the
#      compiled wasm (STEPS points across each component's range, REPEAT runs each) and writes
#      weights.rs through pallets/decentralml/weight-template.hbs;
#   4. python -m decentralml.devnode.weightgen rewrites the devnode's table from weights.rs;
#   5. scripts/build_runtime.sh --no-test --node rebuilds the runtime and the node with them.
#
# Usage: scripts/benchmark_weights.sh [STEPS] [REPEAT]     (defaults 20 and 20: fewer repeats gave
# outliers on the shared 2-core machine)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STEPS="${1:-20}"
REPEAT="${2:-20}"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${DECENTRALML_CARGO_TARGET_DIR:-$HOME/.cache/decentralml/cargo-target}"
export WASM_BUILD_TYPE=release
export WASM_BUILD_WORKSPACE_HINT="$ROOT"
unset SKIP_WASM_BUILD
cd "$ROOT"

WBUILD="$CARGO_TARGET_DIR/debug/wbuild/decentralml-runtime"
BENCH_WASM="$ROOT/.tools/runtime/decentralml_runtime-benchmarks.wasm"
BENCH_BIN="$CARGO_TARGET_DIR/debug/decentralml-node-benchmarks"
mkdir -p "$ROOT/.tools/runtime"

cargo check --locked -p decentralml-runtime --features runtime-benchmarks
cp "$WBUILD/decentralml_runtime.compact.compressed.wasm" "$BENCH_WASM"
# The benchmarks wasm now sits where the normal build embeds its wasm from: make the normal
# runtime's build script run (and rebuild its wasm) before anything embeds it again.
touch runtime/src/lib.rs

# No wasm for this build: the benchmarks run the wasm above, and frame-benchmarking-cli's own test
# runtime cannot be built with WASM_BUILD_WORKSPACE_HINT pointing at this workspace.
SKIP_WASM_BUILD=1 cargo build --locked -p decentralml-node --features benchmark
cp "$CARGO_TARGET_DIR/debug/decentralml-node" "$BENCH_BIN.tmp"
mv "$BENCH_BIN.tmp" "$BENCH_BIN"

"$BENCH_BIN" benchmark pallet \
  --runtime "$BENCH_WASM" \
  --genesis-builder runtime \
  --genesis-builder-preset development \
  --pallet pallet_decentralml \
  --extrinsic '*' \
  --steps "$STEPS" \
  --repeat "$REPEAT" \
  --wasm-execution compiled \
  --heap-pages 4096 \
  --template pallets/decentralml/weight-template.hbs \
  --output pallets/decentralml/src/weights.rs

PY="${PYTHON:-.venv/bin/python}"
"$PY" -m decentralml.devnode.weightgen
echo "[benchmark_weights] pallets/decentralml/src/weights.rs and decentralml/devnode/pallets/decentralml_weights.py regenerated"

# the normal node and runtime, now with the new weights (this also replaces the benchmarks build
# of target/debug/decentralml-node)
bash scripts/build_runtime.sh --no-test --node

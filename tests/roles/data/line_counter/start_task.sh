#!/usr/bin/env bash
# Test bundle: count the contributor's sample lines; optionally wait to be killed mid-run.
set -euo pipefail
if [ -f "$DECENTRALML_DATA_DIR/slow" ]; then
  # The data dir is read-only in the sandbox: say "running" in the output dir instead.
  touch "$DECENTRALML_OUTPUT_DIR/running"
  while [ -f "$DECENTRALML_DATA_DIR/slow" ]; do sleep 0.1; done
fi
n=$(wc -l < "$DECENTRALML_DATA_DIR/samples.txt")
echo "counted $n lines"
printf '{"num_examples": %d, "metrics": {"lines": %d}}\n' "$n" "$n" > "$DECENTRALML_OUTPUT_DIR/result.json"

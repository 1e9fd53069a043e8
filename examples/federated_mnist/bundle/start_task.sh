#!/usr/bin/env bash
# Entry point the runner executes in a fresh working directory. The bundle's files sit next to
# this script; the contributor's data is in $DECENTRALML_DATA_DIR and everything written to
# $DECENTRALML_OUTPUT_DIR becomes the result bundle.
set -euo pipefail
# TensorFlow's start-up chatter (oneDNN notices, CPU feature lines, absl warnings) would bury the
# task's own log; errors still come through. Set them in your shell to override.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}" TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-0}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python "$here/train.py"

#!/usr/bin/env bash
# Entry point of a model-engineer task: design and train a model, return it with its scores.
set -euo pipefail
# TensorFlow's start-up chatter (oneDNN notices, CPU feature lines, absl warnings) would bury the
# task's own log; errors still come through. Set them in your shell to override.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}" TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-0}"
cd "$(dirname "${BASH_SOURCE[0]}")"
exec python engineer.py

#!/usr/bin/env bash
# Entry point of a model-engineer task: design and train a model, return it with its scores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec python engineer.py

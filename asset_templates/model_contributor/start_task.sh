#!/usr/bin/env bash
# Entry point of a model-contributor task. The decentralml runner runs it with `bash`, in a copy
# of this bundle, with DECENTRALML_DATA_DIR / DECENTRALML_OUTPUT_DIR set (see train.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec python train.py

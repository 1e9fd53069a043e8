#!/usr/bin/env bash
# Entry point the runner executes in a fresh working directory. The bundle's files sit next to
# this script; the contributor's data is in $DECENTRALML_DATA_DIR and everything written to
# $DECENTRALML_OUTPUT_DIR becomes the result bundle.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python "$here/train.py"

#!/usr/bin/env bash
# Entry point of a data-annotation task: label the samples of this bundle with the schema's labels.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec python annotate.py

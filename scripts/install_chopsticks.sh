#!/usr/bin/env bash
# Install (once) the Chopsticks that serves the Rust dev runtime: @acala-network/chopsticks at the
# exact version and dependency tree locked in chain/chopsticks/package-lock.json (`npm ci`).
#
# --ignore-scripts: the only install script in the tree builds sqlite3 from source (~5 min on 2
# cores), which Chopsticks needs only for `--db`; we never pass --db (state lives in memory).
# Idempotent: the stamp is newer than the lockfile once installed. Needs Node.js >= 20 and npm
# (Chopsticks 1.5.1 declares node >= 22 but runs a solo-chain runtime on 20; npm warns, ignore it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/chain/chopsticks"
STAMP="$DIR/node_modules/.installed"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "install_chopsticks.sh: Node.js >= 20 with npm is needed to serve the runtime" \
         "(e.g. apt-get install nodejs npm, or https://nodejs.org)" >&2
    exit 1
fi
MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
if (( MAJOR < 20 )); then
    echo "install_chopsticks.sh: Node.js $(node --version) is too old; Chopsticks needs >= 20" >&2
    exit 1
fi
if [[ -f "$STAMP" && "$STAMP" -nt "$DIR/package-lock.json" ]]; then
    exit 0
fi
echo "chopsticks: npm ci (pinned by chain/chopsticks/package-lock.json)"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --prefix "$DIR"
touch "$STAMP"

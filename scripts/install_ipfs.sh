#!/usr/bin/env bash
# Build (once) and cache the IPFS daemon the tests and the benchmark run against: Kubo, the
# reference implementation, at the exact version and dependency set locked in scripts/ipfs/
# (go.mod + go.sum), so CI and every laptop test against the same daemon.
#
# Idempotent and quick when already built: if .tools/bin/ipfs reports the locked version we stop
# there. Set DECENTRALML_IPFS_BIN to an existing Kubo binary to use it instead of building.
#
# Why build from source: the Go module proxy reachable here refuses `@v/list` for
# github.com/ipfs/kubo, so `go install github.com/ipfs/kubo/cmd/ipfs@vX` cannot resolve; building
# the package from a module that requires one exact version (and a full go.sum) needs no listing.
# Measured on 2 cores: ~4.5 min cold (module download + compile), ~3.7 min with the module
# cache warm; 0.1 s when the binary is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK_DIR="$ROOT/scripts/ipfs"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin/ipfs"
VERSION="$(awk '$1 == "require" && $2 == "github.com/ipfs/kubo" { sub(/^v/, "", $3); print $3 }' \
    "$LOCK_DIR/go.mod")"

if [[ -z "$VERSION" ]]; then
    echo "install_ipfs.sh: cannot read the Kubo version from $LOCK_DIR/go.mod" >&2
    exit 1
fi

have_version() {  # $1: a binary; true if it is Kubo $VERSION
    [[ -x "$1" ]] && [[ "$("$1" version 2>/dev/null)" == "ipfs version $VERSION" ]]
}

mkdir -p "$TOOLS/bin"

if [[ -n "${DECENTRALML_IPFS_BIN:-}" ]]; then
    if ! "$DECENTRALML_IPFS_BIN" version >/dev/null 2>&1; then
        echo "install_ipfs.sh: DECENTRALML_IPFS_BIN=$DECENTRALML_IPFS_BIN does not run" >&2
        exit 1
    fi
    ln -sfn "$(cd "$(dirname "$DECENTRALML_IPFS_BIN")" && pwd)/$(basename "$DECENTRALML_IPFS_BIN")" "$BIN"
    echo "ipfs: using $DECENTRALML_IPFS_BIN ($("$BIN" version))"
    exit 0
fi

if have_version "$BIN"; then
    exit 0
fi

# Serialise concurrent `make ipfs` runs (two terminals, parallel CI steps) on one lock file.
exec 9>"$TOOLS/.ipfs-build.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
if have_version "$BIN"; then
    exit 0
fi

GO="${GO:-}"
if [[ -z "$GO" ]]; then
    if command -v go >/dev/null 2>&1; then
        GO="$(command -v go)"
    elif [[ -x /usr/local/go/bin/go ]]; then
        GO=/usr/local/go/bin/go
    fi
fi
if [[ -n "$GO" ]] && ! command -v "$GO" >/dev/null 2>&1; then
    GO=""
fi
if [[ -z "$GO" ]]; then
    cat >&2 <<EOF
install_ipfs.sh: Go is needed to build the IPFS daemon (Kubo $VERSION) for the tests, and none
was found. Install Go >= $(awk '$1 == "go" { print $2 }' "$LOCK_DIR/go.mod") (https://go.dev/dl/)
and put it on PATH (or set GO=/path/to/go), or point DECENTRALML_IPFS_BIN at an existing Kubo binary.
EOF
    exit 1
fi

echo "ipfs: building Kubo $VERSION with $("$GO" version) (a few minutes on a fresh machine)..."
start=$SECONDS
tmp="$(mktemp "$TOOLS/bin/.ipfs.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# -mod=readonly: build exactly what go.sum locks; never rewrite the lock files. An older Go
# fetches the toolchain go.mod asks for by itself (GOTOOLCHAIN=auto, Go's default) where allowed.
(cd "$LOCK_DIR" && GOFLAGS="-mod=readonly -buildvcs=false" \
    "$GO" build -trimpath -o "$tmp" github.com/ipfs/kubo/cmd/ipfs)
chmod +x "$tmp"
if ! have_version "$tmp"; then
    echo "install_ipfs.sh: the built binary does not report Kubo $VERSION: $("$tmp" version 2>&1)" >&2
    exit 1
fi
mv -f "$tmp" "$BIN"
trap - EXIT
echo "ipfs: built $BIN ($("$BIN" version)) in $((SECONDS - start))s"

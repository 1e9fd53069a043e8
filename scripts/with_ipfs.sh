#!/usr/bin/env bash
# with_ipfs.sh CMD...: run CMD with a throwaway IPFS daemon, then stop it and clean up.
#
# The daemon gets a fresh IPFS_PATH (`ipfs init --profile test`: API, gateway and swarm on
# loopback port 0, no bootstrap peers, no mDNS) and runs --offline, so tests never touch the
# network and never see a developer's own repo. Port 0 lets the kernel pick free ports (no race
# between "find a free port" and "bind it"); the daemon writes the chosen API address to
# $IPFS_PATH/api, which we read back. CMD sees DECENTRALML_IPFS_API=http://127.0.0.1:PORT and its
# exit code is ours.
#
# The binary: $DECENTRALML_IPFS_BIN, else .tools/bin/ipfs (built by `make ipfs`), else `ipfs` on PATH.
set -uo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IPFS="${DECENTRALML_IPFS_BIN:-}"
if [[ -z "$IPFS" && -x "$ROOT/.tools/bin/ipfs" ]]; then
    IPFS="$ROOT/.tools/bin/ipfs"
fi
if [[ -z "$IPFS" ]] && command -v ipfs >/dev/null 2>&1; then
    IPFS="$(command -v ipfs)"
fi
if [[ -z "$IPFS" ]]; then
    echo "with_ipfs.sh: no IPFS daemon binary; run \`make ipfs\` (or set DECENTRALML_IPFS_BIN)" >&2
    exit 1
fi

IPFS_PATH="$(mktemp -d "${TMPDIR:-/tmp}/dml-ipfs.XXXXXX")"
export IPFS_PATH
daemon_pid=""
log="$IPFS_PATH/daemon.log"

cleanup() {
    if [[ -n "$daemon_pid" ]] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$daemon_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
    fi
    rm -rf "$IPFS_PATH"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! "$IPFS" init --profile test >"$log" 2>&1; then
    echo "with_ipfs.sh: \`ipfs init\` failed:" >&2
    cat "$log" >&2
    exit 1
fi

"$IPFS" daemon --offline >>"$log" 2>&1 &
daemon_pid=$!

api=""
for _ in $(seq 300); do
    if ! kill -0 "$daemon_pid" 2>/dev/null; then
        echo "with_ipfs.sh: the IPFS daemon exited while starting:" >&2
        cat "$log" >&2
        exit 1
    fi
    if [[ -s "$IPFS_PATH/api" ]]; then
        # /ip4/127.0.0.1/tcp/PORT -> http://127.0.0.1:PORT
        IFS=/ read -r _ _ host _ port <"$IPFS_PATH/api"
        candidate="http://$host:$port"
        if curl -fsS -X POST "$candidate/api/v0/version" >/dev/null 2>&1; then
            api="$candidate"
            break
        fi
    fi
    sleep 0.1
done
if [[ -z "$api" ]]; then
    echo "with_ipfs.sh: the IPFS daemon did not answer within 30 s:" >&2
    cat "$log" >&2
    exit 1
fi

export DECENTRALML_IPFS_API="$api"
"$@"
rc=$?
exit "$rc"

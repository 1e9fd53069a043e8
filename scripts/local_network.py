"""A four-validator DecentralML network on this machine: `make network` / `make network-stop`.

    python scripts/local_network.py start [--base-dir DIR] [--rpc-port 9951] [--p2p-port 30351]
    python scripts/local_network.py stop  [--base-dir DIR]
    python scripts/local_network.py status [--base-dir DIR]

`start` runs decentralml-node for //Alice, //Bob, //Charlie and //Dave of the `local` chain spec
(the runtime's `local_testnet` preset) on loopback, each with its own base path
(`DIR/<name>`, its log in `DIR/<name>/node.log`), p2p port and RPC port, waits until GRANDPA has
finalized a block on all four, prints their RPC URLs and leaves them running. `stop` stops the
processes `start` recorded in `DIR/network.json` (SIGTERM, then SIGKILL). A second `start`
while the network runs is refused. The chain data stays in DIR (delete it for a fresh genesis).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from decentralml.chain.substrate_node import LOCAL_VALIDATORS, SOURCE_ROOT, LocalNetwork

DEFAULT_DIR = SOURCE_ROOT / ".tools" / "network"
STATE = "network.json"


def _is_node(pid: int) -> bool:
    """Whether ``pid`` is still a decentralml-node (and not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"decentralml-node" in cmdline.split(b"\0", 1)[0]


def _running(state: dict[str, object]) -> list[int]:
    pids = [int(p) for p in state.get("pids", [])]  # type: ignore[union-attr]
    return [pid for pid in pids if _is_node(pid)]


def _load(base: Path) -> dict[str, object]:
    path = base / STATE
    return json.loads(path.read_text()) if path.is_file() else {}


def start(base: Path, rpc_port: int, p2p_port: int) -> int:
    if _running(_load(base)):
        print(f"the network in {base} is already running (`make network-stop` first)",
              file=sys.stderr)
        return 1
    n = len(LOCAL_VALIDATORS)
    network = LocalNetwork(base, rpc_ports=[rpc_port + i for i in range(n)],
                           p2p_ports=[p2p_port + i for i in range(n)])
    try:
        network.start()
    except Exception as exc:
        print(f"the network did not start: {exc}", file=sys.stderr)
        return 1
    state = {"pids": [node.pid for node in network.nodes], "urls": network.urls,
             "validators": list(LOCAL_VALIDATORS)}
    (base / STATE).write_text(json.dumps(state, indent=1) + "\n")
    print(f"{n} validators running, GRANDPA finalizing (logs: {base}/<name>/node.log):")
    for name, url in zip(LOCAL_VALIDATORS, network.urls, strict=True):
        print(f"  {name:8} {url}")
    return 0


def stop(base: Path, timeout: float = 20.0) -> int:
    pids = _running(_load(base))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_is_node(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if _is_node(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        (base / STATE).unlink()
    print(f"stopped {len(pids)} validator(s)" if pids else "no network running")
    return 0


def status(base: Path) -> int:
    state = _load(base)
    alive = set(_running(state))
    urls = state.get("urls", [])
    for pid, url in zip(state.get("pids", []), urls, strict=False):  # type: ignore[call-overload]
        print(f"{url}  pid {pid}  {'running' if pid in alive else 'stopped'}")
    if not urls:
        print("no network running")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--base-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--rpc-port", type=int, default=9951,
                        help="RPC port of the first validator (the others follow)")
    parser.add_argument("--p2p-port", type=int, default=30351,
                        help="p2p port of the first validator (the others follow)")
    args = parser.parse_args(argv)
    base = args.base_dir.resolve()
    if args.command == "start":
        return start(base, args.rpc_port, args.p2p_port)
    if args.command == "stop":
        return stop(base)
    return status(base)


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of the chains the SDK runs on, side by side in one run: the devnode, the Rust
runtime served by Chopsticks, and the Rust runtime in ``decentralml-node --dev`` (Aura, one-second
slots, GRANDPA finality), with N client threads submitting signed extrinsics.

Each node runs in its own process (``python -m decentralml.devnode``, Chopsticks' ``node``
process, the ``decentralml-node`` binary) so its CPU time is measured apart from the clients'. For
each workload (``transfer``: Balances.transfer_keep_alive, ``create_task``:
DecentralML.create_task) and client count, each thread owns a funded account and its own
connection, and the run has three phases:

1. build: each client composes and signs ``--per-client`` extrinsics (nonces assigned ahead)
   with ``create_signed_extrinsic``; its thread CPU gives the *client build CPU per extrinsic*;
2. submit, pipelined: every client sends all of its extrinsics with
   ``author_submitAndWatchExtrinsic`` over its own websocket without waiting in between (they are
   all in flight at once), and records when each is reported ``inBlock`` and ``finalized``:
   included tx/s (from the first send to the last inclusion), p50/p99 latency from sending to
   inclusion and to finality, and the *node CPU per extrinsic*. With block times of a second, one
   wait per transaction would measure the slot, not the node. (Target for the node: >= 200
   included tx/s at 4 clients.)
3. end to end: a ``--seconds`` loop of build+submit+wait as a notebook does it; here the node
   also serves the ~11 RPCs substrate-interface makes to build each extrinsic.

With ``--base-path DIR`` the devnode keeps its chain on disk (a block is final once fsynced),
the mode where durability costs something; without it the chain is in memory.

Chains: ``--chains devnode runtime node`` (each included by default when it is built). Every
chain's row is followed by a ratio row against the devnode. Chopsticks executes the wasm inside
Node.js and builds a block per transaction, so it is far slower than a real node;
``--runtime-per-client`` keeps its phase short.

Usage: ``python bench/devnode_tps.py [--per-client 300] [--runtime-per-client 30]
[--node-per-client 300] [--seconds 5] [--clients 1 4] [--chains devnode runtime node]
[--base-path DIR]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import websocket
from substrateinterface import Keypair, SubstrateInterface

from decentralml.chain.runtime_node import DEFAULT_CHAIN_SPEC, RuntimeNode
from decentralml.chain.substrate_node import NodeProcess, default_node_binary, dev_node

UNIT = 10**12


@dataclass
class ThreadStats:
    included: int = 0
    failed: int = 0
    build_cpu: float = 0.0
    submit_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    finality: list[float] = field(default_factory=list)
    last_included: float = 0.0
    built: list[Any] = field(default_factory=list)


def start_node(base_path: str | None = None) -> tuple[subprocess.Popen[str], str]:
    where = ["--base-path", base_path] if base_path else []
    proc = subprocess.Popen([sys.executable, "-m", "decentralml.devnode", "--port", "0", *where],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"devnode did not start: {line!r}")
    return proc, line.split("listening on ")[1].split()[0]


def fund(url: str, count: int) -> list[Keypair]:
    si = SubstrateInterface(url=url)
    alice = Keypair.create_from_uri("//Alice")
    out = []
    for _ in range(count):
        kp = Keypair.create_from_mnemonic(Keypair.generate_mnemonic())
        call = si.compose_call("Balances", "transfer_keep_alive",
                               {"dest": kp.ss58_address, "value": 10_000 * UNIT})
        r = si.submit_extrinsic(si.create_signed_extrinsic(call, alice), wait_for_inclusion=True)
        assert r.is_success
        out.append(kp)
    si.close()
    return out


def make_call(si: SubstrateInterface, workload: str) -> Any:
    if workload == "transfer":
        return si.compose_call("Balances", "transfer_keep_alive", {
            "dest": "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty", "value": UNIT})
    return si.compose_call("DecentralML", "create_task", {
        "task_type": "ModelContributor", "question": b"Train a CNN on MNIST shard 3",
        "reward": 10**9, "max_assignments": 3, "validation_strategy": "ManualAccept",
        "assets_cid": b"bafybeigdyrztbenchmarkassets", "assets_storage": "Ipfs",
        "expiration_block": 4_000_000_000})


def _threads(n: int, target: Any, args: list[tuple[Any, ...]]) -> None:
    threads = [threading.Thread(target=target, args=a) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run(url: str, node: psutil.Process, workload: str, clients: int, per_client: int,
        seconds: float) -> dict[str, float]:
    """Phase 1: each client builds and signs ``per_client`` extrinsics (explicit nonces);
    phase 2: all submit theirs and wait for inclusion; phase 3: build+submit loop (end to end).
    """
    keys = fund(url, clients)
    stats = [ThreadStats() for _ in range(clients)]
    conns = [SubstrateInterface(url=url) for _ in range(clients)]
    for si in conns:  # one at a time: scalecodec's type registry is not thread-safe to build
        si.init_runtime()

    def build(i: int) -> None:
        si, st, kp = conns[i], stats[i], keys[i]
        nonce = si.get_account_nonce(kp.ss58_address)
        c0 = time.thread_time()
        for k in range(per_client):
            st.built.append(si.create_signed_extrinsic(make_call(si, workload), kp,
                                                       nonce=nonce + k))
        st.build_cpu = time.thread_time() - c0

    _threads(clients, build, [(i,) for i in range(clients)])

    t0 = time.perf_counter()

    def submit(i: int) -> None:
        pipelined(url, stats[i], timeout=max(120.0, per_client * 0.5))

    cpu0 = sum(node.cpu_times()[:2])
    _threads(clients, submit, [(i,) for i in range(clients)])
    node_cpu = sum(node.cpu_times()[:2]) - cpu0
    included = max(sum(s.included for s in stats), 1)
    wall = max(s.last_included for s in stats) - t0
    lat = sorted(x for s in stats for x in s.latencies) or [float("nan")]
    fin = sorted(x for s in stats for x in s.finality) or [float("nan")]
    build_per_xt = sum(s.build_cpu for s in stats) / included

    # end to end: what a notebook does, build + submit + wait, one after the other
    e2e = [0] * clients
    deadline = time.perf_counter() + seconds

    def loop(i: int) -> None:
        si, kp = conns[i], keys[i]
        while time.perf_counter() < deadline:
            xt = si.create_signed_extrinsic(make_call(si, workload), kp)
            si.submit_extrinsic(xt, wait_for_inclusion=True)
            e2e[i] += 1

    e2e_cpu0 = sum(node.cpu_times()[:2])
    e2e_t0 = time.perf_counter()
    _threads(clients, loop, [(i,) for i in range(clients)])
    e2e_wall = time.perf_counter() - e2e_t0
    e2e_node = (sum(node.cpu_times()[:2]) - e2e_cpu0) / max(sum(e2e), 1)
    for si in conns:
        si.close()
    return {
        "tps": included / wall, "failed": sum(s.failed for s in stats),
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "fin_p50_ms": 1000 * statistics.median(fin),
        "fin_p99_ms": 1000 * fin[min(len(fin) - 1, int(0.99 * len(fin)))],
        "node_cpu_ms": 1000 * node_cpu / included,
        "client_build_cpu_ms": 1000 * build_per_xt,
        "ratio": (node_cpu / included) / build_per_xt,
        "e2e_tps": sum(e2e) / e2e_wall, "e2e_node_cpu_ms": 1000 * e2e_node,
    }


def pipelined(url: str, st: ThreadStats, timeout: float) -> None:
    """Send every pre-signed extrinsic of ``st`` at once (``author_submitAndWatchExtrinsic``) and
    record, per extrinsic, the seconds from its send to ``inBlock`` and to ``finalized``."""
    ws = websocket.create_connection(url, timeout=timeout)
    sent: dict[int, float] = {}          # request id -> send time
    subs: dict[str, int] = {}            # subscription id -> request id
    included: set[int] = set()
    done: set[int] = set()
    try:
        for rid, xt in enumerate(st.built):
            sent[rid] = time.perf_counter()
            ws.send(json.dumps({"jsonrpc": "2.0", "id": rid,
                                "method": "author_submitAndWatchExtrinsic",
                                "params": [str(xt.data)]}))
        deadline = time.perf_counter() + timeout
        while len(done) < len(sent) and time.perf_counter() < deadline:
            msg = json.loads(ws.recv())
            now = time.perf_counter()
            if "id" in msg:
                if "error" in msg:
                    st.failed += 1
                    done.add(msg["id"])
                else:
                    subs[str(msg["result"])] = msg["id"]
                continue
            params = msg.get("params") or {}
            rid_or_none = subs.get(str(params.get("subscription")))
            if rid_or_none is None:
                continue
            rid, status = rid_or_none, params.get("result")
            if isinstance(status, dict) and "inBlock" in status and rid not in included:
                included.add(rid)
                st.included += 1
                st.latencies.append(now - sent[rid])
                st.last_included = max(st.last_included, now)
            elif isinstance(status, dict) and "finalized" in status:
                if rid not in included:  # a node may skip straight to finalized
                    included.add(rid)
                    st.included += 1
                    st.latencies.append(now - sent[rid])
                    st.last_included = max(st.last_included, now)
                st.finality.append(now - sent[rid])
                done.add(rid)
            elif status in ("dropped", "invalid", "usurped") or (
                    isinstance(status, dict) and set(status) & {"dropped", "invalid", "usurped",
                                                                "finalityTimeout"}):
                st.failed += 1
                done.add(rid)
    finally:
        ws.close()


def _row(chain: str, workload: str, n: int, r: dict[str, float]) -> str:
    return (f"{chain:<9}{workload:<12}{n:>8}{r['tps']:>8.1f}{r['p50_ms']:>9.1f}"
            f"{r['p99_ms']:>9.1f}{r['fin_p50_ms']:>10.1f}{r['fin_p99_ms']:>10.1f}"
            f"{r['node_cpu_ms']:>16.3f}"
            f"{r['client_build_cpu_ms']:>24.3f}{r['ratio']:>13.2f}"
            f"{r['e2e_tps']:>10.1f}{r['e2e_node_cpu_ms']:>20.3f}"
            + (f"  ({int(r['failed'])} failed)" if r["failed"] else ""))


def _ratio_row(chain: str, workload: str, n: int, dev: dict[str, float], rt: dict[str, float]
               ) -> str:
    def q(key: str) -> str:
        return f"{rt[key] / dev[key]:.2f}x" if dev[key] else "-"
    return (f"{chain[:4] + '/dev':<9}{workload:<12}{n:>8}{q('tps'):>8}{q('p50_ms'):>9}"
            f"{q('p99_ms'):>9}{q('fin_p50_ms'):>10}{q('fin_p99_ms'):>10}{q('node_cpu_ms'):>16}{q('client_build_cpu_ms'):>24}{'':>13}{q('e2e_tps'):>10}"
            f"{q('e2e_node_cpu_ms'):>20}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--per-client", type=int, default=300,
                        help="pre-signed extrinsics per client (throughput phase), devnode")
    parser.add_argument("--runtime-per-client", type=int, default=30,
                        help="pre-signed extrinsics per client (throughput phase), runtime")
    parser.add_argument("--node-per-client", type=int, default=300,
                        help="pre-signed extrinsics per client (throughput phase), node")
    parser.add_argument("--chains", nargs="+", choices=["devnode", "runtime", "node"],
                        default=["devnode"]
                        + (["runtime"] if DEFAULT_CHAIN_SPEC.is_file() else [])
                        + (["node"] if default_node_binary().is_file() else []))
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="duration of the end-to-end (build+submit) phase")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--workloads", nargs="+", default=["transfer", "create_task"])
    parser.add_argument("--base-path", default=None,
                        help="keep the node's chain in this (fresh) directory, not in memory")
    args = parser.parse_args()
    nodes: dict[str, tuple[str, psutil.Process, int]] = {}
    proc: subprocess.Popen[str] | None = None
    runtime: RuntimeNode | None = None
    substrate: NodeProcess | None = None
    try:
        if "devnode" in args.chains:
            proc, url = start_node(args.base_path)
            nodes["devnode"] = (url, psutil.Process(proc.pid), args.per_client)
        if "runtime" in args.chains:
            runtime = RuntimeNode().start()
            assert runtime.pid is not None
            nodes["runtime"] = (runtime.url, psutil.Process(runtime.pid), args.runtime_per_client)
        if "node" in args.chains:
            substrate = dev_node(Path(tempfile.mkdtemp(prefix="decentralml-node-bench-"))).start()
            assert substrate.pid is not None
            nodes["node"] = (substrate.url, psutil.Process(substrate.pid), args.node_per_client)
        print(f"{psutil.cpu_count()} CPUs, load average "
              f"{' '.join(f'{x:.1f}' for x in psutil.getloadavg())}; "
              + "; ".join(f"{c} {u} ({k} pre-signed extrinsics per client)"
                          for c, (u, _, k) in nodes.items())
              + f"; devnode chain {args.base_path or 'in memory'}"
              + f"; then a {args.seconds:g}s build+submit loop")
        print(f"{'':<37}{'-- to inBlock --':>18}{'-- to finality --':>20}")
        print(f"{'chain':<9}{'workload':<12}{'clients':>8}{'tx/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
              f"{'p50 ms':>10}{'p99 ms':>10}{'node CPU ms/xt':>16}"
              f"{'client build CPU ms/xt':>24}{'node/client':>13}"
              f"{'e2e tx/s':>10}{'e2e node CPU ms/xt':>20}")
        for workload in args.workloads:
            for n in args.clients:
                results = {}
                for chain, (url, node, per_client) in nodes.items():
                    results[chain] = run(url, node, workload, n, per_client, args.seconds)
                    print(_row(chain, workload, n, results[chain]), flush=True)
                for chain in ("runtime", "node"):
                    if chain in results and "devnode" in results:
                        print(_ratio_row(chain, workload, n, results["devnode"], results[chain]),
                              flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
        if runtime is not None:
            runtime.stop()
        if substrate is not None:
            substrate.stop()


if __name__ == "__main__":
    main()

"""Devnode throughput: N substrate-interface client threads submitting signed extrinsics.

The node runs in its own process (``python -m decentralml.devnode``) so its CPU time can be
measured apart from the clients'. For each workload (``transfer``: Balances.transfer_keep_alive,
``create_task``: DecentralML.create_task) and each client count, every thread owns a funded
account and its own connection, and loops ``build -> submit_extrinsic(wait_for_inclusion)``.

Reported per run: included tx/s, p50/p99 submit-to-inBlock latency, the node's CPU seconds per
extrinsic, and the clients' CPU seconds to build one extrinsic (``create_signed_extrinsic``,
including its nonce/genesis RPCs), with their ratio (target: node <= 0.5x client,
>= 200 tx/s with 4 clients).

Usage: ``python bench/devnode_tps.py [--seconds 10] [--clients 1 4]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil
from substrateinterface import Keypair, SubstrateInterface

UNIT = 10**12


@dataclass
class ThreadStats:
    included: int = 0
    failed: int = 0
    build_cpu: float = 0.0
    total_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)


def start_node() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "decentralml.devnode", "--port", "0"],
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


def make_call(si: SubstrateInterface, workload: str, block: int) -> Any:
    if workload == "transfer":
        return si.compose_call("Balances", "transfer_keep_alive", {
            "dest": "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty", "value": UNIT})
    return si.compose_call("DecentralML", "create_task", {
        "task_type": "ModelContributor", "question": b"Train a CNN on MNIST shard 3",
        "reward": UNIT, "max_assignments": 3, "validation_strategy": "ManualAccept",
        "assets_cid": b"bafybeigdyrztbenchmarkassets", "assets_storage": "Ipfs",
        "expiration_block": block + 100_000})


def client_loop(url: str, kp: Keypair, workload: str, deadline: list[float], stats: ThreadStats,
                ready: threading.Barrier, go: threading.Event) -> None:
    si = SubstrateInterface(url=url)
    si.init_runtime()
    ready.wait()
    go.wait()
    block = 0
    t_cpu0 = time.thread_time()
    while time.perf_counter() < deadline[0]:
        c0 = time.thread_time()
        xt = si.create_signed_extrinsic(make_call(si, workload, block), kp)
        stats.build_cpu += time.thread_time() - c0
        t0 = time.perf_counter()
        r = si.submit_extrinsic(xt, wait_for_inclusion=True)
        stats.latencies.append(time.perf_counter() - t0)
        stats.included += 1
        if not r.is_success:
            stats.failed += 1
    stats.total_cpu = time.thread_time() - t_cpu0
    si.close()


def run(url: str, node: psutil.Process, workload: str, clients: int, seconds: float
        ) -> dict[str, float]:
    keys = fund(url, clients)
    stats = [ThreadStats() for _ in range(clients)]
    ready = threading.Barrier(clients + 1)
    go = threading.Event()
    deadline = [0.0]
    threads = [threading.Thread(target=client_loop, args=(url, keys[i], workload, deadline,
                                                          stats[i], ready, go))
               for i in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    cpu0 = sum(node.cpu_times()[:2])
    t0 = time.perf_counter()
    deadline[0] = t0 + seconds
    go.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    node_cpu = sum(node.cpu_times()[:2]) - cpu0
    included = sum(s.included for s in stats)
    lat = sorted(x for s in stats for x in s.latencies)
    build = sum(s.build_cpu for s in stats) / included
    return {
        "tps": included / wall, "included": included,
        "failed": sum(s.failed for s in stats),
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "node_cpu_ms": 1000 * node_cpu / included,
        "client_build_cpu_ms": 1000 * build,
        "client_total_cpu_ms": 1000 * sum(s.total_cpu for s in stats) / included,
        "ratio": (node_cpu / included) / build,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--workloads", nargs="+", default=["transfer", "create_task"])
    args = parser.parse_args()
    proc, url = start_node()
    try:
        node = psutil.Process(proc.pid)
        print(f"devnode {url}, {psutil.cpu_count()} CPUs, {args.seconds:g}s per run")
        header = (f"{'workload':<12}{'clients':>8}{'tx/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
                  f"{'node CPU ms/xt':>16}{'client build CPU ms/xt':>24}{'node/client':>13}"
                  f"{'client total CPU ms/xt':>24}")
        print(header)
        for workload in args.workloads:
            for n in args.clients:
                r = run(url, node, workload, n, args.seconds)
                print(f"{workload:<12}{n:>8}{r['tps']:>9.1f}{r['p50_ms']:>9.2f}"
                      f"{r['p99_ms']:>9.2f}{r['node_cpu_ms']:>16.3f}"
                      f"{r['client_build_cpu_ms']:>24.3f}{r['ratio']:>13.2f}"
                      f"{r['client_total_cpu_ms']:>24.3f}"
                      + (f"  ({int(r['failed'])} failed)" if r["failed"] else ""))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()

"""Devnode under faults and hostile clients: kills survived, frames tried, memory, honest latency.

Two parts, each against ``python -m decentralml.devnode`` in its own process:

1. crash: ``--kills`` rounds of load from three clients on a ``--base-path`` node, ``kill -9`` at a
   random moment, restart, and every block, extrinsic and balance a client was told is final
   looked up again (tests/devnode/crash.py): the figure is kills survived with 0 lost;
2. abuse: an honest client (pre-signed transfers, each ``submitAndWatch`` -> ``inBlock``, then a
   ``chain_getHeader``) runs alone for ``--seconds``, then again during each attack, with the
   attack's frames counted and the node's RSS sampled every 20 ms. Attacks: 6 MB unsigned
   ``Utility.batch`` frames (beyond the block length), 3.6 MB unsigned batches (within it, the
   frame that used to take seconds to decode), batches nested 10,000 deep, a 16,384-call batch
   signed with a (public) dev key, a batch of 171 batches of 64 calls (the most decoding a
   refused frame can cost), 64 subscribers that never read (and ask for metadata they never
   read), and a flood of 300 connections; each attack runs in a process of its own. Honest
   latency is reported as p50/p99 and as a ratio to the honest-only run of the same invocation.

Usage: ``python bench/devnode_abuse.py [--kills 50] [--seconds 5] [--skip-crash]
[--code DIR]`` (``--code`` runs the devnode of another checkout, e.g. the code before a change;
the clients stay this checkout's).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from substrateinterface import Keypair
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from decentralml.devnode.scale import encode_compact
from tests.devnode.crash import crash_rounds
from tests.devnode.rawrpc import (
    NodeProcess,
    RawClient,
    RpcFailure,
    Signer,
    SlowReader,
    account_id,
    call_index,
    nested_batch,
    remark,
    remark_batch,
    transfer_call,
    unsigned,
)

UNIT = 10**12


@dataclass
class Phase:
    name: str
    frames: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    honest_ops: int = 0
    latencies: list[float] = field(default_factory=list)
    peak_rss: int = 0
    honest_errors: list[str] = field(default_factory=list)

    def answered(self, key: str) -> None:
        self.answers[key] = self.answers.get(key, 0) + 1


class Sampler(threading.Thread):
    """Peak RSS of the node process while running."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            self.stop.wait(0.02)


def honest(client: RawClient, signer: Signer, kp: Keypair, dest: bytes, seconds: float,
           phase: Phase) -> None:
    """Submit-and-watch transfers and read headers for ``seconds``; record each op's latency.

    ``client`` is connected before the attack starts (a connection flood refuses new ones).
    """
    call = transfer_call(dest, UNIT)
    nonce = int(client.call("system_accountNextIndex", [kp.ss58_address]))
    deadline = time.perf_counter() + seconds
    try:
        while time.perf_counter() < deadline:
            xt = "0x" + signer.sign(kp, call, nonce).hex()
            t0 = time.perf_counter()
            sub = client.call("author_submitAndWatchExtrinsic", [xt])
            while True:
                m = client.recv()
                p = m.get("params") or {}
                if p.get("subscription") == sub and isinstance(p.get("result"), dict) \
                        and "inBlock" in p["result"]:
                    break
            header = client.call("chain_getHeader")
            phase.latencies.append(time.perf_counter() - t0)
            assert int(header["number"], 16) >= 1
            phase.honest_ops += 1
            nonce += 1
    except (RpcFailure, ConnectionClosed, OSError, TimeoutError) as exc:
        phase.honest_errors.append(repr(exc))
    finally:
        client.close()


def frames_attack(url: str, frame: Callable[[RawClient], bytes], phase: Phase,
                  stop: threading.Event, method: str = "author_submitExtrinsic") -> None:
    """Send ``frame`` over one connection again and again, one in flight, until ``stop``."""
    client = RawClient(url, timeout=300)
    try:
        payload = "0x" + frame(client).hex()
        while not stop.is_set():
            phase.frames += 1
            try:
                client.call(method, [payload])
                phase.answered("accepted")
            except RpcFailure as exc:
                data = str(exc.error.get("data", exc.error.get("message")))
                phase.answered(f"{exc.code} {data[:48]}")
            payload = "0x" + frame(client).hex()
    except (ConnectionClosed, OSError, TimeoutError) as exc:
        phase.answered(f"connection: {type(exc).__name__}")
    finally:
        client.close()


def slow_readers_attack(url: str, count: int, phase: Phase, stop: threading.Event) -> None:
    readers = []
    for _ in range(count):
        try:
            r = SlowReader(url)
            r.request("chain_subscribeNewHeads")
            r.request("state_subscribeStorage")
            readers.append(r)
            phase.frames += 2
        except OSError:
            phase.answered("refused")
    while not stop.is_set():
        for r in readers:
            try:
                r.request("state_getMetadata")
                phase.frames += 1
            except OSError:
                pass  # dropped by the node: what is measured
        stop.wait(0.1)
    phase.answered(f"{sum(1 for r in readers if r.disconnected(0.5))} of {len(readers)} "
                   "dropped")
    for r in readers:
        r.close()


def connection_flood(url: str, count: int, phase: Phase, stop: threading.Event) -> None:
    held = []
    for _ in range(count):
        phase.frames += 1
        try:
            held.append(RawClient(url, timeout=10))
            phase.answered("served")
        except Exception:  # refused: closed during the handshake (any websockets error)
            phase.answered("refused")
    stop.wait()
    for c in held:
        c.close()


def _evasive_batch() -> bytes:
    """A batch of 171 batches of 64 remarks: no single length prefix is over the call limit, so
    the node decodes up to the limit (10,924 calls) before refusing it (the costliest refused
    frame)."""
    inner = call_index("Utility", "batch") + encode_compact(64) + remark() * 64
    return call_index("Utility", "batch") + encode_compact(171) + inner * 171


ATTACKS = ("honest alone", "6 MB unsigned batch x4", "3.6 MB unsigned batch x4",
           "nested 10,000 deep x4", "nested, fee query x4", "signed 16,384 calls x1",
           "signed 171x64 calls x1", "64 slow readers", "300 connections", "honest alone again")


def attack(name: str, url: str, ready: Any, stop: Any, results: Any) -> None:
    """Run attack ``name`` until ``stop`` is set, in a process of its own (the attackers' CPU
    and GIL are then not the honest client's); put its Phase on ``results``."""
    phase = Phase(name)
    setup = RawClient(url)
    signer = Signer.of(setup)
    setup.close()
    alice = Keypair.create_from_uri("//Alice")

    def signed(call: bytes) -> Callable[[RawClient], bytes]:
        def frame(client: RawClient) -> bytes:
            nonce = int(client.call("system_accountNextIndex", [alice.ss58_address]))
            return signer.sign(alice, call, nonce)
        return frame

    big_unsigned = unsigned(remark_batch(2_000_000))
    within_unsigned = unsigned(remark_batch(1_200_000))
    deep_unsigned = unsigned(nested_batch(10_000))
    plans: dict[str, Callable[[], None]] = {
        "honest alone": lambda: stop.wait(),
        "honest alone again": lambda: stop.wait(),
        "6 MB unsigned batch x4": lambda: _parallel(
            4, lambda: frames_attack(url, lambda c: big_unsigned, phase, stop)),
        "3.6 MB unsigned batch x4": lambda: _parallel(
            4, lambda: frames_attack(url, lambda c: within_unsigned, phase, stop)),
        "nested 10,000 deep x4": lambda: _parallel(
            4, lambda: frames_attack(url, lambda c: deep_unsigned, phase, stop)),
        "nested, fee query x4": lambda: _parallel(
            4, lambda: frames_attack(url, lambda c: deep_unsigned, phase, stop,
                                     "payment_queryInfo")),
        "signed 16,384 calls x1": lambda: frames_attack(
            url, signed(remark_batch(16_384)), phase, stop),
        "signed 171x64 calls x1": lambda: frames_attack(url, signed(_evasive_batch()), phase,
                                                       stop),
        "64 slow readers": lambda: slow_readers_attack(url, 64, phase, stop),
        "300 connections": lambda: connection_flood(url, 300, phase, stop),
    }
    ready.set()
    plans[name]()
    results.put(phase)


def run_abuse(node: NodeProcess, seconds: float) -> list[Phase]:
    setup = RawClient(node.url)
    signer = Signer.of(setup)
    setup.close()
    honest_kp = Keypair.create_from_uri("//Bob")
    dest = account_id(Keypair.create_from_uri("//AbuseDest"))
    ctx = multiprocessing.get_context("spawn")
    phases = []
    for name in ATTACKS:
        stop, ready = ctx.Event(), ctx.Event()
        results = ctx.Queue()
        client = RawClient(node.url, timeout=120)
        attacker = ctx.Process(target=attack, args=(name, node.url, ready, stop, results),
                               daemon=True)
        attacker.start()
        ready.wait(300)
        time.sleep(1)  # let the attack begin
        sampler = Sampler(node.pid)
        sampler.start()
        mine = Phase(name)
        honest(client, signer, honest_kp, dest, seconds, mine)
        stop.set()
        phase: Phase = results.get(timeout=300)
        attacker.join(60)
        sampler.stop.set()
        sampler.join()
        phase.honest_ops, phase.latencies = mine.honest_ops, mine.latencies
        phase.honest_errors, phase.peak_rss = mine.honest_errors, sampler.peak
        phases.append(phase)
        print_phase(phase, phases[0], flush=True)
    return phases


def _parallel(n: int, target: Callable[[], None]) -> None:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def print_phase(p: Phase, base: Phase, flush: bool = False) -> None:
    p50 = 1000 * statistics.median(p.latencies) if p.latencies else float("nan")
    b50 = 1000 * statistics.median(base.latencies) if base.latencies else float("nan")
    answers = ", ".join(f"{v} {k}" for k, v in sorted(p.answers.items())) or "-"
    print(f"{p.name:<26}{p.frames:>8}{p.honest_ops:>8}{p50:>9.1f}"
          f"{1000 * _pct(p.latencies, 0.99):>9.1f}{p50 / b50:>8.2f}"
          f"{p.peak_rss / 2**20:>10.0f}  {answers}"
          + (f"  HONEST ERRORS: {p.honest_errors}" if p.honest_errors else ""), flush=flush)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--kills", type=int, default=50, help="kill -9 rounds (crash part)")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="honest client run per abuse phase")
    parser.add_argument("--skip-crash", action="store_true")
    parser.add_argument("--skip-abuse", action="store_true")
    parser.add_argument("--code", type=Path, default=None,
                        help="run the devnode from this checkout (e.g. before a change)")
    args = parser.parse_args()
    if args.code is not None:  # NodeProcess passes the environment to the node
        os.environ["PYTHONPATH"] = str(args.code.resolve())
    print(f"{psutil.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in psutil.getloadavg())}; devnode from "
          f"{args.code or 'this checkout'}", flush=True)
    if not args.skip_crash:
        with tempfile.TemporaryDirectory(prefix="devnode-crash-") as tmp:
            r = crash_rounds(Path(tmp) / "chain", args.kills, clients=3, seed=1)
        print(f"crash: {r.kills} kills -9 in {r.seconds:.0f}s, {r.submitted} extrinsics "
              f"submitted, {r.final_txs} told final in {r.final_blocks} blocks; lost after "
              f"restart: {len(r.lost)}; in-block-only extrinsics rolled back: "
              f"{r.unfinal_lost}" + (f"; first lost: {r.lost[:3]}" if r.lost else ""),
              flush=True)
    if not args.skip_abuse:
        node = NodeProcess()
        try:
            print(f"\nabuse: honest client for {args.seconds:g}s per phase; latency = "
                  "submitAndWatch->inBlock + chain_getHeader")
            print(f"{'phase':<26}{'frames':>8}{'honest':>8}{'p50 ms':>9}{'p99 ms':>9}"
                  f"{'p50 x':>8}{'peak MiB':>10}  node's answers to the attack")
            phases = run_abuse(node, args.seconds)
            print(f"peak node RSS over all phases: "
                  f"{max(p.peak_rss for p in phases) / 2**20:.0f} MiB")
        finally:
            node.stop()


if __name__ == "__main__":
    main()

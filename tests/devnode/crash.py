"""The crash harness: several clients load a ``--base-path`` devnode, it is ``kill -9``-ed at a
random moment, restarted, and everything any client was told is final is looked up again.

Used by tests/devnode/test_crash.py (a few dozen kills) and bench/devnode_abuse.py (more, for
the figures). Each client owns a dev account and sends ``Balances.transfer_keep_alive`` of
:data:`AMOUNT` to its own fresh account with ``author_submitAndWatchExtrinsic``, while also
subscribed to finalized heads, and records every ``finalized`` status and finalized header it
receives. After the restart, for each of them:

* the block is there, on the canonical chain (``chain_getBlockHash(number)`` is its hash);
* the extrinsic is in its body, byte for byte;
* the destination's balance *at that block* is ``(nonce + 1) * AMOUNT`` (every transfer of the
  client up to that nonce is in, none twice);
* the finalized head is at least as high as the highest block ever announced final.

Blocks announced only as ``inBlock`` may legitimately be gone (a later block at that height can
differ): they are counted as ``unfinal_lost``, which shows the kills land while blocks are in
flight.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from substrateinterface import Keypair
from websockets.exceptions import ConnectionClosed

from tests.devnode.rawrpc import (
    NodeProcess,
    RawClient,
    Signer,
    account_id,
    account_key,
    free_balance,
    transfer_call,
)

AMOUNT = 10**12
SENDERS = ("Bob", "Charlie", "Dave", "Eve", "Ferdie")


@dataclass
class Told:
    """What one client was told (kept across rounds)."""

    #: (nonce, block hash, extrinsic hex) of every ``finalized`` status.
    final: list[tuple[int, str, str]] = field(default_factory=list)
    #: (nonce, block hash) of every ``inBlock`` status.
    in_block: list[tuple[int, str]] = field(default_factory=list)
    #: block number -> header (JSON) of every finalized head notification.
    heads: dict[int, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    submitted: int = 0


@dataclass
class CrashReport:
    kills: int = 0
    final_txs: int = 0
    final_blocks: int = 0
    submitted: int = 0
    unfinal_lost: int = 0
    lost: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


class LoadClient(threading.Thread):
    """Submits transfers one after the other until the node goes away."""

    def __init__(self, url: str, signer: Signer, kp: Keypair, dest: bytes, told: Told,
                 started: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self.url, self.signer, self.kp, self.dest, self.told = url, signer, kp, dest, told
        self.started = started

    def run(self) -> None:
        try:
            client = RawClient(self.url, timeout=30)
        except (OSError, ConnectionClosed, TimeoutError) as exc:
            self.told.errors.append(f"connect: {exc}")
            self.started.abort()
            return
        try:
            self._load(client)
        except (ConnectionClosed, OSError, TimeoutError):
            pass  # the node was killed
        finally:
            client.close()

    def _load(self, client: RawClient) -> None:
        call = transfer_call(self.dest, AMOUNT)
        client.call("chain_subscribeFinalizedHeads")
        nonce = int(client.call("system_accountNextIndex", [self.kp.ss58_address]))
        watched: dict[str, tuple[int, str]] = {}
        self._drain(client.notifications, watched)
        client.notifications.clear()
        self.started.wait()
        while True:
            xt = "0x" + self.signer.sign(self.kp, call, nonce).hex()
            req_id = client.send("author_submitAndWatchExtrinsic", [xt])
            self.told.submitted += 1
            while True:
                message = client.recv()
                if message.get("id") == req_id and "method" not in message:
                    break
                self._drain([message], watched)
            if "error" in message:
                self.told.errors.append(f"nonce {nonce}: {message['error']}")
                return
            watched[message["result"]] = (nonce, xt)
            nonce += 1

    def _drain(self, messages: list[dict[str, Any]], watched: dict[str, tuple[int, str]]) -> None:
        for m in messages:
            params = m.get("params") or {}
            result = params.get("result")
            if m.get("method") == "chain_finalizedHead":
                self.told.heads[int(result["number"], 16)] = result
            elif m.get("method") == "author_extrinsicUpdate" and isinstance(result, dict):
                sub = params.get("subscription")
                if sub not in watched:
                    continue
                nonce, xt = watched[sub]
                if "inBlock" in result:
                    self.told.in_block.append((nonce, result["inBlock"]))
                if "finalized" in result:
                    self.told.final.append((nonce, result["finalized"], xt))
                    del watched[sub]


def verify(url: str, told: list[Told], dests: list[bytes], report: CrashReport) -> None:
    """Look up, on the restarted node, everything the clients were told is final."""
    client = RawClient(url, timeout=120)
    try:
        _verify(client, told, dests, report)
    finally:
        client.close()


def _verify(client: RawClient, told: list[Told], dests: list[bytes], report: CrashReport) -> None:
    hashes = sorted({h for t in told for _, h, _ in t.final}
                    | {h for t in told for _, h in t.in_block})
    blocks = dict(zip(hashes, client.batch([("chain_getBlock", [h]) for h in hashes]),
                      strict=True))
    numbers = {h: int(b["block"]["header"]["number"], 16) for h, b in blocks.items() if b}
    head_numbers = {n for t in told for n in t.heads}
    wanted = sorted(set(numbers.values()) | head_numbers)
    canonical = dict(zip(wanted, client.batch([("chain_getBlockHash", [n]) for n in wanted]),
                         strict=True))
    heads = dict(zip(head_numbers, client.batch(
        [("chain_getHeader", [canonical[n]]) for n in head_numbers]), strict=True))
    final_hashes = {h for t in told for _, h, _ in t.final}
    report.final_blocks = len({numbers.get(h, h) for h in final_hashes} | head_numbers)
    for h in sorted(final_hashes):
        if blocks.get(h) is None:
            report.lost.append(f"final block {h} is gone")
        elif canonical.get(numbers[h]) != h:
            report.lost.append(f"final block #{numbers[h]} {h} was replaced by "
                               f"{canonical.get(numbers[h])}")
    for t in told:
        for number, header in t.heads.items():
            if heads[number] != header:
                report.lost.append(f"finalized head #{number} is now {heads[number]}, was "
                                   f"{header}")
    balance_queries = []
    for i, t in enumerate(told):
        for nonce, h, xt in t.final:
            block = blocks.get(h)
            if block is None:
                continue  # reported above
            if xt not in block["block"]["extrinsics"]:
                report.lost.append(f"client {i} nonce {nonce}: not in final block {h}")
            balance_queries.append((i, nonce, h))
    balances = client.batch([("state_getStorage", [account_key(dests[i]), h])
                             for i, _, h in balance_queries]) if balance_queries else []
    for (i, nonce, h), value in zip(balance_queries, balances, strict=True):
        if free_balance(value) != (nonce + 1) * AMOUNT:
            report.lost.append(f"client {i}: balance at {h} is {free_balance(value)}, "
                               f"told {(nonce + 1) * AMOUNT}")
    highest = max(head_numbers | set(numbers[h] for h in final_hashes if h in numbers),
                  default=0)
    head = client.call("chain_getHeader", [client.call("chain_getFinalizedHead")])
    if int(head["number"], 16) < highest:
        report.lost.append(f"finalized head #{int(head['number'], 16)} is below #{highest}, "
                           "announced final before the restart")
    final_keys = {(i, n) for i, t in enumerate(told) for n, _, _ in t.final}
    report.unfinal_lost = sum(1 for i, t in enumerate(told) for n, h in t.in_block
                              if (i, n) not in final_keys and blocks.get(h) is None)
    report.final_txs = len(final_keys)


def crash_rounds(base_path: Path, kills: int, clients: int = 3, seed: int = 0,
                 min_s: float = 0.1, max_s: float = 1.0,
                 node_args: tuple[str, ...] = ()) -> CrashReport:
    """``kills`` rounds of load + ``kill -9`` at a random moment + restart + verify."""
    rng = random.Random(seed)
    report = CrashReport()
    t0 = time.perf_counter()
    keys = [Keypair.create_from_uri(f"//{name}") for name in SENDERS[:clients]]
    dests = [account_id(Keypair.create_from_uri(f"//CrashDest{i}")) for i in range(clients)]
    told = [Told() for _ in range(clients)]
    args = ("--base-path", str(base_path), *node_args)
    node = NodeProcess(*args)
    try:
        probe = RawClient(node.url)
        signer = Signer.of(probe)
        probe.close()
        for _ in range(kills):
            started = threading.Barrier(clients + 1)
            threads = [LoadClient(node.url, signer, kp, dest, t, started)
                       for kp, dest, t in zip(keys, dests, told, strict=True)]
            for th in threads:
                th.start()
            started.wait(60)
            time.sleep(rng.uniform(min_s, max_s))
            node.kill9()
            report.kills += 1
            for th in threads:
                th.join(60)
            node = NodeProcess(*args)
            verify(node.url, told, dests, report)
            if report.lost:
                break
    finally:
        node.stop()
    report.submitted = sum(t.submitted for t in told)
    report.errors = [e for t in told for e in t.errors]
    report.seconds = time.perf_counter() - t0
    return report

"""Finality means durable: with a base path, nothing is announced final before it is on disk.

Each ``finalized`` status and finalized head is checked, the moment the client receives it,
against the database file through a separate SQLite connection (what a restarted node would
read). The group commit must also group: many blocks sealed together share one fsync.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from substrateinterface import Keypair

from decentralml.devnode import DevNode
from decentralml.devnode.finality import GroupCommit
from tests.devnode.rawrpc import RawClient, Signer, account_id, transfer_call

pytestmark = pytest.mark.timeout(300)

BOB = Keypair.create_from_uri("//Bob")
DEST = account_id(Keypair.create_from_uri("//FinalityDest"))


def _on_disk(db: Path, block_hash: str) -> bool:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT 1 FROM blocks WHERE hash = ?",
                           (bytes.fromhex(block_hash[2:]),)).fetchone()
    finally:
        conn.close()
    return row is not None


def _header_on_disk(db: Path, number: int) -> str | None:
    """The parent hash in the stored header of block ``number`` (None: not on disk)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT header FROM blocks WHERE number = ?", (number,)).fetchone()
    finally:
        conn.close()
    return None if row is None else "0x" + bytes(row[0])[:32].hex()


def _pipelined(client: RawClient, xts: list[bytes]) -> list[int]:
    """Send all submissions in one go (the node seals them in one batch of requests)."""
    ids = []
    for xt in xts:
        ids.append(client.send("author_submitAndWatchExtrinsic", ["0x" + xt.hex()]))
    return ids


def test_finalized_is_announced_only_once_on_disk(tmp_path: Path) -> None:
    db = tmp_path / "chain.sqlite"
    with DevNode(base_path=tmp_path) as node:
        assert node.chain is not None and isinstance(node.chain.finality, GroupCommit)
        client = RawClient(node.url)
        heads_sub = client.call("chain_subscribeFinalizedHeads")
        signer = Signer.of(client)
        count = 40
        ids = _pipelined(client, [signer.sign(BOB, transfer_call(DEST, 10**12), n)
                                  for n in range(count)])
        subs: dict[str, int] = {}
        in_block: dict[int, str] = {}
        final: dict[int, str] = {}
        heads_checked = 0
        while len(final) < count:
            m: dict[str, Any] = client.recv()
            if m.get("id") in ids:
                assert "result" in m, m
                subs[m["result"]] = ids.index(m["id"])
                continue
            params = m.get("params", {})
            result = params.get("result")
            if m.get("method") == "chain_finalizedHead":
                assert params["subscription"] == heads_sub
                number = int(result["number"], 16)
                assert _header_on_disk(db, number) == result["parentHash"], \
                    f"finalized head #{number} is not on disk"
                heads_checked += 1
            elif m.get("method") == "author_extrinsicUpdate" and isinstance(result, dict):
                n = subs[params["subscription"]]
                if "inBlock" in result:
                    in_block[n] = result["inBlock"]
                if "finalized" in result:
                    assert in_block.get(n) == result["finalized"], "finalized before inBlock"
                    assert _on_disk(db, result["finalized"]), f"nonce {n}: final, not on disk"
                    final[n] = result["finalized"]
        assert heads_checked > 0
        finalized_head = client.call("chain_getFinalizedHead")
        assert _on_disk(db, finalized_head)
        group = node.chain.finality
        # 40 blocks sealed from one burst of requests: far fewer fsyncs than blocks
        assert group.syncs < count // 2, f"{group.syncs} fsyncs for {count} blocks"
        client.close()


def test_finalized_head_lags_the_best_block_only_until_it_is_durable(tmp_path: Path) -> None:
    with DevNode(base_path=tmp_path) as node:
        client = RawClient(node.url)
        signer = Signer.of(client)
        ids = _pipelined(client, [signer.sign(BOB, transfer_call(DEST, 10**12), n)
                                  for n in range(10)])
        for req_id in ids:
            assert "result" in client.response(req_id)
        # every watched extrinsic reaches finalized, and then the finalized head is the best
        # (statuses that arrived before the last response were kept aside by `response`)
        final = 0
        while final < 10:
            m = client.notifications.pop(0) if client.notifications else client.recv()
            result = (m.get("params") or {}).get("result")
            if isinstance(result, dict) and "finalized" in result:
                final += 1
        assert client.call("chain_getFinalizedHead") == client.call("chain_getBlockHash")
        client.close()


def test_in_memory_chain_is_final_at_once() -> None:
    with DevNode() as node:
        client = RawClient(node.url)
        signer = Signer.of(client)
        sub = client.call("author_submitAndWatchExtrinsic",
                          ["0x" + signer.sign(BOB, transfer_call(DEST, 10**12), 0).hex()])
        statuses = []
        while not statuses or "finalized" not in statuses[-1]:
            m = client.recv()
            if m.get("params", {}).get("subscription") == sub:
                statuses.append(m["params"]["result"])
        assert statuses[0] == "ready"
        assert statuses[1]["inBlock"] == statuses[2]["finalized"]
        assert client.call("chain_getFinalizedHead") == statuses[2]["finalized"]
        client.close()

"""Clients other than substrate-interface against each chain: raw JSON-RPC over a websocket, and
polkadot.js (``@polkadot/api``, pinned through chain/chopsticks/package-lock.json).

Whatever the SDK proves about a chain is worth little if only our client can talk to it; these
are the calls every wallet, explorer and indexer starts with.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from substrateinterface import Keypair, SubstrateInterface
from websockets.sync.client import ClientConnection, connect

from decentralml.chain.connection import extrinsic_hash_of

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "chain" / "chopsticks" / "node_modules"


class RawRpc:
    """Bare JSON-RPC 2.0 over one websocket: requests and subscription notifications."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.notifications: list[dict[str, Any]] = []

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        self.next_id += 1
        self.ws.send(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                 "params": params or []}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.next_id:
                assert "error" not in msg, f"{method}: {msg['error']}"
                return msg["result"]
            self.notifications.append(msg)

    def notification(self) -> dict[str, Any]:
        if self.notifications:
            return self.notifications.pop(0)
        return dict(json.loads(self.ws.recv(timeout=60)))


def _signed_remark(url: str) -> str:
    """A signed ``System.remark`` from //Alice (signing is not what is under test here)."""
    si = SubstrateInterface(url=url)
    try:
        call = si.compose_call("System", "remark", {"remark": b"raw json-rpc"})
        xt = si.create_signed_extrinsic(call, Keypair.create_from_uri("//Alice"))
        return str(xt.data)
    finally:
        si.close()


def test_raw_json_rpc(chain_url: str) -> None:
    with connect(chain_url, max_size=2**25, open_timeout=30) as ws:
        rpc = RawRpc(ws)
        metadata = bytes.fromhex(rpc.call("state_getMetadata")[2:])
        assert metadata[:4] == b"meta" and metadata[4] == 14  # RuntimeMetadataPrefixed, V14
        assert b"DecentralML" in metadata
        version = rpc.call("state_getRuntimeVersion")
        assert version["specVersion"] == 103
        props = rpc.call("system_properties")
        assert (props["ss58Format"], props["tokenDecimals"], props["tokenSymbol"]) in \
            ((42, 12, "UNIT"), (42, [12], ["UNIT"]))
        assert rpc.call("system_chainType") in ("Development", {"Development": None})
        genesis = rpc.call("chain_getBlockHash", [0])
        assert int(rpc.call("chain_getBlock", [genesis])["block"]["header"]["number"], 16) == 0

        encoded = _signed_remark(chain_url)
        sub = rpc.call("author_submitAndWatchExtrinsic", [encoded])
        statuses: list[Any] = []
        block_hash = None
        while block_hash is None:
            note = rpc.notification()
            assert note["method"] == "author_extrinsicUpdate", note
            assert note["params"]["subscription"] == sub
            status = note["params"]["result"]
            statuses.append(status)
            assert status not in ("invalid", "dropped"), statuses
            if isinstance(status, dict):
                block_hash = status.get("inBlock") or status.get("finalized")
        assert statuses[0] == "ready" or isinstance(statuses[0], dict), statuses
        body = rpc.call("chain_getBlock", [block_hash])["block"]
        assert extrinsic_hash_of(encoded) in [extrinsic_hash_of(x) for x in body["extrinsics"]]


def test_polkadot_js(chain_url: str) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "@polkadot" / "api").is_dir():
        pytest.fail("polkadot.js comes with Chopsticks: run `make chopsticks` (needs Node.js)")
    done = subprocess.run([node, str(Path(__file__).with_name("polkadotjs_smoke.cjs")), chain_url],
                          env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["specVersion"] == 103
    assert seen["properties"]["ss58Format"] == 42
    assert {"System", "Balances", "Utility", "DecentralML"} <= set(seen["pallets"])
    assert seen["decentralmlCalls"] == ["createTask", "acceptTask", "sendTaskResult",
                                        "validateTaskResult", "closeTask", "abandonTask",
                                        "createTaskWithTerms", "settleContributions",
                                        "createPeerJob", "joinPeerJob", "leavePeerJob",
                                        "postUpdate", "postAggregate"]
    assert seen["maxAssignments"] == 64
    assert seen["bobGained"] == str(10**12)
    assert "balances.Transfer" in seen["transfer"]["events"]
    assert "decentralML.TaskCreated" in seen["createTask"]["events"]
    assert seen["nextTaskIdAfter"] == seen["nextTaskIdBefore"] + 1
    task = seen["task"]
    assert (task["question"], task["status"], task["assetsCid"]) == \
        ("label these (polkadot.js)", "Open", "bafkreipolkadotjs")
    # protocol 2: a struct argument encoded, new storage and events decoded from the metadata
    assert "decentralML.TaskCreated" in seen["createTaskWithTerms"]["events"]
    assert seen["terms"] == {"shards": 2, "payout": "ByContribution", "floor": 10**9,
                             "holdoutCommitment": "0x" + "ab" * 32, "scoringCommitment": None}
    assert "decentralML.PeerJobCreated" in seen["createPeerJob"]["events"]
    assert "decentralML.PeerJoined" in seen["joinPeerJob"]["events"]
    job = seen["peerJob"]
    assert (job["rounds"], job["updateBlocks"], job["aggregateBlocks"], job["maxPeers"],
            job["peers"]) == (3, 10, 10, 4, 1)
    assert seen["peerRound"] == 0

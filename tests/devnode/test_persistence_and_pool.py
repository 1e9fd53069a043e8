"""--base-path persistence across restarts, and interval sealing with a ready/future pool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from decentralml.devnode import DevNode
from decentralml.devnode.chain import IncompatibleDatabase
from tests.devnode.helpers import ALICE, BOB, CHARLIE, UNIT, Client, event

pytestmark = pytest.mark.timeout(120)


def test_restart_with_base_path_keeps_the_chain(tmp_path: Path) -> None:
    with DevNode(base_path=tmp_path) as node:
        c = Client(node.url)
        creator = c.fund(100 * UNIT)
        r = c.create_task(creator, reward=2 * UNIT)
        task_id = event(r, "DecentralML", "TaskCreated")["task_id"]
        middle = c.si.get_block_hash(2)
        head = c.si.get_chain_head()
        number = c.block_number()
        balance = c.free(creator)
        genesis = c.si.get_block_hash(0)
        c.close()
    assert (tmp_path / "chain.sqlite").exists()
    with DevNode(base_path=tmp_path) as node:
        c = Client(node.url)
        assert c.si.get_chain_head() == head
        assert c.block_number() == number
        assert c.si.get_block_hash(0) == genesis
        assert c.free(creator) == balance
        assert c.si.query("DecentralML", "Tasks", [task_id]).value["reward"] == 2 * UNIT
        assert c.si.get_block_hash(2) == middle
        assert [e.value["event_id"] for e in c.si.get_events(head)][-1] == "ExtrinsicSuccess"
        assert c.si.get_account_nonce(creator.ss58_address) == 1
        r = c.submit(creator, "DecentralML", "close_task", {"task_id": task_id})
        assert r.is_success, r.error_message
        assert c.block_number() == number + 1
        c.close()


def test_tmp_chains_are_independent() -> None:
    with DevNode() as a, DevNode() as b:
        ca, cb = Client(a.url), Client(b.url)
        ca.fund(UNIT)
        assert ca.block_number() == 1 and cb.block_number() == 0
        ca.close()
        cb.close()


def test_incompatible_database_is_refused(tmp_path: Path) -> None:
    with DevNode(base_path=tmp_path):
        pass
    import sqlite3
    db = sqlite3.connect(tmp_path / "chain.sqlite")
    db.execute("UPDATE meta SET value = ? WHERE key = 'spec_version'", (b"1",))
    db.commit()
    db.close()
    with pytest.raises(IncompatibleDatabase):
        DevNode(base_path=tmp_path).start()


def _rpc(conn: Any, method: str, params: list[Any], rid: int) -> Any:
    conn.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
    while True:
        msg = json.loads(conn.recv(timeout=30))
        if msg.get("id") == rid:
            return msg


def test_interval_pool_orders_by_nonce() -> None:
    with DevNode(block_time=3600) as node:  # sealing only through dev_newBlock here
        c = Client(node.url)
        call = c.call("Balances", "transfer_keep_alive", {"dest": BOB.ss58_address,
                                                          "value": UNIT})
        xts = [c.si.create_signed_extrinsic(call, ALICE, nonce=n) for n in range(3)]
        with connect(node.url) as conn:
            # nonce 2 then 1: both wait in the future queue
            watch2 = _rpc(conn, "author_submitAndWatchExtrinsic", [str(xts[2].data)], 1)
            assert json.loads(conn.recv(timeout=10))["params"]["result"] == "future"
            _rpc(conn, "author_submitExtrinsic", [str(xts[1].data)], 2)
            assert len(_rpc(conn, "author_pendingExtrinsics", [], 3)["result"]) == 2
            assert _rpc(conn, "system_accountNextIndex", [ALICE.ss58_address], 4)["result"] == 0
            # same sender and nonce again: refused synchronously
            dup = c.si.create_signed_extrinsic(c.call("System", "remark", {"remark": b""}),
                                               ALICE, nonce=1)
            assert _rpc(conn, "author_submitExtrinsic", [str(dup.data)], 5)["error"]["code"] \
                == 1014
            assert _rpc(conn, "author_submitExtrinsic", [str(xts[1].data)], 6)["error"]["code"] \
                == 1013
            # nonce 0 fills the gap: everything is ready, sealed in one block, in nonce order
            _rpc(conn, "author_submitExtrinsic", [str(xts[0].data)], 7)
            promoted = json.loads(conn.recv(timeout=10))
            assert promoted["params"] == {"subscription": watch2["result"], "result": "ready"}
            assert _rpc(conn, "system_accountNextIndex", [ALICE.ss58_address], 8)["result"] == 3
            block_hash = _rpc(conn, "dev_newBlock", [], 9)["result"]
        block = c.si.get_block(block_hash)
        nonces = [x.value["nonce"] for x in block["extrinsics"][1:]]
        assert nonces == [0, 1, 2]
        assert c.si.get_account_nonce(ALICE.ss58_address) == 3
        c.close()


def test_interval_sealing_includes_watched_extrinsics() -> None:
    with DevNode(block_time=0.05) as node:
        c = Client(node.url)
        r = c.submit(ALICE, "System", "remark_with_event", {"remark": b"tick"})
        assert r.is_success
        assert event(r, "System", "Remarked")["sender"] == ALICE.ss58_address
        c.close()


def test_stale_pool_transaction_is_reported_invalid() -> None:
    with DevNode(block_time=3600) as node:
        c = Client(node.url)
        call = c.call("Balances", "transfer_all", {"dest": BOB.ss58_address,
                                                   "keep_alive": False})
        first = c.si.create_signed_extrinsic(call, CHARLIE, nonce=0)
        second = c.si.create_signed_extrinsic(c.call("System", "remark", {"remark": b""}),
                                              CHARLIE, nonce=1)
        with connect(node.url) as conn:
            _rpc(conn, "author_submitExtrinsic", [str(first.data)], 1)
            sub = _rpc(conn, "author_submitAndWatchExtrinsic", [str(second.data)], 2)["result"]
            assert json.loads(conn.recv(timeout=10))["params"]["result"] == "ready"
            conn.send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "dev_newBlock"}))
            msgs = [json.loads(conn.recv(timeout=10)) for _ in range(2)]
            # the first transfer reaped the account: the second is no longer valid
            assert {"subscription": sub, "result": "invalid"} in [m.get("params") for m in msgs]
        c.close()

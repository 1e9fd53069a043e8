"""The JSON-RPC surface: methods, subscriptions and what malformed input gets (raw websocket)."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from decentralml.devnode import DevNode
from tests.devnode.helpers import ALICE, UNIT, Client

pytestmark = pytest.mark.timeout(120)


def _rpc(ws: ClientConnection, method: str, params: Any = None, rid: int = 1) -> dict[str, Any]:
    ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or []}))
    while True:
        msg = json.loads(ws.recv(timeout=30))
        if msg.get("id") == rid:
            return msg  # type: ignore[no-any-return]


@pytest.fixture()
def ws(devnode: DevNode) -> Any:
    with connect(devnode.url, max_size=2**26) as conn:
        yield conn


def test_node_identity(ws: ClientConnection) -> None:
    assert _rpc(ws, "system_chain")["result"] == "decentralml-devnode"
    assert _rpc(ws, "system_chainType")["result"] == "Development"
    assert _rpc(ws, "system_properties")["result"] == {
        "ss58Format": 42, "tokenDecimals": 12, "tokenSymbol": "UNIT"}
    methods = _rpc(ws, "rpc_methods")["result"]["methods"]
    for m in ("chain_getHead", "state_getStorageAt", "state_getRuntimeVersion", "state_call",
              "author_submitAndWatchExtrinsic", "dev_newBlock", "state_queryStorageAt"):
        assert m in methods
    version = _rpc(ws, "state_getRuntimeVersion")["result"]
    assert version["specName"] == "decentralml-devnode" and version["transactionVersion"] == 1


def test_errors_for_bad_requests(ws: ClientConnection) -> None:
    ws.send("{not json")
    assert json.loads(ws.recv(timeout=10))["error"]["code"] == -32700
    ws.send(json.dumps({"id": 3, "method": "system_chain"}))
    assert json.loads(ws.recv(timeout=10))["error"]["code"] == -32600
    ws.send(json.dumps([]))
    assert json.loads(ws.recv(timeout=10))["error"]["code"] == -32600
    ws.send(json.dumps(42))
    assert json.loads(ws.recv(timeout=10))["error"]["code"] == -32600
    assert _rpc(ws, "no_such_method")["error"]["code"] == -32601
    assert _rpc(ws, "chain_getBlockHash", ["x"])["error"]["code"] == -32602
    assert _rpc(ws, "chain_getBlockHash", [1, 2, 3])["error"]["code"] == -32602
    assert _rpc(ws, "state_getStorage", [123])["error"]["code"] == -32602
    assert _rpc(ws, "state_getKeysPaged", ["0x", 5000])["error"]["code"] == 4002
    assert _rpc(ws, "state_call", ["Nope_nope", "0x"])["error"]["code"] == 4003
    assert _rpc(ws, "state_call", ["AccountNonceApi_account_nonce", "0x12"])["error"]["code"] \
        == 4003
    assert _rpc(ws, "state_getStorage", ["0x00", "0x" + "11" * 32])["error"]["code"] == 4003
    assert _rpc(ws, "system_chain", {"a": 1})["error"]["code"] == -32602
    assert _rpc(ws, "chain_getHeader", ["0x" + "ab" * 32])["result"] is None
    assert _rpc(ws, "chain_getBlockHash", [10**6])["result"] is None
    assert _rpc(ws, "system_chain")["result"] == "decentralml-devnode"


def test_batch_request(ws: ClientConnection) -> None:
    ws.send(json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "system_chain"},
                        {"jsonrpc": "2.0", "id": 2, "method": "nope"}]))
    replies = json.loads(ws.recv(timeout=10))
    assert [r.get("result") for r in replies] == ["decentralml-devnode", None]
    assert replies[1]["error"]["code"] == -32601


def test_oversized_frame_closes_only_that_socket(devnode: DevNode) -> None:
    with connect(devnode.url, max_size=2**26) as conn, pytest.raises(ConnectionClosed):
        conn.send("x" * (17 * 1024 * 1024))
        conn.recv(timeout=30)
    with connect(devnode.url) as conn:
        assert _rpc(conn, "system_chain")["result"] == "decentralml-devnode"


def test_abrupt_disconnects_leave_the_node_serving(devnode: DevNode) -> None:
    host, port = devnode.url.removeprefix("ws://").rsplit(":", 1)
    for _ in range(5):  # half a handshake, then gone
        s = socket.create_connection((host, int(port)))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        s.close()
    for _ in range(3):  # subscribed and watching, then the TCP connection just dies
        conn = connect(devnode.url)
        _rpc(conn, "chain_subscribeNewHeads")
        _rpc(conn, "state_subscribeStorage", [["0x00"]])
        conn.socket.close()
    s = socket.create_connection((host, int(port)))
    s.sendall(b"garbage that is not http\r\n\r\n")
    s.close()
    c = Client(devnode.url)
    assert c.fund(UNIT)  # blocks still get sealed and announced
    c.close()


def test_subscription_ids_are_unique_and_never_reused(ws: ClientConnection) -> None:
    ids = set()
    for i in range(5):
        sub = _rpc(ws, "chain_subscribeNewHeads", rid=10 + i)["result"]
        assert sub not in ids
        ids.add(sub)
        assert _rpc(ws, "chain_unsubscribeNewHeads", [sub], rid=20 + i)["result"] is True
        assert _rpc(ws, "chain_unsubscribeNewHeads", [sub], rid=30 + i)["result"] is False
    assert len(ids) == 5


def test_storage_subscription_sends_initial_value_at_once(ws: ClientConnection,
                                                          client: Client) -> None:
    key = client.si.create_storage_key("System", "Account", [ALICE.ss58_address]).to_hex()
    ws.send(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "state_subscribeStorage",
                        "params": [[key]]}))
    first = json.loads(ws.recv(timeout=10))
    assert first["id"] == 7
    note = json.loads(ws.recv(timeout=10))
    assert note["method"] == "state_storage"
    assert note["params"]["subscription"] == first["result"]
    assert note["params"]["result"]["changes"][0][0] == key


def test_watch_sends_id_before_updates(devnode: DevNode, client: Client) -> None:
    kp = client.fund(10 * UNIT)
    xt = client.si.create_signed_extrinsic(client.call("System", "remark", {"remark": b""}), kp)
    with connect(devnode.url) as conn:
        conn.send(json.dumps({"jsonrpc": "2.0", "id": 1,
                              "method": "author_submitAndWatchExtrinsic",
                              "params": [str(xt.data)]}))
        msgs = [json.loads(conn.recv(timeout=10)) for _ in range(4)]
    assert msgs[0]["id"] == 1
    sub = msgs[0]["result"]
    updates = [m["params"]["result"] for m in msgs[1:]]
    assert all(m["params"]["subscription"] == sub for m in msgs[1:])
    assert updates[0] == "ready"
    assert set(updates[1]) == {"inBlock"} and set(updates[2]) == {"finalized"}
    assert updates[1]["inBlock"] == updates[2]["finalized"]


def test_heads_subscriptions_via_substrate_interface(devnode: DevNode, client: Client) -> None:
    seen: list[int] = []

    def handler(obj: Any, update_nr: int, subscription_id: str) -> Any:
        seen.append(obj["header"]["number"])
        return True if update_nr >= 2 else None

    def produce() -> None:
        other = Client(devnode.url)
        other.new_blocks(1)
        other.new_blocks(1)
        other.close()

    threading.Timer(0.2, produce).start()
    client.si.subscribe_block_headers(handler, finalized_only=True)
    assert len(seen) == 3 and seen[1] == seen[0] + 1


def test_dev_new_block(ws: ClientConnection) -> None:
    head = int(_rpc(ws, "chain_getHeader")["result"]["number"], 16)
    h = _rpc(ws, "dev_newBlock", [{"count": 3}])["result"]
    header = _rpc(ws, "chain_getHeader", [h])["result"]
    assert int(header["number"], 16) == head + 3
    assert _rpc(ws, "chain_getFinalizedHead")["result"] == h
    assert _rpc(ws, "dev_newBlock", [{"count": 0}])["error"]["code"] == -32602

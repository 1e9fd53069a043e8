"""Hostile clients: oversized and deeply nested extrinsics, slow readers, connection and
subscription floods. Each is refused with a proper error (never "Internal error"), and an honest
client keeps getting its answers meanwhile. Latency figures live in bench/devnode_abuse.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from substrateinterface import Keypair
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from decentralml.devnode import DevNode
from decentralml.devnode.extrinsics import (
    BAD_PROOF,
    CALL,
    EXHAUSTS,
    MAX_CALL_DEPTH,
    MAX_DECODED_CALLS,
    PAYMENT,
)
from decentralml.devnode.pool import Pool, PoolTx
from decentralml.devnode.runtime import MAX_EXTRINSIC_LENGTH
from decentralml.devnode.scale import encode_compact
from decentralml.devnode.server import RpcLimits
from tests.devnode.helpers import ALICE, UNIT, Client
from tests.devnode.rawrpc import (
    RawClient,
    RpcFailure,
    Signer,
    SlowReader,
    account_id,
    nested_batch,
    remark,
    remark_batch,
    transfer_call,
    unsigned,
)

pytestmark = pytest.mark.timeout(300)

KIB = 1024


@pytest.fixture(scope="module")
def node() -> Iterator[DevNode]:
    with DevNode() as n:
        yield n


@pytest.fixture()
def raw(node: DevNode) -> Iterator[RawClient]:
    c = RawClient(node.url)
    yield c
    c.close()


def _refusal(client: RawClient, xt: bytes, method: str = "author_submitExtrinsic"
             ) -> dict[str, Any]:
    with pytest.raises(RpcFailure) as info:
        client.call(method, ["0x" + xt.hex()])
    return info.value.error


def _signed_by(client: RawClient, kp: Keypair, call: bytes) -> bytes:
    nonce = int(client.call("system_accountNextIndex", [kp.ss58_address]))
    return Signer.of(client).sign(kp, call, nonce)


# -- size, signature and depth before work ----------------------------------------------------


def test_a_six_megabyte_unsigned_batch_is_refused_by_its_length(raw: RawClient) -> None:
    xt = unsigned(remark_batch(2_000_000))  # 6 MB, > the block length limit
    assert len(xt) > MAX_EXTRINSIC_LENGTH
    error = _refusal(raw, xt)
    assert (error["code"], error["data"]) == (1010, EXHAUSTS)
    assert _refusal(raw, xt, "author_submitAndWatchExtrinsic")["data"] == EXHAUSTS


def test_an_oversized_extrinsic_is_refused_before_decoding(raw: RawClient) -> None:
    # a valid length prefix around bytes that are no extrinsic at all: a decoder would call it
    # a bad format; the length check answers first
    body = os.urandom(MAX_EXTRINSIC_LENGTH)
    error = _refusal(raw, encode_compact(len(body)) + body)
    assert (error["code"], error["data"]) == (1010, EXHAUSTS)


def test_an_unsigned_call_is_refused_before_it_is_decoded(raw: RawClient) -> None:
    garbage = b"\xff" * (MAX_EXTRINSIC_LENGTH // 2)  # no such pallet: undecodable
    error = _refusal(raw, unsigned(garbage))
    assert (error["code"], error["data"]) == (1010, CALL)
    deep = _refusal(raw, unsigned(nested_batch(10_000)))
    assert (deep["code"], deep["data"]) == (1010, CALL)


def test_the_signature_is_checked_before_the_call_is_decoded(raw: RawClient) -> None:
    stranger = Keypair.create_from_mnemonic(Keypair.generate_mnemonic())
    xt = bytearray(_signed_by(raw, stranger, b"\xff" * 1000))
    xt[40] ^= 1  # inside the signature
    error = _refusal(raw, bytes(xt))
    assert (error["code"], error["data"]) == (1010, BAD_PROOF)


def test_an_account_that_cannot_pay_for_the_length_is_refused_before_decoding(
        raw: RawClient) -> None:
    stranger = Keypair.create_from_mnemonic(Keypair.generate_mnemonic())  # no balance
    error = _refusal(raw, _signed_by(raw, stranger, b"\xff" * 100_000))
    assert (error["code"], error["data"]) == (1010, PAYMENT)


def test_call_nesting_is_limited_during_decoding(node: DevNode, raw: RawClient) -> None:
    client = Client(node.url)
    try:
        kp = client.fund(10 * UNIT)
    finally:
        client.close()
    for depth in (MAX_CALL_DEPTH, 165, 10_000):  # 165: where a RecursionError used to be
        error = _refusal(raw, _signed_by(raw, kp, nested_batch(depth)))
        assert error["code"] == 1010, error
        assert "nested deeper than" in error["data"] and str(MAX_CALL_DEPTH) in error["data"]
    # one level less is a valid extrinsic, included and executed
    xt = _signed_by(raw, kp, nested_batch(MAX_CALL_DEPTH - 1))
    tx_hash = raw.call("author_submitExtrinsic", ["0x" + xt.hex()])
    assert isinstance(tx_hash, str)
    assert raw.call("system_accountNextIndex", [kp.ss58_address]) == 1


def test_the_number_of_calls_is_limited_during_decoding(raw: RawClient) -> None:
    error = _refusal(raw, _signed_by(raw, ALICE, remark_batch(MAX_DECODED_CALLS)))
    assert error["code"] == 1010 and f"more than {MAX_DECODED_CALLS}" in error["data"]
    ok = _signed_by(raw, ALICE, remark_batch(1000))
    assert isinstance(raw.call("author_submitExtrinsic", ["0x" + ok.hex()]), str)


def test_fee_queries_and_runtime_calls_are_bounded_too(raw: RawClient) -> None:
    deep = unsigned(nested_batch(500))
    error = _refusal(raw, deep, "payment_queryInfo")
    assert error["code"] == 1010 and "nested deeper than" in error["data"]
    call = nested_batch(500)
    with pytest.raises(RpcFailure) as info:
        raw.call("state_call", ["TransactionPaymentCallApi_query_call_info",
                                "0x" + (call + (100).to_bytes(4, "little")).hex()])
    assert info.value.code == 4003
    assert "nested deeper than" in info.value.error["message"]
    big = unsigned(remark_batch(2_000_000))
    assert _refusal(raw, big, "payment_queryInfo")["data"] == EXHAUSTS


def test_the_pool_is_bounded() -> None:
    from decentralml.devnode.extrinsics import Extrinsic, TransactionInvalid

    def tx(signer: bytes, nonce: int, size: int = 100) -> PoolTx:
        raw = bytes([nonce % 256]) * size + signer
        return PoolTx(Extrinsic(raw=raw, hash=raw[:32] + bytes([nonce]) + signer, signed=True,
                                call=None, call_bytes=b"", nonce=nonce), signer)

    pool = Pool(max_ready=3, max_ready_bytes=10_000, max_future=1, max_future_bytes=10_000)
    a, b = b"a" * 32, b"b" * 32
    for n in range(3):
        pool.add(tx(a, n), 0)
    with pytest.raises(TransactionInvalid) as info:
        pool.add(tx(a, 3), 0)
    assert info.value.code == 1016
    pool.add(tx(b, 5), 0)  # a future
    with pytest.raises(TransactionInvalid):
        pool.add(tx(b, 6), 0)
    assert [t.xt.nonce for t in pool.take_ready(10, max_bytes=300)] == [0, 1]  # 132 B each
    assert pool.ready_bytes == len(tx(a, 2).xt.raw)
    pool.add(tx(a, 3), 2)  # room again (nonces 0 and 1 are in a block now)
    small = Pool(max_ready_bytes=150)
    with pytest.raises(TransactionInvalid):
        small.add(tx(a, 0, size=200), 0)


# -- the RPC server's limits ------------------------------------------------------------------


def _honest_round(node: DevNode, kp: Keypair) -> None:
    """What an honest client does: a transfer, its receipt, and queries; all must answer."""
    client = Client(node.url)
    try:
        before = client.free(kp)
        r = client.submit(ALICE, "Balances", "transfer_keep_alive",
                          {"dest": kp.ss58_address, "value": UNIT})
        assert r.is_success, r.error_message
        assert client.free(kp) == before + UNIT
        assert client.block_number() >= 1
    finally:
        client.close()


def test_slow_readers_are_dropped_while_an_honest_client_keeps_working() -> None:
    limits = RpcLimits(max_response_bytes=256 * KIB, max_buffer_per_connection=512 * KIB,
                       max_buffer_total=2048 * KIB)
    with DevNode(limits=limits) as node:
        assert node.server is not None
        kp = Keypair.create_from_mnemonic(Keypair.generate_mnemonic())
        readers = [SlowReader(node.url) for _ in range(12)]
        for r in readers:
            r.request("chain_subscribeNewHeads")
            r.request("state_subscribeStorage")  # every change of every block
        failures: list[BaseException] = []

        def honest_rounds() -> None:
            try:
                for _ in range(3):
                    _honest_round(node, kp)
            except BaseException as exc:  # reported by the test thread
                failures.append(exc)

        honest = threading.Thread(target=honest_rounds)
        honest.start()
        for r in readers:  # and ask for responses they will not read (~10 MB each)
            for _ in range(200):
                r.request("state_getMetadata")
        honest.join(240)
        assert not honest.is_alive() and failures == []
        _honest_round(node, kp)
        # a backlogged reader's requests are not even read; what still grows its buffer is its
        # subscriptions: blocks until every reader is over a bound and dropped
        client = Client(node.url)
        try:
            for _ in range(40):
                if node.server.dropped_slow == len(readers):
                    break
                client.new_blocks(250)
        finally:
            client.close()
        assert node.server.dropped_slow == len(readers)
        assert all(r.disconnected() for r in readers)
        for r in readers:
            r.close()
        # every slow reader's subscriptions went with its connection
        _wait_for(lambda: node.server.api.live_subscriptions() == 0)  # type: ignore[union-attr]


def test_the_number_of_connections_is_bounded() -> None:
    with DevNode(limits=RpcLimits(max_connections=3)) as node:
        assert node.server is not None
        held = [RawClient(node.url) for _ in range(3)]
        with pytest.raises((InvalidHandshake, InvalidStatus, ConnectionClosed, OSError,
                            EOFError)):
            RawClient(node.url, timeout=10).call("system_health")
        assert node.server.refused >= 1
        held.pop().close()
        _wait_for(lambda: len(node.server.connections) == 2)  # type: ignore[union-attr]
        extra = RawClient(node.url)  # the slot is free again
        assert extra.call("system_health")["peers"] == 0
        for c in [*held, extra]:
            c.close()


def test_subscriptions_per_connection_are_bounded() -> None:
    with DevNode(limits=RpcLimits(max_subscriptions_per_connection=3)) as node:
        c = RawClient(node.url)
        subs = [c.call("chain_subscribeNewHeads") for _ in range(3)]
        with pytest.raises(RpcFailure) as info:
            c.call("state_subscribeStorage", [[]])
        assert info.value.error == {"code": -32006,
                                    "message": "Too many subscriptions on the connection",
                                    "data": "Exceeded max limit of 3"}
        # a watched submission is refused before anything is submitted
        with pytest.raises(RpcFailure) as watch:
            c.call("author_submitAndWatchExtrinsic", ["0x00"])
        assert watch.value.code == -32006
        assert c.call("chain_unsubscribeNewHeads", [subs[0]]) is True
        assert isinstance(c.call("chain_subscribeFinalizedHeads"), str)
        c.close()


def test_a_socket_that_never_completes_its_handshake_is_closed() -> None:
    with DevNode(limits=RpcLimits(handshake_timeout=0.5)) as node:
        host, port = node.host, node.port
        sock = socket.create_connection((host, port))
        sock.settimeout(60)
        assert sock.recv(1) == b""  # closed by the node, not by this client
        sock.close()


def test_partly_sent_requests_are_bounded_over_all_connections() -> None:
    limits = RpcLimits(max_request_bytes=1024 * KIB, max_inbound_total=1536 * KIB)
    with DevNode(limits=limits) as node:
        assert node.server is not None
        uploads = [SlowReader(node.url) for _ in range(3)]
        for u in uploads:  # a 1000 KiB frame header, then 900 KiB of it, never the rest
            header = b"\x81\xff" + (1000 * KIB).to_bytes(8, "big") + b"\x00" * 4  # masked
            # one of them is disconnected while sending: the bound at work
            with contextlib.suppress(OSError):
                u.sock.sendall(header + b"x" * (900 * KIB))
        _wait_for(lambda: node.server.dropped_inbound >= 1)  # type: ignore[union-attr]
        # read from this thread while the node's may still be shedding: wait for it to settle
        _wait_for(lambda: node.server.inbound <= limits.max_inbound_total)  # type: ignore[union-attr]
        c = RawClient(node.url)
        assert c.call("system_health")["isSyncing"] is False
        c.close()
        for u in uploads:
            u.close()


def test_responses_are_bounded() -> None:
    with DevNode(limits=RpcLimits(max_response_bytes=20 * KIB,
                                  max_buffer_per_connection=20 * KIB)) as small:
        c = RawClient(small.url)
        with pytest.raises(RpcFailure) as info:
            c.call("state_getMetadata")  # ~50 KB of hex
        assert info.value.code == -32008
        with pytest.raises(RpcFailure) as batch:
            c.batch([("system_properties", [])] * 1000, chunk=1000)
        assert batch.value.code == -32011
        assert c.call("system_chain") == "decentralml-devnode"  # the connection still works
        c.close()


# -- state released ---------------------------------------------------------------------------


def test_subscription_and_connection_state_is_released(node: DevNode) -> None:
    assert node.server is not None and node.chain is not None
    api, server, chain = node.server.api, node.server, node.chain
    base_subs, base_conns = api.live_subscriptions(), set(server.connections)
    c = RawClient(node.url)
    signer = Signer.of(c)
    mine = set(server.connections) - base_conns
    assert len(mine) == 1
    conn = mine.pop()
    kp = Keypair.create_from_uri("//Ferdie")
    dest = account_id(Keypair.create_from_uri("//ReleaseDest"))
    nonce = int(c.call("system_accountNextIndex", [kp.ss58_address]))
    for k in range(50):  # a long-lived connection: watch, subscribe, unsubscribe...
        sub = c.call("author_submitAndWatchExtrinsic",
                     ["0x" + signer.sign(kp, transfer_call(dest, UNIT), nonce + k).hex()])
        heads = c.call("chain_subscribeNewHeads")
        storage = c.call("state_subscribeStorage", [[]])
        assert c.call("chain_unsubscribeNewHeads", [heads]) is True
        assert c.call("state_unsubscribeStorage", [storage]) is True
        assert isinstance(sub, str)
    c.call("system_health")  # every request above answered: every watch ended (final)
    assert chain.watchers == {}
    assert conn.subscriptions == {}
    assert api.live_subscriptions() == base_subs
    c.close()
    # a connection that goes away with live subscriptions releases them all
    d = RawClient(node.url)
    for _ in range(20):
        d.call("chain_subscribeNewHeads")
        d.call("chain_subscribeFinalizedHeads")
    assert api.live_subscriptions() == base_subs + 40
    d.close()
    _wait_for(lambda: set(server.connections) == base_conns)
    assert api.live_subscriptions() == base_subs
    assert server.backlogged == set() and server.inbound == 0


def _wait_for(condition: Any, timeout: float = 60.0) -> None:
    """Wait for the node's thread to process a disconnect (an event, not a timing)."""
    import time
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.01)


def test_remark_helper_is_a_valid_call(raw: RawClient) -> None:
    """The hand-built calls of these tests are real calls (else the refusals prove nothing)."""
    xt = _signed_by(raw, ALICE, remark())
    assert isinstance(raw.call("author_submitExtrinsic", ["0x" + xt.hex()]), str)

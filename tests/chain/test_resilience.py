"""Concurrency, nonces and dropped connections: every extrinsic lands exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from decentralml.chain.client import Client
from decentralml.chain.results import CreateTaskResult
from decentralml.chain.types import TaskType
from decentralml.errors import ConfigurationError, ConnectionFailed
from tests.chain.proxy import DropProxy

REWARD = 10**10
CID = "bafkreiexample"


def _create(client: Client, i: int) -> CreateTaskResult:
    return client.create_task(TaskType.DataAnnotator, f"task {i}", REWARD, 1, CID)


def test_fifty_concurrent_submissions_from_one_account(funded: Callable[..., Client]) -> None:
    creator = funded()
    start = creator.account_balance()
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda i: _create(creator, i), range(50)))
    assert len({r.task_id for r in results}) == 50
    assert sorted(r.nonce for r in results) == list(range(start.nonce, start.nonce + 50))
    assert len({r.extrinsic_hash for r in results}) == 50
    end = creator.account_balance()
    assert end.nonce == start.nonce + 50
    assert end.free == start.free - 50 * REWARD - sum(r.fee for r in results)
    assert sorted(t.task_id for t in creator.tasks(creator=creator.address)) == \
        sorted(r.task_id for r in results)


def test_two_clients_sharing_an_account_resync_nonces(chain_url: str,
                                                      funded: Callable[..., Client]) -> None:
    creator = funded()
    # a second, independent client (its own nonce bookkeeping) signing for the same account
    with Client(chain_url, signer=creator._signer()) as twin:
        start = creator.account_balance().nonce
        with ThreadPoolExecutor(max_workers=20) as pool:
            futures = [pool.submit(_create, creator if i % 2 else twin, i) for i in range(20)]
            results = [f.result() for f in futures]
    assert sorted(r.nonce for r in results) == list(range(start, start + 20))
    assert creator.account_balance().nonce == start + 20


def test_stale_cached_nonce_is_resynced(chain_url: str, funded: Callable[..., Client]) -> None:
    creator = funded()
    first = _create(creator, 0)  # the client now caches the next nonce
    with Client(chain_url, signer=creator._signer()) as twin:
        used = _create(twin, 1)  # ... which another client uses behind its back
    assert used.nonce == first.nonce + 1
    resyncs = creator._submitter.nonces.resyncs
    again = _create(creator, 2)  # refused as outdated -> resync -> re-signed, lands
    assert again.nonce == first.nonce + 2
    assert creator._submitter.nonces.resyncs == resyncs + 1


@pytest.fixture
def proxy(chain_url: str) -> Iterator[DropProxy]:
    p = DropProxy(chain_url)
    yield p
    p.close()


def _exactly_once(client: Client, before_nonce: int, before_next: int,
                  result: CreateTaskResult) -> None:
    assert client.account_balance().nonce == before_nonce + 1
    assert client.next_task_id() >= before_next + 1
    assert result.nonce == before_nonce
    mine = client.tasks(creator=client.address)
    assert [t.task_id for t in mine] == [result.task_id]


def test_reconnect_in_the_middle_of_a_watch(proxy: DropProxy,
                                            funded: Callable[..., Client]) -> None:
    keypair = funded()._signer()
    with Client(proxy.url, signer=keypair, timeout=60) as client:
        nonce, next_id = client.account_balance().nonce, client.next_task_id()
        # the submission goes through; the first poll for its inclusion loses the connection
        fired = proxy.cut_at_next_after("author_submitExtrinsic")
        result = _create(client, 0)
        assert fired.is_set()
        assert client.reconnects >= 1
        _exactly_once(client, nonce, next_id, result)
        assert len(client._submitter.sent) == 1


def test_connection_lost_after_sending_is_not_resent_blindly(
        proxy: DropProxy, funded: Callable[..., Client]) -> None:
    keypair = funded()._signer()
    with Client(proxy.url, signer=keypair, timeout=60) as client:
        nonce, next_id = client.account_balance().nonce, client.next_task_id()
        # the node gets the extrinsic, but its answer never reaches the client
        fired = proxy.cut_after("author_submitExtrinsic")
        result = _create(client, 1)
        assert fired.is_set()
        assert client.reconnects >= 1
        _exactly_once(client, nonce, next_id, result)


def test_reads_survive_a_dropped_connection(proxy: DropProxy,
                                            funded: Callable[..., Client]) -> None:
    with Client(proxy.url, timeout=30) as client:
        head = client.block_number()
        proxy.drop_all()
        assert client.block_number() >= head
        proxy.drop_all()
        assert client.tasks(creator=funded().address) == []
        assert client.reconnects >= 2


def test_unreachable_node_is_a_connection_error() -> None:
    with pytest.raises(ConnectionFailed, match="cannot reach"):
        Client("ws://127.0.0.1:9", request_timeout=2)


def test_dev_accounts_refused_on_live_chains(alice: Client) -> None:
    assert alice.chain_type in ("Development", "Local")
    view = alice.with_signer("//Bob")
    assert view.address == view.resolve_address("//Bob")
    real_type = alice._conn._chain_type
    alice._conn._chain_type = "Live"
    try:
        with pytest.raises(ConfigurationError, match="allow_dev_accounts"):
            alice.with_signer("//Bob")
        alice.allow_dev_accounts = True
        assert alice.with_signer("//Bob").address == view.address
    finally:
        alice.allow_dev_accounts = False
        alice._conn._chain_type = real_type


def test_inclusion_wait_times_out(alice: Client) -> None:
    import time

    from decentralml.errors import ChainTimeout

    tracker = alice._submitter.tracker
    with pytest.raises(ChainTimeout, match="look it up by hash"):
        tracker.wait("0x" + "00" * 32, alice.block_number(), time.monotonic() + 0.3)


def test_several_urls_fail_over_to_the_next_node_without_resending(
        chain_url: str, funded: Callable[..., Client]) -> None:
    first, second = DropProxy(chain_url), DropProxy(chain_url)
    try:
        keypair = funded()._signer()
        with Client(f"{first.url},{second.url}", signer=keypair, timeout=60) as client:
            assert client.url == first.url
            nonce, next_id = client.account_balance().nonce, client.next_task_id()
            # the first node takes the extrinsic and its connection dies before it answers
            fired = first.cut_after("author_submitExtrinsic")
            result = _create(client, 2)
            assert fired.is_set()
            assert client.url == second.url
            _exactly_once(client, nonce, next_id, result)
            first.close()  # really on the second node now: the first is gone for good
            assert client.block_number() >= result.block_number
    finally:
        first.close()
        second.close()


def test_a_dead_first_url_is_skipped(chain_url: str) -> None:
    with Client(f"ws://127.0.0.1:9,{chain_url}", request_timeout=5) as client:
        assert client.url == chain_url
        assert client.block_number() >= 0
    with pytest.raises(ConnectionFailed, match=r"any of the nodes ws://127\.0\.0\.1:9, ws://127\.0\.0\.1:1"):
        Client("ws://127.0.0.1:9,ws://127.0.0.1:1", request_timeout=2)


def test_wait_finalized_returns_the_receipt_once_final(funded: Callable[..., Client]) -> None:
    client = funded()
    receipt = _create(client, 3)
    assert client.wait_finalized(receipt, timeout=60) == receipt
    assert client.finalized_number() >= receipt.block_number

"""Clients for the chain tests: Alice as the faucet, and fresh funded accounts per test.

Every test works with brand-new accounts funded by //Alice, so tests neither depend on nor
disturb each other's balances. ``alice`` (and so every test using ``funded``) runs once per chain
of ``chain_url`` (tests/fixtures/chains.py): the devnode and the Rust runtime under Chopsticks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from substrateinterface import Keypair

from decentralml.chain.client import Client

UNIT = 10**12
FUNDING = 1_000 * UNIT


@pytest.fixture(scope="module")
def alice(chain_url: str) -> Iterator[Client]:
    with Client(chain_url, signer="//Alice", timeout=60) as client:
        yield client


@pytest.fixture
def funded(alice: Client) -> Callable[..., Client]:
    """``funded()`` -> a client for a fresh account holding ``FUNDING`` (or ``amount``)."""
    def make(amount: int = FUNDING) -> Client:
        keypair = Keypair.create_from_mnemonic(Keypair.generate_mnemonic())
        alice.transfer(keypair.ss58_address, amount)
        return alice.with_signer(keypair)
    return make


def advance_past(client: Client, block: int) -> None:
    """Make sure the best block is at least ``block``: on an instant-seal dev chain blocks only
    come with extrinsics, so send remarks until then (on a timed chain this just waits)."""
    while client.block_number() < block:
        client.submit_call("System", "remark", {"remark": b"tick"})


def raw_task(client: Client, **overrides: Any) -> dict[str, Any]:
    """Valid ``create_task`` call params, with ``overrides`` (for reaching the pallet's checks)."""
    params: dict[str, Any] = {
        "task_type": "DataAnnotator", "question": b"label these", "reward": 10**10,
        "max_assignments": 2, "validation_strategy": "ManualAccept",
        "assets_cid": b"bafkreigh2akiscaildc", "assets_storage": "Ipfs",
        "expiration_block": client.block_number() + 1000,
    }
    params.update(overrides)
    return params


def raw_peer_job(**overrides: Any) -> dict[str, Any]:
    """Valid ``create_peer_job`` call params, with ``overrides``."""
    params: dict[str, Any] = {"assets_cid": b"bafkreipeerjob", "assets_storage": "Ipfs",
                              "rounds": 3, "update_blocks": 1000, "aggregate_blocks": 1000,
                              "max_peers": 4}
    params.update(overrides)
    return params

"""A four-validator network of ``decentralml-node`` on loopback, under faults (the node tier).

The ``local`` chain: //Alice, //Bob, //Charlie and //Dave author in turn (Aura, one-second
slots) and GRANDPA finalizes with a two-thirds supermajority, that is three of the four. So:
one validator down, blocks and finality go on; two down, blocks go on (the remaining authors keep
their slots) but finality stalls until one comes back; and what was finalized before stays
finalized. The validators are killed with SIGKILL (no shutdown).

Runs in ``make test-network`` (and in ``make test`` when the node is built); see
tests/fixtures/chains.py.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from substrateinterface import Keypair

from decentralml.chain.client import Client
from decentralml.chain.connection import extrinsic_hash_of
from decentralml.chain.errors import FinalityStalled
from decentralml.chain.substrate_node import LocalNetwork, NodeProcess
from decentralml.chain.types import SubmissionStatus, TaskStatus
from decentralml.cli.demo import load_demo
from tests.fixtures.chains import node_binary, require_node_tier

UNIT = 10**12
REPO = Path(__file__).resolve().parents[2]

#: one network for the whole module, in one xdist worker (`make test` uses --dist loadgroup)
GROUP = "decentralml-network"
pytestmark = pytest.mark.xdist_group(GROUP)


def _require_one_worker(request: pytest.FixtureRequest) -> None:
    """Under xdist, fail unless this module's tests all run in this worker: otherwise every
    worker starts its own four validators, and a 2-core machine starves (pytest 9.2 with
    pytest-xdist 3.8 dropped the xdist_group mark without a word, pytest-xdist#1386)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    ours = [item.nodeid for item in request.session.items if item.path == request.path]
    if not all(nodeid.endswith(f"@{GROUP}") for nodeid in ours):
        pytest.fail(f"the network tests are not grouped on one xdist worker: run them with "
                    f"--dist loadgroup, under a pytest/pytest-xdist pair that honours xdist_group "
                    f"(pyproject.toml: pytest < 9.2); e.g. {ours[0]}")


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
            ) -> Iterator[LocalNetwork]:
    require_node_tier()
    _require_one_worker(request)
    with LocalNetwork(tmp_path_factory.mktemp("network"), binary=node_binary()) as net:
        yield net


def _advance(node: NodeProcess, blocks: int, timeout: float = 60.0) -> int:
    """Wait until ``node``'s best block is ``blocks`` past where it is now; the new best."""
    target = node.best_number() + blocks
    deadline = time.monotonic() + timeout
    while (best := node.best_number()) < target:
        assert time.monotonic() < deadline, f"{node.url} stuck at #{best}: {node.log_tail()}"
        time.sleep(0.25)
    return best


def _block_hash(node: NodeProcess, number: int) -> str:
    return str(node.rpc("chain_getBlockHash", [number]))


def test_a_transaction_sent_to_node_1_is_finalized_and_identical_on_node_3(
        network: LocalNetwork) -> None:
    first, third = network.nodes[0], network.nodes[2]
    recipient = Keypair.create_from_mnemonic(Keypair.generate_mnemonic()).ss58_address
    with Client(first.url, signer="//Alice", timeout=60) as alice:
        receipt = alice.transfer(recipient, 7 * UNIT)
        assert alice.wait_finalized(receipt, timeout=60) == receipt
        network.wait_finalized(receipt.block_number, timeout=60)
        # the same block (hash) at that height on node 3, holding the same extrinsic bytes
        assert _block_hash(third, receipt.block_number) == receipt.block_hash
        block_1 = first.rpc("chain_getBlock", [receipt.block_hash])["block"]
        block_3 = third.rpc("chain_getBlock", [receipt.block_hash])["block"]
        assert block_3 == block_1
        xt = block_3["extrinsics"][receipt.extrinsic_index]
        assert xt == block_1["extrinsics"][receipt.extrinsic_index]
    # and node 3's state has the transfer
    with Client(third.url, timeout=60) as reader:
        assert reader.balance(recipient) == 7 * UNIT


@pytest.mark.tf
@pytest.mark.timeout(1200)
def test_a_federated_job_with_the_creator_and_each_contributor_on_its_own_validator(
        network: LocalNetwork, tmp_path: Path) -> None:
    """One round of the federated example across the network: the creator (//Alice, through the
    roles) talks to validator 1 only, each contributor's worker CLI process to its own validator
    (2, 3, 4) only; the task, the three results and the payouts travel between validators by
    gossip and block import, and every balance reconciles to the unit on the creator's node."""
    creator_node, *contributor_nodes = network.nodes
    demo = load_demo()
    assert demo is not None, "examples/federated_mnist is missing"
    report = demo.run_demo(tmp_path, rounds=1, node_url=creator_node.url,
                           contributor_nodes=[n.url for n in contributor_nodes],
                           log=lambda *_: None)
    assert [(r["accepted"], r["rejected"]) for r in report.rounds] == [(3, 0)]
    assert report.rewards_paid == report.rounds[0]["paid"] == 3 * 10 * UNIT
    assert report.escrow_refunded == 0
    assert report.fees_paid > 0
    assert report.balances_ok, "balances do not reconcile to the unit across the network"
    assert report.federated_accuracy > 0.2  # well above chance (0.1) after one round
    # the last validator's view agrees: the task closed, each contributor's result accepted
    task_id = int(report.rounds[0]["task_id"])
    with Client(contributor_nodes[-1].url, timeout=60) as reader:
        reader.wait_for(lambda c: c.task(task_id).status == TaskStatus.Closed, timeout=60,
                        description=f"task {task_id} closed on {reader.url}")
        accepted = {reader.resolve_address(run.account): run.submission_id
                    for run in report.contributors}
        for address, submission_id in accepted.items():
            submission = reader.submission(submission_id)
            assert (submission.worker, submission.status) == \
                (address, SubmissionStatus.Accepted)


def test_one_validator_killed_blocks_and_finality_go_on_and_it_resyncs(
        network: LocalNetwork) -> None:
    alive, victim = network.nodes[0], network.nodes[3]
    recipient = Keypair.create_from_mnemonic(Keypair.generate_mnemonic()).ss58_address
    # a client of the victim's node, with node 1 as its fallback
    with Client(f"{victim.url},{alive.url}", signer="//Bob", timeout=60) as bob:
        assert bob.url == victim.url
        victim.kill()
        try:
            finalized = alive.finalized_number()
            receipt = bob.transfer(recipient, 5 * UNIT)
            assert bob.url == alive.url
            bob.wait_finalized(receipt, timeout=60)
            assert bob.balance(recipient) == 5 * UNIT  # once, not twice
            _advance(alive, 4)
            network.wait_finalized(finalized + 4, timeout=60, nodes=network.nodes[:3])
        finally:
            victim.start()
    head = alive.best_number()
    deadline = time.monotonic() + 90
    while victim.best_number() < head:
        assert time.monotonic() < deadline, f"the restarted node did not sync: {victim.log_tail()}"
        time.sleep(0.5)
    network.wait_finalized(alive.finalized_number(), timeout=60, nodes=[victim])


def test_two_validators_killed_finality_stalls_then_resumes_keeping_what_was_final(
        network: LocalNetwork) -> None:
    alice_node = network.nodes[0]
    recipient = Keypair.create_from_mnemonic(Keypair.generate_mnemonic()).ss58_address
    with Client(alice_node.url, signer="//Alice", timeout=60) as alice:
        receipt = alice.transfer(recipient, 3 * UNIT)
    network.wait_finalized(receipt.block_number, timeout=60)
    final_hash = _block_hash(alice_node, receipt.block_number)

    down = network.nodes[2:]
    for node in down:
        node.kill()
    with Client(alice_node.url, signer="//Alice", timeout=60) as alice:
        try:
            # votes already on the wire may still finalize a block or two: let them land first
            _advance(alice_node, 3)
            stalled_at = alice_node.finalized_number()
            late = alice.transfer(recipient, 2 * UNIT)
            with pytest.raises(FinalityStalled) as stalled:
                alice.wait_finalized(late, timeout=8)
            assert stalled.value.finalized_number == stalled_at
            assert "two thirds of the validators" in str(stalled.value)
            best = _advance(alice_node, 3)
            assert alice_node.finalized_number() == stalled_at, "finalized without a supermajority"
            assert best > stalled_at + 5, "blocks stopped too"
        finally:
            for node in down:
                node.start()
        network.wait_finalized(best, timeout=120)
        assert alice.wait_finalized(late, timeout=60) == late
    for node in network.nodes:
        assert _block_hash(node, receipt.block_number) == final_hash


def _blocks_holding(node: NodeProcess, extrinsic_hashes: list[str], since: int
                    ) -> tuple[int, str] | None:
    """The first block after ``since`` on ``node``'s best chain holding one of the hashes."""
    for number in range(since + 1, node.best_number() + 1):
        block_hash = _block_hash(node, number)
        body = node.rpc("chain_getBlock", [block_hash])["block"]
        if any(extrinsic_hash_of(x) in extrinsic_hashes for x in body["extrinsics"]):
            return number, block_hash
    return None


def test_with_finality_a_receipt_never_names_a_retracted_block(network: LocalNetwork) -> None:
    """A real fork: //Dave's validator is cut off from the others (restarted as a reserved-only
    node with no reserved peers, authoring alone) while a client that waits for finality sends a
    transfer through it (validator 1 as its fallback). The transfer lands in a block of Dave's
    fork; Dave rejoins (a restart, so the client fails over) and that block is retracted (the
    others' chain is longer and finalized). The client's receipt is not that block but the
    finalized one the transfer landed in afterwards, and it ran once. (Through Dave alone it can
    end in BlockRetracted instead: a restarted node may refuse the identical bytes for a while,
    having banned them as included in its fork block.)"""
    alice_node, dave = network.nodes[0], network.nodes[3]
    recipient = Keypair.create_from_mnemonic(Keypair.generate_mnemonic()).ss58_address
    joined = (dave.config.bootnodes, dave.config.extra_args)
    outcome: dict[str, Any] = {}
    dave.kill()
    dave.config.bootnodes, dave.config.extra_args = (), ("--reserved-only", "--force-authoring")
    try:
        dave.start()
        fork_base = dave.best_number()
        with Client(f"{dave.url},{alice_node.url}", signer="//Eve", timeout=240,
                    request_timeout=120, finality=True) as eve:
            def send() -> None:
                try:
                    outcome["receipt"] = eve.transfer(recipient, 4 * UNIT)
                except Exception as exc:  # handed to the test thread
                    outcome["error"] = exc
            sender = threading.Thread(target=send)
            sender.start()
            deadline = time.monotonic() + 60
            while (seen := _blocks_holding(dave, eve._submitter.sent, fork_base)) is None:
                assert time.monotonic() < deadline, f"Dave's fork never held it: {dave.log_tail()}"
                time.sleep(0.5)
            seen_number, seen_hash = seen
            assert _block_hash(alice_node, seen_number) != seen_hash, "not a fork"
            assert sender.is_alive(), "a receipt before finality"
            dave.kill()  # rejoin: the same validator, its bootnodes back
            dave.config.bootnodes, dave.config.extra_args = joined
            dave.start()
            sender.join(timeout=300)
            assert not sender.is_alive(), "the client never settled"
    finally:
        if dave.config.bootnodes != joined[0]:
            dave.kill()
            dave.config.bootnodes, dave.config.extra_args = joined
        if not dave.running:
            dave.start()
    assert "error" not in outcome, outcome.get("error")
    receipt = outcome["receipt"]
    assert receipt.block_hash != seen_hash  # never the retracted block
    assert _block_hash(alice_node, seen_number) != seen_hash  # which the chain does not hold
    network.wait_finalized(receipt.block_number, timeout=120)
    for node in network.nodes:
        assert _block_hash(node, receipt.block_number) == receipt.block_hash
    with Client(alice_node.url, timeout=60) as reader:
        assert reader.balance(recipient) == 4 * UNIT  # once


def test_the_network_runs_the_runtime_of_this_checkout(network: LocalNetwork) -> None:
    source = (REPO / "runtime" / "src" / "lib.rs").read_text(encoding="utf-8")
    spec_version = re.search(r"^\s*spec_version: (\d+),", source, flags=re.M)
    assert spec_version, "no spec_version in runtime/src/lib.rs"
    version = network.nodes[1].rpc("state_getRuntimeVersion")
    assert (version["specName"], version["specVersion"]) == \
        ("decentralml", int(spec_version.group(1))), "a stale node: rebuild it (`make node`)"
    assert Path(network.nodes[1].log_path).is_file()

"""Fee parity: the devnode charges what the runtime charges for the same DecentralML calls and
Balances transfers.

The runtime's weights come from its FRAME benchmarks (pallets/decentralml/src/weights.rs) and
the devnode's from the table generated out of that file
(decentralml/devnode/pallets/decentralml_weights.py). The same calls, with arguments of the same
sizes, signed by fresh accounts with the same nonces (so the extrinsics have the same length),
go to both chains and every ``TransactionPayment.TransactionFeePaid`` is compared, including a
failing call (charged its declared weight) and ``close_task``'s refund down to the entries it
visited. A generated table that is stale against weights.rs fails too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from substrateinterface import Keypair

from decentralml.chain.client import Client
from decentralml.chain.runtime_node import RuntimeNode
from decentralml.devnode import DevNode, weightgen
from decentralml.errors import DispatchError
from tests.fixtures.chains import chains_under_test

UNIT = 10**12


def test_the_devnode_table_is_generated_from_weights_rs() -> None:
    assert weightgen.main(["--check"]) == 0, "run python -m decentralml.devnode.weightgen"


def _fees(url: str) -> list[tuple[str, int]]:
    """The fee of each step of a scenario touching every call, in order."""
    fees: list[tuple[str, int]] = []
    with Client(url, signer="//Alice", timeout=120) as alice:
        creator, w1, w2 = (Keypair.create_from_mnemonic(Keypair.generate_mnemonic())
                           for _ in range(3))
        for who in (creator, w1, w2):
            alice.transfer(who.ss58_address, 1_000 * UNIT)
        c, a, b = (alice.with_signer(k) for k in (creator, w1, w2))
        expiry = c.block_number() + 10_000

        def step(name: str, client: Client, function: str, params: dict[str, object]) -> None:
            fees.append((name, client.submit_call("DecentralML", function, params).fee))

        task = {"task_type": "ModelContributor", "question": b"q" * 300, "reward": 10**10,
                "max_assignments": 3, "validation_strategy": "ManualAccept",
                "assets_cid": b"bafy" + b"c" * 55, "assets_storage": "Ipfs",
                "expiration_block": expiry}
        step("create_task", c, "create_task", task)
        task_id = c.next_task_id() - 1
        sub_a = c.next_submission_id()
        step("accept_task", a, "accept_task", {"task_id": task_id})
        sub_b = c.next_submission_id()
        step("accept_task (2nd worker)", b, "accept_task", {"task_id": task_id})
        step("send_task_result", a, "send_task_result",
             {"submission_id": sub_a, "result": b"r" * 700, "result_cid": b"bafy" + b"r" * 40,
              "result_storage": "Ipfs"})
        step("validate_task_result", c, "validate_task_result",
             {"submission_id": sub_a, "accept": True})
        # a failing call pays for its declared weight: closing with nothing to close on a task
        # that is not the sender's
        with pytest.raises(DispatchError) as failed:
            a.submit_call("DecentralML", "close_task", {"task_id": task_id})
        assert failed.value.fee is not None
        fees.append(("close_task (NotTaskCreator)", failed.value.fee))
        step("abandon_task", b, "abandon_task", {"submission_id": sub_b})
        sub_c = c.next_submission_id()
        step("accept_task (again)", b, "accept_task", {"task_id": task_id})
        assert sub_c > sub_b
        step("close_task (2 entries visited)", c, "close_task", {"task_id": task_id})
        # protocol 2: terms, shards, a settlement, and a peer job through both phases
        terms = {"shards": 2, "payout": "ByContribution", "floor": 10**9,
                 "holdout_commitment": b"h" * 32, "scoring_commitment": None}
        step("create_task_with_terms", c, "create_task_with_terms", {**task, "max_assignments": 2,
                                                                     "terms": terms})
        task_id = c.next_task_id() - 1
        subs = []
        for name, worker in (("accept_task (shard 0)", a), ("accept_task (shard 1)", b)):
            subs.append(c.next_submission_id())
            step(name, worker, "accept_task", {"task_id": task_id})
            step("send_task_result", worker, "send_task_result",
                 {"submission_id": subs[-1], "result": b"r" * 100, "result_cid": None,
                  "result_storage": None})
        step("settle_contributions", c, "settle_contributions",
             {"task_id": task_id, "scores": [(subs[0], 700_000), (subs[1], 300_000)]})
        job_id = c.next_peer_job_id()
        step("create_peer_job", c, "create_peer_job",
             {"assets_cid": b"bafy" + b"j" * 50, "assets_storage": "Ipfs", "rounds": 2,
              "update_blocks": 3, "aggregate_blocks": 3, "max_peers": 4})
        step("join_peer_job", a, "join_peer_job", {"job_id": job_id})
        step("post_update", a, "post_update",
             {"job_id": job_id, "round": 0, "update_cid": b"bafy" + b"u" * 40})
        step("post_aggregate", a, "post_aggregate",
             {"job_id": job_id, "round": 0, "aggregate_cid": b"bafy" + b"g" * 40})
        step("leave_peer_job", a, "leave_peer_job", {"job_id": job_id})
        # Balances: the devnode states the runtime's pallet-balances weights
        fees.append(("transfer_keep_alive", a.transfer(w2.ss58_address, UNIT).fee))
        fees.append(("transfer_allow_death",
                     a.transfer(w2.ss58_address, UNIT, keep_alive=False).fee))
    return fees


@pytest.fixture(scope="module")
def runtime_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if "runtime" not in chains_under_test():
        pytest.skip("the runtime is excluded from this run; fee parity needs it")
    runtime: RuntimeNode = request.getfixturevalue("runtime_node")
    yield runtime.url


def test_the_same_calls_pay_the_same_fees(devnode: DevNode, runtime_url: str) -> None:
    on_devnode = _fees(devnode.url)
    on_runtime = _fees(runtime_url)
    assert [name for name, _ in on_devnode] == [name for name, _ in on_runtime]
    assert all(fee > 0 for _, fee in on_runtime)
    mismatches = [(name, dev, rt) for (name, dev), (_, rt) in zip(on_devnode, on_runtime,
                                                                  strict=True) if dev != rt]
    assert not mismatches, "\n".join(f"{n}: devnode {d} runtime {r}" for n, d, r in mismatches)

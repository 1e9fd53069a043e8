"""Protocol 2 on the devnode, through unmodified substrate-interface: what an independent client
sees in the metadata (calls, events, constants, storage shapes) and how the new storage keys are
laid out (docs/protocol.md), so a client that never heard of decentralml can decode and list them.
"""

from __future__ import annotations

import pytest
from substrateinterface import Keypair

from decentralml.devnode.hashing import blake2_128, twox_128
from tests.devnode.helpers import UNIT, Client, error_name, event

pytestmark = pytest.mark.timeout(120)

NEW_CALLS = ["create_task_with_terms", "settle_contributions", "create_peer_job",
             "join_peer_job", "leave_peer_job", "post_update", "post_aggregate"]
NEW_EVENTS = ["ShardAssigned", "ContributionsSettled", "PeerJobCreated", "PeerJoined",
              "PeerLeft", "UpdatePosted", "AggregatePosted", "RoundAgreed"]


def test_calls_and_events_keep_their_indices(client: Client) -> None:
    si = client.si
    si.init_runtime()
    pallet = si.metadata.get_metadata_pallet("DecentralML")
    calls = {c.value["name"]: c.value["index"] for c in pallet.calls}
    assert [calls[n] for n in NEW_CALLS] == list(range(6, 13))
    assert calls["abandon_task"] == 5
    events = {e.value["name"]: e.value["index"] for e in pallet.events}
    assert [events[n] for n in NEW_EVENTS] == list(range(7, 15))
    assert events["SubmissionAbandoned"] == 6
    assert si.runtime_version == 103


def test_new_constants(client: Client) -> None:
    values = {name: client.si.get_constant("DecentralML", name).value
              for name in ("MaxScore", "MaxPeers", "MaxPeerRounds")}
    assert values == {"MaxScore": 1_000_000, "MaxPeers": 64, "MaxPeerRounds": 10_000}


def test_storage_items_and_hashers(client: Client) -> None:
    items = {i["storage_name"]: i for i in client.si.get_metadata_storage_functions()
             if i["module_name"] == "DecentralML"}
    for name in ("Terms", "ShardHolders", "SubmissionShards", "Scores", "PeerJobs",
                 "NextPeerJobId", "Peers", "RoundUpdates", "RoundUpdateCount",
                 "RoundAggregates", "AggregateVotes", "AgreedModels"):
        assert name in items, name
        if items[name]["type_class"] == "Plain":
            continue
        hashers = items[name]["type_hashers"]
        assert hashers and all(h == "Blake2_128Concat" for h in hashers), (name, hashers)
    assert items["RoundUpdateCount"]["storage_modifier"] == "Default"
    assert items["AggregateVotes"]["storage_modifier"] == "Default"
    assert items["AgreedModels"]["storage_modifier"] == "Optional"


def _job(client: Client, kp: Keypair, **overrides: object) -> int:
    params = {"assets_cid": b"bafyjob", "assets_storage": "Ipfs", "rounds": 2,
              "update_blocks": 20, "aggregate_blocks": 20, "max_peers": 3}
    params.update(overrides)
    r = client.submit(kp, "DecentralML", "create_peer_job", params)
    assert r.is_success, r.error_message
    return int(event(r, "DecentralML", "PeerJobCreated")["job_id"])


def test_round_keys_are_the_scale_tuple_then_the_account(client: Client) -> None:
    """``RoundUpdates`` is keyed by ``blake2_128concat(SCALE((job, round)))`` then the peer, so
    a round's updates share one prefix and both keys are recovered from the raw key."""
    peer = client.fund(10 * UNIT)
    job = _job(client, peer)
    assert client.submit(peer, "DecentralML", "join_peer_job", {"job_id": job}).is_success
    r = client.submit(peer, "DecentralML", "post_update",
                      {"job_id": job, "round": 0, "update_cid": b"bafyupdate"})
    assert r.is_success, r.error_message
    tuple_key = job.to_bytes(4, "little") + (0).to_bytes(4, "little")
    prefix = twox_128(b"DecentralML") + twox_128(b"RoundUpdates") + blake2_128(tuple_key) \
        + tuple_key
    keys = client.si.rpc_request("state_getKeysPaged", ["0x" + prefix.hex(), 10])["result"]
    assert keys == ["0x" + (prefix + blake2_128(peer.public_key) + peer.public_key).hex()]
    listed = {k.value: v.value for k, v in client.si.query_map(
        "DecentralML", "RoundUpdates", [[job, 0]])}
    assert listed == {peer.ss58_address: "bafyupdate"}
    assert client.si.query("DecentralML", "RoundUpdateCount", [[job, 0]]).value == 1
    assert client.si.query("DecentralML", "RoundUpdateCount", [[job, 1]]).value == 0


def test_settle_raw_call_decodes_and_pays(client: Client) -> None:
    creator, worker = client.fund(100 * UNIT), client.fund(10 * UNIT)
    terms = {"shards": 1, "payout": "ByContribution", "floor": 0,
             "holdout_commitment": "0x" + "11" * 32, "scoring_commitment": None}
    params = {"task_type": "ModelContributor", "question": b"q", "reward": UNIT,
              "max_assignments": 1, "validation_strategy": "ManualAccept",
              "assets_cid": b"bafy", "assets_storage": "Ipfs",
              "expiration_block": client.block_number() + 100, "terms": terms}
    r = client.submit(creator, "DecentralML", "create_task_with_terms", params)
    assert r.is_success, r.error_message
    task_id = event(r, "DecentralML", "TaskCreated")["task_id"]
    stored = client.si.query("DecentralML", "Terms", [task_id]).value
    assert stored == {**terms, "holdout_commitment": "0x" + "11" * 32}
    r = client.submit(worker, "DecentralML", "accept_task", {"task_id": task_id})
    sid = event(r, "DecentralML", "TaskAccepted")["submission_id"]
    assert event(r, "DecentralML", "ShardAssigned") == {"task_id": task_id,
                                                        "submission_id": sid, "shard": 0}
    client.submit(worker, "DecentralML", "send_task_result",
                  {"submission_id": sid, "result": b"{}", "result_cid": None,
                   "result_storage": None})
    before = client.free(worker)
    r = client.submit(creator, "DecentralML", "settle_contributions",
                      {"task_id": task_id, "scores": [(sid, 7)]})
    assert r.is_success, r.error_message
    assert event(r, "DecentralML", "ContributionsSettled") == {
        "task_id": task_id, "results": 1, "pool": UNIT, "paid": UNIT, "dust": 0}
    assert client.free(worker) == before + UNIT
    assert client.si.query("DecentralML", "Scores", [sid]).value == 7
    r = client.submit(creator, "DecentralML", "settle_contributions",
                      {"task_id": task_id, "scores": [(sid, 7)]})
    assert error_name(r) == "NotPendingOnTask"

"""Every DecentralML call's success path and every reachable error, through substrate-interface."""

from __future__ import annotations

import pytest
from substrateinterface import Keypair

from tests.devnode.helpers import UNIT, Client, error_name, escrow_address, event, events

pytestmark = pytest.mark.timeout(120)


@pytest.fixture()
def creator(client: Client) -> Keypair:
    return client.fund(10_000 * UNIT)


@pytest.fixture()
def worker(client: Client) -> Keypair:
    return client.fund(100 * UNIT)


def _task(client: Client, creator: Keypair, **kw: object) -> int:
    r = client.create_task(creator, **kw)
    assert r.is_success, r.error_message
    return int(event(r, "DecentralML", "TaskCreated")["task_id"])


def _accept(client: Client, worker: Keypair, task_id: int) -> int:
    r = client.submit(worker, "DecentralML", "accept_task", {"task_id": task_id})
    assert r.is_success, r.error_message
    return int(event(r, "DecentralML", "TaskAccepted")["submission_id"])


def _send(client: Client, worker: Keypair, sid: int, **kw: object) -> object:
    params = {"submission_id": sid, "result": b'{"num_examples": 450}', "result_cid": None,
              "result_storage": None}
    params.update(kw)
    return client.submit(worker, "DecentralML", "send_task_result", params)


# -- create_task -----------------------------------------------------------------------------


def test_create_task_funds_escrow_and_indexes_the_task(client: Client, creator: Keypair) -> None:
    before = client.free(creator)
    r = client.create_task(creator, reward=3 * UNIT, max_assignments=4)
    assert r.is_success, r.error_message
    created = event(r, "DecentralML", "TaskCreated")
    task_id = created["task_id"]
    assert created["creator"] == creator.ss58_address
    assert (created["reward"], created["max_assignments"], created["escrow"]) == (
        3 * UNIT, 4, 12 * UNIT)
    assert created["task_type"] == "ModelContributor"
    assert client.free(creator) == before - 12 * UNIT - r.total_fee_amount
    assert client.free(escrow_address(client.si, task_id)) == 12 * UNIT
    task = client.si.query("DecentralML", "Tasks", [task_id]).value
    assert task["status"] == "Open" and task["active_assignments"] == 0
    assert task["created_block"] == client.si.get_block_number(r.block_hash)
    assert client.si.query("DecentralML", "OpenTasks", [task_id]).value == ()
    assert client.si.query("DecentralML", "NextTaskId").value == task_id + 1


def test_escrow_account_is_frame_sub_account(client: Client) -> None:
    expected = bytes.fromhex("6d6f646c646563656e746d6c00000000") + bytes(16)
    assert escrow_address(client.si, 0) == client.si.ss58_encode(expected)


@pytest.mark.parametrize(("overrides", "error"), [
    ({"question": b""}, "InvalidQuestion"),
    ({"question": b"q" * 2049}, "InvalidQuestion"),
    ({"reward": 0}, "ZeroReward"),
    ({"reward": 10**9 - 1}, "RewardTooLow"),
    ({"max_assignments": 0}, "InvalidMaxAssignments"),
    ({"max_assignments": 65}, "InvalidMaxAssignments"),
    ({"assets_cid": b""}, "EmptyAssets"),
    ({"assets_cid": b"c" * 129}, "AssetsCidTooLong"),
    ({"expiration_block": 0}, "ExpirationInPast"),
    ({"reward": 2**127, "max_assignments": 4}, "Overflow"),
    ({"reward": 10**6 * UNIT}, "InsufficientBalance"),
])
def test_create_task_errors(client: Client, creator: Keypair, overrides: dict[str, object],
                            error: str) -> None:
    before = client.free(creator)
    r = client.create_task(creator, **overrides)
    assert error_name(r) == error
    assert r.error_message["type"] == "Module"
    # the failed call is reverted but its fee is paid
    assert client.free(creator) == before - r.total_fee_amount
    assert ("TransactionPayment", "TransactionFeePaid") in events(r)


def test_expiration_at_current_block_is_in_the_past(client: Client, creator: Keypair) -> None:
    # the call executes in block `head + 1`, so expiring there is already "not after"
    r = client.create_task(creator, expiration_block=client.block_number() + 1)
    assert error_name(r) == "ExpirationInPast"


def test_max_question_and_cid_lengths_are_accepted(client: Client, creator: Keypair) -> None:
    r = client.create_task(creator, question=b"q" * 2048, assets_cid=b"c" * 128,
                           max_assignments=64, reward=10**9)
    assert r.is_success, r.error_message


# -- accept_task -----------------------------------------------------------------------------


def test_accept_task_creates_an_assigned_submission(client: Client, creator: Keypair,
                                                    worker: Keypair) -> None:
    task_id = _task(client, creator)
    r = client.submit(worker, "DecentralML", "accept_task", {"task_id": task_id})
    assert r.is_success, r.error_message
    accepted = event(r, "DecentralML", "TaskAccepted")
    sid = accepted["submission_id"]
    assert accepted == {"task_id": task_id, "submission_id": sid, "worker": worker.ss58_address}
    sub = client.si.query("DecentralML", "Submissions", [sid]).value
    assert sub["status"] == "Assigned" and sub["worker"] == worker.ss58_address
    assert sub["result_cid"] is None and sub["submitted_block"] is None
    assert client.si.query("DecentralML", "TaskWorkers", [task_id, worker.ss58_address]).value \
        == sid
    assert client.si.query("DecentralML", "TaskSubmissions", [task_id, sid]).value == ()
    assert client.si.query("DecentralML", "WorkerSubmissions",
                           [worker.ss58_address, sid]).value == ()
    assert client.si.query("DecentralML", "Tasks", [task_id]).value["active_assignments"] == 1


def test_accept_task_errors(client: Client, creator: Keypair, worker: Keypair) -> None:
    r = client.submit(worker, "DecentralML", "accept_task", {"task_id": 4_000_000})
    assert error_name(r) == "TaskNotFound"
    task_id = _task(client, creator, max_assignments=1)
    r = client.submit(creator, "DecentralML", "accept_task", {"task_id": task_id})
    assert error_name(r) == "CreatorCannotAccept"
    _accept(client, worker, task_id)
    r = client.submit(worker, "DecentralML", "accept_task", {"task_id": task_id})
    assert error_name(r) == "AlreadyAccepted"
    other = client.fund(10 * UNIT)
    r = client.submit(other, "DecentralML", "accept_task", {"task_id": task_id})
    assert error_name(r) == "NoSlotsLeft"
    closed = _task(client, creator)
    assert client.submit(creator, "DecentralML", "close_task", {"task_id": closed}).is_success
    r = client.submit(worker, "DecentralML", "accept_task", {"task_id": closed})
    assert error_name(r) == "TaskClosed"
    expiring = _task(client, creator, expiration_block=client.block_number() + 2)
    client.new_blocks(2)
    r = client.submit(worker, "DecentralML", "accept_task", {"task_id": expiring})
    assert error_name(r) == "TaskExpired"


# -- send_task_result ------------------------------------------------------------------------


def test_send_task_result_manual_goes_pending(client: Client, creator: Keypair,
                                              worker: Keypair) -> None:
    task_id = _task(client, creator)
    sid = _accept(client, worker, task_id)
    r = _send(client, worker, sid, result_cid=b"bafyresult", result_storage="Ipfs")
    assert r.is_success, r.error_message
    assert event(r, "DecentralML", "ResultSubmitted") == {
        "task_id": task_id, "submission_id": sid, "worker": worker.ss58_address}
    assert ("DecentralML", "ResultAccepted") not in events(r)
    sub = client.si.query("DecentralML", "Submissions", [sid]).value
    assert sub["status"] == "PendingValidation"
    assert sub["result_cid"] == "bafyresult" and sub["result_storage"] == "Ipfs"
    assert sub["submitted_block"] == client.si.get_block_number(r.block_hash)
    assert sub["validated_block"] is None


def test_send_task_result_auto_accept_pays_at_once(client: Client, creator: Keypair,
                                                   worker: Keypair) -> None:
    task_id = _task(client, creator, validation_strategy="AutoAccept", reward=5 * UNIT)
    sid = _accept(client, worker, task_id)
    before = client.free(worker)
    r = _send(client, worker, sid)
    assert r.is_success, r.error_message
    names = events(r)
    assert names.index(("DecentralML", "ResultSubmitted")) < names.index(
        ("DecentralML", "ResultAccepted"))
    assert event(r, "DecentralML", "ResultAccepted")["reward"] == 5 * UNIT
    assert client.free(worker) == before + 5 * UNIT - r.total_fee_amount
    sub = client.si.query("DecentralML", "Submissions", [sid]).value
    assert sub["status"] == "Accepted" and sub["validated_block"] is not None
    task = client.si.query("DecentralML", "Tasks", [task_id]).value
    assert (task["active_assignments"], task["accepted_results"]) == (0, 1)
    assert client.free(escrow_address(client.si, task_id)) == 5 * UNIT


@pytest.mark.parametrize(("kw", "error"), [
    ({"result": b""}, "EmptyResult"),
    ({"result": b"r" * 2049}, "ResultTooLong"),
    ({"result_cid": b"", "result_storage": "Ipfs"}, "InvalidResultCid"),
    ({"result_cid": b"c" * 129, "result_storage": "Ipfs"}, "InvalidResultCid"),
    ({"result_cid": b"bafy", "result_storage": None}, "MissingStorageType"),
    ({"result_cid": None, "result_storage": "Local"}, "MissingStorageType"),
])
def test_send_task_result_argument_errors(client: Client, creator: Keypair, worker: Keypair,
                                          kw: dict[str, object], error: str) -> None:
    sid = _accept(client, worker, _task(client, creator))
    assert error_name(_send(client, worker, sid, **kw)) == error  # type: ignore[arg-type]
    assert client.si.query("DecentralML", "Submissions", [sid]).value["status"] == "Assigned"


def test_send_task_result_state_errors(client: Client, creator: Keypair,
                                       worker: Keypair) -> None:
    assert error_name(_send(client, worker, 4_000_000)) == "SubmissionNotFound"  # type: ignore
    task_id = _task(client, creator, expiration_block=client.block_number() + 3)
    sid = _accept(client, worker, task_id)
    assert error_name(_send(client, creator, sid)) == "NotSubmissionWorker"  # type: ignore
    client.new_blocks(2)
    assert error_name(_send(client, worker, sid)) == "TaskExpired"  # type: ignore
    sid2 = _accept(client, worker, _task(client, creator))
    assert _send(client, worker, sid2).is_success  # type: ignore[attr-defined]
    assert error_name(_send(client, worker, sid2)) == "InvalidStatus"  # type: ignore


# -- validate_task_result --------------------------------------------------------------------


def test_validate_accept_pays_the_worker(client: Client, creator: Keypair,
                                         worker: Keypair) -> None:
    task_id = _task(client, creator, reward=2 * UNIT)
    sid = _accept(client, worker, task_id)
    _send(client, worker, sid)
    before = client.free(worker)
    r = client.submit(creator, "DecentralML", "validate_task_result",
                      {"submission_id": sid, "accept": True})
    assert r.is_success, r.error_message
    assert event(r, "DecentralML", "ResultAccepted") == {
        "task_id": task_id, "submission_id": sid, "worker": worker.ss58_address,
        "reward": 2 * UNIT}
    assert client.free(worker) == before + 2 * UNIT
    assert client.free(escrow_address(client.si, task_id)) == 2 * UNIT
    sub = client.si.query("DecentralML", "Submissions", [sid]).value
    assert sub["status"] == "Accepted"
    assert sub["validated_block"] == client.si.get_block_number(r.block_hash)
    # an accepted worker keeps its TaskWorkers entry: it cannot take a second slot
    r = client.submit(worker, "DecentralML", "accept_task", {"task_id": task_id})
    assert error_name(r) == "AlreadyAccepted"


def test_validate_reject_reopens_the_slot(client: Client, creator: Keypair,
                                          worker: Keypair) -> None:
    task_id = _task(client, creator, max_assignments=1)
    sid = _accept(client, worker, task_id)
    _send(client, worker, sid)
    r = client.submit(creator, "DecentralML", "validate_task_result",
                      {"submission_id": sid, "accept": False})
    assert r.is_success, r.error_message
    assert event(r, "DecentralML", "ResultRejected")["submission_id"] == sid
    assert client.si.query("DecentralML", "Submissions", [sid]).value["status"] == "Rejected"
    assert client.si.query("DecentralML", "TaskWorkers",
                           [task_id, worker.ss58_address]).value is None
    assert client.si.query("DecentralML", "Tasks", [task_id]).value["active_assignments"] == 0
    assert _accept(client, worker, task_id) != sid  # the rejected worker may try again


def test_validate_errors(client: Client, creator: Keypair, worker: Keypair) -> None:
    r = client.submit(creator, "DecentralML", "validate_task_result",
                      {"submission_id": 4_000_000, "accept": True})
    assert error_name(r) == "SubmissionNotFound"
    sid = _accept(client, worker, _task(client, creator))
    r = client.submit(worker, "DecentralML", "validate_task_result",
                      {"submission_id": sid, "accept": True})
    assert error_name(r) == "NotTaskCreator"
    r = client.submit(creator, "DecentralML", "validate_task_result",
                      {"submission_id": sid, "accept": True})
    assert error_name(r) == "InvalidStatus"


def test_batch_all_validates_many_results(client: Client, creator: Keypair) -> None:
    task_id = _task(client, creator, max_assignments=3)
    workers = [client.fund(10 * UNIT) for _ in range(3)]
    sids = [_accept(client, w, task_id) for w in workers]
    for w, sid in zip(workers, sids, strict=True):
        _send(client, w, sid)
    calls = [client.call("DecentralML", "validate_task_result",
                         {"submission_id": sid, "accept": i != 1}) for i, sid in enumerate(sids)]
    r = client.submit(creator, "Utility", "batch_all", {"calls": calls})
    assert r.is_success, r.error_message
    assert [n for m, n in events(r) if m == "DecentralML"] == [
        "ResultAccepted", "ResultRejected", "ResultAccepted"]
    task = client.si.query("DecentralML", "Tasks", [task_id]).value
    assert (task["accepted_results"], task["active_assignments"]) == (2, 0)


# -- close_task ------------------------------------------------------------------------------


def test_close_task_abandons_and_refunds(client: Client, creator: Keypair) -> None:
    task_id = _task(client, creator, max_assignments=3, reward=UNIT)
    w1, w2 = client.fund(10 * UNIT), client.fund(10 * UNIT)
    s1 = _accept(client, w1, task_id)
    s2 = _accept(client, w2, task_id)
    _send(client, w1, s1)
    client.submit(creator, "DecentralML", "validate_task_result",
                  {"submission_id": s1, "accept": True})
    before = client.free(creator)
    r = client.submit(creator, "DecentralML", "close_task", {"task_id": task_id})
    assert r.is_success, r.error_message
    assert event(r, "DecentralML", "TaskClosed") == {"task_id": task_id, "refund": 2 * UNIT,
                                                     "abandoned": 1}
    assert client.free(creator) == before + 2 * UNIT - r.total_fee_amount
    assert client.si.query("System", "Account", [escrow_address(client.si, task_id)]
                           ).value["providers"] == 0  # the empty escrow is reaped
    task = client.si.query("DecentralML", "Tasks", [task_id]).value
    assert (task["status"], task["active_assignments"], task["accepted_results"]) == (
        "Closed", 0, 1)
    assert client.si.query("DecentralML", "OpenTasks", [task_id]).value is None
    assert client.si.query("DecentralML", "Submissions", [s2]).value["status"] == "Abandoned"
    assert client.si.query("DecentralML", "TaskWorkers", [task_id, w2.ss58_address]).value \
        is None
    assert client.si.query("DecentralML", "TaskWorkers", [task_id, w1.ss58_address]).value == s1


def test_close_task_errors(client: Client, creator: Keypair, worker: Keypair) -> None:
    r = client.submit(creator, "DecentralML", "close_task", {"task_id": 4_000_000})
    assert error_name(r) == "TaskNotFound"
    task_id = _task(client, creator)
    r = client.submit(worker, "DecentralML", "close_task", {"task_id": task_id})
    assert error_name(r) == "NotTaskCreator"
    sid = _accept(client, worker, task_id)
    _send(client, worker, sid)
    r = client.submit(creator, "DecentralML", "close_task", {"task_id": task_id})
    assert error_name(r) == "PendingValidations"
    client.submit(creator, "DecentralML", "validate_task_result",
                  {"submission_id": sid, "accept": False})
    assert client.submit(creator, "DecentralML", "close_task", {"task_id": task_id}).is_success
    r = client.submit(creator, "DecentralML", "close_task", {"task_id": task_id})
    assert error_name(r) == "TaskClosed"


def test_close_task_refunds_third_party_deposits(client: Client, creator: Keypair,
                                                 worker: Keypair) -> None:
    # money sent into an open task's escrow belongs to its creator: close_task refunds it all
    task_id = _task(client, creator, max_assignments=2, reward=UNIT)
    escrow = escrow_address(client.si, task_id)
    r = client.submit(worker, "Balances", "transfer_keep_alive", {"dest": escrow,
                                                                  "value": 5 * UNIT})
    assert r.is_success, r.error_message
    assert client.free(escrow) == 7 * UNIT
    sid = _accept(client, worker, task_id)
    _send(client, worker, sid)
    client.submit(creator, "DecentralML", "validate_task_result",
                  {"submission_id": sid, "accept": True})
    assert client.free(escrow) == 6 * UNIT  # rewards come out of the escrowed part only
    before = client.free(creator)
    r = client.submit(creator, "DecentralML", "close_task", {"task_id": task_id})
    assert r.is_success, r.error_message
    assert event(r, "DecentralML", "TaskClosed")["refund"] == 6 * UNIT
    assert client.free(creator) == before + 6 * UNIT - r.total_fee_amount
    assert client.free(escrow) == 0


# -- abandon_task ----------------------------------------------------------------------------


def test_abandon_task_reopens_the_slot(client: Client, creator: Keypair,
                                       worker: Keypair) -> None:
    task_id = _task(client, creator, max_assignments=1, reward=UNIT)
    sid = _accept(client, worker, task_id)
    other = client.fund(10 * UNIT)
    r = client.submit(other, "DecentralML", "accept_task", {"task_id": task_id})
    assert error_name(r) == "NoSlotsLeft"
    escrow_before = client.free(escrow_address(client.si, task_id))
    r = client.submit(worker, "DecentralML", "abandon_task", {"submission_id": sid})
    assert r.is_success, r.error_message
    assert event(r, "DecentralML", "SubmissionAbandoned") == {
        "task_id": task_id, "submission_id": sid, "worker": worker.ss58_address}
    assert client.si.query("DecentralML", "Submissions", [sid]).value["status"] == "Abandoned"
    assert client.si.query("DecentralML", "TaskWorkers", [task_id, worker.ss58_address]).value \
        is None
    task = client.si.query("DecentralML", "Tasks", [task_id]).value
    assert task["active_assignments"] == 0
    assert client.free(escrow_address(client.si, task_id)) == escrow_before  # no money moves
    # the slot is free again, and the worker itself may come back later
    assert _accept(client, other, task_id) > sid
    r = client.submit(other, "DecentralML", "abandon_task", {"submission_id": sid + 1})
    assert r.is_success, r.error_message
    assert _accept(client, worker, task_id) > sid + 1


def test_abandon_task_errors(client: Client, creator: Keypair, worker: Keypair) -> None:
    r = client.submit(worker, "DecentralML", "abandon_task", {"submission_id": 4_000_000})
    assert error_name(r) == "SubmissionNotFound"
    task_id = _task(client, creator)
    sid = _accept(client, worker, task_id)
    r = client.submit(creator, "DecentralML", "abandon_task", {"submission_id": sid})
    assert error_name(r) == "NotSubmissionWorker"
    _send(client, worker, sid)
    r = client.submit(worker, "DecentralML", "abandon_task", {"submission_id": sid})
    assert error_name(r) == "InvalidStatus"  # a sent result cannot be withdrawn
    # after close_task an assigned submission is already Abandoned
    task2 = _task(client, creator)
    sid2 = _accept(client, worker, task2)
    assert client.submit(creator, "DecentralML", "close_task", {"task_id": task2}).is_success
    r = client.submit(worker, "DecentralML", "abandon_task", {"submission_id": sid2})
    assert error_name(r) == "InvalidStatus"


def test_abandon_task_after_expiry(client: Client, creator: Keypair, worker: Keypair) -> None:
    task_id = _task(client, creator, expiration_block=client.block_number() + 3)
    sid = _accept(client, worker, task_id)
    client.new_blocks(3)
    r = client.submit(worker, "DecentralML", "abandon_task", {"submission_id": sid})
    assert r.is_success, r.error_message


def test_expired_task_can_still_be_validated_and_closed(client: Client, creator: Keypair,
                                                        worker: Keypair) -> None:
    task_id = _task(client, creator, expiration_block=client.block_number() + 4)
    sid = _accept(client, worker, task_id)
    _send(client, worker, sid)
    client.new_blocks(3)
    r = client.submit(creator, "DecentralML", "validate_task_result",
                      {"submission_id": sid, "accept": True})
    assert r.is_success, r.error_message
    assert client.submit(creator, "DecentralML", "close_task", {"task_id": task_id}).is_success


def test_metadata_lists_protocol_errors_in_order(client: Client) -> None:
    from decentralml.errors import DECENTRALML_ERRORS

    errors = client.si.get_metadata_errors()
    names = [e["error_name"] for e in errors if e["module_name"] == "DecentralML"]
    assert tuple(names) == DECENTRALML_ERRORS

"""Conformance: the full protocol of docs/protocol.md through the client, balances to the unit.

Runs once per chain (tests/fixtures/chains.py): the devnode, and the Rust runtime served by
Chopsticks (or only ``DECENTRALML_NODE_URL`` if set). Every balance check is exact: escrow in,
rewards out, refunds, and every fee as reported by ``TransactionPayment.TransactionFeePaid``.
What legitimately differs between chains (fees, weights, error texts) is read from the chain under
test, never assumed: fees from events, limits from the metadata's constants, error docs from its
error variants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from decentralml import errors
from decentralml.chain import types as protocol
from decentralml.chain.client import Client
from decentralml.chain.policies import AutoAccept, Decision, Manual, Threshold
from decentralml.chain.types import (
    PayoutMode,
    StorageType,
    Submission,
    SubmissionStatus,
    TaskStatus,
    TaskTerms,
    TaskType,
    ValidationStrategy,
)
from decentralml.errors import DECENTRALML_ERRORS, InvalidInput, PalletError
from tests.chain.conftest import advance_past, raw_peer_job, raw_task

REWARD = 5 * 10**10
CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"


def result(accuracy: float, n: int = 100) -> dict[str, Any]:
    return {"num_examples": n, "metrics": {"accuracy": accuracy}}


def limit(client: Client, name: str) -> int:
    """A protocol bound as the chain under test declares it (a metadata constant)."""
    return int(client.constant(name))


def assert_escrow(client: Client, task_id: int) -> None:
    escrow = client.escrow(task_id)
    assert escrow.balance == escrow.expected, escrow


# -- lifecycle ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task_type", list(TaskType))
def test_lifecycle_auto_accept(funded: Callable[..., Client], task_type: TaskType) -> None:
    creator, w1, w2 = funded(), funded(), funded()
    c0, w1_0, w2_0 = creator.balance(), w1.balance(), w2.balance()

    task = creator.create_task(task_type, "label the images", REWARD, 2, CID,
                               validation_strategy=ValidationStrategy.AutoAccept, expires_in=500)
    assert task.escrow == 2 * REWARD and task.fee > 0
    assert task.escrow_account == creator.escrow_address(task.task_id)
    assert creator.balance() == c0 - 2 * REWARD - task.fee
    assert creator.escrow_balance(task.task_id) == 2 * REWARD
    info = creator.task(task.task_id)
    assert (info.task_type, info.reward, info.max_assignments, info.status, info.creator) == \
        (task_type, REWARD, 2, TaskStatus.Open, creator.address)
    assert task.block_number < info.expiration_block <= task.block_number - 1 + 500

    a1 = w1.accept_task(task.task_id)
    sent = w1.send_task_result(a1.submission_id, result(0.9), result_cid="bafyresult",
                               result_storage=StorageType.Ipfs)
    assert sent.auto_accepted and sent.reward_paid == REWARD and sent.task_id == task.task_id
    assert w1.balance() == w1_0 - a1.fee - sent.fee + REWARD
    sub = w1.submission(a1.submission_id)
    assert sub.status is SubmissionStatus.Accepted
    assert sub.result_json() == result(0.9)
    assert (sub.result_cid, sub.result_storage) == ("bafyresult", StorageType.Ipfs)
    assert sub.validated_block == sent.block_number
    assert_escrow(creator, task.task_id)

    a2 = w2.accept_task(task.task_id)
    closed = creator.close_task(task.task_id)
    assert (closed.refund, closed.abandoned) == (REWARD, 1)
    assert creator.balance() == c0 - 2 * REWARD - task.fee + REWARD - closed.fee
    assert w2.balance() == w2_0 - a2.fee
    assert creator.escrow_balance(task.task_id) == 0
    assert creator.task(task.task_id).status is TaskStatus.Closed
    assert w2.submission(a2.submission_id).status is SubmissionStatus.Abandoned
    assert_escrow(creator, task.task_id)


@pytest.mark.parametrize("task_type", list(TaskType))
def test_lifecycle_manual(funded: Callable[..., Client], task_type: TaskType) -> None:
    creator = funded()
    workers = [funded() for _ in range(3)]
    c0 = creator.balance()
    before = [w.balance() for w in workers]
    task = creator.create_task(task_type, "annotate", REWARD, 3, CID,
                               validation_strategy=ValidationStrategy.ManualAccept)
    fees = [0, 0, 0]
    ids = []
    for i, w in enumerate(workers):
        acc = w.accept_task(task.task_id)
        snt = w.send_task_result(acc.submission_id, f"answer {i}")
        assert not snt.auto_accepted and snt.reward_paid == 0
        fees[i] += acc.fee + snt.fee
        ids.append(acc.submission_id)
    pending = creator.wait_for_pending(task.task_id, 3, timeout=30)
    assert [s.submission_id for s in pending] == ids

    verdicts = {ids[0]: True, ids[1]: False}
    seen: list[int] = []

    def decide(sub: Submission) -> bool | None:
        seen.append(sub.submission_id)
        return verdicts.get(sub.submission_id)

    report = creator.validate_task_result(task.task_id, policy=Manual(decide))
    assert sorted(seen) == ids
    assert (report.accepted, report.rejected, report.skipped) == ((ids[0],), (ids[1],), (ids[2],))
    assert report.paid == REWARD and report.extrinsic is not None
    assert report.decisions[ids[2]].accept is None
    assert creator.balance() == c0 - 3 * REWARD - task.fee - report.fee
    assert [w.balance() for w in workers] == [
        before[0] - fees[0] + REWARD, before[1] - fees[1], before[2] - fees[2]]
    assert_escrow(creator, task.task_id)

    # the rejected worker may try again: the slot was reopened
    retry = workers[1].accept_task(task.task_id)
    fees[1] += retry.fee
    # a pending result blocks closing
    with pytest.raises(errors.PendingValidations):
        creator.close_task(task.task_id)
    c1 = creator.balance()
    # explicit submissions, AutoAccept; non-pending ones are reported as skipped
    report2 = creator.validate_task_result(submissions=[ids[2], ids[0]], policy=AutoAccept())
    assert (report2.accepted, report2.rejected, report2.skipped) == ((ids[2],), (), (ids[0],))
    closed = creator.close_task(task.task_id)
    assert (closed.refund, closed.abandoned) == (REWARD, 1)
    assert creator.balance() == c1 - report2.fee - closed.fee + REWARD
    final = [w.balance() for w in workers]
    assert final == [before[0] - fees[0] + REWARD, before[1] - fees[1],
                     before[2] - fees[2] + REWARD]
    statuses = [s.status for s in creator.submissions(task.task_id)]
    assert statuses == [SubmissionStatus.Accepted, SubmissionStatus.Rejected,
                        SubmissionStatus.Accepted, SubmissionStatus.Abandoned]
    assert creator.escrow_balance(task.task_id) == 0


@pytest.mark.parametrize("task_type", list(TaskType))
def test_lifecycle_custom_threshold(funded: Callable[..., Client], task_type: TaskType) -> None:
    creator, good, bad = funded(), funded(), funded()
    c0, g0, b0 = creator.balance(), good.balance(), bad.balance()
    task = creator.create_task(task_type, "train", REWARD, 2, CID,
                               validation_strategy=ValidationStrategy.CustomAccept)
    ag = good.accept_task(task.task_id)
    sg = good.send_task_result(ag.submission_id, result(0.95))
    ab = bad.accept_task(task.task_id)
    sb = bad.send_task_result(ab.submission_id, result(0.42))

    policy = Threshold(lambda s: s.result_json()["metrics"]["accuracy"], 0.9)
    report = creator.validate_task_result(task.task_id, policy=policy)
    assert report.accepted == (ag.submission_id,) and report.rejected == (ab.submission_id,)
    assert report.decisions[ag.submission_id].score == pytest.approx(0.95)
    assert report.paid == REWARD
    closed = creator.close_task(task.task_id)
    assert (closed.refund, closed.abandoned) == (REWARD, 0)
    assert creator.balance() == c0 - 2 * REWARD - task.fee - report.fee + REWARD - closed.fee
    assert good.balance() == g0 - ag.fee - sg.fee + REWARD
    assert bad.balance() == b0 - ab.fee - sb.fee
    assert creator.escrow_balance(task.task_id) == 0


def _weights(client: Client, receipt: Any, pallet: str, function: str,
             params: dict[str, Any]) -> tuple[int, int]:
    """(declared, reported) ref_time of an included call: what ``query_info`` charges for before
    dispatch, and what ``ExtrinsicSuccess.dispatch_info`` reports after (FRAME reports the actual
    call weight plus the extrinsic base weight)."""
    keypair = client._signer()

    def declared(si: Any) -> Any:
        if pallet == "Utility":
            call = si.compose_call("Utility", function, {"calls": [
                si.compose_call(p, f, a).value for p, f, a in params["calls"]]})
        else:
            call = si.compose_call(pallet, function, params)
        return si.get_payment_info(call, keypair)["weight"]
    info = next(e.attributes["dispatch_info"] for e in receipt.events
                if (e.pallet, e.name) == ("System", "ExtrinsicSuccess"))
    return int(client._conn.run(declared)["ref_time"]), int(info["weight"]["ref_time"])


class FeeCheck:
    """The fee paid (``TransactionFeePaid``) is the estimate, unless the call reported a lower
    actual weight after dispatch (FRAME refunds the difference): then it is less. Which calls do
    is the runtime's business (e.g. ``close_task`` is charged for ``MaxAssignments`` workers and
    refunded down to the task's), so the check asks the chain instead of assuming.

    The extrinsic base weight (in every reported weight) is learnt from a ``System.remark``,
    whose actual weight is its declared weight on any FRAME chain.
    """

    def __init__(self, client: Client) -> None:
        estimate = client.estimate_fee("System.remark", params={"remark": b"hello"})
        remark = client.submit_call("System", "remark", {"remark": b"hello"})
        assert remark.fee == estimate
        declared, reported = _weights(client, remark, "System", "remark", {"remark": b"hello"})
        self.base = reported - declared
        assert self.base >= 0

    def check(self, client: Client, estimate: int, receipt: Any, pallet: str, function: str,
              params: dict[str, Any]) -> None:
        declared, reported = _weights(client, receipt, pallet, function, params)
        actual = reported - self.base
        assert actual <= declared, (function, actual, declared)
        if actual == declared:
            assert receipt.fee == estimate, (function, receipt.fee, estimate)
        else:
            assert 0 < receipt.fee < estimate, (function, receipt.fee, estimate)


def test_fee_estimates_match_fees_paid(funded: Callable[..., Client]) -> None:
    creator, worker = funded(), funded()
    assert_fee = FeeCheck(creator).check
    kwargs: dict[str, Any] = dict(task_type=TaskType.ModelContributor, question="q",
                                  reward=REWARD, max_assignments=1, assets_cid=CID,
                                  expiration_block=creator.block_number() + 400)
    raw_create = {"task_type": "ModelContributor", "question": b"q", "reward": REWARD,
                  "max_assignments": 1, "validation_strategy": "ManualAccept",
                  "assets_cid": CID.encode(), "assets_storage": "Ipfs",
                  "expiration_block": kwargs["expiration_block"]}
    estimate = creator.estimate_fee("create_task", **kwargs)
    task = creator.create_task(**kwargs)
    assert_fee(creator, estimate, task, "DecentralML", "create_task", raw_create)
    est = worker.estimate_fee("accept_task", task_id=task.task_id)
    acc = worker.accept_task(task.task_id)
    assert_fee(worker, est, acc, "DecentralML", "accept_task", {"task_id": task.task_id})
    est = worker.estimate_fee("send_task_result", submission_id=acc.submission_id, result="r")
    sent = worker.send_task_result(acc.submission_id, "r")
    assert_fee(worker, est, sent, "DecentralML", "send_task_result",
               {"submission_id": acc.submission_id, "result": b"r", "result_cid": None,
                "result_storage": None})
    est = creator.estimate_fee("validate_task_result", decisions={acc.submission_id: True})
    report = creator.validate_task_result(task.task_id)
    assert report.extrinsic is not None
    assert_fee(creator, est, report.extrinsic, "Utility", "batch_all", {"calls": [
        ("DecentralML", "validate_task_result",
         {"submission_id": acc.submission_id, "accept": True})]})
    est = creator.estimate_fee("close_task", task_id=task.task_id)
    closed = creator.close_task(task.task_id)
    assert_fee(creator, est, closed, "DecentralML", "close_task", {"task_id": task.task_id})
    est = worker.estimate_fee("Balances.transfer_keep_alive",
                              params={"dest": creator.address, "value": REWARD})
    sent_back = worker.transfer(str(creator.address), REWARD)
    assert_fee(worker, est, sent_back, "Balances", "transfer_keep_alive",
               {"dest": creator.address, "value": REWARD})


def test_validation_with_nothing_pending_sends_nothing(funded: Callable[..., Client]) -> None:
    creator = funded()
    task = creator.create_task(TaskType.DataAnnotator, "q", REWARD, 1, CID)
    nonce = creator.account_balance().nonce
    report = creator.validate_task_result(task.task_id, policy=AutoAccept())
    assert report.extrinsic is None and report.accepted == () and report.fee == 0
    assert creator.account_balance().nonce == nonce


def test_policy_error_sends_nothing(funded: Callable[..., Client]) -> None:
    creator, worker = funded(), funded()
    task = creator.create_task(TaskType.DataAnnotator, "q", REWARD, 1, CID)
    acc = worker.accept_task(task.task_id)
    worker.send_task_result(acc.submission_id, "x")
    nonce = creator.account_balance().nonce

    def broken(sub: Submission) -> Decision:
        raise RuntimeError("evaluation crashed")

    with pytest.raises(RuntimeError, match="evaluation crashed"):
        creator.validate_task_result(task.task_id, policy=Manual(broken))
    assert creator.account_balance().nonce == nonce
    assert creator.submission(acc.submission_id).status is SubmissionStatus.PendingValidation


# -- queries -----------------------------------------------------------------------------------


def test_queries_filters_and_paging(funded: Callable[..., Client]) -> None:
    creator, worker = funded(), funded()
    made = [creator.create_task(t, f"q{i}", REWARD, 1 if i == 0 else 2, CID)
            for i, t in enumerate([TaskType.DataAnnotator, TaskType.ModelEngineer,
                                   TaskType.DataAnnotator])]
    ids = [m.task_id for m in made]
    worker.accept_task(ids[0])  # task 0 now has no free slot
    creator.close_task(ids[2])

    mine = creator.tasks(creator=creator.address, page_size=2)  # several pages
    assert [t.task_id for t in mine] == ids
    assert [t.task_id for t in creator.tasks(creator=creator.address,
                                             status=TaskStatus.Open)] == ids[:2]
    assert [t.task_id for t in creator.tasks(creator=creator.address,
                                             task_type=TaskType.DataAnnotator)] == [ids[0], ids[2]]
    assert [t.task_id for t in creator.tasks(creator=creator.address, open_slots=True)] == \
        [ids[1]]
    assert all(t.open_slots > 0 for t in creator.tasks(open_slots=True))
    assert [t.task_id for t in creator.tasks(creator=creator.address, min_open_slots=2)] == \
        ids[1:]

    subs = worker.worker_submissions()
    assert [(s.task_id, s.status) for s in subs] == [(ids[0], SubmissionStatus.Assigned)]
    assert creator.submissions(ids[0]) == subs
    assert creator.task_submissions(ids[1]) == []
    with pytest.raises(errors.TaskNotFound):
        creator.task(creator.next_task_id() + 10)
    with pytest.raises(errors.SubmissionNotFound):
        creator.submission(creator.next_submission_id() + 10)
    with pytest.raises(InvalidInput):
        creator.worker_submissions("not-an-address")
    escrow = creator.escrow(ids[1])
    assert escrow.consistent and escrow.balance == 2 * REWARD


def test_abandon_task_gives_the_slot_back(funded: Callable[..., Client]) -> None:
    creator, w1, w2 = funded(), funded(), funded()
    task = creator.create_task(TaskType.ModelContributor, "train", REWARD, 1, CID)
    sub = w1.accept_task(task.task_id)
    with pytest.raises(errors.NoSlotsLeft):
        w2.accept_task(task.task_id)
    b0 = w1.balance()
    gave_back = w1.abandon_task(sub.submission_id)
    assert (gave_back.task_id, gave_back.submission_id) == (task.task_id, sub.submission_id)
    assert w1.balance() == b0 - gave_back.fee  # only the fee moves
    assert creator.submission(sub.submission_id).status is SubmissionStatus.Abandoned
    assert creator.task(task.task_id).active_assignments == 0
    assert_escrow(creator, task.task_id)
    again = w2.accept_task(task.task_id)
    with pytest.raises(errors.InvalidStatus):
        w1.abandon_task(sub.submission_id)
    with pytest.raises(errors.NotSubmissionWorker):
        w1.abandon_task(again.submission_id)
    w2.send_task_result(again.submission_id, result(0.9))
    with pytest.raises(errors.InvalidStatus):  # a sent result cannot be withdrawn
        w2.abandon_task(again.submission_id)
    with pytest.raises(InvalidInput, match="submission_id"):
        w2.abandon_task(-1)


def test_third_party_deposit_is_refunded_on_close(funded: Callable[..., Client]) -> None:
    creator, worker, donor = funded(), funded(), funded()
    task = creator.create_task(TaskType.ModelContributor, "train", REWARD, 2, CID,
                               validation_strategy=ValidationStrategy.AutoAccept)
    gift = 3 * REWARD
    donor.transfer(creator.escrow_address(task.task_id), gift)
    escrow = creator.escrow(task.task_id)
    assert escrow.consistent and escrow.surplus == gift and escrow.balance == 2 * REWARD + gift
    sub = worker.accept_task(task.task_id)
    w0 = worker.balance()
    paid = worker.send_task_result(sub.submission_id, result(0.9))
    assert paid.reward_paid == REWARD and worker.balance() == w0 + REWARD - paid.fee
    c0 = creator.balance()
    closed = creator.close_task(task.task_id)
    assert closed.refund == REWARD + gift
    assert creator.balance() == c0 + REWARD + gift - closed.fee
    assert creator.escrow_balance(task.task_id) == 0


# -- errors ------------------------------------------------------------------------------------


def _error_cases() -> dict[str, Callable[[Callable[..., Client]], None]]:
    """One scenario per pallet error, each ending in the call that must fail with it."""
    def create(c: Client, **kw: Any) -> None:
        c.submit_call("DecentralML", "create_task", raw_task(c, **kw))

    def task_of(c: Client, **kw: Any) -> int:
        return c.create_task(TaskType.DataAnnotator, "q", REWARD, kw.pop("n", 1), CID, **kw).task_id

    def assigned(f: Callable[..., Client], **kw: Any) -> tuple[Client, Client, int, int]:
        creator, worker = f(), f()
        tid = task_of(creator, **kw)
        return creator, worker, tid, worker.accept_task(tid).submission_id

    def send(c: Client, sid: int, **kw: Any) -> None:
        params = {"submission_id": sid, "result": b"r", "result_cid": None, "result_storage": None}
        params.update(kw)
        c.submit_call("DecentralML", "send_task_result", params)

    def accept(c: Client, tid: int) -> None:
        c.submit_call("DecentralML", "accept_task", {"task_id": tid})

    def task_not_found(f: Callable[..., Client]) -> None:
        c = f()
        accept(c, c.next_task_id() + 1000)

    def submission_not_found(f: Callable[..., Client]) -> None:
        c = f()
        send(c, c.next_submission_id() + 1000)

    def task_closed(f: Callable[..., Client]) -> None:
        creator, worker = f(), f()
        tid = task_of(creator)
        creator.close_task(tid)
        accept(worker, tid)

    def task_expired(f: Callable[..., Client]) -> None:
        creator, worker = f(), f()
        tid = task_of(creator, expires_in=2)
        advance_past(creator, creator.task(tid).expiration_block)
        accept(worker, tid)

    def no_slots_left(f: Callable[..., Client]) -> None:
        _, _, tid, _ = assigned(f)
        accept(f(), tid)

    def already_accepted(f: Callable[..., Client]) -> None:
        _, worker, tid, _ = assigned(f, n=2)
        accept(worker, tid)

    def creator_cannot_accept(f: Callable[..., Client]) -> None:
        creator = f()
        accept(creator, task_of(creator))

    def not_task_creator(f: Callable[..., Client]) -> None:
        creator = f()
        f().submit_call("DecentralML", "close_task", {"task_id": task_of(creator)})

    def not_submission_worker(f: Callable[..., Client]) -> None:
        _, _, _, sid = assigned(f)
        send(f(), sid)

    def invalid_status(f: Callable[..., Client]) -> None:
        creator, _, _, sid = assigned(f)
        creator.submit_call("DecentralML", "validate_task_result",
                            {"submission_id": sid, "accept": True})

    def pending_validations(f: Callable[..., Client]) -> None:
        creator, worker, tid, sid = assigned(f)
        worker.send_task_result(sid, "r")
        creator.submit_call("DecentralML", "close_task", {"task_id": tid})

    def empty_result(f: Callable[..., Client]) -> None:
        _, worker, _, sid = assigned(f)
        send(worker, sid, result=b"")

    def result_too_long(f: Callable[..., Client]) -> None:
        _, worker, _, sid = assigned(f)
        send(worker, sid, result=b"x" * (limit(worker, "MaxResultLength") + 1))

    def invalid_result_cid(f: Callable[..., Client]) -> None:
        _, worker, _, sid = assigned(f)
        send(worker, sid, result_cid=b"", result_storage="Ipfs")

    def missing_storage_type(f: Callable[..., Client]) -> None:
        _, worker, _, sid = assigned(f)
        send(worker, sid, result_cid=b"bafy", result_storage=None)

    def insufficient_balance(f: Callable[..., Client]) -> None:
        poor = f(10**13)
        create(poor, reward=10**13, max_assignments=1)

    # -- protocol 2 --
    def create_with_terms(c: Client, terms: dict[str, Any], **kw: Any) -> None:
        full = {"shards": 0, "payout": "Flat", "floor": 0, "holdout_commitment": None,
                "scoring_commitment": None, **terms}
        c.submit_call("DecentralML", "create_task_with_terms", {**raw_task(c, **kw),
                                                                "terms": full})

    def by_contribution(f: Callable[..., Client], n: int = 1) -> tuple[Client, int]:
        creator = f()
        return creator, task_of(creator, n=n, terms=TaskTerms(payout=PayoutMode.ByContribution))

    def settle(c: Client, tid: int, scores: list[tuple[int, int]]) -> None:
        c.submit_call("DecentralML", "settle_contributions", {"task_id": tid, "scores": scores})

    def paid_by_contribution(f: Callable[..., Client]) -> None:
        creator, tid = by_contribution(f)
        worker = f()
        sid = worker.accept_task(tid).submission_id
        worker.send_task_result(sid, "r")
        creator.submit_call("DecentralML", "validate_task_result",
                            {"submission_id": sid, "accept": True})

    def not_pending_on_task(f: Callable[..., Client]) -> None:
        creator, tid = by_contribution(f)
        settle(creator, tid, [(f().accept_task(tid).submission_id, 1)])  # Assigned, not pending

    def job_of(c: Client, **kw: Any) -> int:
        c.submit_call("DecentralML", "create_peer_job", raw_peer_job(**kw))
        return c.next_peer_job_id() - 1

    def join(c: Client, job: int) -> None:
        c.submit_call("DecentralML", "join_peer_job", {"job_id": job})

    def post(c: Client, what: str, job: int, rnd: int = 0, cid: bytes = b"bafyupdate") -> None:
        c.submit_call("DecentralML", f"post_{what}",
                      {"job_id": job, "round": rnd, f"{what}_cid": cid})

    def peer_job_ended(f: Callable[..., Client]) -> None:
        c = f()
        job = job_of(c, rounds=1, update_blocks=1, aggregate_blocks=1)
        advance_past(c, c.peer_job(job).end_block)
        join(c, job)

    def already_joined(f: Callable[..., Client]) -> None:
        c = f()
        job = job_of(c)
        join(c, job)
        join(c, job)

    def peer_job_full(f: Callable[..., Client]) -> None:
        c = f()
        job = job_of(c, max_peers=1)
        join(c, job)
        join(f(), job)

    def peer_in(f: Callable[..., Client], **kw: Any) -> tuple[Client, int]:
        c = f()
        job = job_of(c, **kw)
        join(c, job)
        return c, job

    def wrong_round(f: Callable[..., Client]) -> None:
        c, job = peer_in(f)
        post(c, "update", job, rnd=1)

    def wrong_phase(f: Callable[..., Client]) -> None:
        c, job = peer_in(f, update_blocks=1)  # the aggregate phase from the next block on
        post(c, "update", job)

    def already_posted(f: Callable[..., Client]) -> None:
        c, job = peer_in(f)
        post(c, "update", job)
        post(c, "update", job)

    def no_update_this_round(f: Callable[..., Client]) -> None:
        c, job = peer_in(f, update_blocks=1)
        post(c, "aggregate", job, cid=b"bafyaggregate")

    return {
        "TaskNotFound": task_not_found,
        "SubmissionNotFound": submission_not_found,
        "TaskClosed": task_closed,
        "TaskExpired": task_expired,
        "NoSlotsLeft": no_slots_left,
        "AlreadyAccepted": already_accepted,
        "CreatorCannotAccept": creator_cannot_accept,
        "NotTaskCreator": not_task_creator,
        "NotSubmissionWorker": not_submission_worker,
        "InvalidStatus": invalid_status,
        "PendingValidations": pending_validations,
        "ZeroReward": lambda f: create(f(), reward=0),
        "RewardTooLow": lambda f: create(c := f(), reward=c.min_reward - 1),
        "InvalidQuestion": lambda f: create(
            c := f(), question=b"q" * (limit(c, "MaxQuestionLength") + 1)),
        "InvalidMaxAssignments": lambda f: create(
            c := f(), max_assignments=limit(c, "MaxAssignments") + 1),
        "ExpirationInPast": lambda f: create(c := f(), expiration_block=c.block_number()),
        "EmptyAssets": lambda f: create(f(), assets_cid=b""),
        "AssetsCidTooLong": lambda f: create(
            c := f(), assets_cid=b"b" * (limit(c, "MaxCidLength") + 1)),
        "EmptyResult": empty_result,
        "ResultTooLong": result_too_long,
        "InvalidResultCid": invalid_result_cid,
        "MissingStorageType": missing_storage_type,
        "Overflow": lambda f: create(f(), reward=2**127, max_assignments=4),
        "InsufficientBalance": insufficient_balance,
        "InvalidShards": lambda f: create_with_terms(f(), {"shards": 1}, max_assignments=2),
        "InvalidTerms": lambda f: create_with_terms(f(), {"payout": "ByContribution"},
                                                    validation_strategy="AutoAccept"),
        "PaidByContribution": paid_by_contribution,
        "NotPaidByContribution": lambda f: settle(c := f(), task_of(c), [(0, 1)]),
        "NoScores": lambda f: settle(*by_contribution(f), []),
        "TooManyScores": lambda f: settle(*(ct := by_contribution(f)), [
            (i, 1) for i in range(limit(ct[0], "MaxAssignments") + 1)]),
        "ScoreTooHigh": lambda f: settle(*(ct := by_contribution(f)), [
            (0, limit(ct[0], "MaxScore") + 1)]),
        "DuplicateScore": lambda f: settle(*by_contribution(f), [(0, 1), (0, 2)]),
        "NotPendingOnTask": not_pending_on_task,
        "InvalidPeerJob": lambda f: job_of(f(), rounds=0),
        "PeerJobNotFound": lambda f: join(c := f(), c.next_peer_job_id() + 1000),
        "PeerJobEnded": peer_job_ended,
        "AlreadyJoined": already_joined,
        "PeerJobFull": peer_job_full,
        "NotAPeer": lambda f: f().submit_call("DecentralML", "leave_peer_job",
                                              {"job_id": job_of(f())}),
        "WrongRound": wrong_round,
        "WrongPhase": wrong_phase,
        "AlreadyPosted": already_posted,
        "NoUpdateThisRound": no_update_this_round,
    }


ERROR_CASES = _error_cases()


def test_the_client_checks_the_bounds_the_chain_declares(alice: Client) -> None:
    """The client refuses bad input before sending, against the bounds the chain's metadata
    declares (``Client.limits``), not a copy of its own; MinReward likewise."""
    limits = alice.limits
    for field, name in protocol.ProtocolLimits.CONSTANTS.items():
        assert getattr(limits, field) == limit(alice, name), name
    assert alice.min_reward == int(alice.constant("ExistentialDeposit", "Balances"))
    nonce = alice.account_balance().nonce
    too_long = "x" * (limits.max_question_length + 1)
    with pytest.raises(InvalidInput) as info:
        alice.create_task(TaskType.DataAnnotator, too_long, REWARD, 1, CID)
    assert info.value.field == "question" and str(limits.max_question_length) in str(info.value)
    assert alice.account_balance().nonce == nonce, "nothing was sent"


@pytest.mark.parametrize("name", list(protocol.ProtocolLimits.CONSTANTS.values()))
def test_the_runtime_configures_the_reference_bounds(alice: Client, name: str) -> None:
    """docs/protocol.md's values, which the SDK keeps only as offline defaults: the runtimes under
    test (devnode and the Rust runtime) configure exactly these."""
    field = next(f for f, n in protocol.ProtocolLimits.CONSTANTS.items() if n == name)
    assert limit(alice, name) == getattr(protocol.DEFAULT_LIMITS, field)


def test_every_pallet_error_has_a_case() -> None:
    assert set(ERROR_CASES) == set(DECENTRALML_ERRORS)


@pytest.mark.parametrize("name", list(DECENTRALML_ERRORS))
def test_pallet_error_surfaces_as_its_class(funded: Callable[..., Client], name: str) -> None:
    cls = getattr(errors, name)
    with pytest.raises(PalletError) as caught:
        ERROR_CASES[name](funded)
    exc = caught.value
    assert type(exc) is cls, f"expected {name}, got {type(exc).__name__}: {exc}"
    assert exc.pallet == "DecentralML" and exc.error_name == name
    assert cls.docs, "docs text comes from the runtime metadata"
    assert cls.docs in str(exc)
    assert exc.extrinsic_hash and exc.block_hash and exc.fee and exc.fee > 0


def test_failed_call_pays_its_fee_and_changes_nothing(funded: Callable[..., Client]) -> None:
    creator, worker = funded(), funded()
    task = creator.create_task(TaskType.DataAnnotator, "q", REWARD, 1, CID)
    b0, next_sub = creator.balance(), creator.next_submission_id()
    with pytest.raises(errors.CreatorCannotAccept) as caught:
        creator.accept_task(task.task_id)
    assert creator.balance() == b0 - (caught.value.fee or 0)
    assert creator.next_submission_id() == next_sub
    assert creator.task(task.task_id).active_assignments == 0
    assert worker.accept_task(task.task_id).submission_id == next_sub


# -- bad inputs never reach the chain ----------------------------------------------------------


BAD_INPUTS: list[tuple[str, str, dict[str, Any]]] = [
    ("create_task", "question", {"question": ""}),
    ("create_task", "question", {"question": "é" * 1025}),
    ("create_task", "reward", {"reward": 0}),
    ("create_task", "reward", {"reward": 1}),  # below MinReward (chain constant)
    ("create_task", "reward", {"reward": 1.5}),
    ("create_task", "max_assignments", {"max_assignments": 65}),
    ("create_task", "max_assignments", {"max_assignments": 0}),
    ("create_task", "assets_cid", {"assets_cid": ""}),
    ("create_task", "assets_cid", {"assets_cid": "b" * 129}),
    ("create_task", "task_type", {"task_type": "Painter"}),
    ("create_task", "expiration_block", {"expiration_block": 1}),
    ("create_task", "expires_in", {"expires_in": 0}),
    ("accept_task", "task_id", {"task_id": -1}),
    ("accept_task", "task_id", {"task_id": 2**32}),
    ("send_task_result", "result", {"submission_id": 0, "result": ""}),
    ("send_task_result", "result", {"submission_id": 0, "result": b"x" * 2049}),
    ("send_task_result", "result_cid", {"submission_id": 0, "result": "r", "result_cid": ""}),
    ("send_task_result", "result_cid", {"submission_id": 0, "result": "r", "result_cid": "bafy"}),
    ("close_task", "task_id", {"task_id": "3"}),
    ("validate_task_result", "task_id", {}),
    # protocol 2
    ("create_task", "terms.shards", {"max_assignments": 2, "terms": TaskTerms(shards=1)}),
    ("create_task", "terms.payout", {"validation_strategy": ValidationStrategy.AutoAccept,
                                     "terms": TaskTerms(payout=PayoutMode.ByContribution)}),
    ("create_task", "terms.floor", {"terms": TaskTerms(payout=PayoutMode.ByContribution,
                                                       floor=REWARD + 1)}),
    ("create_task", "terms.floor", {"terms": TaskTerms(floor=1)}),
    ("settle_contributions", "scores", {"task_id": 0, "scores": {}}),
    ("settle_contributions", "scores", {"task_id": 0, "scores": {0: 1_000_001}}),
    ("settle_contributions", "scores", {"task_id": 0, "scores": {i: 1 for i in range(65)}}),
    ("settle_contributions", "scores", {"task_id": 0, "scores": {0: -1}}),
    ("settle_contributions", "task_id", {"task_id": -1, "scores": {0: 1}}),
    ("create_peer_job", "rounds", {"rounds": 0}),
    ("create_peer_job", "rounds", {"rounds": 10_001}),
    ("create_peer_job", "rounds", {"rounds": 10_000, "update_blocks": 2**31}),
    ("create_peer_job", "update_blocks", {"update_blocks": 0}),
    ("create_peer_job", "aggregate_blocks", {"aggregate_blocks": 0}),
    ("create_peer_job", "max_peers", {"max_peers": 0}),
    ("create_peer_job", "max_peers", {"max_peers": 65}),
    ("create_peer_job", "assets_cid", {"assets_cid": ""}),
    ("create_peer_job", "assets_cid", {"assets_cid": "b" * 129}),
    ("join_peer_job", "job_id", {"job_id": -1}),
    ("leave_peer_job", "job_id", {"job_id": 2**32}),
    ("post_update", "cid", {"job_id": 0, "round": 0, "cid": ""}),
    ("post_update", "cid", {"job_id": 0, "round": 0, "cid": "b" * 129}),
    ("post_aggregate", "round", {"job_id": 0, "round": -1, "cid": "bafy"}),
    ("post_aggregate", "cid", {"job_id": 0, "round": 0, "cid": ""}),
]


@pytest.mark.parametrize(("method", "field", "kwargs"), BAD_INPUTS,
                         ids=[f"{m}-{f}-{i}" for i, (m, f, _) in enumerate(BAD_INPUTS)])
def test_bad_input_raises_before_sending(funded: Callable[..., Client], method: str, field: str,
                                         kwargs: dict[str, Any]) -> None:
    client = funded()
    before = client.account_balance()
    next_task = client.next_task_id()
    next_job = client.next_peer_job_id()
    sent = len(client._submitter.sent)
    if method == "create_task":
        base: dict[str, Any] = dict(task_type=TaskType.DataAnnotator, question="q",
                                    reward=REWARD, max_assignments=1, assets_cid=CID)
        base.update(kwargs)
        call: Callable[[], Any] = lambda: client.create_task(**base)  # noqa: E731
    elif method == "create_peer_job":
        job: dict[str, Any] = dict(assets_cid=CID, rounds=2, update_blocks=3,
                                   aggregate_blocks=3, max_peers=4)
        job.update(kwargs)
        call = lambda: client.create_peer_job(**job)  # noqa: E731
    else:
        call = lambda: getattr(client, method)(**kwargs)  # noqa: E731
    with pytest.raises(InvalidInput) as caught:
        call()
    assert caught.value.field == field or field in str(caught.value), str(caught.value)
    assert client.account_balance() == before  # same nonce, same balance: nothing was sent
    assert client.next_task_id() == next_task
    assert len(client._submitter.sent) == sent
    assert client.next_peer_job_id() == next_job


def test_transaction_refused_by_the_pool(funded: Callable[..., Client]) -> None:
    from substrateinterface import Keypair

    broke = funded().with_signer(Keypair.create_from_mnemonic(Keypair.generate_mnemonic()))
    with pytest.raises(errors.InvalidTransaction) as caught:
        broke.accept_task(0)
    assert "pay" in str(caught.value).lower()

"""Conformance of protocol 2 (spec_version 103) through the client, on every chain under test.

Task terms (shards assigned per slot and released), pay by contribution settled to the planck
(balances of creator, workers and escrow reconciled with every fee the chain reported), and peer
jobs through their phases: majority agreement, a visible minority, a peer leaving, a late joiner.
Runs once per chain (tests/fixtures/chains.py), like tests/chain/test_conformance.py, whose error
table covers every new pallet error by class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import pytest

from decentralml import errors
from decentralml.chain.client import Client
from decentralml.chain.events import (
    AggregatePostedEvent,
    ContributionsSettledEvent,
    PeerJobEvent,
    ResultAcceptedEvent,
    RoundAgreedEvent,
    ShardAssignedEvent,
)
from decentralml.chain.types import (
    CreatePeerJobArgs,
    PayoutMode,
    PeerJob,
    SubmissionStatus,
    TaskTerms,
    TaskType,
)
from tests.chain.conftest import advance_past

REWARD = 5 * 10**10
CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
BY_CONTRIBUTION = TaskTerms(payout=PayoutMode.ByContribution)


def pending_results(f: Callable[..., Client], creator: Client, task_id: int, n: int
                    ) -> list[tuple[Client, int, int]]:
    """``n`` fresh workers each take a slot and send a result: (worker, submission id, fees)."""
    out = []
    for i in range(n):
        w = f()
        acc = w.accept_task(task_id)
        sent = w.send_task_result(acc.submission_id, {"num_examples": 10 + i})
        out.append((w, acc.submission_id, acc.fee + sent.fee))
    return out


# -- terms and shards ------------------------------------------------------------------------


def test_terms_are_stored_and_default_without_them(funded: Callable[..., Client]) -> None:
    creator = funded()
    digest = bytes(range(32))
    terms = TaskTerms(shards=2, payout=PayoutMode.ByContribution, floor=REWARD // 10,
                      holdout_commitment=digest, scoring_commitment=digest[::-1])
    termed = creator.create_task(TaskType.ModelContributor, "train", REWARD, 2, CID, terms=terms)
    assert termed.escrow == 2 * REWARD and creator.escrow_balance(termed.task_id) == 2 * REWARD
    assert creator.task_terms(termed.task_id) == terms
    plain = creator.create_task(TaskType.ModelContributor, "train", REWARD, 2, CID)
    assert creator.task_terms(plain.task_id) == TaskTerms()
    with pytest.raises(errors.TaskNotFound):
        creator.task_terms(creator.next_task_id() + 100)


def test_shards_go_to_the_lowest_free_one_and_come_back(funded: Callable[..., Client]) -> None:
    creator = funded()
    workers = [funded() for _ in range(5)]
    task = creator.create_task(TaskType.ModelContributor, "train on your shard", REWARD, 3, CID,
                               terms=TaskTerms(shards=3))
    took = [w.accept_task(task.task_id) for w in workers[:3]]
    assert [t.shard for t in took] == [0, 1, 2]
    for t in took:
        (event,) = t.market(ShardAssignedEvent)
        assert (event.task_id, event.submission_id, event.shard) == (task.task_id,
                                                                    t.submission_id, t.shard)
        assert creator.submission_shard(t.submission_id) == t.shard
    assert creator.shard_holders(task.task_id) == {0: took[0].submission_id,
                                                   1: took[1].submission_id,
                                                   2: took[2].submission_id}
    # an abandoned slot frees its shard; a rejected result too; the next worker gets it
    workers[1].abandon_task(took[1].submission_id)
    assert 1 not in creator.shard_holders(task.task_id)
    again = workers[3].accept_task(task.task_id)
    assert again.shard == 1
    workers[0].send_task_result(took[0].submission_id, "r")
    report = creator.validate_task_result(task.task_id, policy=lambda s: False)
    assert report.rejected == (took[0].submission_id,)
    assert creator.shard_holders(task.task_id) == {1: again.submission_id,
                                                   2: took[2].submission_id}
    last = workers[4].accept_task(task.task_id)
    assert last.shard == 0
    # an accepted result keeps its shard; closing abandons the assigned ones and frees theirs
    workers[3].send_task_result(again.submission_id, "r")
    creator.validate_task_result(task.task_id)
    creator.close_task(task.task_id)
    assert creator.shard_holders(task.task_id) == {1: again.submission_id}
    # every submission remembers its shard for good
    assert [creator.submission_shard(s) for s in (took[0].submission_id, took[1].submission_id,
                                                  last.submission_id)] == [0, 1, 0]


def test_a_task_without_shards_assigns_none(funded: Callable[..., Client]) -> None:
    creator, worker = funded(), funded()
    task = creator.create_task(TaskType.ModelContributor, "bring your data", REWARD, 1, CID)
    took = worker.accept_task(task.task_id)
    assert took.shard is None and not took.market(ShardAssignedEvent)
    assert creator.submission_shard(took.submission_id) is None
    assert creator.shard_holders(task.task_id) == {}


# -- pay by contribution ---------------------------------------------------------------------


def test_settlement_pays_by_score_to_the_planck(funded: Callable[..., Client]) -> None:
    creator = funded()
    floor = 10**9
    task = creator.create_task(TaskType.ModelContributor, "improve the model", REWARD, 3, CID,
                               terms=TaskTerms(payout=PayoutMode.ByContribution, floor=floor))
    c0 = creator.balance() + task.fee + task.escrow  # before the escrow and the fee left it
    (wa, a, fa), (wb, b, fb), (wc, c, fc) = pending_results(funded, creator, task.task_id, 3)
    before = {a: wa.balance(), b: wb.balance(), c: wc.balance()}

    # two results: pool 2 * REWARD; each gets the floor, then (REWARD - floor) * 2 split 2:1
    split = (REWARD - floor) * 2
    pay_a, pay_b = floor + split * 2 // 3, floor + split * 1 // 3
    dust = 2 * REWARD - pay_a - pay_b
    assert dust == 1  # 98e9 is not divisible by 3: one planck of rounding stays behind
    first = creator.settle_contributions(task.task_id, {b: 1, a: 2})
    assert first.payouts == {b: pay_b, a: pay_a}
    assert (first.results, first.pool, first.paid, first.dust) == (2, 2 * REWARD,
                                                                   pay_a + pay_b, dust)
    assert [e.submission_id for e in first.market(ResultAcceptedEvent)] == [b, a]  # list order
    (settled,) = first.market(ContributionsSettledEvent)
    assert (settled.pool, settled.paid, settled.dust) == (2 * REWARD, pay_a + pay_b, dust)
    assert (wa.balance(), wb.balance()) == (before[a] + pay_a, before[b] + pay_b)
    assert creator.escrow_balance(task.task_id) == REWARD + dust  # the third slot, and the dust
    assert (creator.submission_score(a), creator.submission_score(b)) == (2, 1)
    assert creator.submission_score(c) is None
    assert {s.submission_id: s.status for s in creator.submissions(task.task_id)} == {
        a: SubmissionStatus.Accepted, b: SubmissionStatus.Accepted,
        c: SubmissionStatus.PendingValidation}
    info = creator.task(task.task_id)
    assert (info.active_assignments, info.accepted_results) == (1, 2)
    assert creator.submission(a).validated_block == first.block_number

    # the last result alone gets the whole pool of one; the stranded dust goes to the creator
    c1 = creator.balance()
    last = creator.settle_contributions(task.task_id, {c: 0})
    assert last.payouts == {c: REWARD} and last.dust == 0
    assert wc.balance() == before[c] + REWARD
    assert creator.escrow_balance(task.task_id) == 0
    assert creator.balance() == c1 - last.fee + dust
    closed = creator.close_task(task.task_id)
    assert closed.refund == 0
    # the whole escrow went to the workers, less the planck of dust that came back
    assert creator.balance() == c0 - task.fee - first.fee - last.fee - closed.fee \
        - 3 * REWARD + dust
    assert min(fa, fb, fc) > 0  # the workers paid their own fees, none came from the pool


def test_a_tiny_payout_after_a_large_one_is_paid(funded: Callable[..., Client]) -> None:
    """The escrow must not be reaped between two payouts of one settlement: with payouts
    (pool - tiny, tiny) in that order, a tiny below the existential deposit is still paid."""
    creator = funded()
    task = creator.create_task(TaskType.ModelContributor, "train", REWARD, 2, CID,
                               terms=BY_CONTRIBUTION)
    (w1, s1, _), (w2, s2, _) = pending_results(funded, creator, task.task_id, 2)
    b1, b2 = w1.balance(), w2.balance()
    max_score = int(creator.constant("MaxScore"))
    tiny = 2 * REWARD * 1 // max_score
    assert tiny < int(creator.constant("ExistentialDeposit", "Balances"))
    settled = creator.settle_contributions(task.task_id, {s1: max_score - 1, s2: 1})
    assert settled.payouts == {s1: 2 * REWARD - tiny, s2: tiny} and settled.dust == 0
    assert (w1.balance(), w2.balance()) == (b1 + 2 * REWARD - tiny, b2 + tiny)
    assert creator.escrow_balance(task.task_id) == 0


def test_a_tiny_payout_to_a_reaped_account_fails_until_rejected(
        funded: Callable[..., Client]) -> None:
    """A payout below the existential deposit cannot create an account: the settlement fails
    (fee paid, nothing moved) until the creator rejects that result and settles the others."""
    creator = funded()
    task = creator.create_task(TaskType.ModelContributor, "train", REWARD, 2, CID,
                               terms=BY_CONTRIBUTION)
    (w1, s1, _), (w2, s2, _) = pending_results(funded, creator, task.task_id, 2)
    w2.submit_call("Balances", "transfer_all", {"dest": creator.address, "keep_alive": False})
    assert w2.account_balance().free == 0
    max_score = int(creator.constant("MaxScore"))
    with pytest.raises(errors.DispatchError, match="BelowMinimum") as caught:
        creator.settle_contributions(task.task_id, {s1: max_score - 1, s2: 1})
    assert not isinstance(caught.value, errors.PalletError)
    assert creator.escrow_balance(task.task_id) == 2 * REWARD
    assert creator.submission(s1).status is SubmissionStatus.PendingValidation
    creator.validate_task_result(submissions=[s2], policy=lambda s: False)
    b1 = w1.balance()
    assert creator.settle_contributions(task.task_id, {s1: 1}).payouts == {s1: REWARD}
    assert w1.balance() == b1 + REWARD


def test_all_zero_scores_share_equally_and_a_free_rider_gets_the_floor(
        funded: Callable[..., Client]) -> None:
    creator = funded()
    floor = REWARD // 5
    task = creator.create_task(TaskType.ModelContributor, "train", REWARD, 4, CID,
                               terms=TaskTerms(payout=PayoutMode.ByContribution, floor=floor))
    results = pending_results(funded, creator, task.task_id, 4)
    ids = [sid for _, sid, _ in results]
    equal = creator.settle_contributions(task.task_id, {ids[0]: 0, ids[1]: 0})
    assert equal.payouts == {ids[0]: REWARD, ids[1]: REWARD} and equal.dust == 0
    # the honest one takes everything above the floors; the free rider scored 0 gets the floor
    rest = creator.settle_contributions(task.task_id, {ids[2]: 1_000_000, ids[3]: 0})
    assert rest.payouts == {ids[2]: 2 * REWARD - floor, ids[3]: floor}


def test_contribution_tasks_are_settled_not_validated(funded: Callable[..., Client]) -> None:
    creator = funded()
    task = creator.create_task(TaskType.ModelContributor, "train", REWARD, 2, CID,
                               terms=TaskTerms(payout=PayoutMode.ByContribution, shards=2))
    (_, s1, _), (w2, s2, _) = pending_results(funded, creator, task.task_id, 2)
    with pytest.raises(errors.PaidByContribution):
        creator.validate_task_result(submissions=[s1], policy=lambda s: True)
    # rejecting is allowed, and frees the slot and its shard
    report = creator.validate_task_result(submissions=[s2], policy=lambda s: False)
    assert report.rejected == (s2,)
    assert creator.shard_holders(task.task_id) == {0: s1}
    with pytest.raises(errors.NotPendingOnTask):
        creator.settle_contributions(task.task_id, {s1: 5, s2: 5})  # s2 is Rejected now
    with pytest.raises(errors.NotTaskCreator):
        w2.settle_contributions(task.task_id, {s1: 5})
    flat = creator.create_task(TaskType.ModelContributor, "train", REWARD, 1, CID)
    with pytest.raises(errors.NotPaidByContribution):
        creator.settle_contributions(flat.task_id, {s1: 5})
    other = creator.create_task(TaskType.ModelContributor, "other", REWARD, 1, CID,
                                terms=BY_CONTRIBUTION)
    with pytest.raises(errors.NotPendingOnTask):  # a pending result, of another task
        creator.settle_contributions(other.task_id, {s1: 5})
    settled = creator.settle_contributions(task.task_id, {s1: 5})
    assert settled.payouts == {s1: REWARD}


# -- peer jobs -------------------------------------------------------------------------------


Phase = Literal["update", "aggregate"]


def reach(client: Client, job: PeerJob, rnd: int, phase: Phase) -> None:
    """Advance until the next block is in ``rnd``'s ``phase`` (a call sent now lands there on a
    chain that builds a block per transaction)."""
    first = job.start_block + rnd * job.round_length + (0 if phase == "update"
                                                        else job.update_blocks)
    advance_past(client, first - 1)
    nxt = client.block_number() + 1
    assert (job.round_at(nxt), job.phase_at(nxt)) == (rnd, phase), "the test fell behind"


def test_peer_job_rounds_majority_minority_leave_and_late_join(
        funded: Callable[..., Client]) -> None:
    creator = funded()
    a, b, c, d, e = (funded() for _ in range(5))
    # phases long enough for every call of a phase on a chain with timed blocks too
    made = creator.create_peer_job(CreatePeerJobArgs(assets_cid=CID, rounds=3, update_blocks=16,
                                                     aggregate_blocks=14, max_peers=4))
    job = creator.peer_job(made.job_id)
    assert (job.start_block, job.rounds, job.peers, job.creator) == (made.start_block, 3, 0,
                                                                      creator.address)
    assert job in creator.peer_jobs()
    joined = [p.join_peer_job(job.job_id) for p in (a, b, c, d)]
    assert [j.round for j in joined] == [0, 0, 0, 0]
    with pytest.raises(errors.PeerJobFull):
        e.join_peer_job(job.job_id)
    assert creator.peers(job.job_id) == {p.address: 0 for p in (a, b, c, d)}

    # round 0: everyone posts an update; three agree, one posts another aggregate
    for p in (a, b, c, d):
        p.post_update(job.job_id, 0, f"update-0-{p.address}")
    assert creator.round_updates(job.job_id, 0) == {p.address: f"update-0-{p.address}"
                                                     for p in (a, b, c, d)}
    reach(creator, job, 0, "aggregate")
    votes = [a.post_aggregate(job.job_id, 0, "agg-0"), d.post_aggregate(job.job_id, 0, "liar"),
             b.post_aggregate(job.job_id, 0, "agg-0")]
    assert [v.agreed_cid for v in votes] == [None, None, None]  # 2 of 4 is no majority
    assert creator.agreed_model(job.job_id, 0) is None
    third = c.post_aggregate(job.job_id, 0, "agg-0")
    assert third.agreed_cid == "agg-0"
    (agreed,) = third.market(RoundAgreedEvent)
    assert (agreed.job_id, agreed.round, agreed.model_cid) == (job.job_id, 0, "agg-0")
    assert creator.agreed_model(job.job_id, 0) == "agg-0"
    aggregates = creator.round_aggregates(job.job_id, 0)
    assert {who for who, cid in aggregates.items() if cid != "agg-0"} == {d.address}

    # round 1: d posts its update, then leaves; e joins during the aggregate phase
    reach(creator, job, 1, "update")
    for p in (a, b, c, d):
        p.post_update(job.job_id, 1, f"update-1-{p.address}")
    reach(creator, job, 1, "aggregate")
    left = d.leave_peer_job(job.job_id)
    assert left.round == 1
    with pytest.raises(errors.NotAPeer):
        d.post_aggregate(job.job_id, 1, "agg-1")
    late = e.join_peer_job(job.job_id)
    assert late.round == 1
    with pytest.raises(errors.WrongPhase):
        e.post_update(job.job_id, 1, "too-late")
    with pytest.raises(errors.NoUpdateThisRound):
        e.post_aggregate(job.job_id, 1, "agg-1")
    for p in (a, b):
        assert p.post_aggregate(job.job_id, 1, "agg-1").agreed_cid is None  # 2 of 4 posted
    assert c.post_aggregate(job.job_id, 1, "agg-1").agreed_cid == "agg-1"

    # round 2: the newcomer takes part; d cannot
    reach(creator, job, 2, "update")
    with pytest.raises(errors.NotAPeer):
        d.post_update(job.job_id, 2, "x")
    with pytest.raises(errors.WrongRound):
        e.post_update(job.job_id, 1, "x")
    for p in (a, b, c, e):
        p.post_update(job.job_id, 2, f"update-2-{p.address}")
    with pytest.raises(errors.AlreadyPosted):
        e.post_update(job.job_id, 2, "again")
    with pytest.raises(errors.WrongPhase):
        e.post_aggregate(job.job_id, 2, "early")
    reach(creator, job, 2, "aggregate")
    results = [p.post_aggregate(job.job_id, 2, "agg-2") for p in (e, a, b, c)]
    assert [r.agreed_cid for r in results] == [None, None, "agg-2", None]  # never changes
    assert creator.agreed_model(job.job_id, 2) == "agg-2"
    assert creator.peers(job.job_id) == {a.address: 0, b.address: 0, c.address: 0,
                                         e.address: 1}
    assert creator.peer_job(job.job_id).peers == 4

    # after the last round: nobody joins; leaving still works and reports `rounds`
    advance_past(creator, job.end_block)
    with pytest.raises(errors.PeerJobEnded):
        d.join_peer_job(job.job_id)
    with pytest.raises(errors.PeerJobEnded):
        a.post_update(job.job_id, 2, "x")
    assert a.leave_peer_job(job.job_id).round == 3


def test_a_round_without_majority_has_no_agreed_model(funded: Callable[..., Client]) -> None:
    creator, p, q = funded(), funded(), funded()
    made = creator.create_peer_job(assets_cid=CID, rounds=1, update_blocks=6,
                                   aggregate_blocks=6, max_peers=2)
    job = creator.peer_job(made.job_id)
    for peer in (p, q):
        peer.join_peer_job(job.job_id)
        peer.post_update(job.job_id, 0, "u")
    reach(creator, job, 0, "aggregate")
    assert p.post_aggregate(job.job_id, 0, "mine").agreed_cid is None
    assert q.post_aggregate(job.job_id, 0, "yours").agreed_cid is None
    with pytest.raises(errors.AlreadyPosted):
        q.post_aggregate(job.job_id, 0, "mine")
    assert creator.agreed_model(job.job_id, 0) is None
    assert creator.round_aggregates(job.job_id, 0) == {p.address: "mine", q.address: "yours"}
    # the job's events, as a watcher filtering on the job (and on a peer) sees them
    seen = list(creator.watch(job_id=job.job_id, from_block=made.block_number, timeout=0))
    assert [e.kind for e in seen] == ["PeerJobCreated", "PeerJoined", "UpdatePosted",
                                      "PeerJoined", "UpdatePosted", "AggregatePosted",
                                      "AggregatePosted"]
    assert all(isinstance(e, PeerJobEvent) and e.job_id == job.job_id for e in seen)
    mine = list(creator.watch(job_id=job.job_id, account=p.address,
                              from_block=made.block_number, timeout=0))
    assert [(e.kind, e.round) for e in mine if isinstance(e, AggregatePostedEvent)] == [
        ("AggregatePosted", 0)]
    assert len(mine) == 3


def test_a_peer_may_leave_and_join_again(funded: Callable[..., Client]) -> None:
    creator, p = funded(), funded()
    made = creator.create_peer_job(assets_cid=CID, rounds=2, update_blocks=50,
                                   aggregate_blocks=50, max_peers=1)
    assert p.join_peer_job(made.job_id).round == 0
    assert p.leave_peer_job(made.job_id).round == 0
    assert creator.peers(made.job_id) == {} and creator.peer_job(made.job_id).peers == 0
    with pytest.raises(errors.NotAPeer):
        p.leave_peer_job(made.job_id)
    p.join_peer_job(made.job_id)
    assert creator.peers(made.job_id) == {p.address: 0}
    with pytest.raises(errors.PeerJobNotFound):
        creator.peer_job(creator.next_peer_job_id() + 100)
    with pytest.raises(errors.PeerJobNotFound):
        p.join_peer_job(creator.next_peer_job_id() + 100)

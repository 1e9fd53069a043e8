"""Pay by contribution: score a round's updates on the creator's holdout, settle them on chain in
one ``settle_contributions`` call, and let any contributor check the scores afterwards.

A task paid by contribution commits, when it is created, to two hashes (its
:class:`~decentralml.chain.types.TaskTerms`): the holdout file's and the scoring specification's
(:class:`~decentralml.fl.contribution.ScoringSpec`, which also travels in the task bundle's
manifest metadata under :data:`SCORING_KEY`, so contributors know how they will be judged). The
creator scores the pending results with :func:`decentralml.fl.contribution.contribution_scores`,
rejects what its validation policy rejects (those are neither scored nor paid), and settles the
rest; the pallet then splits ``reward * k`` by the scores. Once the creator reveals the holdout,
:func:`verify_task_scores` recomputes everything from what the chain and the store hold and lists
every difference.

The chain is the truth throughout: only results the chain still shows as pending are settled, so
running :func:`settle_task` again after a crash settles nothing twice, and what a task paid is read
back from its ``Scores`` (:func:`settled_contributions`), not from a local record.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from decentralml.chain.policies import Decision
from decentralml.chain.types import PayoutMode, Submission, SubmissionStatus, TaskTerms
from decentralml.errors import InvalidInput
from decentralml.fl.contribution import ScoringSpec

if TYPE_CHECKING:
    from decentralml.chain.client import Client
    from decentralml.chain.policies import Policy
    from decentralml.roles.creator import ModelCreator
    from decentralml.storage.base import Store

#: A CID as the stores write them (base32/base58 letters and digits).
_CID = re.compile(r"^[A-Za-z0-9]{1,128}$")
#: Where a round bundle's manifest metadata carries the scoring specification.
SCORING_KEY = "scoring"
#: The largest holdout file :func:`fetch_holdout` takes from a store (a CID proves what the
#: bytes are, not how many there are).
MAX_HOLDOUT_BYTES = 1 << 30


class ContributionPay(BaseModel):
    """What a creator declares for a task (or every round of a job) paid by contribution."""

    model_config = ConfigDict(frozen=True)

    #: paid to every accepted result before the pool is split by score (planck, <= the reward)
    floor: int = Field(default=0, ge=0)
    #: how the scores are computed (method, budget, seed; its hash goes on chain)
    spec: ScoringSpec
    #: the creator's holdout file (an ``.npz`` with ``x`` and ``y``); its hash goes on chain
    holdout: Path

    def terms(self) -> TaskTerms:
        """The task terms that commit to the holdout and the scoring specification."""
        from decentralml.fl.verification import holdout_commitment

        return TaskTerms(payout=PayoutMode.ByContribution, floor=self.floor,
                         holdout_commitment=holdout_commitment(self.holdout),
                         scoring_commitment=self.spec.commitment())

    def metadata(self) -> dict[str, Any]:
        """What the round bundle's manifest metadata says about the scoring."""
        return {SCORING_KEY: self.spec.model_dump(mode="json")}


def scoring_spec(method: str = "loo", samples: int | None = None, seed: int = 0) -> ScoringSpec:
    """The scoring specification for a method name and its budget; errors name the option."""
    from decentralml.fl.contribution import ScoringSpec

    if method not in ("loo", "shapley"):
        raise InvalidInput("scoring", f"{method!r} is not a scoring method", "loo or shapley")
    if samples is not None and method != "shapley":
        raise InvalidInput("shapley_samples", "only a Shapley estimate takes a sample budget",
                           "use it with scoring shapley")
    kwargs: dict[str, Any] = {"method": method, "seed": seed}
    if samples is not None:
        kwargs["samples"] = samples
    try:
        return ScoringSpec(**kwargs)
    except InvalidInput as exc:  # said with the option's name
        if exc.field != "samples":
            raise
        raise InvalidInput("shapley_samples", str(exc).split(": ", 1)[-1]) from None


def spec_of_manifest(metadata: Mapping[str, Any], where: str) -> ScoringSpec:
    """The scoring specification a round bundle's manifest metadata carries."""
    from decentralml.fl.contribution import ScoringSpec

    raw = metadata.get(SCORING_KEY)
    if not isinstance(raw, Mapping):
        raise InvalidInput("task", f"{where} carries no scoring specification "
                           f"(manifest metadata {SCORING_KEY!r})")
    try:
        return ScoringSpec(**dict(raw))
    except (InvalidInput, TypeError) as exc:
        raise InvalidInput("task", f"{where}'s scoring specification is not valid: "
                           f"{exc}") from None


class Contribution(BaseModel):
    """One result of a task paid by contribution: how it was judged and what it was paid."""

    submission_id: int
    worker: str
    #: ``Accepted`` (settled), ``Rejected`` (by the policy or unusable) or ``PendingValidation``
    #: (left for later: its content could not be fetched)
    status: str
    #: the score settled on chain, parts per million (None if not settled)
    score: int | None = None
    #: the holdout-loss improvement the score came from (None when not computed here)
    value: float | None = None
    #: the submission this update duplicates (it then scores nothing)
    duplicate_of: int | None = None
    #: planck paid (floor plus its share of the pool)
    payout: int = 0
    reason: str = ""


class Settlement(BaseModel):
    """What :func:`settle_task` did on one task."""

    task_id: int
    contributions: list[Contribution]
    #: ``reward * k`` for the ``k`` results settled by this call (0 when nothing was settled)
    pool: int = 0
    paid: int = 0
    dust: int = 0
    rejected: list[int] = []
    skipped: list[int] = []
    fee: int = 0
    block_number: int | None = None

    @property
    def settled(self) -> list[int]:
        return [c.submission_id for c in self.contributions if c.status == "Accepted"]


def contribution_payouts(reward: int, floor: int, scores: Mapping[int, int]
                         ) -> tuple[dict[int, int], int]:
    """Each submission's payout of one settlement and the dust, as docs/protocol.md defines it
    (``settle_contributions``): exact integer arithmetic, so it agrees with the pallet to the
    planck."""
    k = len(scores)
    if k == 0:
        return {}, 0
    pool = reward * k
    split = pool - floor * k
    total = sum(scores.values())
    payouts = {sid: floor + (split * s // total if total > 0 else split // k)
               for sid, s in scores.items()}
    return payouts, pool - sum(payouts.values())


def settled_contributions(client: Client, task_id: int,
                          subs: Sequence[Submission] | None = None) -> list[Contribution]:
    """What the chain says each result of a task paid by contribution got: the score stored in
    ``Scores`` and the payout the protocol's formula gives for it. One settlement is one block
    (the results validated in the same block, with a score), so a task settled in several calls
    is split correctly."""
    task = client.task(task_id)
    terms = client.task_terms(task_id)
    subs = list(client.task_submissions(task_id) if subs is None else subs)
    scores: dict[int, int] = {}
    for sub in subs:
        if sub.status is SubmissionStatus.Accepted:
            score = client.submission_score(sub.submission_id)
            if score is not None:
                scores[sub.submission_id] = score
    by_block: dict[int | None, dict[int, int]] = defaultdict(dict)
    blocks = {s.submission_id: s.validated_block for s in subs}
    for sid, score in scores.items():
        by_block[blocks[sid]][sid] = score
    payouts: dict[int, int] = {}
    for group in by_block.values():
        payouts.update(contribution_payouts(task.reward, terms.floor, group)[0])
    return [Contribution(submission_id=s.submission_id, worker=s.worker, status=s.status.value,
                         score=scores.get(s.submission_id),
                         payout=payouts.get(s.submission_id, 0))
            for s in sorted(subs, key=lambda s: s.submission_id)
            if s.submitted_block is not None]


def load_holdout(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The arrays ``x`` and ``y`` of a holdout ``.npz`` (the shard format: no pickles, nothing
    else in it, bounded before it is allocated)."""
    from decentralml.errors import ModelError
    from decentralml.fl.shards import load_shard

    try:
        return load_shard(path)
    except (ModelError, InvalidInput) as exc:
        raise InvalidInput("holdout", f"{path} is not a holdout set (an .npz with arrays x and "
                           f"y only): {exc}") from None


def check_commitments(terms: TaskTerms, *, spec: ScoringSpec | None = None,
                      holdout: Path | None = None) -> list[str]:
    """What does not match the task's on-chain commitments (empty: everything does)."""
    from decentralml.fl.verification import holdout_commitment

    problems = []
    if spec is not None and terms.scoring_commitment is not None \
            and spec.commitment() != terms.scoring_commitment:
        problems.append(f"the scoring specification hashes to {spec.commitment().hex()}, the "
                        f"task committed to {terms.scoring_commitment.hex()}")
    if holdout is not None and terms.holdout_commitment is not None:
        got = holdout_commitment(holdout)
        if got != terms.holdout_commitment:
            problems.append(f"the holdout {holdout} hashes to {got.hex()}, the task committed "
                            f"to {terms.holdout_commitment.hex()}")
    return problems


def _contribution_terms(client: Client, task_id: int) -> TaskTerms:
    terms: TaskTerms = client.task_terms(task_id)
    if terms.payout is not PayoutMode.ByContribution:
        raise InvalidInput("task_id", f"task {task_id} pays a flat reward",
                           "a task created with pay by contribution; validate this one with "
                           "`decentralml validate`")
    return terms


def _reject_all(reasons: Mapping[int, str]) -> Callable[[Submission], Decision]:
    return lambda sub: Decision(accept=False, reason=reasons[sub.submission_id])


def settle_task(creator: ModelCreator, task_id: int, model: Any, *, spec: ScoringSpec,
                holdout: Path, policy: Policy | None = None) -> Settlement:
    """Judge, score and settle every result ``task_id`` still has pending.

    ``model`` is the global model the task shipped (the updates are measured against it),
    ``spec`` and ``holdout`` must be the ones the task committed to (checked first: a mismatch is
    an :class:`InvalidInput` before anything is sent). ``policy`` rejects what it rejects (and an
    update that cannot be loaded is rejected too); those are rejected in one batch and take no
    part in the scores. The rest is scored together, in submission order, and settled with one
    ``settle_contributions`` call. A result whose content cannot be fetched right now is left
    pending (``skipped``).
    """
    from decentralml.errors import StorageError
    from decentralml.fl import get_weights
    from decentralml.fl.contribution import holdout_evaluator

    client = creator.client
    terms = _contribution_terms(client, task_id)
    problems = check_commitments(terms, spec=spec, holdout=holdout)
    if problems:
        raise InvalidInput("holdout" if "holdout" in problems[0] else "scoring",
                           "; ".join(problems))
    x, y = load_holdout(holdout)
    pending = sorted(client.pending(task_id), key=lambda s: s.submission_id)
    reasons: dict[int, str] = {}
    skipped: list[int] = []
    kept: list[tuple[Submission, Any]] = []
    for sub in pending:
        decision = policy.decide(sub) if policy is not None else Decision(accept=True)
        if decision.accept is False:
            reasons[sub.submission_id] = decision.reason or "rejected by the policy"
            continue
        if decision.accept is None:
            skipped.append(sub.submission_id)
            continue
        try:
            loaded = creator.load_contributor_models([sub], like=model, on_error="raise")
        except StorageError as exc:
            from decentralml.errors import IntegrityError

            if not isinstance(exc, IntegrityError):
                skipped.append(sub.submission_id)
                continue
            reasons[sub.submission_id] = f"unusable result: {exc}"
            continue
        except Exception as exc:  # hostile content: rejected, never fatal for the round
            reasons[sub.submission_id] = f"unusable result: {type(exc).__name__}: {exc}"
            continue
        if not loaded:
            reasons[sub.submission_id] = "the result holds no update"
            continue
        kept.append((sub, loaded[0]))

    values: dict[int, float] = {}
    duplicates: dict[int, int] = {}
    scores: dict[int, int] = {}
    if kept:
        # keyed by submission id, in submission order: the order the results reached the chain
        report = spec.score(get_weights(model), {sub.submission_id: u for sub, u in kept},
                            holdout_evaluator(model, x, y))
        for item in report.contributions:
            sid = int(item.key)
            scores[sid] = item.ppm
            values[sid] = item.value
            if item.duplicate_of is not None:
                duplicates[sid] = int(item.duplicate_of)
    fee = 0
    block: int | None = None
    if reasons:
        rejected = client.validate_task_result(
            submissions=[s for s in pending if s.submission_id in reasons],
            policy=_reject_all(reasons))
        fee += rejected.fee
    payouts: dict[int, int] = {}
    pool = paid = dust = 0
    if scores:
        settled = client.settle_contributions(task_id, scores)
        payouts = dict(settled.payouts)
        pool, paid, dust = settled.pool, settled.paid, settled.dust
        fee += settled.fee
        block = settled.block_number
    contributions = []
    for sub in pending:
        sid = sub.submission_id
        status = ("Accepted" if sid in scores else "Rejected" if sid in reasons
                  else "PendingValidation")
        contributions.append(Contribution(
            submission_id=sid, worker=sub.worker, status=status, score=scores.get(sid),
            value=values.get(sid), duplicate_of=duplicates.get(sid),
            payout=payouts.get(sid, 0), reason=reasons.get(sid, "")))
    return Settlement(task_id=task_id, contributions=contributions, pool=pool, paid=paid,
                      dust=dust, rejected=sorted(reasons), skipped=skipped, fee=fee,
                      block_number=block)


def settle_by_hand(client: Client, task_id: int, scores: Mapping[int, int]) -> Settlement:
    """Settle ``scores`` (submission id -> ppm) as given: the reviewer's own judgement. Checked
    against the chain's bounds before sending (each score within ``MaxScore``, each submission
    pending on this task)."""
    _contribution_terms(client, task_id)
    if not scores:
        raise InvalidInput("scores", "no scores given", "at least one SUBMISSION=PPM")
    most = int(client.constant("MaxScore"))
    for sid, score in scores.items():
        if not 0 <= score <= most:
            raise InvalidInput("scores", f"submission {sid}'s score is {score}",
                               f"0..={most} (the chain's MaxScore, parts per million)")
    pending = {s.submission_id: s for s in client.pending(task_id)}
    for sid in scores:
        if sid not in pending:
            raise InvalidInput("scores", f"submission {sid} is not pending on task {task_id}",
                               f"one of {sorted(pending)}" if pending else "none is pending")
    settled = client.settle_contributions(task_id, dict(scores))
    return Settlement(
        task_id=task_id, contributions=[
            Contribution(submission_id=sid, worker=pending[sid].worker, status="Accepted",
                         score=scores[sid], payout=settled.payouts.get(sid, 0),
                         reason="scored by hand") for sid in sorted(scores)],
        pool=settled.pool, paid=settled.paid, dust=settled.dust, fee=settled.fee,
        block_number=settled.block_number)


def reveal_holdout(store: Store, holdout: Path) -> str:
    """Publish the holdout file (after settlement), pinned; its CID is what contributors pass
    to ``decentralml scores verify --holdout``."""
    cid = store.put(holdout)
    store.pin(cid)
    return cid


def fetch_holdout(store: Store, cid: str, dest: Path) -> Path:
    """A revealed holdout, fetched and verified against its CID (bounded in size)."""
    from decentralml.storage.base import FetchLimits

    if not _CID.match(cid):
        raise InvalidInput("holdout", f"{cid[:80]!r} is neither a file nor a CID")

    target = dest / "holdout.npz"
    if target.exists():
        target.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    store.get(cid, target, limits=FetchLimits(max_bytes=MAX_HOLDOUT_BYTES,
                                              max_file_bytes=MAX_HOLDOUT_BYTES, max_entries=1))
    if not target.is_file():
        raise InvalidInput("holdout", f"{cid} is not a single file")
    return target


class ScoreCheck(BaseModel):
    """One settled result: the score on chain next to the recomputed one."""

    submission_id: int
    worker: str
    chain: int | None
    recomputed: int | None
    value: float | None = None
    duplicate_of: int | None = None
    payout: int = 0

    @property
    def matches(self) -> bool:
        return self.chain == self.recomputed


class Verification(BaseModel):
    """What :func:`verify_task_scores` found: every difference between the chain and a recomputation
    from the committed holdout and specification."""

    task_id: int
    method: str
    holdout_sha256: str
    spec_sha256: str
    checks: list[ScoreCheck]
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def verify_task_scores(client: Client, store: Store, task_id: int, holdout: Path, *,
                  workdir: Path, tolerance: int = 0) -> Verification:
    """Recompute task ``task_id``'s scores the way the creator committed to, and compare.

    The round bundle is fetched and verified by its CID (the global model the updates are
    measured against, and the scoring specification in its manifest), the holdout and the
    specification are checked against the task's commitments, the settled results are fetched
    and verified by their CIDs and loaded (weights only), and the scores are computed again, in
    submission order (:func:`decentralml.fl.verification.verify_scores`). A score further than
    ``tolerance`` ppm from the chain's is a mismatch.
    """
    import shutil

    from decentralml.fl import get_weights, load_contributor_models, load_model
    from decentralml.fl.verification import holdout_commitment
    from decentralml.fl.verification import verify_scores as recompute
    from decentralml.storage.bundle import fetch_bundle

    terms = _contribution_terms(client, task_id)
    task = client.task(task_id)
    bundle_dir = workdir / f"task-{task_id}"
    if bundle_dir.exists():
        shutil.rmtree(bundle_dir)
    bundle = fetch_bundle(store, task.assets_cid, bundle_dir)
    spec = spec_of_manifest(bundle.manifest.metadata, f"task {task_id}'s bundle")
    model_file = bundle.path / "model.keras"
    if not model_file.is_file():
        raise InvalidInput("task", f"task {task_id}'s bundle has no model.keras")
    if terms.holdout_commitment is None:
        raise InvalidInput("task", f"task {task_id} committed to no holdout: there is nothing "
                           "to check the scores against")
    model = load_model(model_file)
    settled = [c for c in settled_contributions(client, task_id) if c.score is not None]
    subs = {s.submission_id: s for s in client.task_submissions(task_id)}
    results = workdir / f"results-{task_id}"
    if results.exists():
        shutil.rmtree(results)
    mismatches = check_commitments(terms, spec=spec, holdout=holdout)
    if not settled:
        mismatches.append(f"task {task_id} has no settled results to check")
        return Verification(task_id=task_id, method=spec.method,
                            holdout_sha256=holdout_commitment(holdout).hex(),
                            spec_sha256=spec.commitment().hex(), checks=[],
                            mismatches=mismatches)
    updates = load_contributor_models([subs[c.submission_id] for c in settled], store,
                                      like=model, workdir=results, on_error="raise")
    found = recompute(holdout, spec, get_weights(model),
                      {c.submission_id: u for c, u in zip(settled, updates, strict=True)},
                      {c.submission_id: c.score for c in settled if c.score is not None},
                      model=model, holdout_commitment=terms.holdout_commitment,
                      scoring_commitment=terms.scoring_commitment, tolerance_ppm=tolerance)
    mine = ({c.key: c for c in found.report.contributions} if found.report is not None
            else {})
    checks = []
    for c in settled:
        item = mine.get(c.submission_id)
        checks.append(ScoreCheck(
            submission_id=c.submission_id, worker=c.worker, chain=c.score,
            recomputed=None if item is None else item.ppm,
            value=None if item is None else item.value,
            duplicate_of=None if item is None or item.duplicate_of is None
            else int(item.duplicate_of), payout=c.payout))
    for m in found.mismatches:
        mismatches.append(f"submission {m.key}: the chain's score is "
                          f"{'none' if m.onchain is None else f'{m.onchain} ppm'}, recomputed "
                          f"{'none' if m.recomputed is None else f'{m.recomputed} ppm'}")
    return Verification(task_id=task_id, method=spec.method,
                        holdout_sha256=holdout_commitment(holdout).hex(),
                        spec_sha256=spec.commitment().hex(), checks=checks,
                        mismatches=mismatches)

"""A multi-round federated job on chain: every round is a task carrying the current global model.

Round r: the creator saves the global model into a copy of the contributor bundle, publishes it as
a task with ``slots`` assignments, waits (with a timeout) for results, validates them with the
round's policy, federates the accepted updates, evaluates the new global model on a holdout set,
and closes the task so unspent escrow comes back. The job stops after ``rounds`` rounds or as
soon as the holdout accuracy reaches ``target_accuracy``.

The strategy (an aggregator or a registry name such as ``"fedadam"``) is one object for the whole
job, so server optimizers carry their momentum and moments from round to round. FedProx's ``mu``
and client-side DP go into each round's ``config.json`` (``task_options``); with DP, client or
server side, every round's task metadata states the job's (epsilon, delta) and the report gives
the epsilon spent after each round.

With a :class:`~decentralml.roles.job_store.JobDir` the job keeps its history on disk after every
phase (publish, validate, federate, close) and can be resumed after the creator's process died:
a round whose task exists is adopted (found by its question, which names the job and the round,
if the process died before recording the id), validation only ever touches results the chain
still shows as pending, and a closed round is never reopened, so nothing is published or paid
twice. The strategy's server-side state (``get_state``/``set_state``) is saved with each round
and restored on resume.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from decentralml.chain.types import SubmissionStatus, TaskStatus, TaskType, ValidationStrategy
from decentralml.errors import ChainTimeout, InvalidInput
from decentralml.fl.privacy import PrivacyGuarantee
from decentralml.roles.contribution import Contribution, Settlement
from decentralml.roles.creator import ModelCreator, PublishedTask

if TYPE_CHECKING:
    from decentralml.chain.policies import Policy
    from decentralml.fl.base import Aggregator
    from decentralml.fl.task_options import TaskOptions
    from decentralml.roles.contribution import ContributionPay
    from decentralml.roles.job_store import ContributorRecord, JobDir, JobState, RoundRecord

#: File name of the global model inside each round's bundle (the contributor's train.py loads it).
MODEL_FILE = "model.keras"


class RoundReport(BaseModel):
    """One round: what was paid and how good the federated model became."""

    round: int
    task_id: int
    submitted: int
    accepted: int
    rejected: int
    paid: int
    refund: int
    accuracy: float | None
    seconds: float
    #: the epsilon spent so far (at the job's delta) when the job is differentially private
    epsilon: float | None = None
    #: where the round's time went: publish (pack, store, create_task), contributors (waiting
    #: for results), validate, federate (load, aggregate, evaluate), close
    timings: dict[str, float] = {}
    #: on a job paid by contribution: each result's score and payout (from the chain)
    contributions: list[Contribution] = []


class _Laps:
    """Time between successive calls, by name."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._mark = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self.times[name] = now - self._mark
        self._mark = now


class FederatedJobReport(BaseModel):
    rounds: list[RoundReport]
    final_accuracy: float | None
    stopped_because: str
    #: the strategy as the registry names it (``fedadam``), or its class name
    strategy: str = ""
    #: the DP guarantees of the rounds actually run (client side, server side, or both)
    privacy: list[PrivacyGuarantee] = []

    @property
    def total_paid(self) -> int:
        return sum(r.paid for r in self.rounds)


def run_federated_job(
    creator: ModelCreator, model: Any, bundle_dir: Path, *, rounds: int, slots: int,
    reward: int, x_test: Any, y_test: Any, question: str = "Train the global model",
    target_accuracy: float | None = None, round_timeout: float = 600.0,
    strategy: Aggregator | str | None = None,
    validation: Callable[[int], tuple[ValidationStrategy, Policy]] | None = None,
    on_round_published: Callable[[int, PublishedTask], None] | None = None,
    task_options: TaskOptions | None = None, dp_delta: float = 1e-5,
    job: JobDir | None = None,
    on_progress: Callable[[str, dict[str, Any]], None] | None = None,
    shards: Path | None = None,
    pay: ContributionPay | None = None,
) -> tuple[Any, FederatedJobReport]:
    """Run the job; returns the final global model and a per-round report.

    ``strategy`` is an aggregator or a name for :func:`decentralml.fl.strategy_from_name`
    (default FedAvg). ``validation(round)`` picks the task's on-chain strategy and the reviewer's
    policy for that round (default: AutoAccept on chain). ``on_round_published`` is called once a
    round's task is on chain, e.g. to notify or start contributors. ``task_options`` (FedProx's
    ``proximal_mu``, client-side ``dp``) are written into each round's ``config.json`` for the
    bundle to apply; ``dp_delta`` is the delta client-side DP is accounted at. ``job`` persists
    the history and makes the call resumable (call it again with the same ``job`` after a crash:
    ``rounds``, ``slots`` and ``reward`` must be the job spec's). ``on_progress(event, data)``
    reports each phase. ``shards`` runs every round on rented compute: the creator's data, one
    shard directory per slot (``slots`` of them), shipped with each round's task (stored once:
    the same shard always packs to the same CID). ``pay`` pays every round by contribution
    instead of a flat reward (:mod:`decentralml.roles.contribution`): the round's policy rejects,
    the rest is scored on ``pay.holdout`` and settled in one call.
    """
    from decentralml.chain.policies import AutoAccept
    from decentralml.fl import clone_model, evaluate, load_model, save_model
    from decentralml.fl.federate import resolve_strategy

    if rounds < 1:
        raise InvalidInput("rounds", f"is {rounds}", ">= 1")
    if target_accuracy is not None and not 0 < target_accuracy <= 1:
        raise InvalidInput("target_accuracy", f"is {target_accuracy}", "0 < x <= 1")
    if not (bundle_dir / "start_task.sh").is_file():
        raise InvalidInput("bundle_dir", f"{bundle_dir} has no start_task.sh")
    from decentralml.storage.preflight import declared_entry

    declared_entry(bundle_dir)  # a malformed "entry" is refused before round 1 is paid for
    if shards is not None:
        from decentralml.storage.shards import shard_dirs

        count = len(shard_dirs(shards))
        if count != slots:
            raise InvalidInput("slots", f"is {slots}, but {shards} holds {count} shards",
                               f"{count}: one slot per shard")
    chosen = resolve_strategy(strategy)
    # The job's own copy, federated in place round after round: the caller's model is left as
    # it was, and no round pays for rebuilding one.
    model = clone_model(model)
    guarantees = _job_privacy(chosen, task_options, dp_delta)  # checked before anything runs
    planned = [g(rounds) for g in guarantees]
    progress = on_progress or (lambda event, data: None)
    state = job.load() if job is not None else None
    if state is not None:
        spec = state.spec
        question = spec.question
        if (spec.rounds, spec.slots, spec.reward) != (rounds, slots, reward):
            raise InvalidInput("rounds", "rounds, slots and reward must be the job's own "
                               f"({spec.rounds}, {spec.slots}, {spec.reward})")
    if job is not None and state is not None and state.initial_accuracy is None:
        save_model(model, job.model_path(0))
        state.initial_accuracy = float(evaluate(model, x_test, y_test)["accuracy"])
        job.save(state)

    def round_question(r: int) -> str:
        if state is not None:
            return state.spec.round_question(r)
        return f"{question} (round {r}/{rounds})"

    # What every round's bundle says its job is: a contributor keeps one warm task host per
    # creator, job and code (docs/security.md), so it must not change between rounds, and it
    # must differ between two jobs of this creator.
    job_id = (f"{state.spec.name}:{state.spec.genesis_hash[:18]}" if state is not None
              else f"{question}:{uuid.uuid4().hex}")

    reports: list[RoundReport] = []
    accuracy: float | None = None if state is None else state.initial_accuracy
    stopped = f"ran {rounds} rounds"
    for r in range(1, rounds + 1):
        record = _record(state, r)
        if record is not None and record.phase == "closed":
            # done before the restart: take its model and strategy state, report it again
            if record.accepted and job is not None and job.model_path(r).is_file():
                model = load_model(job.model_path(r))
                _restore_strategy(chosen, job, r)
            accuracy = record.accuracy
            reports.append(_report_of(record))
            progress("round-resumed", {"round": r, "task_id": record.task_id,
                                       "accuracy": accuracy, "phase": "closed"})
            if target_accuracy is not None and accuracy is not None \
                    and accuracy >= target_accuracy:
                stopped = f"reached target accuracy {target_accuracy} in round {r}"
                break
            continue
        started = time.monotonic()
        lap = _Laps()
        strategy_on_chain, policy = (validation(r) if validation is not None
                                     else (ValidationStrategy.AutoAccept, AutoAccept()))
        if pay is not None and strategy_on_chain is ValidationStrategy.AutoAccept:
            strategy_on_chain = ValidationStrategy.CustomAccept  # the chain pays on settlement
        published: PublishedTask | None = None
        if record is not None and record.task_id is not None:
            task_id = record.task_id
            progress("round-resumed", {"round": r, "task_id": task_id, "phase": record.phase})
        else:
            adopted = _adopt(creator, round_question(r)) if record is not None else None
            if adopted is not None:
                task_id = adopted
                progress("round-adopted", {"round": r, "task_id": task_id})
            else:
                round_dir = (job.round_bundle(r) if job is not None
                             else creator.workdir / "rounds" / f"round-{r}")
                if round_dir.exists():
                    shutil.rmtree(round_dir)
                shutil.copytree(bundle_dir, round_dir)
                save_model(model, round_dir / MODEL_FILE)
                if task_options is not None:
                    from decentralml.fl.task_options import write_task_options

                    write_task_options(round_dir, task_options)
                metadata: dict[str, Any] = {"job": job_id}
                if planned:
                    metadata["privacy"] = [p.model_dump() for p in planned]
                if pay is not None:
                    metadata.update(pay.metadata())
                published = creator.publish(
                    round_dir, question=round_question(r), reward=reward,
                    task_type=TaskType.ModelContributor, max_assignments=slots,
                    validation_strategy=strategy_on_chain, metadata=metadata, shards=shards,
                    terms=None if pay is None else pay.terms())
                task_id = published.task_id
            if record is not None and job is not None and state is not None:
                record.task_id = task_id
                record.phase = "published"
                record.published_at = time.time()
                job.save(state)
            lap("publish")
            progress("round-published", {"round": r, "rounds": rounds, "task_id": task_id})
            if on_round_published is not None and published is not None:
                on_round_published(r, published)
        deadline = (record.published_at if record is not None and record.published_at
                    else time.time()) + round_timeout
        task = creator.client.task(task_id)
        rejected_now = 0
        settlement: Settlement | None = None
        if task.status is TaskStatus.Open:
            early = _DecidedEarly(policy)
            try:
                submitted = creator.wait_for_results(task_id, slots,
                                                     timeout=max(0.0, deadline - time.time()),
                                                     on_arrival=early.arrived)
            except ChainTimeout:
                submitted = creator.results(task_id)  # go on with whatever arrived
            lap("contributors")
            progress("round-results", {"round": r, "task_id": task_id,
                                       "submitted": len(submitted)})
            if pay is None:
                rejected_now = len(creator.validate(task_id, early).rejected)
            else:
                from decentralml.roles.contribution import settle_task

                settlement = settle_task(creator, task_id, model, spec=pay.spec,
                                         holdout=pay.holdout, policy=early)
                rejected_now = len(settlement.rejected)
        lap("validate")
        subs = creator.results(task_id)
        accepted = [s for s in subs if s.status is SubmissionStatus.Accepted]
        contributions = (_contributions(creator, task_id, subs, settlement) if pay is not None
                         else [])
        paid = (sum(c.payout for c in contributions) if pay is not None
                else len(accepted) * reward)
        if record is not None and job is not None and state is not None:
            record.phase = "validated"
            job.save(state)
        progress("round-validated", {"round": r, "task_id": task_id, "accepted": len(accepted),
                                     "paid": paid})
        contributors = (_score_contributors(creator, model, subs, reward, x_test, y_test)
                        if job is not None else [])
        if contributions:
            _add_scores(contributors, contributions)
        if accepted:
            model = (creator.federate(task_id, model, chosen, in_place=True) if pay is None
                     else _federate_contributors(creator, model, chosen, accepted,
                                                 contributions))
            accuracy = float(evaluate(model, x_test, y_test)["accuracy"])
            if job is not None:
                save_model(model, job.model_path(r))
                get_state = getattr(chosen, "get_state", None)
                if get_state is not None:
                    job.save_strategy_state(r, get_state())
        lap("federate")
        if record is not None and job is not None and state is not None:
            record.phase = "federated"
            record.accuracy = accuracy
            job.save(state)
        task = creator.client.task(task_id)
        if task.status is TaskStatus.Open:
            closed = creator.close(task_id)
            refund = int(getattr(closed, "refund", 0) or 0)
        else:  # closed before the restart: what the escrow gave back
            refund = task.reward * (task.max_assignments - task.accepted_results)
        lap("close")
        round_report = RoundReport(
            round=r, task_id=task_id,
            submitted=sum(1 for s in subs if s.status in _SUBMITTED),
            accepted=len(accepted), rejected=max(rejected_now, sum(
                1 for s in subs if s.status is SubmissionStatus.Rejected)),
            paid=paid, refund=refund, accuracy=accuracy,
            seconds=time.monotonic() - started, timings=lap.times,
            epsilon=min((g(r).epsilon for g in guarantees), default=None),
            contributions=contributions)
        reports.append(round_report)
        if record is not None and job is not None and state is not None:
            record.phase = "closed"
            for key in ("submitted", "accepted", "rejected", "paid", "refund", "accuracy",
                        "timings"):
                setattr(record, key, getattr(round_report, key))
            record.seconds += round_report.seconds
            record.contributors = contributors
            job.save(state)
            _write_report(job, state)
        progress("round-closed", round_report.model_dump(mode="json"))
        if target_accuracy is not None and accuracy is not None and accuracy >= target_accuracy:
            stopped = f"reached target accuracy {target_accuracy} in round {r}"
            break
    if job is not None and state is not None:
        state.status = "done"
        state.stopped_because = stopped
        job.save(state)
        _write_report(job, state)
    ran = len(reports)
    return model, FederatedJobReport(rounds=reports, final_accuracy=accuracy,
                                     stopped_because=stopped, strategy=_strategy_name(chosen),
                                     privacy=[g(ran) for g in guarantees])


class _DecidedEarly:
    """The round's policy, deciding on each result as it arrives (while the round still waits
    for the slowest contributor) instead of all at once afterwards. A decision is kept only
    when it is one (accept or reject); an undecided or failing one is made again at validation.
    """

    def __init__(self, policy: Policy) -> None:
        from decentralml.chain.policies import as_policy

        self.policy = as_policy(policy)
        self.made: dict[int, Any] = {}

    def arrived(self, subs: list[Any]) -> None:
        for sub in subs:
            if sub.status is not SubmissionStatus.PendingValidation \
                    or sub.submission_id in self.made:
                continue
            try:
                decision = self.policy.decide(sub)
            except Exception:  # decided (and reported) at validation, as without this
                continue
            if decision.accept is not None:
                self.made[sub.submission_id] = decision

    def decide(self, submission: Any) -> Any:
        made = self.made.pop(submission.submission_id, None)
        return made if made is not None else self.policy.decide(submission)


def _write_report(job: JobDir, state: JobState) -> None:
    """The job's report: its records as JSON and their picture beside them."""
    from decentralml.roles.job_plot import plot_job

    job.write_report(state)
    plot_job(state, job.report_png)


def _strategy_name(strategy: Any) -> str:
    """The registry's name for the report, or a label (the class name) for a strategy the
    registry does not build: a label only, never looked up."""
    from decentralml.fl.registry import strategy_name

    return strategy_name(strategy) or type(strategy).__name__


def _job_privacy(strategy: Any, options: TaskOptions | None,
                 delta: float) -> list[Callable[[int], PrivacyGuarantee]]:
    """For each DP mechanism of the job, the guarantee after a given number of rounds."""
    from functools import cache

    from decentralml.fl.dp_fedavg import DPFedAvg
    from decentralml.fl.privacy import privacy_guarantee

    out: list[Callable[[int], PrivacyGuarantee]] = []
    if options is not None and options.dp is not None and options.dp.noise_multiplier > 0:
        dp = options.dp

        @cache
        def client(rounds: int) -> PrivacyGuarantee:
            return privacy_guarantee(side="client", clipping_norm=dp.clipping_norm,
                                     noise_multiplier=dp.noise_multiplier, rounds=rounds,
                                     delta=delta)

        client(1)  # fail now (bad delta, no dp-accounting) rather than after round 1
        out.append(client)
    if isinstance(strategy, DPFedAvg) and strategy.noise_multiplier > 0:
        done = strategy.steps  # a resumed strategy has spent budget in earlier rounds already

        @cache
        def server(rounds: int) -> PrivacyGuarantee:
            return strategy.guarantee(done + rounds)

        server(1)
        out.append(server)
    return out


_SUBMITTED = (SubmissionStatus.PendingValidation, SubmissionStatus.Accepted,
              SubmissionStatus.Rejected)


def _record(state: JobState | None, r: int) -> RoundRecord | None:
    """Round ``r``'s record in ``state`` (created empty the first time), None without a job."""
    if state is None:
        return None
    from decentralml.roles.job_store import RoundRecord

    for record in state.rounds:
        if record.round == r:
            return record
    record = RoundRecord(round=r)
    state.rounds.append(record)
    return record


def _adopt(creator: ModelCreator, question: str) -> int | None:
    """A task of ours with exactly this question: a round published just before a crash."""
    address = creator.client.address
    found = [t for t in creator.client.tasks(creator=address, status=TaskStatus.Open)
             if t.question == question]
    return found[-1].task_id if found else None


def _restore_strategy(strategy: Any, job: JobDir, r: int) -> None:
    set_state = getattr(strategy, "set_state", None)
    saved = job.load_strategy_state(r)
    if set_state is not None and saved is not None:
        set_state(saved)


def _report_of(record: RoundRecord) -> RoundReport:
    return RoundReport(round=record.round, task_id=record.task_id or 0,
                       submitted=record.submitted, accepted=record.accepted,
                       rejected=record.rejected, paid=record.paid, refund=record.refund,
                       accuracy=record.accuracy, seconds=record.seconds,
                       timings=record.timings)


def _score_contributors(creator: ModelCreator, model: Any, subs: list[Any], reward: int,
                        x_test: Any, y_test: Any) -> list[ContributorRecord]:
    """Each submitted result's own holdout accuracy (the per-contributor curve of the plot)."""
    from decentralml.fl import clone_model, evaluate
    from decentralml.roles.job_store import ContributorRecord

    names = _dev_names(creator.client)
    out = []
    for sub in subs:
        if sub.status not in _SUBMITTED:
            continue
        accuracy: float | None = None
        try:
            loaded = creator.load_contributor_models([sub], like=model)
            if loaded:
                accuracy = float(evaluate(clone_model(model, loaded[0].arrays()),
                                          x_test, y_test)["accuracy"])
        except Exception:  # unusable content: recorded as "no accuracy", never fatal here
            accuracy = None
        out.append(ContributorRecord(
            submission_id=sub.submission_id, worker=sub.worker, name=names.get(sub.worker),
            status=sub.status.value,
            num_examples=sub.num_examples, accuracy=accuracy,
            reward=reward if sub.status is SubmissionStatus.Accepted else 0))
    return out


def _dev_names(client: Any) -> dict[str, str]:
    """Dev accounts' addresses -> names (``Bob``) on a dev chain; nothing elsewhere."""
    if client.chain_type not in ("Development", "Local"):
        return {}
    from decentralml.accounts import DEV_ACCOUNTS

    return {client.resolve_address(f"//{name}"): name for name in DEV_ACCOUNTS}


def _contributions(creator: ModelCreator, task_id: int, subs: list[Any],
                   settlement: Settlement | None) -> list[Contribution]:
    """Each result's score and payout as the chain has them (the settlement of this run, or of
    the run before a restart), with the values, duplicates and reasons this run's scoring
    found."""
    from decentralml.roles.contribution import settled_contributions

    out = settled_contributions(creator.client, task_id, subs)
    found = {c.submission_id: c for c in settlement.contributions} if settlement else {}
    return [c.model_copy(update={"value": found[c.submission_id].value,
                                 "duplicate_of": found[c.submission_id].duplicate_of,
                                 "reason": found[c.submission_id].reason})
            if c.submission_id in found else c for c in out]


def _add_scores(records: list[ContributorRecord], contributions: list[Contribution]) -> None:
    """The job's per-contributor records, paid by score rather than a flat reward."""
    by_id = {c.submission_id: c for c in contributions}
    for record in records:
        c = by_id.get(record.submission_id)
        if c is not None:
            record.reward = c.payout
            record.score = c.score
            record.value = c.value
            record.duplicate_of = c.duplicate_of


def _federate_contributors(creator: ModelCreator, model: Any, strategy: Any,
                           accepted: list[Any], contributions: list[Contribution]) -> Any:
    """A round paid by contribution aggregates the results that contributed (score > 0, in
    submission order): a free rider's unchanged model, a copy or a harmful update is paid
    nothing and does not move the model either. When nobody scored above 0, every accepted
    result is aggregated, as in a flat round. Anyone can recompute it from the chain's Scores."""
    from decentralml.fl import federated_contributors_model

    useful = {c.submission_id for c in contributions if c.score}
    chosen = [s for s in accepted if s.submission_id in useful] or accepted
    updates = creator.load_contributor_models(chosen, like=model)
    if not updates:
        raise InvalidInput("task_id", "no accepted result could be loaded to federate")
    return federated_contributors_model(model, updates, strategy, in_place=True)

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
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from decentralml.chain.types import TaskType, ValidationStrategy
from decentralml.errors import ChainTimeout, InvalidInput
from decentralml.fl.privacy import PrivacyGuarantee
from decentralml.roles.creator import ModelCreator, PublishedTask

if TYPE_CHECKING:
    from decentralml.chain.policies import Policy
    from decentralml.fl.base import Aggregator
    from decentralml.fl.task_options import TaskOptions

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
) -> tuple[Any, FederatedJobReport]:
    """Run the job; returns the final global model and a per-round report.

    ``strategy`` is an aggregator or a name for :func:`decentralml.fl.strategy_from_name`
    (default FedAvg). ``validation(round)`` picks the task's on-chain strategy and the reviewer's
    policy for that round (default: AutoAccept on chain). ``on_round_published`` is called once a
    round's task is on chain, e.g. to notify or start contributors. ``task_options`` (FedProx's
    ``proximal_mu``, client-side ``dp``) are written into each round's ``config.json`` for the
    bundle to apply; ``dp_delta`` is the delta client-side DP is accounted at.
    """
    from decentralml.chain.policies import AutoAccept
    from decentralml.fl import evaluate, save_model
    from decentralml.fl.federate import resolve_strategy

    if rounds < 1:
        raise InvalidInput("rounds", f"is {rounds}", ">= 1")
    if target_accuracy is not None and not 0 < target_accuracy <= 1:
        raise InvalidInput("target_accuracy", f"is {target_accuracy}", "0 < x <= 1")
    if not (bundle_dir / "start_task.sh").is_file():
        raise InvalidInput("bundle_dir", f"{bundle_dir} has no start_task.sh")
    chosen = resolve_strategy(strategy)
    guarantees = _job_privacy(chosen, task_options, dp_delta)  # checked before anything runs
    planned = [g(rounds) for g in guarantees]
    reports: list[RoundReport] = []
    accuracy: float | None = None
    stopped = f"ran {rounds} rounds"
    for r in range(1, rounds + 1):
        started = time.monotonic()
        lap = _Laps()
        round_dir = creator.workdir / "rounds" / f"round-{r}"
        if round_dir.exists():
            shutil.rmtree(round_dir)
        shutil.copytree(bundle_dir, round_dir)
        save_model(model, round_dir / MODEL_FILE)
        if task_options is not None:
            from decentralml.fl.task_options import write_task_options

            write_task_options(round_dir, task_options)
        metadata = ({"privacy": [p.model_dump() for p in planned]} if planned else None)
        strategy_on_chain, policy = (validation(r) if validation is not None
                                     else (ValidationStrategy.AutoAccept, AutoAccept()))
        published = creator.publish(
            round_dir, question=f"{question} (round {r}/{rounds})", reward=reward,
            task_type=TaskType.ModelContributor, max_assignments=slots,
            validation_strategy=strategy_on_chain, metadata=metadata)
        lap("publish")
        if on_round_published is not None:
            on_round_published(r, published)
        try:
            submitted = creator.wait_for_results(published.task_id, slots, timeout=round_timeout)
        except ChainTimeout:
            submitted = creator.results(published.task_id)  # go on with whatever arrived
        lap("contributors")
        report = creator.validate(published.task_id, policy)
        lap("validate")
        accepted = creator.accepted_results(published.task_id)
        if accepted:
            model = creator.federate(published.task_id, model, chosen)
            accuracy = float(evaluate(model, x_test, y_test)["accuracy"])
        lap("federate")
        closed = creator.close(published.task_id)
        lap("close")
        reports.append(RoundReport(
            round=r, task_id=published.task_id, submitted=len(submitted),
            accepted=len(accepted), rejected=len(report.rejected),
            paid=len(accepted) * reward, refund=int(getattr(closed, "refund", 0) or 0),
            accuracy=accuracy, seconds=time.monotonic() - started, timings=lap.times,
            epsilon=min((g(r).epsilon for g in guarantees), default=None)))
        if target_accuracy is not None and accuracy is not None and accuracy >= target_accuracy:
            stopped = f"reached target accuracy {target_accuracy} in round {r}"
            break
    ran = len(reports)
    return model, FederatedJobReport(rounds=reports, final_accuracy=accuracy,
                                     stopped_because=stopped, strategy=_strategy_name(chosen),
                                     privacy=[g(ran) for g in guarantees])


def _strategy_name(strategy: Any) -> str:
    from decentralml.fl.registry import STRATEGIES

    for name, (_module, cls) in STRATEGIES.items():
        if type(strategy).__name__ == cls:
            return name
    return type(strategy).__name__


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

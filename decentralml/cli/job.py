"""``decentralml job``: multi-round federated jobs from the command line (see docs/jobs.md).

``job run`` starts a job and follows it round by round; ``job resume`` continues one whose
process died; ``job show`` and ``job list`` read the history back afterwards, ``show`` putting
what the job recorded next to what the chain says.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from decentralml.cli.app import App, pass_app, table
from decentralml.cli.contribution import pay_options
from decentralml.errors import InvalidInput

if TYPE_CHECKING:
    from decentralml.amounts import Token


def _root(app: App, workdir: Path | None) -> Path:
    from decentralml.roles.job_store import jobs_root

    return jobs_root(app.settings.home, workdir)


def _strategy(spec: str) -> Any:
    """The aggregation strategy from its command-line spec (``fedadam:eta=0.01``)."""
    from decentralml.fl.registry import strategy_from_spec

    return strategy_from_spec(spec)


def _units(app: App, planck: int, token: Token | None) -> str:
    """An amount in the token of the job's chain (recorded when it started, so ``job list``
    needs no node); a job recorded without one is shown in the node's token, else in planck."""
    from decentralml.errors import ConfigurationError

    try:
        return app.amount(planck, token)
    except ConfigurationError:
        return f"{planck} planck"


def _progress(app: App):  # type: ignore[no-untyped-def]
    """Live per-round lines on stderr: text for people, JSON lines with ``--json``."""
    def show(event: str, data: dict[str, Any]) -> None:
        r = data.get("round")
        if event == "round-published":
            app.info(f"round {r}/{data['rounds']}: task {data['task_id']} published; waiting "
                     "for results")
        elif event == "round-adopted":
            app.info(f"round {r}: task {data['task_id']} already on chain; adopted")
        elif event == "round-resumed":
            app.info(f"round {r}: resuming task {data['task_id']} ({data['phase']})")
        elif event == "round-results":
            app.info(f"round {r}: {data['submitted']} result(s) in")
        elif event == "round-validated":
            app.info(f"round {r}: {data['accepted']} accepted, paid "
                     f"{app.amount(int(data['paid']))}")
        elif event == "round-closed":
            if data.get("contributions"):
                _print_contributions(app, data)
            acc = data.get("accuracy")
            app.info(f"round {r}: closed, refund {app.amount(int(data['refund']))}; federated "
                     f"accuracy {'-' if acc is None else f'{acc:.3f}'}")
    return app.progress(show)


def _run(app: App, job_dir: Any) -> None:
    """Run (or continue) the job in ``job_dir`` with the spec it recorded."""
    import numpy as np

    from decentralml.chain.policies import AutoAccept
    from decentralml.chain.types import ValidationStrategy
    from decentralml.cli.app import parse_policy
    from decentralml.fl import load_model
    from decentralml.roles.creator import ModelCreator
    from decentralml.roles.federated_job import run_federated_job
    from decentralml.roles.policies import holdout_policy

    state = job_dir.load()
    spec = state.spec
    client = app.client()
    if spec.genesis_hash and spec.genesis_hash != client.genesis_hash:
        raise InvalidInput("node", f"job {spec.name!r} ran on chain {spec.genesis_hash[:18]}..., "
                           f"this node is {client.genesis_hash[:18]}...")
    if client.address != spec.creator:
        raise InvalidInput("account", f"job {spec.name!r} belongs to {spec.creator}")
    creator = ModelCreator(client, app.store(), workdir=job_dir.path / "creator")
    model = load_model(job_dir.model_path(0))
    with np.load(job_dir.path / "holdout.npz", allow_pickle=False) as data:
        x, y = data["x"], data["y"]
    kind, threshold = parse_policy(spec.validation)

    scoring: list[Any] = []  # one holdout policy for the job (building its scorer costs)

    def validation(r: int) -> tuple[ValidationStrategy, Any]:
        if kind == "auto":
            return ValidationStrategy.AutoAccept, AutoAccept()
        if not scoring:
            scoring.append(holdout_policy(creator, model, x, y, min_accuracy=threshold))
        return ValidationStrategy.CustomAccept, scoring[0]

    run_federated_job(
        creator, model, job_dir.path / "bundle", rounds=spec.rounds, slots=spec.slots,
        reward=spec.reward, x_test=x, y_test=y, question=spec.question,
        target_accuracy=spec.target_accuracy, round_timeout=spec.round_timeout,
        strategy=_strategy(spec.strategy), validation=validation, job=job_dir,
        on_progress=_progress(app), shards=job_dir.path / "shards" if spec.shards else None,
        pay=_job_pay(spec, job_dir))
    state = job_dir.load()
    data = {"name": spec.name, "status": state.status, "stopped_because": state.stopped_because,
            "final_accuracy": state.final_accuracy, "total_paid": state.total_paid,
            "report": str(job_dir.report_json), "plot": str(job_dir.report_png),
            "rounds": [r.model_dump(mode="json") for r in state.rounds]}
    app.emit(data, lambda c: c.print(
        f"job {spec.name}: {state.stopped_because}; final accuracy "
        f"{_fmt(state.final_accuracy)}, paid {_units(app, state.total_paid, spec.token)}\n"
        f"report: {job_dir.report_json}\nplot:   {job_dir.report_png}"))


def _job_pay(spec: Any, job_dir: Any) -> Any:
    """The job's pay by contribution (None: a flat reward per accepted result)."""
    if spec.payout != "contribution":
        return None
    from decentralml.fl.contribution import ScoringSpec
    from decentralml.roles.contribution import ContributionPay

    return ContributionPay(floor=spec.floor, spec=ScoringSpec(**spec.scoring),
                           holdout=job_dir.path / "holdout.npz")


def _print_contributions(app: App, data: dict[str, Any]) -> None:
    """A round paid by contribution: who scored what and was paid what."""
    for c in data["contributions"]:
        score = "-" if c["score"] is None else f"{c['score'] / 10_000:.2f}%"
        copy = "" if c.get("duplicate_of") is None else f" (copy of {c['duplicate_of']})"
        app.info(f"round {data['round']}: {app.name(c['worker'])} (submission "
                 f"{c['submission_id']}): {c['status']}, score {score}{copy}, paid "
                 f"{app.amount(int(c['payout']))}")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


@click.group("job")
def job() -> None:
    """Multi-round federated jobs: run, resume, show, list."""


_workdir_option = click.option(
    "--workdir", type=click.Path(file_okay=False, path_type=Path),
    help="Directory holding the jobs [default: $DECENTRALML_HOME/jobs].")


@job.command("run")
@click.argument("name")
@click.option("--bundle", "bundle_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The contributor bundle (start_task.sh; the global model is added as "
                   "model.keras each round).")
@click.option("--model", "model_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The initial global model (.keras, loaded with safe_mode).")
@click.option("--holdout", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An .npz with arrays x and y: the creator's holdout set.")
@click.option("--rounds", type=click.IntRange(1, 1000), default=3, show_default=True)
@click.option("--slots", type=click.IntRange(min=1), default=None,
              help="Contributors per round (max_assignments, at most the chain's "
                   "MaxAssignments) [default: 2, or one per shard with --shards].")
@click.option("--reward", required=True, help="Reward per accepted result, in UNIT.")
@click.option("--validation", default="auto", show_default=True,
              help="auto (paid on submission) or min-accuracy=X (holdout policy).")
@click.option("--target-accuracy", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Stop early once the federated holdout accuracy reaches this.")
@click.option("--round-timeout", type=click.FloatRange(min=1), default=600.0,
              show_default=True, help="Seconds a round waits for its results.")
@click.option("--strategy", default="fedavg", show_default=True,
              help="NAME[:key=value,...] as for `federate` (fedavg, fedadam, median, ...).")
@click.option("--question", default="Train the global model", show_default=True)
@click.option("--shards", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Rent compute: ship your own data, one subdirectory per slot; every round, "
                   "each contributor trains on the shard the chain assigns it (and sees it).")
@pay_options
@_workdir_option
@pass_app
def job_run(app: App, name: str, bundle_dir: Path, model_path: Path, holdout: Path,
            rounds: int, slots: int | None, reward: str, validation: str,
            target_accuracy: float | None, round_timeout: float, strategy: str, question: str,
            shards: Path | None, workdir: Path | None, **pay_args: Any) -> None:
    """Start federated job NAME and follow it round by round."""
    import numpy as np

    from decentralml.cli.app import parse_policy
    from decentralml.roles.job_store import JobSpec, JobStore, check_job_name
    from decentralml.storage.shards import shard_dirs

    check_job_name(name)
    parse_policy(validation)
    if validation == "manual":
        raise InvalidInput("validation", "a job validates unattended", "auto or min-accuracy=X")
    if not (bundle_dir / "start_task.sh").is_file():
        raise InvalidInput("bundle", f"{bundle_dir} has no start_task.sh")
    with np.load(holdout, allow_pickle=False) as data:
        if "x" not in data.files or "y" not in data.files:
            raise InvalidInput("holdout", f"{holdout} needs arrays x and y")
    _strategy(strategy)
    count = len(shard_dirs(shards)) if shards is not None else None
    if slots is None:
        slots = count if count is not None else 2
    elif count is not None and slots != count:
        raise InvalidInput("slots", f"is {slots}, but {shards} holds {count} shards",
                           f"{count}: one slot per shard")
    client = app.client()
    amount = app.parse_amount(reward, "reward")
    from decentralml.cli.contribution import contribution_pay

    pay = contribution_pay(app, reward=amount, holdout=holdout, **pay_args)
    most = client.limits.max_assignments
    if slots > most:
        raise InvalidInput("slots", f"is {slots}", f"1..={most}, the chain's MaxAssignments")
    store = JobStore(_root(app, workdir))
    spec = JobSpec(name=name, question=question, rounds=rounds, slots=slots, reward=amount,
                   validation=validation, target_accuracy=target_accuracy,
                   round_timeout=round_timeout, strategy=strategy, bundle_dir=str(bundle_dir),
                   creator=str(client.address), genesis_hash=client.genesis_hash,
                   token=client.token, shards=shards is not None,
                   payout="flat" if pay is None else "contribution",
                   floor=0 if pay is None else pay.floor,
                   scoring=None if pay is None else pay.spec.model_dump(mode="json"))
    job_dir = store.create(spec)
    # The job keeps its own copies, so a resume does not depend on files elsewhere.
    shutil.copytree(bundle_dir, job_dir.path / "bundle")
    shutil.copyfile(holdout, job_dir.path / "holdout.npz")
    if shards is not None:
        shutil.copytree(shards, job_dir.path / "shards")
    job_dir.model_path(0).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_path, job_dir.model_path(0))
    app.info(f"job {name}: {rounds} round(s) of {slots} slot(s) at "
             f"{app.amount(amount)}; history in {job_dir.path}")
    _run(app, job_dir)


@job.command("resume")
@click.argument("name")
@_workdir_option
@pass_app
def job_resume(app: App, name: str, workdir: Path | None) -> None:
    """Continue job NAME after its process died: nothing is published or paid twice."""
    from decentralml.roles.job_store import JobStore

    job_dir = JobStore(_root(app, workdir)).job(name)
    state = job_dir.load()
    if state.status == "done":
        app.info(f"job {name} is already done ({state.stopped_because})")
    _run(app, job_dir)


def _chain_rounds(app: App, state: Any) -> list[dict[str, Any]]:
    """Each round as recorded, next to the chain's own account of its task."""
    from decentralml.chain.types import SubmissionStatus
    from decentralml.errors import PalletError

    client = app.client(need_account=False)
    out = []
    for record in state.rounds:
        row: dict[str, Any] = {"round": record.round, "task_id": record.task_id,
                               "phase": record.phase, "accuracy": record.accuracy,
                               "recorded": {"submitted": record.submitted,
                                            "accepted": record.accepted, "paid": record.paid},
                               "contributors": [c.model_dump() for c in record.contributors]}
        if record.task_id is not None:
            try:
                task = client.task(record.task_id)
                subs = client.task_submissions(record.task_id)
            except PalletError:
                row["chain"] = None
            else:
                accepted = [s for s in subs if s.status is SubmissionStatus.Accepted]
                row["chain"] = {
                    "status": task.status.value, "reward": task.reward,
                    "slots": task.max_assignments,
                    "submitted": sum(1 for s in subs if s.submitted_block is not None),
                    "accepted": len(accepted), "paid": _chain_paid(client, task, subs),
                    "results": [{"submission_id": s.submission_id, "worker": s.worker,
                                 "status": s.status.value, "result": s.result_json()}
                                for s in subs]}
                row["matches_chain"] = (record.phase != "closed" or (
                    row["chain"]["accepted"] == record.accepted
                    and row["chain"]["paid"] == record.paid))
        out.append(row)
    return out


def _chain_paid(client: Any, task: Any, subs: list[Any]) -> int:
    """What a round's task paid out, by the chain: the flat reward per accepted result, or on a
    task paid by contribution the settlements' payouts."""
    from decentralml.chain.types import PayoutMode, SubmissionStatus

    if client.task_terms(task.task_id).payout is PayoutMode.ByContribution:
        from decentralml.roles.contribution import settled_contributions

        return sum(c.payout for c in settled_contributions(client, task.task_id, subs))
    return sum(task.reward for s in subs if s.status is SubmissionStatus.Accepted)


@job.command("show")
@click.argument("name")
@_workdir_option
@pass_app
def job_show(app: App, name: str, workdir: Path | None) -> None:
    """Job NAME's rounds: task, results, accepted, paid (from the chain) and accuracy."""
    from decentralml.roles.job_store import JobStore

    job_dir = JobStore(_root(app, workdir)).job(name)
    state = job_dir.load()
    rounds = _chain_rounds(app, state)
    data = {"name": name, "spec": state.spec.model_dump(mode="json"), "status": state.status,
            "stopped_because": state.stopped_because, "initial_accuracy":
            state.initial_accuracy, "final_accuracy": state.final_accuracy,
            "total_paid": sum((r.get("chain") or {}).get("paid", 0) for r in rounds),
            "rounds": rounds, "report": str(job_dir.report_json),
            "plot": str(job_dir.report_png) if job_dir.report_png.is_file() else None}

    def render(c):  # type: ignore[no-untyped-def]
        rows = []
        for r in rounds:
            chain = r.get("chain") or {}
            rows.append([r["round"], r["task_id"], chain.get("status", "-"), r["phase"],
                         f"{chain.get('submitted', '-')}/{chain.get('slots', '-')}",
                         chain.get("accepted", "-"),
                         _units(app, int(chain.get("paid", 0)), state.spec.token),
                         _fmt(r["accuracy"]),
                         " ".join(_fmt(x["accuracy"]) for x in r["contributors"]) or "-"])
        c.print(table(f"job {name} ({state.status}; {state.stopped_because or 'in progress'})",
                      ["round", "task", "chain", "phase", "results", "accepted", "paid",
                       "accuracy", "updates' accuracy"], rows))
        paid = _units(app, int(data["total_paid"]), state.spec.token)
        for r in rounds:  # a round paid by contribution: who scored what, and was paid what
            scored = [x for x in r["contributors"] if x.get("score") is not None]
            if scored:
                c.print(f"round {r['round']} paid by contribution: " + ", ".join(
                    f"{app.name(x['worker'])} {x['score'] / 10_000:.2f}% "
                    f"{_units(app, int(x['reward']), state.spec.token)}" for x in scored),
                    highlight=False)
        c.print(f"paid in total: {paid}; plot: {data['plot']}")

    app.emit(data, render)


@job.command("list")
@_workdir_option
@pass_app
def job_list(app: App, workdir: Path | None) -> None:
    """Every job in the job directory, newest last."""
    from decentralml.roles.job_store import JobStore, state_summary

    states = JobStore(_root(app, workdir)).list()
    jobs = [state_summary(s) for s in states]
    app.emit(jobs, lambda c: c.print(table(
        "jobs", ["name", "status", "rounds", "accuracy", "paid", "stopped because"],
        [[j["name"], j["status"], j["rounds"], _fmt(j["accuracy"]),
          _units(app, int(j["paid"]), s.spec.token), j["stopped_because"]]
         for j, s in zip(jobs, states, strict=True)])))

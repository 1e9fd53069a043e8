"""Reviewer and creator commands: ``results``, ``validate`` and ``federate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from decentralml.chain.types import Submission, SubmissionStatus, TaskStatus
from decentralml.cli.app import App, ExitCode, parse_policy, pass_app, table
from decentralml.cli.tasks import submission_rows
from decentralml.errors import InvalidInput
from decentralml.fl.registry import strategy_names

if TYPE_CHECKING:
    from decentralml.chain.results import ValidationReport


@click.command("results")
@click.argument("task_id", type=int)
@click.option("--status", type=click.Choice([s.value for s in SubmissionStatus]))
@pass_app
def results(app: App, task_id: int, status: str | None) -> None:
    """The submissions of TASK_ID and their results."""
    subs = app.client(need_account=False).task_submissions(task_id)
    if status:
        subs = [s for s in subs if s.status.value == status]
    app.emit(subs, lambda c: c.print(table(f"results of task {task_id}",
                                           ["id", "worker", "status", "examples", "metrics",
                                            "cid"], submission_rows(app, subs))))


@click.command("validate")
@click.argument("task_id", type=int)
@click.option("--policy", "policy_spec", default="manual", show_default=True,
              help="auto | manual | min-accuracy=0.9")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path),
              help="The task's .keras model (for min-accuracy; default: from the task bundle).")
@click.option("--holdout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An .npz with x and y arrays (for min-accuracy).")
@click.option("--fail-on-reject", is_flag=True, help="Exit 8 when anything was rejected.")
@pass_app
def validate(app: App, task_id: int, policy_spec: str, model_path: Path | None,
             holdout: Path | None, fail_on_reject: bool) -> None:
    """Judge TASK_ID's pending results with a policy; accept and reject in one extrinsic."""
    from decentralml.chain.policies import AutoAccept, Manual
    from decentralml.roles.creator import ModelCreator

    kind, threshold = parse_policy(policy_spec)
    if kind == "manual" and not app.interactive:
        app.fail("--policy manual needs a terminal to ask you; use --policy auto or "
                 "min-accuracy=X with --yes/--json", code=ExitCode.USAGE, kind="UsageError")
    client = app.client()
    # A closed task has nothing left to judge: say so before loading any model or holdout.
    info = client.task(task_id)
    if info.status is TaskStatus.Closed:
        app.fail(f"task {task_id} is closed: nothing to validate", ExitCode.INVALID_INPUT,
                 kind="TaskClosed")
    creator = ModelCreator(client, app.store(), workdir=app.settings.home / "creator")
    policy: Any
    if kind == "auto":
        policy = AutoAccept()
    elif kind == "manual":
        policy = Manual(lambda s: _ask(app, s))
    else:
        policy = _accuracy_policy(app, creator, task_id, model_path, holdout, threshold)
    subs = {s.submission_id: s for s in client.task_submissions(task_id)}
    report = creator.validate(task_id, policy)
    app.emit(report, lambda c: _print_report(app, c, report, subs, policy_spec))
    if fail_on_reject and report.rejected:
        raise SystemExit(int(ExitCode.REJECTED))


def _print_report(app: App, c: Console, report: ValidationReport,
                  subs: dict[int, Submission], policy_spec: str) -> None:
    """Decisions and payments as a table, then one line of totals."""
    from decentralml.chain.events import ResultAcceptedEvent

    task_id = report.task_id
    if not report.decisions:
        c.print(f"task {task_id}: no results pending validation; nothing sent")
        return
    paid = {e.submission_id: e.reward for e in (report.extrinsic.market_events
                                                 if report.extrinsic else ())
            if isinstance(e, ResultAcceptedEvent)}
    rows = []
    for sid, decision in report.decisions.items():
        verdict = ("accepted" if sid in report.accepted else "rejected" if sid in report.rejected
                   else "skipped")
        sub = subs.get(sid)
        rows.append([sid, app.name(sub.worker) if sub else "", verdict,
                     "" if decision.score is None else f"{decision.score:.3f}", decision.reason,
                     app.amount(paid[sid]) if sid in paid else ""])
    c.print(table(f"validation of task {task_id} ({policy_spec})",
                  ["submission", "worker", "decision", "score", "reason", "paid"], rows))
    where = (f" in block {report.extrinsic.block_number}, fee {app.amount(report.fee)}"
             if report.extrinsic else "; nothing sent")
    c.print(f"{len(report.accepted)} accepted, {len(report.rejected)} rejected, "
            f"{len(report.skipped)} skipped; paid {app.amount(report.paid)}{where}",
            highlight=False)


def _ask(app: App, sub: Submission) -> bool | None:
    app.err.print(f"submission {sub.submission_id} by {app.name(sub.worker)}: "
                  f"{sub.result.decode('utf-8', 'replace')[:300]}")
    answer = click.prompt("accept, reject or skip?", type=click.Choice(["a", "r", "s"]),
                          default="s")
    return {"a": True, "r": False, "s": None}[answer]


def _accuracy_policy(app: App, creator: Any, task_id: int, model_path: Path | None,
                     holdout: Path | None, threshold: float | None) -> Any:
    import numpy as np

    from decentralml.fl import load_model
    from decentralml.roles.policies import holdout_policy

    if holdout is None:
        raise InvalidInput("holdout", "min-accuracy needs --holdout FILE.npz (arrays x and y)")
    model = load_model(model_path) if model_path else creator.task_model(task_id)
    with np.load(holdout, allow_pickle=False) as data:
        x, y = data["x"], data["y"]
    return holdout_policy(creator, model, x, y, min_accuracy=threshold)


@click.command("federate")
@click.argument("task_id", type=int)
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path),
              help="The task's .keras model (default: from the task bundle).")
@click.option("--strategy", default="fedavg", show_default=True,
              help="NAME[:key=value,...], NAME one of " + ", ".join(strategy_names())
                   + " (e.g. fedadam:eta=0.01 or dp-fedavg:clipping_norm=1,noise_multiplier=1).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to save the federated .keras model.")
@click.option("--holdout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An .npz with x and y to report the federated model's accuracy.")
@pass_app
def federate(app: App, task_id: int, model_path: Path | None, strategy: str, out: Path,
             holdout: Path | None) -> None:
    """Aggregate TASK_ID's accepted updates into one model."""
    import numpy as np

    from decentralml.fl import evaluate, load_model, save_model
    from decentralml.fl.registry import strategy_from_spec
    from decentralml.roles.creator import ModelCreator

    chosen = strategy_from_spec(strategy)  # a bad name or parameter fails before any I/O
    creator = ModelCreator(app.client(need_account=False), app.store(),
                           workdir=app.settings.home / "creator")
    model = load_model(model_path) if model_path else creator.task_model(task_id)
    federated = creator.federate(task_id, model, chosen)
    save_model(federated, out)
    data: dict[str, Any] = {"task_id": task_id, "strategy": strategy, "out": str(out),
                            "updates": len(creator.accepted_results(task_id))}
    if holdout is not None:
        with np.load(holdout, allow_pickle=False) as arrays:
            data["accuracy"] = float(evaluate(federated, arrays["x"], arrays["y"])["accuracy"])
    app.emit(data, lambda c: c.print(f"federated {data['updates']} updates with {strategy} -> "
                                     f"{out}" + (f" (accuracy {data['accuracy']:.3f})"
                                                 if "accuracy" in data else "")))


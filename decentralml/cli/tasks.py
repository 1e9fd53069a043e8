"""``decentralml task``: create, list, show and close tasks (the creator's side)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from decentralml.chain.types import (
    Submission,
    TaskInfo,
    TaskStatus,
    TaskType,
    ValidationStrategy,
)
from decentralml.cli.app import App, format_metrics, pass_app, table
from decentralml.cli.contribution import contribution_pay, pay_options
from decentralml.errors import InvalidInput

_TYPES = {"model-contributor": TaskType.ModelContributor,
          "model-engineer": TaskType.ModelEngineer,
          "data-annotator": TaskType.DataAnnotator}
_STRATEGIES = {"auto": ValidationStrategy.AutoAccept, "manual": ValidationStrategy.ManualAccept,
               "custom": ValidationStrategy.CustomAccept}


def task_rows(app: App, tasks: list[TaskInfo], current_block: int) -> list[list[object]]:
    return [[t.task_id, t.task_type.value, t.status.value, app.amount(t.reward),
             f"{t.accepted_results}/{t.max_assignments}", t.open_slots,
             t.validation_strategy.value, app.expiry(t.expiration_block, current_block),
             app.name(t.creator), t.question] for t in tasks]


TASK_COLUMNS = ["id", "type", "status", "reward", "accepted", "open", "validation", "expires",
                "creator", "question"]


@click.group("task")
def task() -> None:
    """Create and manage tasks."""


@task.command("create")
@click.option("--bundle", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Bundle directory to publish.")
@click.option("--template", help="Start from asset_templates/NAME (copied to --bundle-out).")
@click.option("--bundle-out", type=click.Path(file_okay=False, path_type=Path),
              help="Where to copy --template (default: ./NAME).")
@click.option("--type", "task_type", type=click.Choice(sorted(_TYPES)),
              help="Task type [default: the template's, else model-contributor].")
@click.option("--question", required=True,
              help="What the task asks (at most the chain's MaxQuestionLength bytes).")
@click.option("--reward", required=True, help="Reward per accepted result, e.g. 10 (UNIT).")
@click.option("--slots", type=int, default=None,
              help="max_assignments [default: 1, or one per shard with --shards].")
@click.option("--validation", type=click.Choice(sorted(_STRATEGIES)), default="manual",
              show_default=True)
@click.option("--expires-in", type=int, default=14_400, show_default=True, help="Blocks.")
@click.option("--requires", multiple=True, help="Python requirement the bundle declares.")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path),
              help="Your initial .keras model, shipped in the bundle as model.keras (every "
                   "contributor trains it; `decentralml example digits` writes one).")
@click.option("--shards", "shards", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Ship your own data, one subdirectory per slot (shard-0/, shard-1/, ...): "
                   "each contributor is assigned one shard by the chain and trains on it "
                   "without data of its own (compute rental). Whoever takes a slot sees its "
                   "shard.")
@pay_options
@click.option("--holdout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With --pay-by-contribution: your holdout .npz (x, y); its hash goes on "
                   "chain.")
@pass_app
def task_create(app: App, bundle: Path | None, template: str | None, bundle_out: Path | None,
                task_type: str | None, question: str, reward: str, slots: int | None,
                validation: str, expires_in: int, requires: tuple[str, ...],
                model_path: Path | None, shards: Path | None, holdout: Path | None,
                **pay_args: Any) -> None:
    """Pack a bundle, store it and put the task on chain with its reward in escrow.

    Refused before anything is stored or sent when the bundle lacks a file its start_task.sh
    or template.json needs (e.g. model.keras: give it with --model), or when --slots and the
    number of --shards disagree.
    """
    from decentralml.roles.creator import ModelCreator
    from decentralml.storage.shards import shard_dirs

    if (bundle is None) == (template is None):
        raise click.UsageError("give exactly one of --bundle and --template")
    client = app.client()
    amount = app.parse_amount(reward, "reward")
    creator = ModelCreator(client, app.store(), workdir=app.settings.home / "creator")
    if slots is None:
        slots = len(shard_dirs(shards)) if shards is not None else 1
    kwargs: dict[str, Any] = dict(question=question, reward=amount,
                                  task_type=_TYPES[task_type] if task_type else None,
                                  max_assignments=slots,
                                  validation_strategy=_STRATEGIES[validation],
                                  expires_in=expires_in, requirements=requires or None,
                                  model=model_path, shards=shards)
    if holdout is not None and not pay_args["pay_by_contribution"]:
        raise InvalidInput("holdout", "only applies to a task paid by contribution",
                           "add --pay-by-contribution")
    pay = contribution_pay(app, reward=amount, holdout=holdout, **pay_args)
    if pay is not None:
        if validation == "auto":
            raise InvalidInput("validation", "a task paid by contribution is settled by you",
                               "manual or custom (then `decentralml review settle`)")
        kwargs.update(terms=pay.terms(), metadata=pay.metadata())
    if template is not None:
        published = creator.publish_template(template, bundle_out or Path(template), **kwargs)
    else:
        assert bundle is not None
        published = creator.publish(bundle, **{k: v for k, v in kwargs.items() if v is not None})
    info = client.task(published.task_id)
    app.emit(published, lambda c: c.print(
        f"task {published.task_id} created in block {published.block_number}: "
        f"{app.amount(published.escrow)} in escrow "
        f"({slots} x {app.amount(amount)}"
        f"{'' if shards is None else ', one data shard per slot'}), expires at "
        f"{app.expiry(info.expiration_block, published.block_number)}; assets "
        f"{published.assets_cid} ({published.storage.value})", highlight=False))


@task.command("list")
@click.option("--status", type=click.Choice(["open", "closed", "all"]), default="open",
              show_default=True)
@click.option("--type", "task_type", type=click.Choice(sorted(_TYPES)))
@click.option("--creator", help="Only tasks of this address (or account name).")
@click.option("--with-slots", is_flag=True, help="Only tasks with open slots.")
@pass_app
def task_list(app: App, status: str, task_type: str | None, creator: str | None,
              with_slots: bool) -> None:
    """List tasks."""
    client = app.client(need_account=False)
    tasks = client.tasks(
        status=None if status == "all" else TaskStatus(status.capitalize()),
        task_type=_TYPES[task_type] if task_type else None,
        creator=client.resolve_address(creator) if creator else None,
        min_open_slots=1 if with_slots else 0)
    current = client.block_number()
    app.emit(tasks, lambda c: c.print(table(f"tasks (current block {current})", TASK_COLUMNS,
                                            task_rows(app, tasks, current))))


@task.command("show")
@click.argument("task_id", type=int)
@pass_app
def task_show(app: App, task_id: int) -> None:
    """A task, its escrow and its submissions."""
    client = app.client(need_account=False)
    info = client.task(task_id)
    subs = client.task_submissions(task_id)
    escrow = client.escrow_balance(task_id)
    data = {"task": info, "escrow": escrow, "submissions": subs}

    current = client.block_number()

    def render(c: Console) -> None:
        c.print(table(f"task {task_id} (current block {current})", TASK_COLUMNS,
                      task_rows(app, [info], current)))
        c.print(f"assets: {info.assets_cid} ({info.assets_storage.value}); escrow holds "
                f"{app.amount(escrow)}", highlight=False)
        c.print(table("submissions", ["id", "worker", "status", "examples", "metrics", "cid"],
                      submission_rows(app, subs)))

    app.emit(data, render)


@task.command("close")
@click.argument("task_id", type=int)
@pass_app
def task_close(app: App, task_id: int) -> None:
    """Close a task: abandon open assignments and refund the unspent escrow."""
    client = app.client()
    if app.interactive and not click.confirm(f"close task {task_id}?", default=True):
        app.fail("not closed")
    creator = client.task(task_id).creator
    closed = client.close_task(task_id)
    abandoned = (f", {closed.abandoned} open assignment(s) abandoned" if closed.abandoned
                 else "")
    app.emit(closed, lambda c: c.print(
        f"task {task_id} closed in block {closed.block_number}: refunded "
        f"{app.amount(closed.refund)} to {app.name(creator)}{abandoned}", highlight=False))


def submission_rows(app: App, subs: list[Submission]) -> list[list[object]]:
    """One row per submission: worker by name, metrics formatted, the full result CID."""
    return [[s.submission_id, app.name(s.worker), s.status.value, s.num_examples,
             format_metrics(s.result_json().get("metrics")), s.result_cid] for s in subs]

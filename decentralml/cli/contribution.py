"""Pay by contribution on the command line: the options that declare it (``task create``, ``job
run``), ``review settle`` for the creator and ``scores verify`` for contributors (see
docs/concepts.md, "Pay by contribution")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from decentralml.cli.app import App, ExitCode, pass_app, table
from decentralml.errors import InvalidInput

if TYPE_CHECKING:
    from decentralml.roles.contribution import ContributionPay, Settlement, Verification


def pay_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--pay-by-contribution`` and its settings, for the commands that create tasks."""
    for option in reversed((
        click.option("--pay-by-contribution", is_flag=True,
                     help="Split the pool by each update's contribution on your holdout "
                          "instead of paying every accepted result the same reward."),
        click.option("--floor", default=None,
                     help="With --pay-by-contribution: paid to every accepted result before "
                          "the split (UNIT, at most the reward) [default: 0]."),
        click.option("--scoring", type=click.Choice(["loo", "shapley"]), default=None,
                     help="With --pay-by-contribution: leave-one-out (K+1 evaluations) or a "
                          "sampled Shapley estimate [default: loo]."),
        click.option("--shapley-samples", type=click.IntRange(min=1), default=None,
                     help="With --scoring shapley: the permutations sampled (the evaluation "
                          "budget)."),
    )):
        f = option(f)
    return f


def contribution_pay(app: App, *, reward: int, holdout: Path | None,
                     pay_by_contribution: bool = False, floor: str | None = None,
                     scoring: str | None = None, shapley_samples: int | None = None
                     ) -> ContributionPay | None:
    """The declared pay by contribution (None: a flat reward), checked before anything is
    stored or sent; each error names its option."""
    from decentralml.roles.contribution import ContributionPay, scoring_spec

    if not pay_by_contribution:
        for name, value in (("floor", floor), ("scoring", scoring),
                            ("shapley_samples", shapley_samples)):
            if value is not None:
                raise InvalidInput(name, "only applies to a task paid by contribution",
                                   "add --pay-by-contribution")
        return None
    if holdout is None:
        raise InvalidInput("holdout", "pay by contribution needs your holdout set",
                           "--holdout FILE.npz with arrays x and y")
    from decentralml.roles.contribution import load_holdout

    load_holdout(holdout)  # a holdout that cannot be scored on is refused now
    amount = 0 if floor is None else app.parse_amount(floor, "floor")
    if amount > reward:
        raise InvalidInput("floor", f"is {app.amount(amount)}",
                           f"at most the reward, {app.amount(reward)}")
    spec = scoring_spec(scoring or "loo", shapley_samples)
    return ContributionPay(floor=amount, spec=spec, holdout=holdout)


# --- review settle ------------------------------------------------------------------------------


@click.group("review")
def review() -> None:
    """Settle results of tasks paid by contribution."""


def parse_scores(text: str) -> dict[int, int]:
    """``SID=PPM,SID=PPM``; each error names ``scores`` and the entry."""
    out: dict[int, int] = {}
    for part in (p.strip() for p in text.split(",")):
        sid, sep, ppm = part.partition("=")
        try:
            pair = (int(sid), int(ppm)) if sep else None
        except ValueError:
            pair = None
        if pair is None:
            raise InvalidInput("scores", f"{part!r} is not SUBMISSION=PPM",
                               "e.g. --scores 4=600000,5=400000")
        if pair[0] in out:
            raise InvalidInput("scores", f"submission {pair[0]} is scored twice")
        out[pair[0]] = pair[1]
    return out


@review.command("settle")
@click.argument("task_id", type=int)
@click.option("--holdout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The holdout .npz the task committed to (to compute the scores).")
@click.option("--scores", "scores_text", default=None,
              help="SUBMISSION=PPM,... to settle as given instead of computing them.")
@click.option("--policy", "policy_spec", default="auto", show_default=True,
              help="auto (score everything) or min-accuracy=X (reject updates below X first).")
@click.option("--reveal", is_flag=True,
              help="Publish the holdout afterwards and print its CID, so contributors can "
                   "check their scores (`decentralml scores verify`).")
@pass_app
def settle(app: App, task_id: int, holdout: Path | None, scores_text: str | None,
           policy_spec: str, reveal: bool) -> None:
    """Score TASK_ID's pending results on your holdout and pay them by contribution, in one
    extrinsic."""
    from decentralml.cli.app import parse_policy
    from decentralml.roles.contribution import (
        load_holdout,
        reveal_holdout,
        settle_by_hand,
        settle_task,
        spec_of_manifest,
    )
    from decentralml.roles.creator import ModelCreator

    kind, threshold = parse_policy(policy_spec)
    if kind == "manual":
        raise InvalidInput("policy", "settling is unattended", "auto or min-accuracy=X")
    if scores_text is None and holdout is None:
        raise InvalidInput("holdout", "computing the scores needs the holdout",
                           "--holdout FILE.npz, or --scores SUBMISSION=PPM,...")
    if scores_text is not None and kind != "auto":
        raise InvalidInput("policy", "the scores given with --scores are settled as they are",
                           "leave --policy out, or compute the scores with --holdout")
    if reveal and holdout is None:
        raise InvalidInput("reveal", "there is no holdout to reveal", "give --holdout")
    if holdout is not None:
        load_holdout(holdout)
    given = parse_scores(scores_text) if scores_text is not None else None
    client = app.client()
    creator = ModelCreator(client, app.store(), workdir=app.settings.home / "creator")
    if given is not None:
        result = settle_by_hand(client, task_id, given)
    else:
        assert holdout is not None
        from decentralml.storage.bundle import fetch_bundle

        task = client.task(task_id)
        dest = creator.workdir / "tasks" / f"task-{task_id}-settle"
        if dest.exists():
            import shutil

            shutil.rmtree(dest)
        bundle = fetch_bundle(creator.store, task.assets_cid, dest)
        spec = spec_of_manifest(bundle.manifest.metadata, f"task {task_id}'s bundle")
        from decentralml.fl import load_model

        model = load_model(bundle.path / "model.keras")
        policy = None
        if kind == "min-accuracy":
            from decentralml.roles.policies import holdout_policy

            x, y = load_holdout(holdout)
            policy = holdout_policy(creator, model, x, y, min_accuracy=threshold)
        result = settle_task(creator, task_id, model, spec=spec, holdout=holdout, policy=policy)
    data: dict[str, Any] = result.model_dump(mode="json")
    if reveal and holdout is not None:
        data["holdout_cid"] = reveal_holdout(creator.store, holdout)
    app.emit(data, lambda c: _print_settlement(app, c, result, data.get("holdout_cid")))


def _score(ppm: int | None) -> str:
    return "-" if ppm is None else f"{ppm / 10_000:.2f}%"


def _print_settlement(app: App, c: Console, result: Settlement, cid: str | None) -> None:
    if not result.contributions:
        c.print(f"task {result.task_id}: no results pending; nothing sent")
        return
    names = {x.submission_id: app.name(x.worker) for x in result.contributions}
    rows = [[x.submission_id, names[x.submission_id], x.status,
             "-" if x.value is None else f"{x.value:+.4f}", _score(x.score),
             "" if x.duplicate_of is None else f"copy of {x.duplicate_of}",
             app.amount(x.payout) if x.status == "Accepted" else "", x.reason]
            for x in result.contributions]
    c.print(table(f"settlement of task {result.task_id}",
                  ["submission", "worker", "decision", "loss gain", "score", "duplicate",
                   "paid", "reason"], rows))
    where = (f" in block {result.block_number}" if result.block_number is not None
             else "; nothing settled")
    c.print(f"{len(result.settled)} settled, {len(result.rejected)} rejected, "
            f"{len(result.skipped)} left pending; paid {app.amount(result.paid)} of a pool of "
            f"{app.amount(result.pool)} (dust {app.amount(result.dust)}){where}, fee "
            f"{app.amount(result.fee)}", highlight=False)
    if cid is not None:
        c.print(f"holdout revealed: {cid}", highlight=False)


@review.command("reveal")
@click.argument("holdout", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def reveal(app: App, holdout: Path) -> None:
    """Publish HOLDOUT (after settling; e.g. a job's holdout.npz once its last round is paid)
    and print its CID for `decentralml scores verify --holdout CID`."""
    from decentralml.fl.verification import holdout_commitment
    from decentralml.roles.contribution import load_holdout, reveal_holdout

    load_holdout(holdout)
    data = {"holdout_cid": reveal_holdout(app.store(), holdout),
            "sha256": holdout_commitment(holdout).hex()}
    app.emit(data, lambda c: c.print(f"holdout revealed: {data['holdout_cid']} (sha256 "
                                     f"{data['sha256']})", highlight=False))


# --- scores verify ------------------------------------------------------------------------------


@click.group("scores")
def scores() -> None:
    """Check the contribution scores a task was settled with."""


@scores.command("verify")
@click.option("--task", "task_id", type=int, required=True, help="The task paid by contribution.")
@click.option("--holdout", "holdout_ref", required=True,
              help="The revealed holdout: a local .npz file or its CID in the store.")
@click.option("--tolerance", type=click.IntRange(0, 1_000_000), default=0, show_default=True,
              help="Parts per million a recomputed score may differ from the chain's.")
@pass_app
def verify(app: App, task_id: int, holdout_ref: str, tolerance: int) -> None:
    """Recompute a task's scores from its committed holdout and scoring, report every mismatch
    with the chain (exit 9 if any)."""
    from decentralml.roles.contribution import fetch_holdout, verify_task_scores

    client = app.client(need_account=False)
    workdir = app.settings.home / "scores" / f"task-{task_id}"
    path = Path(holdout_ref)
    if not path.is_file():
        path = fetch_holdout(app.store(), holdout_ref, workdir / "holdout")
    result = verify_task_scores(client, app.store(), task_id, path, workdir=workdir,
                           tolerance=tolerance)
    app.emit(result.model_dump(mode="json") | {"ok": result.ok},
             lambda c: _print_verification(app, c, result))
    if not result.ok:
        raise SystemExit(int(ExitCode.MISMATCH))


def _print_verification(app: App, c: Console, result: Verification) -> None:
    rows = [[x.submission_id, app.name(x.worker), _score(x.chain), _score(x.recomputed),
             "-" if x.value is None else f"{x.value:+.4f}",
             "" if x.duplicate_of is None else f"copy of {x.duplicate_of}", app.amount(x.payout),
             "yes" if x.matches else "NO"] for x in result.checks]
    c.print(table(f"scores of task {result.task_id} ({result.method})",
                  ["submission", "worker", "on chain", "recomputed", "loss gain", "duplicate",
                   "paid", "match"], rows))
    if result.ok:
        c.print(f"every score matches the chain; holdout sha256 {result.holdout_sha256}",
                highlight=False)
    for line in result.mismatches:
        c.print(f"[bold red]mismatch:[/] {line}", highlight=False)

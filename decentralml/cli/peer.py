"""``decentralml peer``: peer jobs, training with no coordinator (docs/concepts.md, docs/cli.md).

``peer create`` publishes the bundle and the initial model as a peer job; ``peer join`` /
``peer leave`` change membership; ``peer run`` takes part round after round (training in the
sandbox, aggregating, voting); ``peer status`` shows each round's participants, agreed model and
who disagreed, from the chain alone.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import click

from decentralml.cli.app import App, format_metrics, pass_app, table


@click.group("peer")
def peer() -> None:
    """Peer jobs: train together with no coordinator; the majority's aggregate is agreed."""


def _peer(app: App, *, data_dir: Path | None = None, timeout: float = 3600.0,
          no_sandbox: bool = False, allow_network: bool = False,
          fetch_timeout: float = 30.0) -> Any:
    from decentralml.roles.peer_job import Peer
    from decentralml.storage.runner import SandboxWarning
    from decentralml.storage.sandbox import NO_SANDBOX_RISK

    if no_sandbox:
        app.err.print(f"[bold yellow]warning:[/] --no-sandbox: {NO_SANDBOX_RISK}", highlight=False)
        warnings.simplefilter("ignore", SandboxWarning)  # said once, above
    return Peer(app.client(), app.store(), home=app.settings.home, data_dir=data_dir,
                timeout=timeout, sandbox="none" if no_sandbox else "auto",
                allow_network=allow_network, max_output_bytes=app.settings.max_output_bytes,
                max_processes=app.settings.max_processes, fetch_timeout=fetch_timeout)


def _short(cid: str | None) -> str:
    return "-" if cid is None else cid


@peer.command("create")
@click.option("--bundle", "bundle_dir",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The training bundle (start_task.sh, template.json; the contributor "
                   "template's train.py works as is).")
@click.option("--template", help="Start from asset_templates/NAME (copied to --bundle-out), "
              "e.g. model_contributor.")
@click.option("--bundle-out", type=click.Path(file_okay=False, path_type=Path),
              help="Where to copy --template (default: ./NAME).")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path),
              help="The initial model every peer starts from (.keras), shipped as model.keras "
                   "[default: the bundle's own model.keras].")
@click.option("--rounds", type=int, default=3, show_default=True,
              help="Rounds of the job (1..=the chain's MaxPeerRounds).")
@click.option("--update-blocks", type=int, required=True,
              help="Blocks of each round's update phase (training and posting updates).")
@click.option("--aggregate-blocks", type=int, required=True,
              help="Blocks of each round's aggregate phase (averaging and voting).")
@click.option("--max-peers", type=int, default=8, show_default=True,
              help="Most peers at once (1..=the chain's MaxPeers).")
@pass_app
def peer_create(app: App, bundle_dir: Path | None, template: str | None,
                bundle_out: Path | None, model_path: Path | None, rounds: int,
                update_blocks: int, aggregate_blocks: int, max_peers: int) -> None:
    """Publish a training bundle and its initial model as a peer job (no balance moves)."""
    from decentralml.roles.peer_job import create_peer_job, template_bundle

    if (bundle_dir is None) == (template is None):
        raise click.UsageError("give exactly one of --bundle and --template")
    if template is not None:
        bundle_dir = template_bundle(template, bundle_out or Path(template))
    assert bundle_dir is not None

    app.info(f"packing {bundle_dir} and creating the peer job")
    created = create_peer_job(app.client(), app.store(), bundle_dir, model=model_path,
                              rounds=rounds, update_blocks=update_blocks,
                              aggregate_blocks=aggregate_blocks, max_peers=max_peers,
                              workdir=app.settings.home / "peer" / "created")
    app.emit(created, lambda c: c.print(
        f"peer job {created.job_id}: {created.rounds} round(s) of {created.update_blocks} + "
        f"{created.aggregate_blocks} blocks from block {created.start_block}, up to "
        f"{created.max_peers} peers\nbundle {created.assets_cid}\n"
        f"join it with: decentralml peer run {created.job_id} --data DIR", highlight=False))


@peer.command("join")
@click.argument("job_id", type=int)
@pass_app
def peer_join(app: App, job_id: int) -> None:
    """Join peer job JOB_ID (from the current round on)."""
    report = _peer(app).join(job_id)
    message = (f"joined peer job {job_id} in round {report.joined_round} (block "
               f"{report.block_number})" if report.sent else
               f"nothing sent: already a peer of job {job_id} since round {report.joined_round}")
    app.emit(report, lambda c: c.print(message, highlight=False))


@peer.command("leave")
@click.argument("job_id", type=int)
@pass_app
def peer_leave(app: App, job_id: int) -> None:
    """Leave peer job JOB_ID (best between rounds; what you posted stays)."""
    report = _peer(app).leave(job_id)
    app.emit(report, lambda c: c.print(f"left peer job {job_id} (block {report.block_number})",
                                        highlight=False))


def _progress(app: App):  # type: ignore[no-untyped-def]
    """Live per-round lines on stderr: text for people, JSON lines with ``--json``."""
    def show(event: str, data: dict[str, Any]) -> None:
        r = data.get("round")
        if event == "joined":
            app.info(f"peer of job {data['job_id']} since round {data['joined_round']}"
                     + ("" if data["sent"] else " (already joined)"))
        elif event == "round-training":
            start = data.get("started_from")
            app.info(f"round {r}: training from "
                     f"{'the initial model' if start is None else 'agreed model ' + start}")
        elif event == "round-update-posted":
            app.info(f"round {r}: update {data['update_cid']} posted; waiting for the deadline")
        elif event == "round-aggregate-posted":
            app.info(f"round {r}: aggregate {data['my_cid']} posted; waiting for the round's end")
        elif event == "round-skipped":
            app.info(f"round {r}: skipped ({data['reason']}); from the next round on")
        elif event == "round-missed":
            app.info(f"round {r}: the update phase was over (block {data['block']}, deadline "
                     f"{data['deadline']}); waiting for the next round")
        elif event == "round-vote-missed":
            app.info(f"round {r}: vote not counted ({data['reason']})")
        elif event == "round-done":
            app.info(f"round {r}: {data['outcome']}; agreed {_short(data['agreed_cid'])}")
    return app.progress(show)


def _log_sink(app: App):  # type: ignore[no-untyped-def]
    if app.as_json:
        return None

    def sink(line: str) -> None:
        app.err.print(line, highlight=False, markup=False, soft_wrap=True)

    return sink


@peer.command("run")
@click.argument("job_id", type=int)
@click.option("--data", "data_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Your local data directory, given to the training as DECENTRALML_DATA_DIR.")
@click.option("--rounds", type=click.IntRange(min=1), default=None,
              help="Stop after this many of the job's rounds (from the first one you can "
                   "take part in) [default: until the job ends].")
@click.option("--timeout", type=float, default=3600.0, show_default=True,
              help="Wall-clock limit of one training run, seconds.")
@click.option("--fetch-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds to fetch one peer's update before leaving it "
              "out of the average (as every peer does).")
@click.option("--allow-network", is_flag=True,
              help="Give the network to a bundle whose manifest declares it needs it.")
@click.option("--no-sandbox", is_flag=True,
              help="Run the training unconfined, with your user's rights (unsafe).")
@pass_app
def peer_run(app: App, job_id: int, data_dir: Path, rounds: int | None, timeout: float,
             fetch_timeout: float, allow_network: bool, no_sandbox: bool) -> None:
    """Take part in peer job JOB_ID: join if needed, then train, aggregate and vote each round."""
    peer = _peer(app, data_dir=data_dir, timeout=timeout, no_sandbox=no_sandbox,
                 allow_network=allow_network, fetch_timeout=fetch_timeout)
    report = peer.run(job_id, rounds=rounds, on_progress=_progress(app), on_log=_log_sink(app))

    def render(c):  # type: ignore[no-untyped-def]
        rows = [[r.round, r.outcome, _short(r.started_from), _short(r.my_cid),
                 _short(r.agreed_cid), len(r.participants),
                 " ".join(app.name(a) for a in r.minority) or "-",
                 format_metrics(r.metrics) or "-"] for r in report.rounds]
        c.print(table(f"peer job {job_id} as {app.name(report.address)}",
                      ["round", "outcome", "started from", "my aggregate", "agreed",
                       "participants", "minority", "metrics"], rows))
        c.print(f"stopped: {report.stopped_because}", highlight=False)

    app.emit(report, render)


@peer.command("status")
@click.argument("job_id", type=int)
@click.option("--last", "last_rounds", type=click.IntRange(min=1), default=None,
              help="Only the latest N rounds [default: every round so far].")
@pass_app
def peer_status(app: App, job_id: int, last_rounds: int | None) -> None:
    """Peer job JOB_ID per round: participants, the agreed model and who disagreed."""
    from decentralml.roles.peer_job import peer_job_status

    status = peer_job_status(app.client(need_account=False), job_id, last_rounds=last_rounds)

    def render(c):  # type: ignore[no-untyped-def]
        where = ("ended" if status.current_round is None
                 else f"round {status.current_round}, {status.phase} phase")
        c.print(f"peer job {job_id} by {app.name(status.creator)}: {status.rounds} round(s) of "
                f"{status.update_blocks} + {status.aggregate_blocks} blocks; {where} at block "
                f"{status.head}; {len(status.peers)} peer(s) of at most {status.max_peers}",
                highlight=False)
        rows = [[h.round, h.phase, " ".join(sorted(app.name(a) for a in h.updates)) or "-",
                 len(h.aggregates), _short(h.agreed_cid),
                 " ".join(app.name(a) for a in h.minority) or "-",
                 " ".join(app.name(a) for a in h.silent) or "-"] for h in status.history]
        c.print(table("rounds", ["round", "phase", "participants", "votes", "agreed model",
                                 "disagreed", "no vote"], rows))

    app.emit(status, render)

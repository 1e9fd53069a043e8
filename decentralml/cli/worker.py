"""``decentralml worker``: the long-lived contributor (see docs/worker.md).

The command only wires things up: options to a :class:`~decentralml.roles.worker.WorkerConfig`,
SIGTERM/SIGINT to :meth:`Worker.stop`, and worker events to structured log lines (JSON lines on
stdout with ``--json``, ``key=value`` lines on stderr otherwise) plus a status line when stderr is
a terminal.
"""

from __future__ import annotations

import inspect
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from decentralml.chain.types import TaskType
from decentralml.cli.app import App, pass_app

if TYPE_CHECKING:
    from decentralml.roles.contributor import Contributor
    from decentralml.roles.worker import WorkerConfig, WorkerEvent

_TYPES = {"model-contributor": TaskType.ModelContributor,
          "model-engineer": TaskType.ModelEngineer,
          "data-annotator": TaskType.DataAnnotator}


def make_contributor(app: App, *, timeout: float, sandbox: str | None = None,
                     allow_network: bool = False) -> Contributor:
    """The same contributor ``decentralml work`` uses, with the runner's containment options.

    The options are passed when this SDK's contributor takes them (the sandboxed runner); an
    explicit ``--sandbox`` the contributor cannot honour is an error, never silently dropped.
    """
    from decentralml.errors import InvalidInput
    from decentralml.roles.contributor import Contributor

    kwargs: dict[str, Any] = {"home": app.settings.home, "timeout": timeout}
    accepted = inspect.signature(Contributor.__init__).parameters
    for name, value, default in (("sandbox", sandbox, None), ("allow_network", allow_network,
                                                               False)):
        if name in accepted:
            if value is not None:
                kwargs[name] = value
        elif value != default:
            raise InvalidInput(name.replace("_", "-"), "this version's runner has no sandbox "
                               "option")
    return Contributor(app.client(), app.store(), **kwargs)


class _Log:
    """Renders worker events: JSON lines, or text lines with a status line on a terminal."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.status_line = not app.as_json and sys.stderr.isatty()
        self._live: Any = None
        self.worker: Any = None

    def __enter__(self) -> _Log:
        if self.status_line:
            from rich.live import Live

            self._live = Live("", console=self.app.err, refresh_per_second=2, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def __call__(self, event: WorkerEvent) -> None:
        if self.app.as_json:
            click.echo(json.dumps(event.model_dump(mode="json"), sort_keys=True))
            sys.stdout.flush()
        else:
            stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
            fields = " ".join(f"{k}={v}" for k, v in (("task", event.task_id),
                                                      ("submission", event.submission_id))
                              if v is not None)
            self.app.err.print(f"{stamp} {event.event:<12} {fields} {event.message}".rstrip(),
                               highlight=False, markup=False)
        if self._live is not None and self.worker is not None:
            self._live.update(self._status_text())

    def _status_text(self) -> str:
        s = self.worker.status()
        running = ", ".join(f"{t}:{stage}" for t, stage in sorted(s.running.items())) or "idle"
        return (f"[bold]worker[/] running {running} | done {len(s.completed)} | failed "
                f"{len(s.failed)} | earned {self.app.amount(s.earned)}"
                + (" | stopping" if s.stopping else ""))


@click.command("worker")
@click.option("--data", "data_dir", default=None,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Your local data directory, given as DECENTRALML_DATA_DIR to every task that "
                   "trains on your data (a task that ships the creator's data gets its shard).")
@click.option("--compute-only", is_flag=True,
              help="Rent out compute only: take only tasks that ship the creator's data, and "
                   "never hand them --data (the default without --data).")
@click.option("--type", "task_types", multiple=True, type=click.Choice(sorted(_TYPES)),
              help="Task types to take (repeatable) [default: model-contributor].")
@click.option("--any-type", is_flag=True, help="Take tasks of every type.")
@click.option("--creator", "creators", multiple=True,
              help="Only tasks of this creator: address, account name or dev URI (repeatable).")
@click.option("--min-reward", default="0", show_default=True,
              help="Lowest reward per result, in UNIT (or NNNplanck).")
@click.option("--max-concurrent", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Tasks worked on at the same time.")
@click.option("--max-tasks", type=click.IntRange(1), default=None,
              help="Take this many tasks, then exit when they are done [default: no limit].")
@click.option("--no-requirements-check", is_flag=True,
              help="Also take tasks whose declared requirements are not installed here "
                   "(they fail and are skipped).")
@click.option("--poll", type=click.FloatRange(0.05, 3600), default=2.0, show_default=True,
              help="Seconds between looks at the chain while the node's block subscription is "
                   "down (with it, every new block wakes the worker).")
@click.option("--timeout", type=click.FloatRange(min=1), default=3600.0, show_default=True,
              help="Wall-clock limit for each task (each round, in a warm host), seconds.")
@click.option("--stop-grace", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="On SIGTERM, seconds running bundles get before they are interrupted.")
@click.option("--sandbox", type=click.Choice(["auto", "bubblewrap", "none"]), default=None,
              help="How the runner contains each task [default: the runner's, auto].")
@click.option("--allow-network", is_flag=True, help="Let tasks use the network.")
@click.option("--cold", is_flag=True,
              help="Start every task in a fresh sandboxed process (no warm task hosts).")
@click.option("--max-hosts", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Warm task hosts kept at once (one per creator, job and code).")
@click.option("--host-idle", type=click.FloatRange(min=1), default=600.0, show_default=True,
              help="Seconds an idle warm task host is kept.")
@pass_app
def worker(app: App, data_dir: Path | None, compute_only: bool, task_types: tuple[str, ...],
           any_type: bool,
           creators: tuple[str, ...], min_reward: str, max_concurrent: int,
           max_tasks: int | None, no_requirements_check: bool, poll: float, timeout: float,
           stop_grace: float, sandbox: str | None, allow_network: bool, cold: bool,
           max_hosts: int, host_idle: float) -> None:
    """Keep taking matching open tasks, at most --max-concurrent at a time, until SIGTERM.

    Resumes its unfinished submissions after a crash or reboot; a task that fails here is
    skipped and its slot abandoned.
    """
    from decentralml.roles.worker import WorkerConfig, WorkerFilters

    if any_type and task_types:
        raise click.UsageError("give --type or --any-type, not both")
    client = app.client()
    reward = app.parse_amount(min_reward, "min-reward")
    types = (frozenset() if any_type else
             frozenset(_TYPES[t] for t in task_types) or frozenset({TaskType.ModelContributor}))
    filters = WorkerFilters(task_types=types,
                            creators=frozenset(client.resolve_address(c) for c in creators),
                            min_reward=reward, check_requirements=not no_requirements_check)
    if data_dir is not None and compute_only:
        raise click.UsageError("--compute-only never uses --data: give one or the other")
    config = WorkerConfig(data_dir=data_dir, compute_only=compute_only or data_dir is None,
                          filters=filters, max_concurrent=max_concurrent,
                          poll_interval=poll, max_tasks=max_tasks, stop_grace=stop_grace,
                          warm=not cold, max_hosts=max_hosts, host_idle=host_idle)
    contributor = make_contributor(app, timeout=timeout, sandbox=sandbox,
                                   allow_network=allow_network)
    run_worker(app, contributor, config)


def run_worker(app: App, contributor: Contributor, config: WorkerConfig) -> None:
    """Run a worker until it is done or signalled (SIGTERM/SIGINT stop it; twice: at once)."""
    from decentralml.roles.worker import Worker

    with _Log(app) as log:
        w = Worker(contributor, config, on_event=log)
        log.worker = w
        signals = 0

        def on_signal(signum: int, frame: FrameType | None) -> None:
            nonlocal signals
            signals += 1
            w.stop(now=signals > 1)  # asked twice: no grace left

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            w.run()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

"""Contributor commands: ``accept``, ``run``, ``submit`` and the all-in-one ``work``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from decentralml.chain.types import SubmissionStatus, TaskType
from decentralml.cli.app import App, ExitCode, format_metrics, pass_app
from decentralml.roles.journal import Stage

if TYPE_CHECKING:
    from decentralml.roles.contributor import Contributor

_ROLES = {"model-contributor": TaskType.ModelContributor,
          "model-engineer": TaskType.ModelEngineer,
          "data-annotator": TaskType.DataAnnotator}


def _contributor(app: App, timeout: float, no_sandbox: bool = False,  # type: ignore[no-untyped-def]
                 allow_network: bool = False):
    from decentralml.roles.contributor import Contributor
    from decentralml.storage.runner import SandboxWarning
    from decentralml.storage.sandbox import NO_SANDBOX_RISK

    if no_sandbox:
        app.err.print(f"[bold yellow]warning:[/] --no-sandbox: {NO_SANDBOX_RISK}", highlight=False)
        warnings.simplefilter("ignore", SandboxWarning)  # said once, above
    return Contributor(app.client(), app.store(), home=app.settings.home, timeout=timeout,
                       sandbox="none" if no_sandbox else "auto", allow_network=allow_network,
                       max_output_bytes=app.settings.max_output_bytes,
                       max_processes=app.settings.max_processes)


def _sandbox_options(f):  # type: ignore[no-untyped-def]
    f = click.option("--allow-network", is_flag=True,
                     help="Give the network to a task whose manifest declares it needs it.")(f)
    return click.option("--no-sandbox", is_flag=True,
                        help="Run the task unconfined, with your user's rights (unsafe).")(f)


def _data_option(f):  # type: ignore[no-untyped-def]
    return click.option("--data", "data_dir", default=None,
                        type=click.Path(exists=True, file_okay=False, path_type=Path),
                        help="Your local data directory, given to the task as "
                             "DECENTRALML_DATA_DIR. Not needed by a task that ships the "
                             "creator's data (it runs on the shard the chain assigns you), nor "
                             "once the task has run.")(f)


def _reset_option(f):  # type: ignore[no-untyped-def]
    return click.option("--reset", is_flag=True,
                        help="Forget this task's local progress (journal entry and work "
                             "directory) and start again from fetching; a slot held on chain "
                             "is kept.")(f)


def _warn_stale(app: App, stale: list[str]) -> None:
    for line in stale:
        app.err.print(f"[yellow]warning:[/] {line}", highlight=False)


def _timeout_option(f):  # type: ignore[no-untyped-def]
    return click.option("--timeout", type=float, default=3600.0, show_default=True,
                        help="Wall-clock limit for start_task.sh, seconds.")(f)


def _log_sink(app: App) -> Callable[[str], None] | None:
    """The task's output, one line at a time, on stderr as it arrives (not with ``--json``).

    The runner hands over lines without their line ending; each is printed as a line of its own,
    as is (no markup, no highlighting, no wrapping into the table width), so a following
    progress bar or message starts on a fresh line instead of overwriting the last one.
    """
    if app.as_json:
        return None

    def sink(line: str) -> None:
        app.err.print(line, highlight=False, markup=False, soft_wrap=True)

    return sink


@click.command("accept")
@click.argument("task_id", type=int)
@pass_app
def accept(app: App, task_id: int) -> None:
    """Accept TASK_ID: take a slot (recorded in your local journal)."""
    report = _contributor(app, 3600.0).accept(task_id)
    _warn_stale(app, report.stale)
    if report.sent:
        message = (f"accepted task {task_id}: submission {report.submission_id} (block "
                   f"{report.block_number})")
    else:
        message = (f"nothing sent: you already hold submission {report.submission_id} on task "
                   f"{task_id} ({report.status.value})")
    app.emit(report, lambda c: c.print(message, highlight=False))


@click.command("run")
@click.argument("task_id", type=int)
@_data_option
@_timeout_option
@_reset_option
@_sandbox_options
@pass_app
def run(app: App, task_id: int, data_dir: Path | None, timeout: float, reset: bool,
        no_sandbox: bool, allow_network: bool) -> None:
    """Fetch and verify TASK_ID's bundle and run it on your data, or on the data shard the task
    ships for your slot (no upload, no submit)."""
    report = _contributor(app, timeout, no_sandbox, allow_network).work(
        task_id, data_dir, on_log=_log_sink(app), stop_after=Stage.RAN, reset=reset)
    _warn_stale(app, report.stale)
    if report.status is not SubmissionStatus.Assigned:
        message = (f"nothing to run: your result for task {task_id} was already sent "
                   f"(submission {report.submission_id} is {report.status.value})")
    elif "ran" not in report.stages_run:
        message = (f"task {task_id} already ran (submission {report.submission_id}): "
                   f"{report.num_examples} examples, {format_metrics(report.metrics)}; `submit "
                   f"{task_id}` next, or `run {task_id} --reset` to run it again")
    else:
        on = "" if report.shard is None else f" on the creator's shard {report.shard}"
        message = (f"ran task {task_id}{on} (sandbox: {report.sandbox}): "
                   f"{report.num_examples} examples, "
                   f"{format_metrics(report.metrics)}; `submit {task_id}` next")
    app.emit(report, lambda c: c.print(message, highlight=False))


@click.command("submit")
@click.argument("task_id", type=int)
@_data_option
@pass_app
def submit(app: App, task_id: int, data_dir: Path | None) -> None:
    """Upload the result of a finished `run` and send it on chain."""
    report = _contributor(app, 3600.0).work(task_id, data_dir, accept=False)
    _warn_stale(app, report.stale)
    if report.result_sent:
        message = (f"submitted task {task_id} (submission {report.submission_id}) in block "
                   f"{report.block_number}: {report.status.value}")
    else:
        message = (f"nothing sent: the result for task {task_id} (submission "
                   f"{report.submission_id}) was already on chain: {report.status.value}")
    app.emit(report, lambda c: c.print(message, highlight=False))


@click.command("abandon")
@click.argument("task_id", type=int)
@pass_app
def abandon(app: App, task_id: int) -> None:
    """Give back your slot on TASK_ID (only before its result is sent); the slot reopens."""
    if app.interactive and not click.confirm(f"give back your slot on task {task_id}?",
                                             err=True):
        app.fail("not abandoned", code=ExitCode.FAILURE)
    report = _contributor(app, 3600.0).abandon(task_id)
    app.emit(report, lambda c: c.print(
        f"abandoned submission {report.submission_id} on task {task_id} in block "
        f"{report.block_number}; local progress discarded", highlight=False))


@click.command("work")
@click.argument("task_id", type=int, required=False)
@_data_option
@_timeout_option
@click.option("--role", type=click.Choice(sorted(_ROLES)), default="model-contributor",
              show_default=True, help="Which tasks to pick when TASK_ID is not given.")
@_reset_option
@_sandbox_options
@click.option("--stay", is_flag=True,
              help="Afterwards keep working this creator's next tasks (a federated job's next "
                   "rounds) in a warm task host, like `worker --creator`, until idle.")
@click.option("--stay-idle", type=click.FloatRange(min=1), default=600.0, show_default=True,
              help="With --stay: seconds without a new task of the creator before exiting.")
@pass_app
def work(app: App, task_id: int | None, data_dir: Path | None, timeout: float, role: str,
         reset: bool, no_sandbox: bool, allow_network: bool, stay: bool,
         stay_idle: float) -> None:
    """Accept, fetch, verify, run, upload and submit in one go; resumes where it stopped."""
    contributor = _contributor(app, timeout, no_sandbox, allow_network)
    if stay:
        from decentralml.storage.task_host import TaskHostPool

        contributor.hosts = TaskHostPool(app.settings.home / "hosts", idle_seconds=stay_idle)
    if task_id is None:
        candidates = [t for t in contributor.browse() if t.task_type is _ROLES[role]]
        if not candidates:
            app.fail(f"no open {role} task with free slots", code=ExitCode.FAILURE)
        task_id = candidates[0].task_id
        app.info(f"picked task {task_id}: {candidates[0].question}")
    report = contributor.work(task_id, data_dir, on_log=_log_sink(app), reset=reset)
    _warn_stale(app, report.stale)
    # "nothing sent" only when it is news: the result was on chain before this run
    unsent = "" if report.result_sent or report.status is SubmissionStatus.Assigned else \
        "; nothing sent, the result was already on chain"
    shard = "" if report.shard is None else f"; on the creator's shard {report.shard}"
    app.emit(report, lambda c: c.print(
        f"task {task_id}, submission {report.submission_id}: {report.status.value} "
        f"(stages run: {', '.join(report.stages_run) or 'none, already done'}; "
        f"sandbox: {report.sandbox}{shard}){unsent}"))
    if stay:
        _stay(app, contributor, task_id, data_dir, stay_idle)


def _stay(app: App, contributor: Contributor, task_id: int, data_dir: Path | None,
          idle: float) -> None:
    """Serve the creator's next tasks with the same contributor (and its warm task host)."""
    from decentralml.cli.worker import run_worker
    from decentralml.roles.worker import WorkerConfig, WorkerFilters

    task = contributor.client.task(task_id)
    filters = WorkerFilters(task_types=frozenset({task.task_type}),
                            creators=frozenset({task.creator}))
    run_worker(app, contributor, WorkerConfig(data_dir=data_dir, compute_only=data_dir is None,
                                              filters=filters,
                                              idle_exit=idle, host_idle=idle))


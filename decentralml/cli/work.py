"""Contributor commands: ``accept``, ``run``, ``submit`` and the all-in-one ``work``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from decentralml.chain.types import TaskType
from decentralml.cli.app import App, ExitCode, format_metrics, pass_app
from decentralml.roles.journal import Stage

_ROLES = {"model-contributor": TaskType.ModelContributor,
          "model-engineer": TaskType.ModelEngineer,
          "data-annotator": TaskType.DataAnnotator}


def _contributor(app: App, timeout: float):  # type: ignore[no-untyped-def]
    from decentralml.roles.contributor import Contributor

    return Contributor(app.client(), app.store(), home=app.settings.home, timeout=timeout)


def _data_option(f):  # type: ignore[no-untyped-def]
    return click.option("--data", "data_dir", required=True,
                        type=click.Path(exists=True, file_okay=False, path_type=Path),
                        help="Your local data directory, given to the task as "
                             "DECENTRALML_DATA_DIR.")(f)


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
    entry = _contributor(app, 3600.0).accept(task_id)
    app.emit(entry, lambda c: c.print(f"accepted task {task_id}: submission "
                                      f"{entry.submission_id}"))


@click.command("run")
@click.argument("task_id", type=int)
@_data_option
@_timeout_option
@pass_app
def run(app: App, task_id: int, data_dir: Path, timeout: float) -> None:
    """Fetch and verify TASK_ID's bundle and run it on your data (no upload, no submit)."""
    report = _contributor(app, timeout).work(task_id, data_dir, on_log=_log_sink(app),
                                             stop_after=Stage.RAN)
    app.emit(report, lambda c: c.print(f"ran task {task_id}: {report.num_examples} examples, "
                                       f"{format_metrics(report.metrics)}; "
                                       f"`submit {task_id}` next"))


@click.command("submit")
@click.argument("task_id", type=int)
@_data_option
@pass_app
def submit(app: App, task_id: int, data_dir: Path) -> None:
    """Upload the result of a finished `run` and send it on chain."""
    report = _contributor(app, 3600.0).work(task_id, data_dir)
    app.emit(report, lambda c: c.print(f"submitted task {task_id} (submission "
                                       f"{report.submission_id}): {report.status.value}"))


@click.command("work")
@click.argument("task_id", type=int, required=False)
@_data_option
@_timeout_option
@click.option("--role", type=click.Choice(sorted(_ROLES)), default="model-contributor",
              show_default=True, help="Which tasks to pick when TASK_ID is not given.")
@pass_app
def work(app: App, task_id: int | None, data_dir: Path, timeout: float, role: str) -> None:
    """Accept, fetch, verify, run, upload and submit in one go; resumes where it stopped."""
    contributor = _contributor(app, timeout)
    if task_id is None:
        candidates = [t for t in contributor.browse() if t.task_type is _ROLES[role]]
        if not candidates:
            app.fail(f"no open {role} task with free slots", code=ExitCode.FAILURE)
        task_id = candidates[0].task_id
        app.info(f"picked task {task_id}: {candidates[0].question}")
    report = contributor.work(task_id, data_dir, on_log=_log_sink(app))
    app.emit(report, lambda c: c.print(
        f"task {task_id}, submission {report.submission_id}: {report.status.value} "
        f"(stages run: {', '.join(report.stages_run) or 'none, already done'})"))


"""A long-lived contributor: watch the chain for open tasks that match, take at most N at a time,
run each through the same :class:`~decentralml.roles.contributor.Contributor` stages as
``decentralml work`` (so the runner's containment applies unchanged), and keep going.

What makes it safe to leave running:

* **Exactly once.** Every stage is journaled by the contributor; after a crash or a reboot the
  worker resumes each submission the chain still shows as ``Assigned`` to it, at its first
  unfinished stage, and the contributor asks the chain before sending a result again.
* **A failing task is skipped.** A task whose bundle fails for this worker (non-zero exit, timeout,
  bad bundle, missing requirement) is recorded in a small local file and its slot is given back
  with ``abandon_task``, so it never blocks the worker or the task's other contributors.
* **A clean stop.** :meth:`Worker.stop` (the CLI calls it on SIGTERM) stops taking tasks, lets the
  running stage finish (fetch, upload and submit are short) and, after a grace period, interrupts
  running bundles; the journal then holds the last completed stage and a restart continues there.

The worker is a library class with no argv, signal or terminal code: the CLI (``decentralml
worker``) wires signals to :meth:`Worker.stop` and renders :class:`WorkerEvent` objects.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from decentralml import errors
from decentralml.chain.types import SubmissionStatus, TaskInfo, TaskType
from decentralml.errors import (
    BundleError,
    ChainError,
    DecentralMLError,
    InvalidInput,
    PalletError,
    RunnerError,
    StorageError,
)
from decentralml.roles.journal import JournalBusy, Stage

if TYPE_CHECKING:
    from decentralml.chain.heads import HeadWatch
    from decentralml.roles.contributor import Contributor
    from decentralml.storage.runner import CancelHandle

#: Pallet errors on ``accept_task`` that mean "someone was faster" or "the task went away": the
#: task is passed over quietly, not counted as a failure.
_LOST_RACE: tuple[type[PalletError], ...] = (
    errors.NoSlotsLeft, errors.TaskClosed, errors.TaskExpired, errors.AlreadyAccepted)
#: What the status line says a task is doing during each stage.
_DOING = {Stage.FETCHED: "fetching", Stage.RAN: "running", Stage.UPLOADED: "uploading",
          Stage.SUBMITTED: "submitting"}
#: Transient errors (node or store unreachable) are retried this many times before the task is
#: given up as failed.
MAX_TRANSIENT_RETRIES = 3
#: With a live head subscription the worker wakes at each new block; it still looks at least this
#: often (seconds), in case a notification was lost.
SUBSCRIBED_WAIT = 30.0
#: The events of a new block that make the worker look for a slot: a new task, a slot given back,
#: a result rejected (its slot opens again).
NEWS = ("TaskCreated", "SubmissionAbandoned", "ResultRejected")
#: More new blocks than this at once are not read event by event: the worker just looks.
NEWS_SPAN = 64


class WorkerFilters(BaseModel):
    """Which open tasks the worker takes. Empty sets mean "any"."""

    model_config = ConfigDict(frozen=True)

    task_types: frozenset[TaskType] = frozenset({TaskType.ModelContributor})
    #: creator addresses (SS58); empty: tasks of any creator
    creators: frozenset[str] = frozenset()
    #: lowest reward per result, planck
    min_reward: int = Field(default=0, ge=0)
    #: only tasks whose bundle's declared requirements this interpreter satisfies
    check_requirements: bool = True

    def refuses(self, task: TaskInfo) -> str | None:
        """Why ``task`` does not match (on-chain facts only), or None when it does."""
        if self.task_types and task.task_type not in self.task_types:
            return f"type {task.task_type.value} not wanted"
        if self.creators and task.creator not in self.creators:
            return "creator not in the allow-list"
        if task.reward < self.min_reward:
            return f"reward {task.reward} below the minimum {self.min_reward}"
        return None


class WorkerConfig(BaseModel):
    """How the worker runs (the CLI's options, validated once)."""

    model_config = ConfigDict(frozen=True)

    #: the contributor's own data, for tasks that do not ship theirs; None: compute only
    data_dir: Path | None = None
    #: take only tasks that ship the creator's data (compute rental), never touching ``data_dir``
    compute_only: bool = False
    filters: WorkerFilters = WorkerFilters()
    max_concurrent: int = Field(default=1, ge=1, le=64)
    #: seconds between looks at the chain when nothing happens
    poll_interval: float = Field(default=2.0, gt=0, le=3600)
    #: take at most this many tasks (resumed ones included), then exit when they are done
    max_tasks: int | None = Field(default=None, ge=1)
    #: seconds a stop waits for running bundles before interrupting them
    stop_grace: float = Field(default=30.0, ge=0)
    #: keep a warm task host per job for bundles with a Python entry point (docs/worker.md)
    warm: bool = True
    #: warm hosts kept at once, and seconds an idle one is kept
    max_hosts: int = Field(default=2, ge=1, le=64)
    host_idle: float = Field(default=600.0, gt=0)
    #: exit after this many seconds with no task running or started (None: run until stopped)
    idle_exit: float | None = Field(default=None, gt=0)


class WorkerEvent(BaseModel):
    """One structured log line: what happened, to which task and submission."""

    time: float
    event: str
    task_id: int | None = None
    submission_id: int | None = None
    message: str = ""
    data: dict[str, Any] = {}


class WorkerStatus(BaseModel):
    """A snapshot for the status line and the final summary."""

    address: str
    running: dict[int, str] = {}
    completed: list[int] = []
    failed: list[int] = []
    interrupted: list[int] = []
    #: rewards paid for this worker's accepted results (all time, on this chain), planck
    earned: int = 0
    stopping: bool = False


class SkipList:
    """Tasks that failed for this worker, kept on disk so a restart does not try them again."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[int, str]:
        if not self.path.is_file():
            return {}
        raw = json.loads(self.path.read_text(encoding="utf-8"))
        return {int(k): str(v) for k, v in raw.items()}

    def add(self, task_id: int, reason: str) -> None:
        """Record ``task_id`` atomically (temp file + rename: a kill leaves old or new)."""
        entries = self.load()
        entries[task_id] = reason[:500]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".skip-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({str(k): v for k, v in sorted(entries.items())}, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class Worker:
    """Takes matching open tasks, at most ``config.max_concurrent`` at a time, until stopped."""

    def __init__(self, contributor: Contributor, config: WorkerConfig, *,
                 on_event: Callable[[WorkerEvent], None] | None = None) -> None:
        if config.data_dir is None and not config.compute_only:
            raise InvalidInput("data_dir", "no data directory", "--data DIR, or --compute-only "
                               "to take only tasks that ship their data")
        if config.data_dir is not None and not config.data_dir.is_dir():
            raise InvalidInput("data_dir", f"{config.data_dir} is not a directory")
        self.contributor = contributor
        self.client = contributor.client
        self.config = config
        self._on_event = on_event
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._now = threading.Event()
        self._lock = threading.Lock()
        self._status = WorkerStatus(address=contributor.address)
        self._started = 0
        self._passed_over: set[int] = set()
        self._transient: dict[int, int] = {}
        self._requirements_ok: dict[str, str | None] = {}
        self._rewards: dict[int, int] = {}
        self._cancels: dict[int, CancelHandle] = {}
        chain = self.client.genesis_hash.removeprefix("0x")[:16]
        self.state_dir = contributor.home / "worker" / chain / contributor.address
        self.skip_list = SkipList(self.state_dir / "failed.json")
        if config.warm and self.contributor.hosts is None:
            from decentralml.storage.task_host import TaskHostPool

            self.contributor.hosts = TaskHostPool(self.state_dir / "hosts",
                                                  max_hosts=config.max_hosts,
                                                  idle_seconds=config.host_idle)

    # --- control ------------------------------------------------------------------------------

    def stop(self, *, now: bool = False) -> None:
        """Stop taking tasks; running ones finish their stage (bundles get ``stop_grace``, or
        are interrupted at once with ``now``).

        Only sets flags, so it is safe to call from a signal handler or another thread.
        """
        if now:
            self._now.set()
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def status(self) -> WorkerStatus:
        with self._lock:
            return self._status.model_copy(deep=True)

    def _emit(self, event: str, task_id: int | None = None, submission_id: int | None = None,
              message: str = "", **data: Any) -> None:
        if self._on_event is not None:
            self._on_event(WorkerEvent(time=time.time(), event=event, task_id=task_id,
                                       submission_id=submission_id, message=message, data=data))

    # --- the loop -----------------------------------------------------------------------------

    def run(self) -> WorkerStatus:
        """Work until :meth:`stop` (or ``max_tasks`` are done); returns the final status."""
        config = self.config
        self._emit("started", message=f"worker {self.contributor.address} started",
                   max_concurrent=config.max_concurrent,
                   task_types=sorted(t.value for t in config.filters.task_types),
                   creators=sorted(config.filters.creators), min_reward=config.filters.min_reward)
        running: dict[int, Future[None]] = {}
        pool = ThreadPoolExecutor(config.max_concurrent, thread_name_prefix="decentralml-worker")
        last_head = -1
        last_look = 0.0
        last_busy = time.monotonic()
        heads = self._subscribe()
        try:
            self._refresh_earnings()
            while not self._stop.is_set():
                finished = [t for t, f in running.items() if f.done()]
                for task_id in finished:
                    running.pop(task_id).result()  # _work never raises; re-raise if it did
                budget_left = config.max_tasks is None or self._started < config.max_tasks
                if not budget_left and not running:
                    self._emit("done", message=f"took {self._started} task(s); done")
                    break
                if running:
                    last_busy = time.monotonic()
                elif config.idle_exit is not None and \
                        time.monotonic() - last_busy >= config.idle_exit:
                    self._emit("done", message=f"no task for {config.idle_exit:g} s; done")
                    break
                head = self.client.block_number()
                # Look again when one of ours finished (a slot of ours freed; a dev chain that
                # seals on demand may not produce a block for a while), or when the chain moved:
                # with the subscription, only for blocks whose events can mean work for us.
                live = heads is not None and heads.subscribed
                moved = head != last_head and (
                    not live or last_head < 0 or time.monotonic() - last_look >= SUBSCRIBED_WAIT
                    or self._news(last_head + 1, head))
                if head != last_head:
                    last_head = head
                if moved or finished:
                    last_look = time.monotonic()
                    if budget_left and len(running) < config.max_concurrent:
                        for task_id in self._candidates(set(running)):
                            if len(running) >= config.max_concurrent or self._stop.is_set():
                                break
                            if config.max_tasks is not None and self._started >= config.max_tasks:
                                break
                            self._started += 1
                            running[task_id] = pool.submit(self._work, task_id)
                    self._refresh_earnings()
                # New blocks wake the loop (the head subscription); polling is the fallback
                # while it is down.
                live = heads is not None and heads.subscribed
                wait = SUBSCRIBED_WAIT if live else config.poll_interval
                if config.idle_exit is not None and not running:
                    wait = max(0.05, min(wait, last_busy + config.idle_exit - time.monotonic()))
                self._wake.wait(wait)
                self._wake.clear()
                if self.contributor.hosts is not None:
                    self.contributor.hosts.reap()
        finally:
            self._stop.set()
            if heads is not None:
                heads.stop()
            with self._lock:
                self._status.stopping = True
            if running:
                self._emit("stopping", message=f"waiting for {len(running)} running task(s)",
                           running=sorted(running))
                self._drain(running)
            pool.shutdown(wait=True)
            if self.contributor.hosts is not None:
                self.contributor.hosts.close()
            self.contributor.prefetched.clear()
            self._refresh_earnings()
            final = self.status()
            self._emit("stopped", message="worker stopped", **final.model_dump(mode="json"))
        return final

    def _news(self, first: int, head: int) -> bool:
        """Whether blocks ``first..head`` hold an event that can mean a slot for us (a task
        created, a slot given back or a result rejected); a long gap is looked at in full."""
        if head - first >= NEWS_SPAN:
            return True
        try:
            for _event in self.client.watch(kinds=list(NEWS), from_block=first, timeout=0):
                return True
        except ChainError:
            return True
        return False

    def _subscribe(self) -> HeadWatch | None:
        """A subscription to new blocks that wakes the loop, or None (then it polls)."""
        url = getattr(self.client, "url", None)
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            return None
        from decentralml.chain.heads import HeadWatch

        heads = HeadWatch(url, on_head=lambda _number: self._wake.set())
        heads.start()
        return heads

    def _drain(self, running: dict[int, Future[None]]) -> None:
        """Let running tasks reach a stage boundary; interrupt bundles after the grace period."""
        deadline = time.monotonic() + self.config.stop_grace
        interrupted = False
        while any(not f.done() for f in running.values()):
            if not interrupted and (self._now.is_set() or time.monotonic() >= deadline):
                interrupted = True
                with self._lock:
                    cancels = dict(self._cancels)
                self._emit("interrupting", message=f"interrupting {len(cancels)} running "
                           "bundle(s); their stage is run again on restart",
                           tasks=sorted(cancels))
                for handle in cancels.values():
                    handle.cancel("the worker is stopping")
            time.sleep(0.1)

    # --- choosing tasks -----------------------------------------------------------------------

    def _candidates(self, running: set[int]) -> list[int]:
        """Task ids to take now: held submissions to resume first, then matching open tasks."""
        me = self.contributor.address
        skipped = self.skip_list.load()
        mine = self.client.worker_submissions(me)
        touched = {s.task_id for s in mine}
        out: list[int] = []
        for sub in mine:
            if sub.status is SubmissionStatus.Assigned and sub.task_id not in running \
                    and sub.task_id not in skipped and sub.task_id not in out:
                out.append(sub.task_id)  # ours already: resume (after a crash or a restart)
        for task in self.client.tasks(open_slots=True):
            tid = task.task_id
            if tid in running or tid in touched or tid in skipped or tid in self._passed_over:
                continue
            if task.creator == me:
                continue
            reason = (self.config.filters.refuses(task) or self._data_refuse(task)
                      or self._requirements_refuse(task))
            if reason is not None:
                self._passed_over.add(tid)
                self._emit("passed", tid, message=f"task {tid} passed over: {reason}",
                           reason=reason)
                continue
            out.append(tid)
        return out

    def _data_refuse(self, task: TaskInfo) -> str | None:
        """A task that needs the contributor's data, when this worker brings none."""
        if not (self.config.compute_only or self.config.data_dir is None):
            return None
        if self.client.task_terms(task.task_id).shards > 0:
            return None
        return "it needs your data (this worker only rents out compute: --compute-only)"

    def _requirements_refuse(self, task: TaskInfo) -> str | None:
        """Fetch (verified) and read the bundle's manifest before taking a slot, once per CID."""
        if not self.config.filters.check_requirements:
            return None
        cid = task.assets_cid
        if cid not in self._requirements_ok:
            from decentralml.storage.bundle import fetch_bundle
            from decentralml.storage.runner import check_requirements

            dest = Path(tempfile.mkdtemp(dir=self._cache_dir(), prefix="bundle-"))
            keep = False
            try:
                bundle = fetch_bundle(self.contributor.store, cid, dest / "bundle")
                missing = check_requirements(bundle.manifest)
                self._requirements_ok[cid] = (f"missing requirement(s): {', '.join(missing)}"
                                              if missing else None)
                # the task's fetch stage takes this verified copy instead of fetching again
                keep = not missing and self.contributor.prefetched.offer(cid, dest / "bundle")
            except (BundleError, StorageError) as exc:
                self._requirements_ok[cid] = f"bundle unusable: {exc}"
            finally:
                if not keep:
                    import shutil

                    shutil.rmtree(dest, ignore_errors=True)
        return self._requirements_ok[cid]

    def _cache_dir(self) -> Path:
        path = self.state_dir / "cache"
        path.mkdir(parents=True, exist_ok=True)
        return path

    # --- one task -----------------------------------------------------------------------------

    def _contributor_for(self, task_id: int) -> Contributor:
        """The contributor for one task, with its own journal and work directory.

        The contributor's journal is locked for the whole of a ``work`` call (one process per
        journal); a journal per task lets N tasks run at once, and a restarted worker finds each
        task's progress at the same place.
        """
        contributor = copy.copy(self.contributor)
        contributor.home = self.state_dir / "tasks" / f"task-{task_id}"
        return contributor

    def _set_stage(self, task_id: int, stage: str | None) -> None:
        with self._lock:
            if stage is None:
                self._status.running.pop(task_id, None)
            else:
                self._status.running[task_id] = stage

    def _work(self, task_id: int) -> None:
        """Accept (or resume) ``task_id`` and run it stage by stage; never raises."""
        from decentralml.storage.runner import CancelHandle

        sid: int | None = None
        contributor = self._contributor_for(task_id)
        cancel = CancelHandle()
        with self._lock:
            self._cancels[task_id] = cancel
        try:
            try:
                accepted = contributor.accept(task_id)  # adopts a slot we already hold
            except PalletError as exc:
                if isinstance(exc, _LOST_RACE):
                    self._emit("missed", task_id, message=f"task {task_id}: "
                               f"{type(exc).__name__}", error=type(exc).__name__)
                    self._passed_over.add(task_id)
                    return
                raise
            sid = accepted.submission_id
            if accepted.sent:
                self._emit("accepted", task_id, sid,
                           f"accepted task {task_id}: submission {sid}")
            else:
                entry = contributor.journal.for_task(task_id)
                stage = entry.stage.name.lower() if entry is not None else "accepted"
                self._emit("resumed", task_id, sid,
                           f"resuming task {task_id} after stage {stage}", stage=stage)
            def before(stage: Stage) -> bool:
                if self._stop.is_set():
                    return False
                self._set_stage(task_id, _DOING[stage])
                return True

            def after(stage: Stage, seconds: float) -> None:
                name = stage.name.lower()
                self._emit("stage", task_id, sid, f"task {task_id}: {name}", stage=name,
                           seconds=round(seconds, 3))

            # One call through every stage (each journaled as it ends); a stop ends it between
            # two stages.
            report = contributor.work(task_id, self.config.data_dir, cancel=cancel,
                                      before_stage=before, after_stage=after)
            if report.status is SubmissionStatus.Assigned:
                self._interrupted(task_id, sid)
                return
            with self._lock:
                self._status.completed.append(task_id)
            self._emit("submitted", task_id, sid, f"task {task_id}: result submitted "
                       f"({report.status.value})", status=report.status.value,
                       result_cid=report.result_cid, num_examples=report.num_examples,
                       metrics=report.metrics)
        except (RunnerError, BundleError) as exc:
            if self._stop.is_set():  # our own interrupt, not the task's fault
                self._interrupted(task_id, sid)
            else:
                self._failed(task_id, sid, exc)
        except (ChainError, StorageError) as exc:
            if isinstance(exc, PalletError):
                self._failed(task_id, sid, exc)  # e.g. TaskClosed/TaskExpired mid-way
                return
            tries = self._transient[task_id] = self._transient.get(task_id, 0) + 1
            if tries >= MAX_TRANSIENT_RETRIES:
                self._failed(task_id, sid, exc)
            else:
                self._emit("retry", task_id, sid, f"task {task_id}: {type(exc).__name__}: {exc}; "
                           f"will retry ({tries}/{MAX_TRANSIENT_RETRIES})",
                           error=type(exc).__name__)
                self._started -= 1  # it gets its budget back
        except JournalBusy as exc:  # another local process works this task: leave it alone
            self._passed_over.add(task_id)
            self._emit("busy", task_id, sid, f"task {task_id}: {exc}")
        except DecentralMLError as exc:
            self._failed(task_id, sid, exc)
        except Exception as exc:  # a bug must not kill the loop; it is reported, not hidden
            self._failed(task_id, sid, exc)
        finally:
            with self._lock:
                self._cancels.pop(task_id, None)
            self._set_stage(task_id, None)
            self._wake.set()

    def _interrupted(self, task_id: int, sid: int | None) -> None:
        with self._lock:
            self._status.interrupted.append(task_id)
        self._emit("interrupted", task_id, sid, f"task {task_id}: stopped; the journal keeps "
                   "its last completed stage")

    def _failed(self, task_id: int, sid: int | None, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self.skip_list.add(task_id, reason)
        with self._lock:
            self._status.failed.append(task_id)
        self._emit("failed", task_id, sid, f"task {task_id} failed: {reason}",
                   error=type(exc).__name__)
        if sid is not None:
            self._abandon(task_id, sid)

    def _abandon(self, task_id: int, sid: int) -> None:
        """Give the slot back so others can take it (only while it is still ``Assigned``)."""
        try:
            if self.client.submission(sid).status is not SubmissionStatus.Assigned:
                return
            self.client.abandon_task(sid)
        except DecentralMLError as exc:
            self._emit("abandon-failed", task_id, sid, f"could not abandon submission {sid}: "
                       f"{type(exc).__name__}: {exc}", error=type(exc).__name__)
            return
        self._emit("abandoned", task_id, sid, f"task {task_id}: slot given back "
                   f"(submission {sid} abandoned)")

    # --- earnings -----------------------------------------------------------------------------

    def _refresh_earnings(self) -> None:
        """What this account was paid: one reward per accepted submission."""
        try:
            accepted = self.client.worker_submissions(self.contributor.address,
                                                      status=SubmissionStatus.Accepted)
            total = 0
            for sub in accepted:
                if sub.task_id not in self._rewards:
                    self._rewards[sub.task_id] = self.client.task(sub.task_id).reward
                total += self._rewards[sub.task_id]
        except ChainError:
            return  # the status line can wait for the next look
        with self._lock:
            self._status.earned = total

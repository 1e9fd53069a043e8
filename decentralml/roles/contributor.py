"""Contributors: browse open tasks, accept one, fetch and verify its bundle, run it on your own
data, upload the result and send it on chain, all in one resumable ``work`` call.

The three contributor roles differ only in which task type they take and in the name they go by;
the mechanics (journal, verification, runner, upload) are the same, so they share one class.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from decentralml.chain.types import Submission, SubmissionStatus, TaskInfo, TaskStatus, TaskType
from decentralml.errors import BundleError, InvalidInput, PalletError
from decentralml.roles.journal import Journal, JournalEntry, Stage

if TYPE_CHECKING:
    from decentralml.chain.client import Client
    from decentralml.storage.base import Store
    from decentralml.storage.runner import CancelHandle, RunLimits
    from decentralml.storage.sandbox import SandboxMode
    from decentralml.storage.task_host import TaskHostPool

#: Submissions in these statuses hold the worker's place on a task.
_HELD = (SubmissionStatus.Assigned, SubmissionStatus.PendingValidation, SubmissionStatus.Accepted)


class WorkReport(BaseModel):
    """What ``work`` did: the submission, the result sent, and which stages ran this time."""

    task_id: int
    submission_id: int
    status: SubmissionStatus
    result_cid: str | None
    num_examples: int | None
    metrics: dict[str, Any]
    resumed_from: Stage | None
    stages_run: list[str]
    block_number: int | None = None
    #: seconds per stage run this time ("accepted" included when this call accepted the task)
    timings: dict[str, float] = {}
    #: True only when this call sent the result on chain (False: it was sent before, or the run
    #: stopped earlier)
    result_sent: bool = False
    #: journal entries found stale (the chain was restarted, or the submission is gone or
    #: another one) and set aside, one sentence each
    stale: list[str] = []
    #: True when ``reset`` discarded local progress for this task
    reset: bool = False
    #: the run's output directory (what was, or will be, packed and uploaded)
    output_dir: str | None = None
    #: which sandbox ran the task (``bubblewrap``, or ``none`` when opted out); None before
    sandbox: str | None = None
    #: the creator's data shard the chain assigned this slot, on a task that ships its data
    shard: int | None = None


class AcceptReport(BaseModel):
    """What ``accept`` did: ``sent`` is False when the account already held the slot."""

    task_id: int
    submission_id: int
    status: SubmissionStatus
    sent: bool
    extrinsic_hash: str | None = None
    block_number: int | None = None
    stale: list[str] = []


class AbandonReport(BaseModel):
    """The slot given back with ``abandon_task``."""

    task_id: int
    submission_id: int
    extrinsic_hash: str
    block_number: int
    #: the local journal entries and work directories removed with it
    discarded: list[str] = []


class Prefetched:
    """Bundles fetched and verified before a slot was taken (a worker's requirements check), by
    CID, for the task's fetch stage to take over instead of fetching again. Bounded: an offer
    beyond ``limit`` is refused (the caller removes its copy)."""

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._dirs: dict[str, Path] = {}
        self._lock = threading.Lock()

    def offer(self, cid: str, path: Path) -> bool:
        with self._lock:
            if cid in self._dirs or len(self._dirs) >= self.limit:
                return False
            self._dirs[cid] = path
            return True

    def take(self, cid: str) -> Path | None:
        with self._lock:
            return self._dirs.pop(cid, None)

    def clear(self) -> None:
        with self._lock:
            dirs, self._dirs = list(self._dirs.values()), {}
        for path in dirs:
            shutil.rmtree(path.parent, ignore_errors=True)


class Contributor:
    """A worker on the marketplace. Use a role subclass to pick the task type."""

    task_type: ClassVar[TaskType | None] = None

    def __init__(self, client: Client, store: Store, *, home: Path, timeout: float = 3600.0,
                 cpu_seconds: int | None = None, memory_bytes: int | None = None,
                 sandbox: SandboxMode = "auto", allow_network: bool = False,
                 max_output_bytes: int | None = None, max_processes: int | None = None) -> None:
        if timeout <= 0:
            raise InvalidInput("timeout", f"is {timeout}", "> 0 seconds")
        self.client = client
        self.store = store
        self.home = home
        self.timeout = timeout
        self.cpu_seconds = cpu_seconds
        self.memory_bytes = memory_bytes
        #: ``auto`` (bubblewrap, refused where unavailable) or ``none`` (unconfined: see
        #: docs/security.md); ``allow_network`` lets a bundle that declares it use the network.
        self.sandbox: SandboxMode = sandbox
        self.allow_network = allow_network
        self.max_output_bytes = max_output_bytes
        self.max_processes = max_processes
        #: warm task hosts for bundles with a Python entry point (the worker sets one); without
        #: a pool every round runs cold
        self.hosts: TaskHostPool | None = None
        #: the sandbox was found usable once (its probe starts a process: once is enough; the
        #: runner still refuses a cold run where it no longer works)
        self._sandbox_ok = False
        #: bundles already fetched and verified (a worker's requirements check), by CID
        self.prefetched = Prefetched()

    @property
    def limits(self) -> RunLimits:
        """The runner's limits for every task this contributor runs."""
        from decentralml.storage.runner import (
            DEFAULT_MAX_OUTPUT_BYTES,
            DEFAULT_MAX_PROCESSES,
            RunLimits,
        )

        return RunLimits(timeout=self.timeout, cpu_seconds=self.cpu_seconds,
                         memory_bytes=self.memory_bytes,
                         max_output_bytes=self.max_output_bytes or DEFAULT_MAX_OUTPUT_BYTES,
                         max_processes=self.max_processes or DEFAULT_MAX_PROCESSES)

    @property
    def address(self) -> str:
        address = self.client.address
        if address is None:
            raise InvalidInput("client", "a contributor's client needs a signing account")
        return address

    @property
    def journal(self) -> Journal:
        """One journal per chain and account; entries inside are keyed by block hashes too."""
        chain = self.client.genesis_hash.removeprefix("0x")[:16]
        return Journal(self.home / "journal" / chain / self.address)

    def browse(self, *, only_open_slots: bool = True) -> list[TaskInfo]:
        """Open tasks of this role's type that this account could take."""
        tasks = self.client.tasks(status=TaskStatus.Open, task_type=self.task_type)
        return [t for t in tasks if t.creator != self.address
                and (t.open_slots > 0 or not only_open_slots)]

    # --- journal against the chain ------------------------------------------------------------

    def _workdir(self, entry: JournalEntry) -> Path:
        return self.home / "work" / entry.key

    def _staleness(self, entry: JournalEntry) -> str | None:
        """Why ``entry`` does not describe a submission of this account on this chain, or None.

        Only definite answers from the chain count (a missing task or submission, another block
        hash); a connection error propagates instead of discarding good progress.
        """
        what = f"journal entry for task {entry.task_id}, submission {entry.submission_id}"
        if entry.task_block_hash is None or entry.assigned_block_hash is None:
            return (f"{what} was written before journals recorded block hashes, so it cannot be "
                    f"checked against this chain")
        try:
            task = self.client.task(entry.task_id)
        except PalletError:
            return f"{what}: task {entry.task_id} does not exist on this chain"
        if self.client.block_hash(task.created_block) != entry.task_block_hash:
            return (f"{what}: task {entry.task_id} on this chain is another task (created in "
                    f"block {task.created_block} with another hash); the chain was restarted "
                    f"or replaced")
        try:
            sub = self.client.submission(entry.submission_id)
        except PalletError:
            return f"{what}: submission {entry.submission_id} does not exist on this chain"
        if sub.worker != self.address or sub.task_id != entry.task_id or \
                self.client.block_hash(sub.assigned_block) != entry.assigned_block_hash:
            return (f"{what}: submission {entry.submission_id} on this chain is another one "
                    f"(task {sub.task_id}, worker {sub.worker}, assigned in block "
                    f"{sub.assigned_block})")
        if sub.status in (SubmissionStatus.Abandoned, SubmissionStatus.Rejected):
            return f"{what}: submission {entry.submission_id} is {sub.status.value} on chain"
        return None

    def _current(self, task_id: int, *, reset: bool) -> tuple[JournalEntry | None, list[str]]:
        """The journal entry to resume for ``task_id`` after setting stale ones aside (and, with
        ``reset``, discarding the current one and its work directory)."""
        stale: list[str] = []
        current: JournalEntry | None = None
        for entry in self.journal.unfinished(task_id):
            reason = self._staleness(entry)
            if reason is not None:
                where = self.journal.set_aside(entry, reason)
                stale.append(f"{reason}; set aside in {where}")
            elif reset:
                self.journal.remove(entry)
                shutil.rmtree(self._workdir(entry), ignore_errors=True)
            else:
                current = entry
        return current, stale

    def _held(self, task_id: int) -> Submission | None:
        """The submission this account holds on ``task_id`` on chain, if any."""
        held = [s for s in self.client.worker_submissions(self.address)
                if s.task_id == task_id and s.status in _HELD]
        return held[-1] if held else None

    def _entry_for(self, task: TaskInfo, sub: Submission, stage: Stage) -> JournalEntry:
        return JournalEntry(task_id=task.task_id, submission_id=sub.submission_id,
                            worker=self.address, stage=stage,
                            task_block_hash=self.client.block_hash(task.created_block),
                            assigned_block_hash=self.client.block_hash(sub.assigned_block),
                            assets_cid=task.assets_cid)

    def _accept(self, task_id: int, *, take_new: bool = True
                ) -> tuple[JournalEntry | None, AcceptReport | None]:
        """Adopt the slot this account holds on ``task_id``, else (``take_new``) accept one."""
        sub = self._held(task_id)
        if sub is not None:
            task = self.client.task(task_id)
            stage = Stage.ACCEPTED if sub.status is SubmissionStatus.Assigned \
                else Stage.SUBMITTED
            entry = self.journal.load(sub.submission_id,
                                      self.client.block_hash(sub.assigned_block))
            if entry is None:
                entry = self._entry_for(task, sub, stage)
            elif stage is Stage.SUBMITTED:
                entry.stage = stage
            self.journal.save(entry)
            return entry, AcceptReport(task_id=task_id, submission_id=sub.submission_id,
                                       status=sub.status, sent=False)
        if not take_new:
            return None, None
        task = self._check_task_type(task_id)
        result = self.client.accept_task(task_id)
        sub = self.client.submission(result.submission_id)
        entry = self._entry_for(task, sub, Stage.ACCEPTED)
        self.journal.save(entry)
        return entry, AcceptReport(task_id=task_id, submission_id=result.submission_id,
                                   status=sub.status, sent=True,
                                   extrinsic_hash=result.extrinsic_hash,
                                   block_number=result.block_number)

    # --- commands -----------------------------------------------------------------------------

    def accept(self, task_id: int) -> AcceptReport:
        """Accept ``task_id`` (or adopt the submission this account already holds on it)."""
        with self.journal.locked(f"accept {task_id}"):
            _current, stale = self._current(task_id, reset=False)
            _entry, report = self._accept(task_id)
            assert report is not None
            return report.model_copy(update={"stale": stale})

    def work(self, task_id: int, data_dir: Path | None = None, *,
             on_log: Callable[[str], None] | None = None,
             stop_after: Stage | None = None, reset: bool = False,
             accept: bool = True, cancel: CancelHandle | None = None,
             before_stage: Callable[[Stage], bool] | None = None,
             after_stage: Callable[[Stage, float], None] | None = None) -> WorkReport:
        """Accept (or resume), fetch and verify, run, upload and submit: every stage once.

        ``stop_after`` ends early after a stage (``decentralml run`` stops after RAN); calling
        ``work`` again later picks up from there. ``reset`` forgets this task's local progress
        (the slot on chain is kept) and starts again from fetching. With ``accept=False``
        (``decentralml submit``) no new slot is taken: there must be something to continue.
        ``cancel`` stops a running bundle from another thread (the stage is not journaled).
        ``before_stage(stage)`` is asked before each stage this call runs (False: stop before it,
        as ``stop_after`` would) and ``after_stage(stage, seconds)`` told after it is journaled:
        a worker follows and stops a task in one call.
        """
        if data_dir is not None and not data_dir.is_dir():
            raise InvalidInput("data_dir", f"{data_dir} is not a directory")
        with self.journal.locked(f"work {task_id}"):
            entry, stale = self._current(task_id, reset=reset)
            resumed_from = entry.stage if entry is not None else None
            timings: dict[str, float] = {}
            if (entry is None or entry.stage < Stage.RAN) and stop_after is not Stage.FETCHED \
                    and not self._sandbox_ok:
                from decentralml.storage.sandbox import resolve

                resolve(self.sandbox)  # no sandbox here: refuse before taking a slot
                self._sandbox_ok = True
            # refused before a slot is taken or anything fetched (``submit`` with no slot at all
            # is told so below instead)
            if data_dir is None and (entry is not None or accept) \
                    and (entry is None or entry.stage < Stage.RAN) \
                    and not self.ships_data(task_id):
                then = "" if accept else f", or `decentralml run {task_id} --data DIR` first"
                raise InvalidInput("data_dir", f"task {task_id} trains on your data and has not "
                                   f"run yet: give your data directory (--data DIR){then}")
            if entry is None:
                started = time.perf_counter()
                entry, accepted = self._accept(task_id, take_new=accept)
                if entry is None:
                    raise InvalidInput("task_id", f"nothing to submit for task {task_id}: this "
                                       f"account holds no slot on it; `decentralml run "
                                       f"{task_id} --data DIR` first")
                if accepted is not None and accepted.sent:
                    timings["accepted"] = time.perf_counter() - started
            stages: list[str] = []
            sent = False
            workdir = self._workdir(entry)
            def run(entry: JournalEntry, workdir: Path, data_dir: Path | None,
                    on_log: Callable[[str], None] | None) -> None:
                self._run(entry, workdir, data_dir, on_log, cancel)

            for stage, step in ((Stage.FETCHED, self._fetch), (Stage.RAN, run),
                                (Stage.UPLOADED, self._upload), (Stage.SUBMITTED, self._submit)):
                if stop_after is not None and entry.stage >= stop_after:
                    break
                if entry.stage < stage:
                    if before_stage is not None and not before_stage(stage):
                        break
                    started = time.perf_counter()
                    sent = bool(step(entry, workdir, data_dir, on_log)) or sent
                    timings[stage.name.lower()] = time.perf_counter() - started
                    entry.stage = stage
                    self.journal.save(entry)
                    stages.append(stage.name.lower())
                    if after_stage is not None:
                        after_stage(stage, timings[stage.name.lower()])
            status = self.client.submission(entry.submission_id).status
            return WorkReport(task_id=task_id, submission_id=entry.submission_id,
                              status=status, result_cid=entry.result_cid,
                              num_examples=entry.num_examples, metrics=entry.metrics,
                              resumed_from=resumed_from, stages_run=stages,
                              block_number=entry.block_number, timings=timings,
                              result_sent=sent, stale=stale, reset=reset,
                              output_dir=entry.output_dir, sandbox=entry.sandbox,
                              shard=entry.shard)

    def ships_data(self, task_id: int) -> bool:
        """Whether the task ships the creator's data, one shard per slot (the chain's terms):
        such a task runs on its shard and needs no data from the contributor."""
        return self.client.task_terms(task_id).shards > 0

    def abandon(self, task_id: int) -> AbandonReport:
        """Give back the slot this account holds on ``task_id`` (``abandon_task``), and discard
        the local progress on it. Only an ``Assigned`` slot can be given back."""
        with self.journal.locked(f"abandon {task_id}"):
            mine = [s for s in self.client.worker_submissions(self.address)
                    if s.task_id == task_id]
            assigned = [s for s in mine if s.status is SubmissionStatus.Assigned]
            if not assigned:
                sent = [s for s in mine if s.status in (SubmissionStatus.PendingValidation,
                                                        SubmissionStatus.Accepted)]
                if sent:
                    raise InvalidInput("task_id", f"your result for task {task_id} was already "
                                       f"sent (submission {sent[-1].submission_id} is "
                                       f"{sent[-1].status.value}); a sent result cannot be "
                                       f"withdrawn")
                raise InvalidInput("task_id", f"this account holds no slot on task {task_id}")
            sub = assigned[-1]
            result = self.client.abandon_task(sub.submission_id)
            discarded = []
            for entry in self.journal.unfinished(task_id):
                self.journal.remove(entry)
                shutil.rmtree(self._workdir(entry), ignore_errors=True)
                discarded.append(entry.key)
            return AbandonReport(task_id=task_id, submission_id=sub.submission_id,
                                 extrinsic_hash=result.extrinsic_hash,
                                 block_number=result.block_number, discarded=discarded)

    # --- stages -------------------------------------------------------------------------------

    def _check_task_type(self, task_id: int) -> TaskInfo:
        task = self.client.task(task_id)
        if self.task_type is not None and task.task_type is not self.task_type:
            raise InvalidInput("task_id", f"task {task_id} is a {task.task_type.value} task",
                               f"a {self.task_type.value} task for {type(self).__name__}")
        return task

    def _fetch(self, entry: JournalEntry, workdir: Path, data_dir: Path | None,
               on_log: Callable[[str], None] | None) -> None:
        from decentralml.storage.bundle import fetch_bundle

        task = self.client.task(entry.task_id)
        dest = workdir / "bundle"
        if dest.exists():  # a previous, interrupted attempt: fetch again rather than trust it
            shutil.rmtree(dest)
        ready = self.prefetched.take(task.assets_cid)
        moved = False
        if ready is not None:
            # fetched and verified against this CID moments ago; the run stage verifies every
            # file against the manifest again before anything runs
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(ready, dest)
                moved = True
            except OSError:  # another filesystem: fetch it after all
                pass
            shutil.rmtree(ready.parent, ignore_errors=True)
        if not moved:
            fetch_bundle(self.store, task.assets_cid, dest)
        entry.bundle_dir = str(dest)
        self._fetch_shard(entry, workdir, data_dir)

    def _fetch_shard(self, entry: JournalEntry, workdir: Path, data_dir: Path | None) -> None:
        """A task that ships its data: fetch (verified) only the shard the chain assigned this
        slot. The contributor's own data is never handed to such a task."""
        from decentralml.storage.bundle import read_manifest
        from decentralml.storage.shards import fetch_shard, shard_cid

        assert entry.bundle_dir is not None
        manifest = read_manifest(Path(entry.bundle_dir))
        if not manifest.shards:
            return
        shard = self.client.submission_shard(entry.submission_id)
        if shard is None:
            raise BundleError(f"task {entry.task_id} ships {len(manifest.shards)} data shards, "
                              f"but the chain assigned submission {entry.submission_id} none: "
                              f"the task was not created with shards on chain")
        # Kept by CID (content-addressed, so never stale): the next round of a job that assigns
        # this slot the same shard neither fetches it again nor loses its warm task host (a host
        # is kept per data directory). It is verified again before every run.
        dest = self.home / "shards" / shard_cid(manifest, shard)
        if not dest.is_dir():
            fetched = dest.with_name(f".{dest.name}.{entry.submission_id}")
            if fetched.exists():  # an interrupted attempt: fetch again rather than trust it
                shutil.rmtree(fetched)
            fetch_shard(self.store, manifest, shard, fetched)
            try:
                os.replace(fetched, dest)
            except OSError:  # fetched meanwhile by a concurrent task: keep that one
                shutil.rmtree(fetched, ignore_errors=True)
        entry.shard, entry.shard_dir = shard, str(dest)

    def _run(self, entry: JournalEntry, workdir: Path, data_dir: Path | None,
             on_log: Callable[[str], None] | None, cancel: CancelHandle | None = None) -> None:
        from decentralml.storage._fs import remove_tree
        from decentralml.storage.bundle import load_bundle
        from decentralml.storage.runner import run_bundle

        assert entry.bundle_dir is not None
        bundle = load_bundle(Path(entry.bundle_dir))  # verified again: it sat on disk
        if entry.shard_dir is not None:
            # the creator's shard, verified again like the bundle; the contributor's own data
            # (if it gave any) is not mounted
            data_dir = load_bundle(Path(entry.shard_dir)).path
        elif data_dir is None:
            raise InvalidInput("data_dir", "the task has not run yet: give your data directory")
        run_dir = workdir / "run"
        if run_dir.exists():  # remove_tree: a hostile task's output can be of any depth
            remove_tree(run_dir)
        # The runner refuses missing requirements, a timeout or a failed exit with an error
        # that names the problem and the log; nothing is journaled past FETCHED then.
        if self.hosts is not None and bundle.manifest.python_entry is not None:
            # A warm host per (creator, job, code): the job is what the creator's bundle says
            # it is (metadata "job"); a bundle naming none runs cold.
            task = self.client.task(entry.task_id)
            job = bundle.manifest.metadata.get("job")
            result = self.hosts.run(
                bundle, creator=task.creator, job=job if isinstance(job, str) else "",
                task_id=entry.task_id, submission_id=entry.submission_id, data_dir=data_dir,
                workdir=run_dir, limits=self.limits, sandbox=self.sandbox,
                allow_network=self.allow_network, on_log=on_log, cancel=cancel)
        else:
            result = run_bundle(bundle, task_id=entry.task_id,
                                submission_id=entry.submission_id, data_dir=data_dir,
                                workdir=run_dir, limits=self.limits, on_log=on_log,
                                sandbox=self.sandbox, allow_network=self.allow_network,
                                cancel=cancel)
        entry.sandbox = result.sandbox
        entry.output_dir = str(result.output_dir)
        entry.num_examples = result.num_examples
        entry.metrics = dict(result.metrics or {})

    def _upload(self, entry: JournalEntry, workdir: Path, data_dir: Path | None,
                on_log: Callable[[str], None] | None) -> None:
        from decentralml.storage.bundle import pack_bundle

        assert entry.output_dir is not None
        task = self.client.task(entry.task_id)
        packed = pack_bundle(Path(entry.output_dir), self.store, task_type=task.task_type,
                             entrypoint=None, kind="result", num_examples=entry.num_examples,
                             metrics=entry.metrics)
        self.store.pin(packed.cid)
        entry.result_cid = packed.cid

    def _submit(self, entry: JournalEntry, workdir: Path, data_dir: Path | None,
                on_log: Callable[[str], None] | None) -> bool:
        # Ask the chain first: if a previous attempt's extrinsic landed, sending again would only
        # fail with InvalidStatus, and we would lose the record of the success.
        if self.client.submission(entry.submission_id).status is not SubmissionStatus.Assigned:
            return False
        result: dict[str, Any] = {"metrics": entry.metrics}
        if entry.num_examples is not None:
            result["num_examples"] = entry.num_examples
        sent = self.client.send_task_result(entry.submission_id, result=result,
                                            result_cid=entry.result_cid,
                                            result_storage=self.store.storage_type)
        entry.extrinsic_hash = sent.extrinsic_hash
        entry.block_number = sent.block_number
        return True


class ModelContributor(Contributor):
    """Trains the creator's model on its own data and returns a weights-only update."""

    task_type = TaskType.ModelContributor


class ModelEngineer(Contributor):
    """Reworks the creator's model and returns a new one."""

    task_type = TaskType.ModelEngineer


class DataAnnotator(Contributor):
    """Labels the creator's samples and returns annotations as JSON."""

    task_type = TaskType.DataAnnotator

"""Warm task hosts: one long-lived sandboxed process per job, running its entry point round after
round.

A cold run pays for a sandbox, an interpreter, the ML framework's imports, the data and the
compiled model in every round; for a small model that is most of the round. A bundle with a
Python entry point (manifest ``python_entry``) can instead be run by a :class:`TaskHost`: the
same bubblewrap sandbox as a cold run (:func:`decentralml.storage.runner.spawn`), started once,
running ``python -m decentralml.storage.entry --serve``, which keeps the entry point's module,
and whatever it holds, loaded between rounds.

What a host is bound to (:class:`HostKey`): one creator, one job, one code hash (every file of the
bundle but its round files, :meth:`~decentralml.storage.bundle.Manifest.code_hash`), one data
directory and one set of limits and sandbox options. Anything else gets another host, so what a
job's code keeps in memory is only ever seen by later rounds of the same creator's same job
(docs/security.md, "Warm task hosts").

Per round (:meth:`TaskHost.run_round`):

* the round's files are copied, verified against the manifest, into the host's read-only task
  directory; its output directory starts empty;
* the host is thawed, asked to run the round, and supervised like a cold run: wall-clock
  timeout, output limit (output, home and tmp together), cancel handle;
* when the round ends the whole sandbox is frozen (SIGSTOP to every process in it), so nothing
  of the task runs between rounds; a round that left a process behind breaks the host;
* the output is copied out (regular files and directories only, nothing followed) into the
  round's own run directory and read with the same checks as a cold run's.

A host that crashes, hangs, breaks a limit, leaves a process behind or whose entry point raised is
killed and never reused. :class:`TaskHostPool` runs the round again cold when the host broke
(crash, leftovers: things a fresh process fixes) and fails it otherwise (timeout, limit, an
exception: a cold run would do the same).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path

from decentralml.errors import IntegrityError, RunnerError
from decentralml.storage import sandbox as sb
from decentralml.storage._fs import remove_tree_quietly
from decentralml.storage._quota import DiskWatch, measure, over_limit
from decentralml.storage.bundle import Bundle, _sha256_file
from decentralml.storage.entry import MAX_MESSAGE
from decentralml.storage.runner import (
    CANCEL_POLL,
    MAX_OUTPUT_ENTRIES,
    CancelHandle,
    LogSink,
    Outcome,
    Plan,
    RunLimits,
    RunResult,
    Spawned,
    _kill_group,
    collect,
    entry_command,
    preflight,
    prepare,
    run_bundle,
    spawn,
)

#: Seconds a new host may take to start its interpreter and say it is ready.
START_TIMEOUT = 60.0
#: Default number of hosts a pool keeps (each holds a job's imports and model in memory).
DEFAULT_MAX_HOSTS = 2
#: Default seconds a host may sit idle (frozen) before the pool ends it.
DEFAULT_IDLE_SECONDS = 600.0


class HostBroken(RunnerError):
    """The host died or misbehaved between request and answer; a fresh process may succeed."""


@dataclasses.dataclass(frozen=True)
class HostKey:
    """What a warm host is bound to: a round may reuse a host only when all of it is equal."""

    creator: str
    job: str
    code_hash: str
    data_dir: str
    limits: RunLimits
    sandbox: str
    network: bool


def _ppids() -> dict[int, int]:
    """pid -> parent pid of every process (Linux ``/proc``)."""
    out: dict[int, int] = {}
    with os.scandir("/proc") as it:
        for entry in it:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as fh:
                    text = fh.read()
            except OSError:
                continue
            # pid (comm) state ppid ...; comm may hold spaces and parentheses
            fields = text.rsplit(b")", 1)[-1].split()
            if len(fields) >= 2:
                out[int(entry.name)] = int(fields[1])
    return out


def descendants(root: int) -> set[int]:
    """Every process below ``root``: for a sandbox's bwrap, everything running in it (an orphan
    is re-parented to the sandbox's own init, which is below bwrap too)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _ppids().items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def _signal_all(root: int, sig: int) -> set[int]:
    """Send ``sig`` to every process below ``root``, again until no new one appears (a process
    forking while it is being stopped)."""
    done: set[int] = set()
    for _ in range(100):
        fresh = descendants(root) - done
        if not fresh:
            break
        for pid in fresh:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        done |= fresh
    return done


def copy_out(src: Path, dst: Path) -> None:
    """Copy what a (frozen) host wrote into ``dst``: directories and regular files, symlinks as
    symlinks (packing refuses the ones pointing outside); nothing is followed, FIFOs and devices
    are left behind."""
    dst.mkdir(parents=True, exist_ok=True)
    with os.scandir(src) as it:
        for item in it:
            source, target = Path(item.path), dst / item.name
            st = os.lstat(source)
            if stat.S_ISDIR(st.st_mode):
                copy_out(source, target)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(source), target)
            elif stat.S_ISREG(st.st_mode):
                fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as fin, open(target, "wb") as fout:
                    if not stat.S_ISREG(os.fstat(fin.fileno()).st_mode):
                        continue
                    shutil.copyfileobj(fin, fout, 1 << 20)


class TaskHost:
    """One sandboxed process running a bundle's entry point, one round at a time."""

    def __init__(self, key: HostKey, bundle: Bundle, root: Path, *, data_dir: Path | None,
                 limits: RunLimits, sandbox: sb.SandboxMode, allow_network: bool) -> None:
        entry = bundle.manifest.python_entry
        if entry is None:
            raise RunnerError(f"bundle {bundle.cid} has no Python entry point to keep warm")
        self.key = key
        self.root = root
        self.rounds = 0
        self.last_used = time.monotonic()
        self.lock = threading.Lock()
        self._plan: Plan = preflight(bundle, task_id="host", submission_id="host",
                                     data_dir=data_dir, workdir=root, limits=limits,
                                     sandbox=sandbox, allow_network=allow_network)
        prepare(self._plan)
        self._host_log = open(root / "host.log", "ab")  # noqa: SIM115 (lives with the host)
        self._sink = LogSink(self._host_log)
        req_r, self._req_w = os.pipe()
        self._ans_r, ans_w = os.pipe()
        try:
            self._spawned: Spawned = spawn(self._plan, entry_command(entry, "--serve",
                                                                     str(req_r), str(ans_w)),
                                           self._sink, keep_fds=(req_r, ans_w))
        except BaseException:
            for fd in (self._req_w, self._ans_r):
                os.close(fd)
            self._host_log.close()
            remove_tree_quietly(root)
            raise
        finally:
            os.close(req_r)
            os.close(ans_w)
        self._buffer = b""
        self.alive = True
        try:
            ready = self._answer(time.monotonic() + START_TIMEOUT, None)
            if ready is None or not ready.get("ready"):
                raise HostBroken(f"the task host did not start (log: {root / 'host.log'})")
            # What runs in the sandbox once the host is up; a round leaving more is refused.
            self._baseline = descendants(self._spawned.proc.pid)
            self._freeze()
        except BaseException:
            self.close()
            raise

    # --- the process ------------------------------------------------------------------------

    def _freeze(self) -> None:
        _signal_all(self._spawned.proc.pid, signal.SIGSTOP)

    def _thaw(self) -> None:
        _signal_all(self._spawned.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        """Kill everything in the host's sandbox and remove its directory."""
        if self.alive:
            self.alive = False
            proc = self._spawned.proc
            _kill_group(proc.pid, signal.SIGKILL)
            _signal_all(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            self._spawned.pump.join(timeout=5)
            for fd in (self._req_w, self._ans_r):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._host_log.close()
        if self._plan.backend == "bubblewrap" and sb.runs_as_root():
            with contextlib.suppress(OSError):
                sb.reclaim(self.root)
        remove_tree_quietly(self.root)

    def _answer(self, deadline: float, cancel: CancelHandle | None,
                watch: DiskWatch | None = None) -> dict[str, object] | None:
        """The host's next answer line; ``None`` at the deadline, on cancel, over the output
        limit, or when the host is gone (the caller tells which)."""
        while b"\n" not in self._buffer:
            if cancel is not None and cancel.cancelled:
                return None
            if watch is not None and watch.reason is not None:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._ans_r], [], [], min(left, CANCEL_POLL))
            if not ready:
                continue
            chunk = os.read(self._ans_r, MAX_MESSAGE)
            if not chunk:
                return None
            self._buffer += chunk
            if len(self._buffer) > MAX_MESSAGE:
                return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        return message if isinstance(message, dict) else None

    # --- a round ----------------------------------------------------------------------------

    def _drain(self) -> None:
        """Forget anything the host wrote after its last answer: a round's answer must be
        written during that round."""
        self._buffer = b""
        while select.select([self._ans_r], [], [], 0)[0]:
            if not os.read(self._ans_r, MAX_MESSAGE):
                return

    def _stage(self, bundle: Bundle) -> None:
        """Put this round's files into the host's task directory (verified, atomically)."""
        task_dir = self._plan.layout.task_dir
        listed = {e.path: e for e in bundle.manifest.files}
        for name in bundle.manifest.round_files:
            target = task_dir / name
            entry = listed.get(name)
            if entry is None:
                target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".round-")
            os.close(fd)
            try:
                shutil.copyfile(bundle.path / name, tmp)
                sha, size = _sha256_file(Path(tmp), entry.size)
                if (sha, size) != (entry.sha256, entry.size):
                    raise IntegrityError(f"{name!r} in {bundle.path} no longer matches the "
                                         "manifest")
                os.chmod(tmp, 0o755 if entry.executable else 0o644)
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)

    def run_round(self, bundle: Bundle, *, task_id: int | str, submission_id: int | str,
                  workdir: Path, on_log: Callable[[str], None] | None = None,
                  cancel: CancelHandle | None = None, check: bool = True) -> RunResult:
        """Run one round in this host; its result and log land in ``workdir`` (``output/``,
        ``task.log``) as a cold run's would. Raises :class:`HostBroken` when the host crashed
        or left a process behind (the host is closed then), :class:`TaskFailed` when the round
        failed (timeout, limit, cancel, an exception in the entry point; closed too)."""
        if not self.alive:
            raise HostBroken("the task host is closed")
        if bundle.manifest.code_hash() != self.key.code_hash:
            raise RunnerError("this round's code differs from the host's")
        plan = self._plan
        ids = (str(task_id), str(submission_id))
        workdir = Path(workdir).absolute()
        workdir.mkdir(parents=True, exist_ok=False)
        round_plan = dataclasses.replace(
            plan, bundle=bundle, ids=ids, workdir=workdir, log_path=workdir / "task.log",
            layout=dataclasses.replace(plan.layout, output_dir=workdir / "output",
                                       home=workdir / "home", tmpdir=workdir / "tmp"))
        self._stage(bundle)
        self._drain()
        self.rounds += 1
        limits = plan.limits
        outcome = Outcome()
        answer: dict[str, object] | None = None
        with open(round_plan.log_path, "wb") as log:
            self._sink.switch(log, on_log)
            started = time.monotonic()
            try:
                watch = DiskWatch(plan.writable, max_bytes=limits.max_output_bytes,
                                  max_entries=MAX_OUTPUT_ENTRIES,
                                  on_exceeded=lambda _reason: None)
                with watch:
                    self._thaw()
                    request = {"task_id": ids[0], "submission_id": ids[1], "round": self.rounds}
                    os.write(self._req_w, json.dumps(request).encode() + b"\n")
                    answer = self._answer(started + limits.timeout, cancel, watch)
                    self._freeze()
                duration = time.monotonic() - started
                exceeded = watch.reason or over_limit(
                    measure(plan.writable, max_entries=MAX_OUTPUT_ENTRIES),
                    max_bytes=limits.max_output_bytes, max_entries=MAX_OUTPUT_ENTRIES)
                if answer is None:
                    outcome = Outcome(
                        timed_out=exceeded is None and time.monotonic() >= started + limits.timeout,
                        cancelled=cancel is not None and cancel.cancelled, exceeded=exceeded)
                    if not (outcome.timed_out or outcome.cancelled or exceeded):
                        raise HostBroken("the task host died during the round (log: "
                                         f"{round_plan.log_path})")
                elif exceeded is not None:
                    outcome = Outcome(exceeded=exceeded)
                else:
                    left = descendants(self._spawned.proc.pid) - self._baseline
                    if left:
                        raise HostBroken(f"the round left {len(left)} process(es) running in "
                                         "the task host")
                    copy_out(plan.layout.output_dir, round_plan.layout.output_dir)
            except BaseException:
                self._sink.switch(self._host_log)
                self.close()
                raise
            finally:
                self.last_used = time.monotonic()
            self._sink.switch(self._host_log)
            failed = answer is None or not answer.get("ok") or outcome != Outcome()
            if outcome.timed_out or outcome.cancelled or outcome.exceeded:
                note = ("timeout" if outcome.timed_out else "cancel" if outcome.cancelled
                        else outcome.exceeded)
                log.write(f"\n[decentralml: task host stopped: {note}]\n".encode())
        for child in plan.layout.output_dir.iterdir():
            remove_tree_quietly(child)
        if failed:
            self.close()  # an entry point that raised may have left its module half-changed
        return collect(round_plan, 1 if failed else 0, outcome, duration, check=check)


class TaskHostPool:
    """The warm hosts of one contributor: at most ``max_hosts``, each ended after
    ``idle_seconds`` without a round, all ended by :meth:`close`."""

    def __init__(self, root: Path, *, max_hosts: int = DEFAULT_MAX_HOSTS,
                 idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        from decentralml.errors import InvalidInput

        if isinstance(max_hosts, bool) or not isinstance(max_hosts, int) or max_hosts < 1:
            raise InvalidInput("max_hosts", f"is {max_hosts!r}", ">= 1")
        if not idle_seconds > 0:
            raise InvalidInput("idle_seconds", f"is {idle_seconds!r}", "> 0 seconds")
        self.root = Path(root)
        self.max_hosts = max_hosts
        self.idle_seconds = idle_seconds
        self._hosts: OrderedDict[HostKey, TaskHost] = OrderedDict()
        self._lock = threading.Lock()
        #: what happened to hosts lately (started, reused, cold runs and why), for reports
        self.events: deque[tuple[str, str]] = deque(maxlen=1024)

    def __enter__(self) -> TaskHostPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            hosts = list(self._hosts.values())
            self._hosts.clear()
        for host in hosts:
            host.close()

    def reap(self) -> None:
        """End hosts idle for longer than ``idle_seconds`` (and dead ones)."""
        now = time.monotonic()
        with self._lock:
            stale = [k for k, h in self._hosts.items()
                     if not h.alive or (not h.lock.locked()
                                        and now - h.last_used > self.idle_seconds)]
            ended = [self._hosts.pop(k) for k in stale]
        for host in ended:
            host.close()

    def _host_for(self, key: HostKey, bundle: Bundle, *, data_dir: Path | None,
                  sandbox: sb.SandboxMode, allow_network: bool) -> TaskHost:
        with self._lock:
            host = self._hosts.get(key)
            retire: list[TaskHost] = []
            if host is not None and not host.alive:
                self._hosts.pop(key)
                host = None
            if host is None:
                # The same job with other code (or data, or limits): its old host is done.
                for other in [k for k in self._hosts if (k.creator, k.job) == (key.creator,
                                                                                  key.job)]:
                    retire.append(self._hosts.pop(other))
                while len(self._hosts) >= self.max_hosts:
                    retire.append(self._hosts.popitem(last=False)[1])
            else:
                self._hosts.move_to_end(key)
        for old in retire:
            old.close()
        if host is not None:
            self.events.append(("reused", key.job))
            return host
        self.root.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(dir=self.root, prefix="host-"))
        host = TaskHost(key, bundle, root, data_dir=data_dir, limits=key.limits,
                        sandbox=sandbox, allow_network=allow_network)
        with self._lock:
            self._hosts[key] = host
        self.events.append(("started", key.job))
        return host

    def run(self, bundle: Bundle, *, creator: str, job: str, task_id: int | str,
            submission_id: int | str, data_dir: Path | None, workdir: Path, limits: RunLimits,
            sandbox: sb.SandboxMode = "auto", allow_network: bool = False,
            on_log: Callable[[str], None] | None = None,
            cancel: CancelHandle | None = None) -> RunResult:
        """Run one round of ``bundle``: in the warm host of ``(creator, job, code)`` when the
        bundle has a Python entry point, else (or when that host is busy) cold with
        :func:`~decentralml.storage.runner.run_bundle`. A host that broke is replaced by a cold
        run of the same round."""
        def cold() -> RunResult:
            if workdir.exists():
                remove_tree_quietly(workdir)
            return run_bundle(bundle, task_id=task_id, submission_id=submission_id,
                              data_dir=data_dir, workdir=workdir, limits=limits,
                              sandbox=sandbox, allow_network=allow_network, on_log=on_log,
                              cancel=cancel)

        self.reap()
        manifest = bundle.manifest
        if manifest.python_entry is None or not job:
            return cold()
        key = HostKey(creator=creator, job=job, code_hash=manifest.code_hash(),
                      data_dir=str(Path(data_dir).resolve()) if data_dir else "",
                      limits=limits, sandbox=sandbox,
                      network=manifest.network and allow_network)
        try:
            host = self._host_for(key, bundle, data_dir=data_dir, sandbox=sandbox,
                                  allow_network=allow_network)
        except HostBroken:
            self.events.append(("cold: host did not start", job))
            return cold()
        if not host.lock.acquire(blocking=False):
            self.events.append(("cold: host busy", job))
            return cold()
        try:
            return host.run_round(bundle, task_id=task_id, submission_id=submission_id,
                                  workdir=workdir, on_log=on_log, cancel=cancel)
        except HostBroken as exc:
            self.events.append((f"cold: {exc}", job))
            return cold()
        finally:
            host.lock.release()

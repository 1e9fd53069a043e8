"""Run a fetched task bundle on a contributor's machine, and pack what it produced.

The runner gives a task a fresh working directory, its context in ``DECENTRALML_*`` variables, an
environment scrubbed down to an allow-list (so keyring, mnemonic and token variables never reach
it), a wall-clock timeout that kills its whole process group, limits on processes and on what it
writes, and optional CPU/memory rlimits.

By default (``sandbox="auto"``) the task runs inside the bubblewrap sandbox of
:mod:`decentralml.storage.sandbox`: no view of the contributor's files, processes or network, a
process limit, and a limit on what it may write. Where bubblewrap cannot run, the task is refused
unless the caller opts out with ``sandbox="none"``, which keeps only the hygiene above (the task
then runs with the contributor's rights). See docs/bundles.md and docs/security.md.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from decentralml.chain.types import TaskType
from decentralml.config import quiet_framework_env
from decentralml.errors import BundleError, IntegrityError, InvalidInput, RunnerError
from decentralml.storage import sandbox as sb
from decentralml.storage._fs import remove_tree_quietly
from decentralml.storage._quota import DiskWatch, measure, over_limit
from decentralml.storage.base import Store
from decentralml.storage.bundle import (
    DEFAULT_MAX_FILE_SIZE,
    MAX_FILES,
    Bundle,
    Manifest,
    PackedBundle,
    _sha256_file,
    pack_bundle,
)

#: Files in the output dir the runner reads ``num_examples`` and ``metrics`` from, first found
#: wins: ``update.json`` is the federated-learning convention (next to ``update.npz``),
#: ``result.json`` the one for every other task.
RESULT_SIDECARS: tuple[str, ...] = ("update.json", "result.json")

#: Variables copied from the caller's environment when set (besides ``LC_*``). Nothing else is.
ENV_ALLOW: tuple[str, ...] = (
    "PATH", "LANG", "LANGUAGE", "TZ", "TERM",
    # Runtime knobs of the ML stack: they pick devices and threads, and carry no credentials.
    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL",
    "TF_ENABLE_ONEDNN_OPTS",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
)
#: A variable whose name contains one of these (case-insensitive) never reaches a task, whether
#: inherited or passed in ``env_extra``.
SECRET_MARKERS: tuple[str, ...] = (
    "KEY", "TOKEN", "SECRET", "MNEMONIC", "PASSWORD", "PASSWD", "PASSPHRASE", "SEED",
    "CREDENTIAL", "AUTH", "COOKIE", "SESSION", "PRIVATE",
)

ENV_TASK_ID = "DECENTRALML_TASK_ID"
ENV_SUBMISSION_ID = "DECENTRALML_SUBMISSION_ID"
ENV_TASK_TYPE = "DECENTRALML_TASK_TYPE"
ENV_BUNDLE_CID = "DECENTRALML_BUNDLE_CID"
ENV_TASK_DIR = "DECENTRALML_TASK_DIR"
ENV_OUTPUT_DIR = "DECENTRALML_OUTPUT_DIR"
ENV_DATA_DIR = "DECENTRALML_DATA_DIR"
ENV_WORKDIR = "DECENTRALML_WORKDIR"

#: Seconds between SIGTERM and SIGKILL when a task is stopped.
KILL_GRACE = 5.0
#: How often a supervised task's cancel handle is looked at, in seconds.
CANCEL_POLL = 0.1
#: The log file stops growing here (the task keeps running; its output is still drained).
MAX_LOG_BYTES = 64 * 1024**2
#: Largest sidecar JSON read from the output dir.
MAX_SIDECAR_BYTES = 1024**2
#: Default cap on everything a task writes (output, home, tmp), in bytes.
DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024**3
#: Default cap on the task's processes and threads (``RLIMIT_NPROC``; TensorFlow alone starts
#: a few dozen threads per core).
DEFAULT_MAX_PROCESSES = 512
#: Most files and directories a task may leave in its writable dirs (a result lists at most
#: :data:`~decentralml.storage.bundle.MAX_FILES`).
MAX_OUTPUT_ENTRIES = MAX_FILES

_LINE_MAX = 64 * 1024
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class RunResult:
    """What a run produced. ``num_examples``/``metrics`` come from the first sidecar found."""

    returncode: int
    output_dir: Path
    log_path: Path
    num_examples: int | None
    metrics: dict[str, float]
    duration: float
    timed_out: bool = False
    task_id: str = ""
    submission_id: str = ""
    task_type: TaskType = TaskType.ModelContributor
    bundle_cid: str = ""
    workdir: Path = field(default_factory=Path)
    #: Which sandbox ran the task: ``"bubblewrap"`` or ``"none"`` (explicitly opted out).
    sandbox: sb.SandboxBackend = "none"
    #: Why the task was stopped for what it wrote (its output was deleted), else ``None``.
    output_exceeded: str | None = None
    #: The run was stopped through its :class:`CancelHandle`.
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        """Whether the task exited 0 within its time and its limits."""
        return (self.returncode == 0 and not self.timed_out and self.output_exceeded is None
                and not self.cancelled)


class TaskFailed(RunnerError):
    """The task exited non-zero, timed out, or did not produce its declared outputs.

    ``result`` holds the run (log path, return code) so the caller can show the log.
    """

    def __init__(self, message: str, result: RunResult) -> None:
        self.result = result
        super().__init__(message)


class SandboxWarning(UserWarning):
    """A task is about to run without the sandbox (``sandbox="none"``)."""


class NetworkNotAllowed(RunnerError):
    """The bundle declares that it needs network and the contributor did not allow it."""


class MissingRequirements(RunnerError):
    """Requirements the bundle declares are not importable; nothing was run."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__("the task needs requirement(s) that are not installed: "
                         + ", ".join(missing)
                         + " (install them yourself, e.g. pip install "
                         + " ".join(repr(m.split(" (")[0]) for m in missing) + ")")


# --------------------------------------------------------------------------------------------
# requirements


def _module_name(dist_name: str) -> str:
    return canonicalize_name(dist_name).replace("-", "_")


def _installed_version(req: Requirement) -> str | None:
    """Version of the distribution satisfying ``req``'s name, or of one providing its module.

    The second lookup is what makes ``tensorflow>=2.16`` satisfied by ``tensorflow-cpu``, which
    installs the ``tensorflow`` module under another distribution name.
    """
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        return importlib.metadata.version(req.name)
    module = _module_name(req.name)
    if importlib.util.find_spec(module) is None:
        return None
    for dist in _providers(_site_stamp()).get(module, []):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(dist)
    return ""  # importable, but no metadata to check a version against


def _site_stamp() -> tuple[tuple[str, int], ...]:
    """The modification times of the import path's directories: they change when a distribution
    is installed or removed."""
    stamp = []
    for entry in sys.path:
        with contextlib.suppress(OSError):
            stamp.append((entry, os.stat(entry or ".").st_mtime_ns))
    return tuple(stamp)


@functools.lru_cache(maxsize=1)
def _providers(_stamp: tuple[tuple[str, int], ...]) -> Mapping[str, list[str]]:
    """Which distributions provide each top-level module (a scan of every installed one: a
    tenth of a second, so done once per state of the import path)."""
    return importlib.metadata.packages_distributions()


def check_requirements(manifest: Manifest) -> list[str]:
    """The manifest's requirements that this interpreter does not satisfy, as declared.

    A requirement whose environment marker is false here is skipped. A version mismatch is
    reported with the installed version, e.g. ``"numpy>=99 (installed: 2.1.0)"``. Nothing is
    ever installed: what runs on a contributor's machine is the contributor's decision.
    """
    missing: list[str] = []
    for text in manifest.requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        version = _installed_version(req)
        if version is None:
            missing.append(text)
        elif req.specifier and not (version and req.specifier.contains(version, prereleases=True)):
            missing.append(f"{text} (installed: {version or 'unknown version'})")
    return missing


# --------------------------------------------------------------------------------------------
# environment


def _is_secret(name: str) -> bool:
    upper = name.upper()
    return any(marker in upper for marker in SECRET_MARKERS)


def build_env(*, context: Mapping[str, str], env_extra: Mapping[str, str] | None,
              home: Path, tmpdir: Path, bin_dir: Path,
              base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The task's whole environment: the allow-list from ``base``, then the task context.

    ``env_extra`` may add variables but not override the runner's own, and never one whose name
    looks like a credential (:class:`InvalidInput`): a secret passed on purpose is still a leak.
    """
    source = os.environ if base is None else base
    env: dict[str, str] = {}
    for name, value in source.items():
        if (name in ENV_ALLOW or name.startswith("LC_")) and not _is_secret(name):
            env[name] = value
    # The caller's interpreter first, so the task's `python` has the SDK and what the caller
    # checked with check_requirements (bin_dir holds `python`/`python3` wrappers for it).
    path = [str(bin_dir), str(Path(sys.executable).parent)]
    if env.get("PATH"):
        path.append(env["PATH"])
    else:
        path.append(os.defpath)
    env["PATH"] = os.pathsep.join(path)
    env["HOME"] = str(home)
    env["TMPDIR"] = str(tmpdir)
    env["PYTHONUNBUFFERED"] = "1"  # logs stream live instead of arriving at exit
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep the task tree as fetched
    env["MPLBACKEND"] = "Agg"
    quiet_framework_env(env)
    env.update(context)
    for name, value in (env_extra or {}).items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise InvalidInput("env_extra", f"{name!r} is not a valid variable name")
        if _is_secret(name):
            raise InvalidInput("env_extra", f"{name!r} looks like a credential; tasks never get "
                               "secrets", limit="no name containing " + "/".join(SECRET_MARKERS))
        if name in context or name in ("HOME", "TMPDIR", "PATH"):
            raise InvalidInput("env_extra", f"{name!r} is set by the runner")
        if not isinstance(value, str) or "\0" in value:
            raise InvalidInput("env_extra", f"value of {name!r} must be a string without NUL")
        env[name] = value
    return env


def _write_python_wrappers(bin_dir: Path) -> None:
    """``python``/``python3`` that exec the caller's interpreter.

    Wrappers, not symlinks: a symlink to a venv's interpreter from elsewhere loses the venv.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = f'#!/bin/sh\nexec {_shell_quote(sys.executable)} "$@"\n'
    for name in ("python", "python3"):
        path = bin_dir / name
        path.write_text(script, encoding="utf-8")
        path.chmod(0o755)


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _tasks_of(uid: int) -> int:
    """How many processes and threads ``uid`` runs now (what ``RLIMIT_NPROC`` counts)."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as fh:
                fields = dict(line.split(b":", 1) for line in fh.read().splitlines()
                              if b":" in line)
            if int(fields[b"Uid"].split()[0]) == uid:
                count += int(fields[b"Threads"])
        except (OSError, KeyError, ValueError, IndexError):
            continue
    return count


def _nproc_limit(max_processes: int, backend: sb.SandboxBackend) -> int | None:
    """The ``RLIMIT_NPROC`` giving the task ``max_processes`` more processes than its uid has.

    The kernel counts per real uid, and never limits root: under root the sandboxed task runs
    as :data:`~decentralml.storage.sandbox.SANDBOX_UID` (counted), while an unsandboxed task of
    root cannot be limited at all (``None``).
    """
    if sb.runs_as_root():
        return max_processes + _tasks_of(sb.SANDBOX_UID) if backend == "bubblewrap" else None
    return max_processes + _tasks_of(os.getuid())


def _limits(cpu_seconds: int | None, memory_bytes: int | None, nproc: int | None = None,
            fsize: int | None = None) -> Callable[[], None]:
    """The ``preexec_fn`` setting rlimits in the child, between fork and exec.

    Core dumps are always off: a dump of a training process holds the contributor's data.
    ``fsize`` stops any single file at the output limit (SIGXFSZ) in the kernel itself.
    """
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if cpu_seconds is not None:
            # soft limit sends SIGXCPU; the hard one, a little later, SIGKILL
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 2))
        if memory_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    return apply


# --------------------------------------------------------------------------------------------
# running


def _copy_verified(bundle: Bundle, target: Path) -> None:
    """Copy the bundle's files into ``target``, checking each against the manifest on the way.

    The task runs on this private copy, and only if every byte still matches the manifest: a
    bundle edited on disk after :func:`fetch_bundle` is refused, not run.
    """
    target.mkdir(parents=True)
    for entry in bundle.manifest.files:
        src = bundle.path / entry.path
        if src.is_symlink() or not src.is_file():
            raise BundleError(f"{entry.path!r} is missing or not a regular file in {bundle.path}")
        dst = target / entry.path
        dst.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        shutil.copyfile(src, dst)
        try:
            sha, size = _sha256_file(dst, entry.size)
        except BundleError:
            sha, size = "", -1
        if size != entry.size or sha != entry.sha256:
            raise IntegrityError(f"{entry.path!r} in {bundle.path} no longer matches the manifest")
        dst.chmod(0o755 if entry.executable else 0o644)


class LogSink:
    """Where a task's output goes: its log file (capped at :data:`MAX_LOG_BYTES`) and a line
    callback. A warm task host points it at each round's log in turn (:meth:`switch`).

    A callback that raises is dropped, not allowed to stop the draining: a full pipe would block
    the task forever.
    """

    def __init__(self, log: BinaryIO | None, on_log: Callable[[str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._log = log
        self._on_log = on_log
        self._written = 0

    def switch(self, log: BinaryIO | None, on_log: Callable[[str], None] | None = None) -> None:
        with self._lock:
            self._log, self._on_log, self._written = log, on_log, 0

    def write_line(self, line: bytes) -> None:
        with self._lock:
            log = self._log
            if log is not None and self._written < MAX_LOG_BYTES:
                chunk = line[: MAX_LOG_BYTES - self._written]
                log.write(chunk)
                self._written += len(chunk)
                if self._written >= MAX_LOG_BYTES:
                    log.write(b"\n[decentralml: log truncated]\n")
                log.flush()
            if self._on_log is not None:
                try:
                    self._on_log(line.decode("utf-8", errors="replace").rstrip("\r\n"))
                except Exception:
                    self._on_log = None


def _pump(stream: BinaryIO, sink: LogSink) -> None:
    """Copy the task's output to ``sink``, line by line, until the task closes it."""
    # Bounded reads: a task printing gigabytes without a newline must not fill our memory.
    for line in iter(lambda: stream.readline(_LINE_MAX), b""):
        try:
            sink.write_line(line)
        except (OSError, ValueError):  # the round's log was closed under us: keep draining
            continue
    stream.close()


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, or ``None``: NaN, infinities, ``1e400`` (which JSON parses
    to infinity) and integers too large for a float are all refused alike."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _read_sidecar(output_dir: Path) -> tuple[int | None, dict[str, float], str | None]:
    """``num_examples``/``metrics`` from the first sidecar found, and its name."""
    for name in RESULT_SIDECARS:
        path = output_dir / name
        if path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            raise RunnerError(f"{name} is larger than {MAX_SIDECAR_BYTES} bytes")
        try:
            data = json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise RunnerError(f"{name} written by the task is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise RunnerError(f"{name} must hold a JSON object")
        num = data.get("num_examples")
        if num is not None and (isinstance(num, bool) or not isinstance(num, int) or num < 0):
            raise RunnerError(f"{name}: num_examples must be a non-negative integer, got {num!r}")
        raw_metrics = data.get("metrics") or {}
        if not isinstance(raw_metrics, dict):
            raise RunnerError(f"{name}: metrics must be an object of numbers")
        metrics: dict[str, float] = {}
        for key, value in raw_metrics.items():
            number = _finite(value)
            if number is None:
                shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
                raise RunnerError(f"{name}: metric {key!r} must be a finite number, got {shown}")
            metrics[str(key)] = number
        return num, metrics, name
    return None, {}, None


# --------------------------------------------------------------------------------------------
# limits and cancelling


@dataclass(frozen=True)
class RunLimits:
    """Every limit of one run (or, for a warm task host, of one round), checked once.

    ``timeout`` is wall-clock seconds; ``cpu_seconds``/``memory_bytes`` are per-process
    rlimits (``None``: unlimited); ``max_output_bytes`` caps what the task writes to its output,
    home and tmp together; ``max_processes`` is ``RLIMIT_NPROC`` above what the uid runs already.
    """

    timeout: float = 3600.0
    cpu_seconds: int | None = None
    memory_bytes: int | None = None
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    max_processes: int = DEFAULT_MAX_PROCESSES

    def __post_init__(self) -> None:
        timeout = self.timeout
        if isinstance(timeout, bool) or not (isinstance(timeout, (int, float))
                                             and math.isfinite(timeout) and timeout > 0):
            raise InvalidInput("timeout", "must be a positive number of seconds")
        for name in ("cpu_seconds", "memory_bytes", "max_output_bytes", "max_processes"):
            limit = getattr(self, name)
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                      or limit <= 0):
                raise InvalidInput(name, "must be a positive integer")
        for name in ("max_output_bytes", "max_processes"):
            if getattr(self, name) is None:
                raise InvalidInput(name, "must be a positive integer")


class CancelHandle:
    """Stops a running task from another thread (a stopping worker, a Ctrl-C handler).

    The runner checks it while it supervises the task: a cancelled task gets SIGTERM, then
    SIGKILL after :data:`KILL_GRACE` seconds, exactly as at a timeout, and its run reports
    ``cancelled``. Cancelling before the run starts makes it stop as soon as it has started.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the run to stop; only sets a flag, so safe from a signal handler."""
        if not self._event.is_set():
            self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class TaskCancelled(TaskFailed):
    """The run was stopped through its :class:`CancelHandle` (not the task's fault)."""


def _check_data_dir(data_dir: Path, backend: sb.SandboxBackend) -> None:
    """Under root the task reads the data as the unprivileged sandbox uid: say so up front
    rather than let it fail on a permission error deep in the task."""
    if backend == "bubblewrap" and sb.runs_as_root() and (data_dir.stat().st_mode & 0o005) != 0o005:
        raise InvalidInput("data_dir", f"{data_dir} is not readable by others; the sandboxed task "
                           f"runs as uid {sb.SANDBOX_UID} (chmod -R o+rX it)")


# --------------------------------------------------------------------------------------------
# the phases of a run: preflight, prepare, spawn, supervise, collect


@dataclass(frozen=True)
class Plan:
    """What :func:`preflight` decided: every path, the environment and the sandbox, before a
    single directory exists. The task host (:mod:`decentralml.storage.task_host`) starts its
    long-lived process from a plan too."""

    bundle: Bundle
    ids: tuple[str, str]
    workdir: Path
    layout: sb.Layout
    log_path: Path
    backend: sb.SandboxBackend
    bwrap: str | None
    setpriv: str | None
    env: dict[str, str]
    network: bool
    limits: RunLimits
    #: where the task sees its own dirs (host paths unconfined, ``/dml/...`` in the sandbox)
    inside: sb.Layout
    inside_workdir: Path

    @property
    def writable(self) -> list[Path]:
        return [self.layout.output_dir, self.layout.home, self.layout.tmpdir]


def _valid_ids(task_id: int | str, submission_id: int | str) -> tuple[str, str]:
    ids: list[str] = []
    for name, value in (("task_id", task_id), ("submission_id", submission_id)):
        text = str(value)
        if isinstance(value, bool) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", text):
            raise InvalidInput(name, f"{value!r} is not a valid id")
        ids.append(text)
    return ids[0], ids[1]


def preflight(bundle: Bundle, *, task_id: int | str, submission_id: int | str,
              data_dir: Path | None, workdir: Path, limits: RunLimits,
              env_extra: Mapping[str, str] | None = None, sandbox: sb.SandboxMode = "auto",
              allow_network: bool = False) -> Plan:
    """Everything that can refuse a run, refused before anything is written to disk."""
    manifest = bundle.manifest
    if manifest.kind != "task" or manifest.entrypoint is None:
        raise BundleError(f"bundle {bundle.cid} is a {manifest.kind} bundle; nothing to run")
    if not isinstance(limits, RunLimits):
        raise InvalidInput("limits", "must be a RunLimits")
    ids = _valid_ids(task_id, submission_id)
    if manifest.network and not allow_network:
        raise NetworkNotAllowed(
            f"bundle {bundle.cid} declares that it needs network access; nothing was run. Allow "
            "it only if you trust the task with your network (--allow-network, "
            "allow_network=True)")
    backend, bwrap, setpriv = sb.resolve(sandbox)
    if data_dir is not None:
        data_dir = Path(data_dir).resolve()
        if not data_dir.is_dir():
            raise InvalidInput("data_dir", f"{data_dir} is not a directory")
        _check_data_dir(data_dir, backend)
    workdir = Path(workdir).absolute()
    if workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
        raise InvalidInput("workdir", f"{workdir} already exists and is not empty; runs start "
                           "in a fresh directory")
    layout = sb.Layout(task_dir=workdir / "task", output_dir=workdir / "output",
                       home=workdir / "home", tmpdir=workdir / "tmp", bin_dir=workdir / "bin",
                       data_dir=data_dir)
    inside, inside_workdir = layout, workdir
    if backend == "bubblewrap":
        sb.check_exposure(sb.python_paths(), [Path.home(), workdir])
        inside = sb.Layout(task_dir=Path(sb.TASK_DIR), output_dir=Path(sb.OUTPUT_DIR),
                           home=Path(sb.HOME_DIR), tmpdir=Path(sb.TMP_DIR),
                           bin_dir=Path(sb.BIN_DIR),
                           data_dir=Path(sb.DATA_DIR) if data_dir is not None else None)
        inside_workdir = Path(sb.ROOT)
    context = {
        ENV_TASK_ID: ids[0], ENV_SUBMISSION_ID: ids[1],
        ENV_TASK_TYPE: manifest.task_type.value, ENV_BUNDLE_CID: bundle.cid,
        ENV_TASK_DIR: str(inside.task_dir), ENV_OUTPUT_DIR: str(inside.output_dir),
        ENV_WORKDIR: str(inside_workdir),
    }
    if inside.data_dir is not None:
        context[ENV_DATA_DIR] = str(inside.data_dir)
    env = build_env(context=context, env_extra=env_extra, home=inside.home,
                    tmpdir=inside.tmpdir, bin_dir=inside.bin_dir)
    missing = check_requirements(manifest)
    if missing:
        raise MissingRequirements(missing)
    if backend == "none":
        warnings.warn(f"running task {ids[0]} without a sandbox: {sb.NO_SANDBOX_RISK}",
                      SandboxWarning, stacklevel=3)
    return Plan(bundle=bundle, ids=ids, workdir=workdir, layout=layout,
                log_path=workdir / "task.log", backend=backend, bwrap=bwrap, setpriv=setpriv,
                env=env, network=manifest.network and allow_network, limits=limits,
                inside=inside, inside_workdir=inside_workdir)


def prepare(plan: Plan) -> None:
    """The workdir: a verified copy of the bundle, the writable dirs, the ``python`` wrappers.

    A bundle that no longer matches its manifest leaves nothing that could be run later.
    """
    workdir, layout = plan.workdir, plan.layout
    created = not workdir.exists()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        _copy_verified(plan.bundle, layout.task_dir)
        for directory in (layout.output_dir, layout.home, layout.tmpdir):
            directory.mkdir()
        _write_python_wrappers(layout.bin_dir)
        if plan.backend == "bubblewrap":
            sb.prepare_dirs(layout, as_root=sb.runs_as_root())
    except BaseException:
        if created:
            remove_tree_quietly(workdir)
        else:
            for child in workdir.iterdir():
                remove_tree_quietly(child)
        raise


def task_command(plan: Plan) -> list[str]:
    """What runs in the task's directory: the Python entry point's one-round host when the
    manifest names one (``entry``), else ``start_task.sh`` with bash."""
    manifest = plan.bundle.manifest
    if manifest.python_entry is not None:
        return entry_command(manifest.python_entry, "--once")
    assert manifest.entrypoint is not None
    if plan.backend == "bubblewrap":
        return ["/bin/bash", str(plan.inside.task_dir / manifest.entrypoint)]
    bash = shutil.which("bash", path=plan.env["PATH"]) or "/bin/bash"
    return [bash, str(plan.layout.task_dir / manifest.entrypoint)]


def entry_command(entry: str, *mode: str) -> list[str]:
    """The interpreter running :mod:`decentralml.storage.entry` for ``entry`` (validated by the
    manifest: ``module:function`` identifiers only)."""
    return [sys.executable, "-m", "decentralml.storage.entry", "--entry", entry, *mode]


@dataclass
class Spawned:
    """A started task: its process (the sandbox's bwrap, or the entry point itself), the
    thread draining its output, and when it started."""

    proc: subprocess.Popen[bytes]
    pump: threading.Thread
    started: float

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the child leads its own group


def spawn(plan: Plan, command: list[str], log: BinaryIO | LogSink,
          on_log: Callable[[str], None] | None = None, *,
          keep_fds: tuple[int, ...] = ()) -> Spawned:
    """Start ``command`` (inside paths) under the plan's sandbox and limits.

    ``keep_fds`` are extra descriptors the task inherits (the task host's control pipes); they
    are the caller's to close.
    """
    limits = plan.limits
    argv = command
    pass_fds: tuple[int, ...] = keep_fds
    args_fd: int | None = None
    if plan.backend == "bubblewrap":
        assert plan.bwrap is not None
        full = sb.bwrap_command(plan.bwrap, command, plan.layout, network=plan.network,
                                as_root=sb.runs_as_root(), setpriv=plan.setpriv)
        # The arguments go through a pipe (--args), not argv: the sandbox's init is bwrap, and
        # its /proc/1/cmdline would otherwise show the task every host path that was bound.
        # (bwrap takes only options that way; the command, all sandbox paths, stays in argv.)
        split = full.index("--")
        args_fd = sb.args_pipe(full[1:split])
        pass_fds = (*keep_fds, args_fd)
        argv = [full[0], "--args", str(args_fd), *full[split:]]
    preexec = _limits(limits.cpu_seconds, limits.memory_bytes,
                      _nproc_limit(limits.max_processes, plan.backend), limits.max_output_bytes)
    try:
        proc = subprocess.Popen(
            argv, cwd=plan.layout.task_dir, env=plan.env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, preexec_fn=preexec, pass_fds=pass_fds,
        )
    except OSError as exc:
        raise RunnerError(f"could not start the task: {exc}") from exc
    finally:
        if args_fd is not None:
            os.close(args_fd)
    assert proc.stdout is not None
    sink = log if isinstance(log, LogSink) else LogSink(log, on_log)
    pump = threading.Thread(target=_pump, args=(proc.stdout, sink),
                            name="decentralml-task-log", daemon=True)
    pump.start()
    return Spawned(proc=proc, pump=pump, started=time.monotonic())


@dataclass(frozen=True)
class Outcome:
    """How supervision ended."""

    timed_out: bool = False
    cancelled: bool = False
    exceeded: str | None = None


def stop_task(spawned: Spawned) -> None:
    """SIGTERM the whole task, SIGKILL after :data:`KILL_GRACE` seconds; returns when it is
    gone."""
    _kill_group(spawned.pgid, signal.SIGTERM)
    try:
        spawned.proc.wait(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired:
        _kill_group(spawned.pgid, signal.SIGKILL)
        spawned.proc.wait()


def supervise(spawned: Spawned, plan: Plan, cancel: CancelHandle | None = None) -> Outcome:
    """Wait for the task within its time, its output limit and its cancel handle; whatever
    happens, nothing of it is left running when this returns."""
    limits = plan.limits
    deadline = spawned.started + limits.timeout
    timed_out = cancelled = False

    def stop(_reason: str) -> None:
        _kill_group(spawned.pgid, signal.SIGKILL)

    watch = DiskWatch(plan.writable, max_bytes=limits.max_output_bytes,
                      max_entries=MAX_OUTPUT_ENTRIES, on_exceeded=stop)
    with watch:
        try:
            while True:
                left = deadline - time.monotonic()
                try:
                    spawned.proc.wait(timeout=max(0.0, min(left, CANCEL_POLL)))
                    break
                except subprocess.TimeoutExpired:
                    pass
                if cancel is not None and cancel.cancelled:
                    cancelled = True
                    stop_task(spawned)
                    break
                if time.monotonic() >= deadline:
                    timed_out = True
                    stop_task(spawned)
                    break
        except BaseException:
            # KeyboardInterrupt in the caller: never leave the task running behind us.
            _kill_group(spawned.pgid, signal.SIGKILL)
            spawned.proc.wait()
            raise
        finally:
            # Background children still in the group would keep the log pipe open. (In the
            # sandbox, the PID namespace is gone with its init already.)
            _kill_group(spawned.pgid, signal.SIGKILL)
    spawned.pump.join(timeout=KILL_GRACE)
    # The last word on size is a measurement after every process of the task is gone.
    exceeded = watch.reason or over_limit(
        measure(plan.writable, max_entries=MAX_OUTPUT_ENTRIES),
        max_bytes=limits.max_output_bytes, max_entries=MAX_OUTPUT_ENTRIES)
    return Outcome(timed_out=timed_out, cancelled=cancelled, exceeded=exceeded)


def _note(log: BinaryIO, outcome: Outcome, limits: RunLimits, cancel: CancelHandle | None) -> None:
    if outcome.timed_out:
        log.write(f"\n[decentralml: killed after the {limits.timeout:g}s timeout]\n".encode())
    if outcome.cancelled:
        why = cancel.reason if cancel is not None else "cancelled"
        log.write(f"\n[decentralml: stopped: {why}]\n".encode())
    if outcome.exceeded is not None:
        log.write(f"\n[decentralml: stopped: {outcome.exceeded}; its output was deleted]\n"
                  .encode())


def collect(plan: Plan, returncode: int, outcome: Outcome, duration: float, *,
            check: bool = True) -> RunResult:
    """The run's result from its output dir; with ``check``, :class:`TaskFailed` for a run that
    failed, timed out, was cancelled, broke a limit or left a declared output out."""
    layout, limits = plan.layout, plan.limits
    output_dir, log_path = layout.output_dir, plan.log_path
    if plan.backend == "bubblewrap" and sb.runs_as_root():
        with contextlib.suppress(OSError):
            sb.reclaim(output_dir)
    if outcome.exceeded is not None:
        # Nothing over the limit is ever packed: the output goes, an empty dir stays.
        remove_tree_quietly(output_dir)
        output_dir.mkdir(exist_ok=True)
        for directory in (layout.home, layout.tmpdir):
            remove_tree_quietly(directory)
    num_examples, metrics = ((None, {}) if outcome.exceeded or outcome.cancelled
                             else _read_sidecar(output_dir)[:2])
    manifest = plan.bundle.manifest
    result = RunResult(returncode=returncode, output_dir=output_dir, log_path=log_path,
                       num_examples=num_examples, metrics=metrics, duration=duration,
                       timed_out=outcome.timed_out, task_id=plan.ids[0],
                       submission_id=plan.ids[1], task_type=manifest.task_type,
                       bundle_cid=plan.bundle.cid, workdir=plan.workdir, sandbox=plan.backend,
                       output_exceeded=outcome.exceeded, cancelled=outcome.cancelled)
    if check:
        if outcome.cancelled:
            raise TaskCancelled(f"task stopped before it finished (log: {log_path})", result)
        if outcome.exceeded is not None:
            raise TaskFailed(f"task stopped: {outcome.exceeded}; its output was deleted, "
                             f"nothing is packed (log: {log_path})", result)
        if outcome.timed_out:
            raise TaskFailed(f"task timed out after {limits.timeout:g}s (log: {log_path})",
                             result)
        if returncode != 0:
            how = (f"was killed by signal {-returncode}" if returncode < 0
                   else f"exited with status {returncode}")
            raise TaskFailed(f"task {how} (log: {log_path})\n{_tail(log_path)}", result)
        absent = [out for out in manifest.outputs if not (output_dir / out).exists()]
        if absent:
            raise TaskFailed(f"task did not produce its declared output(s) {absent} "
                             f"(log: {log_path})", result)
    return result


def run_bundle(bundle: Bundle, *, task_id: int | str, submission_id: int | str,
               data_dir: Path | None, workdir: Path, limits: RunLimits,
               env_extra: Mapping[str, str] | None = None,
               on_log: Callable[[str], None] | None = None, check: bool = True,
               sandbox: sb.SandboxMode = "auto", allow_network: bool = False,
               cancel: CancelHandle | None = None) -> RunResult:
    """Run ``bundle`` once in a fresh ``workdir``; return what it made.

    The bundle's Python entry point (manifest ``entry``) when it names one, else its
    ``start_task.sh`` with ``bash``. Layout of ``workdir`` (which must not exist or be empty):
    ``task/`` (a verified copy of the bundle, the task's cwd), ``output/``
    (``DECENTRALML_OUTPUT_DIR``), ``home/`` (``HOME``), ``tmp/`` (``TMPDIR``), ``bin/``
    (``python`` wrappers) and ``task.log`` (stdout+stderr).

    ``sandbox="auto"`` (the default) runs the task under bubblewrap, with the directories above
    mounted at ``/dml/...`` and nothing else of the host visible (see
    :mod:`decentralml.storage.sandbox`); where bubblewrap cannot run, :class:`SandboxUnavailable`
    is raised and nothing runs. ``sandbox="none"`` runs it unconfined (with a
    :class:`SandboxWarning`). A bundle whose manifest declares ``network`` runs only with
    ``allow_network=True`` (:class:`NetworkNotAllowed` otherwise).

    The phases: :func:`preflight` refuses what cannot run (requirements, sandbox, arguments)
    before the workdir exists, :func:`prepare` copies the verified bundle, :func:`spawn` starts
    it, :func:`supervise` holds it to ``limits`` and ``cancel``, :func:`collect` reads the
    result. With ``check`` (the default) a non-zero exit, a timeout, a cancel, an exceeded
    limit or a missing declared output raises :class:`TaskFailed` carrying the
    :class:`RunResult`.
    """
    plan = preflight(bundle, task_id=task_id, submission_id=submission_id, data_dir=data_dir,
                     workdir=workdir, limits=limits, env_extra=env_extra, sandbox=sandbox,
                     allow_network=allow_network)
    prepare(plan)
    with open(plan.log_path, "wb") as log:
        spawned = spawn(plan, task_command(plan), log, on_log)
        outcome = supervise(spawned, plan, cancel)
        _note(log, outcome, limits, cancel)
    duration = time.monotonic() - spawned.started
    assert spawned.proc.returncode is not None
    return collect(plan, spawned.proc.returncode, outcome, duration, check=check)


def _tail(path: Path, lines: int = 20) -> str:
    """The last lines of the log, for an error message a user can act on."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def pack_result(run_result: RunResult, store: Store, *,
                metadata: Mapping[str, Any] | None = None,
                max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> PackedBundle:
    """Pack the run's output dir as a result bundle; its manifest carries num_examples/metrics.

    The metadata records which task, submission and task bundle the result belongs to, so a
    result found on its own still says where it came from. Symlinks out of the output dir are
    refused by :func:`pack_bundle`: a result never carries a file from outside it.
    """
    if not run_result.ok:
        raise RunnerError("refusing to pack the output of a failed run "
                          f"(status {run_result.returncode}, timed out: {run_result.timed_out})")
    meta: dict[str, Any] = {"task_id": run_result.task_id,
                            "submission_id": run_result.submission_id,
                            "task_bundle": run_result.bundle_cid}
    meta.update(metadata or {})
    return pack_bundle(run_result.output_dir, store, task_type=run_result.task_type,
                       entrypoint=None, kind="result", metadata=meta,
                       num_examples=run_result.num_examples, metrics=run_result.metrics,
                       max_file_size=max_file_size, exclude=())

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

    @property
    def ok(self) -> bool:
        """Whether the task exited 0 within its time and its limits."""
        return self.returncode == 0 and not self.timed_out and self.output_exceeded is None


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
    for dist in importlib.metadata.packages_distributions().get(module, []):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(dist)
    return ""  # importable, but no metadata to check a version against


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


def _pump(stream: BinaryIO, log: BinaryIO, on_log: Callable[[str], None] | None) -> None:
    """Copy the task's output to the log file (capped) and to ``on_log``, line by line.

    A callback that raises is dropped, not allowed to stop the draining: a full pipe would block
    the task forever.
    """
    written = 0
    callback = on_log
    # Bounded reads: a task printing gigabytes without a newline must not fill our memory.
    for line in iter(lambda: stream.readline(_LINE_MAX), b""):
        if written < MAX_LOG_BYTES:
            chunk = line[: MAX_LOG_BYTES - written]
            log.write(chunk)
            written += len(chunk)
            if written >= MAX_LOG_BYTES:
                log.write(b"\n[decentralml: log truncated]\n")
            log.flush()
        if callback is not None:
            try:
                callback(line.decode("utf-8", errors="replace").rstrip("\r\n"))
            except Exception:
                callback = None
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


def _check_limits(timeout: float, limits: Mapping[str, int | None]) -> None:
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise InvalidInput("timeout", "must be a positive number of seconds")
    for name, limit in limits.items():
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit <= 0):
            raise InvalidInput(name, "must be a positive integer")


def _check_data_dir(data_dir: Path, backend: sb.SandboxBackend) -> None:
    """Under root the task reads the data as the unprivileged sandbox uid: say so up front
    rather than let it fail on a permission error deep in the task."""
    if backend == "bubblewrap" and sb.runs_as_root() and (data_dir.stat().st_mode & 0o005) != 0o005:
        raise InvalidInput("data_dir", f"{data_dir} is not readable by others; the sandboxed task "
                           f"runs as uid {sb.SANDBOX_UID} (chmod -R o+rX it)")


def run_bundle(bundle: Bundle, *, task_id: int | str, submission_id: int | str,
               data_dir: Path | None, workdir: Path, timeout: float,
               cpu_seconds: int | None = None, memory_bytes: int | None = None,
               env_extra: Mapping[str, str] | None = None,
               on_log: Callable[[str], None] | None = None, check: bool = True,
               sandbox: sb.SandboxMode = "auto", allow_network: bool = False,
               max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
               max_processes: int = DEFAULT_MAX_PROCESSES) -> RunResult:
    """Run ``bundle``'s entry point with ``bash`` in a fresh ``workdir``; return what it made.

    Layout of ``workdir`` (which must not exist or be empty): ``task/`` (a verified copy of the
    bundle, the task's cwd), ``output/`` (``DECENTRALML_OUTPUT_DIR``), ``home/`` (``HOME``),
    ``tmp/`` (``TMPDIR``), ``bin/`` (``python`` wrappers) and ``task.log`` (stdout+stderr).

    ``sandbox="auto"`` (the default) runs the task under bubblewrap, with the directories above
    mounted at ``/dml/...`` and nothing else of the host visible (see
    :mod:`decentralml.storage.sandbox`); where bubblewrap cannot run, :class:`SandboxUnavailable`
    is raised and nothing runs. ``sandbox="none"`` runs it unconfined (with a
    :class:`SandboxWarning`). A bundle whose manifest declares ``network`` runs only with
    ``allow_network=True`` (:class:`NetworkNotAllowed` otherwise) and gets the network then; any
    other bundle never does.

    Before anything runs, the declared requirements are checked (:class:`MissingRequirements`
    names what is missing; nothing is pip-installed); none of these refusals creates
    ``workdir``, and a bundle that fails verification while being copied leaves none behind.
    After ``timeout`` seconds the whole task gets SIGTERM, then SIGKILL after
    :data:`KILL_GRACE` seconds; whatever it left running is killed when the entry point exits.
    A task writing more than ``max_output_bytes`` (output, home and tmp together, or more than
    :data:`MAX_OUTPUT_ENTRIES` entries) is killed and its output deleted. With ``check`` (the
    default) a non-zero exit, a timeout, an exceeded limit or a missing declared output raises
    :class:`TaskFailed`, which carries the :class:`RunResult`.
    """
    manifest = bundle.manifest
    if manifest.kind != "task" or manifest.entrypoint is None:
        raise BundleError(f"bundle {bundle.cid} is a {manifest.kind} bundle; nothing to run")
    _check_limits(timeout, {"cpu_seconds": cpu_seconds, "memory_bytes": memory_bytes,
                            "max_output_bytes": max_output_bytes,
                            "max_processes": max_processes})
    ids: dict[str, str] = {}
    for name, value in (("task_id", task_id), ("submission_id", submission_id)):
        text = str(value)
        if isinstance(value, bool) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", text):
            raise InvalidInput(name, f"{value!r} is not a valid id")
        ids[name] = text
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

    task_dir, output_dir = workdir / "task", workdir / "output"
    home, tmpdir, bin_dir = workdir / "home", workdir / "tmp", workdir / "bin"
    log_path = workdir / "task.log"
    layout = sb.Layout(task_dir=task_dir, output_dir=output_dir, home=home, tmpdir=tmpdir,
                       bin_dir=bin_dir, data_dir=data_dir)
    # Where the task sees its directories: the host paths unconfined, fixed ones in the sandbox.
    in_task, in_output, in_home, in_tmp, in_bin = task_dir, output_dir, home, tmpdir, bin_dir
    in_data, in_workdir = data_dir, workdir
    if backend == "bubblewrap":
        sb.check_exposure(sb.python_paths(), [Path.home(), workdir])
        in_task, in_output, in_home = Path(sb.TASK_DIR), Path(sb.OUTPUT_DIR), Path(sb.HOME_DIR)
        in_tmp, in_bin, in_workdir = Path(sb.TMP_DIR), Path(sb.BIN_DIR), Path(sb.ROOT)
        in_data = Path(sb.DATA_DIR) if data_dir is not None else None
    context = {
        ENV_TASK_ID: ids["task_id"], ENV_SUBMISSION_ID: ids["submission_id"],
        ENV_TASK_TYPE: manifest.task_type.value, ENV_BUNDLE_CID: bundle.cid,
        ENV_TASK_DIR: str(in_task), ENV_OUTPUT_DIR: str(in_output), ENV_WORKDIR: str(in_workdir),
    }
    if in_data is not None:
        context[ENV_DATA_DIR] = str(in_data)
    # Everything that can refuse the run does so before the workdir is created.
    env = build_env(context=context, env_extra=env_extra, home=in_home, tmpdir=in_tmp,
                    bin_dir=in_bin)
    missing = check_requirements(manifest)
    if missing:
        raise MissingRequirements(missing)
    if backend == "none":
        warnings.warn(f"running task {ids['task_id']} without a sandbox: {sb.NO_SANDBOX_RISK}",
                      SandboxWarning, stacklevel=2)

    created = not workdir.exists()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        _copy_verified(bundle, task_dir)
        for directory in (output_dir, home, tmpdir):
            directory.mkdir()
        _write_python_wrappers(bin_dir)
        if backend == "bubblewrap":
            sb.prepare_dirs(layout, as_root=sb.runs_as_root())
    except BaseException:
        # A bundle that no longer matches its manifest leaves nothing that could be run later.
        if created:
            remove_tree_quietly(workdir)
        else:
            for child in workdir.iterdir():
                remove_tree_quietly(child)
        raise
    bash = shutil.which("bash", path=env["PATH"]) or "/bin/bash"
    argv = [bash, str(in_task / manifest.entrypoint)]
    pass_fds: tuple[int, ...] = ()
    if backend == "bubblewrap":
        assert bwrap is not None
        full = sb.bwrap_command(bwrap, ["/bin/bash", str(in_task / manifest.entrypoint)],
                                layout, network=manifest.network and allow_network,
                                as_root=sb.runs_as_root(), setpriv=setpriv)
        # The arguments go through a pipe (--args), not argv: the sandbox's init is bwrap, and
        # its /proc/1/cmdline would otherwise show the task every host path that was bound.
        # (bwrap takes only options that way; the command, all sandbox paths, stays in argv.)
        split = full.index("--")
        args_fd = sb.args_pipe(full[1:split])
        pass_fds = (args_fd,)
        argv = [full[0], "--args", str(args_fd), *full[split:]]
    preexec = _limits(cpu_seconds, memory_bytes, _nproc_limit(max_processes, backend),
                      max_output_bytes)

    started = time.monotonic()
    timed_out = False
    writable = [output_dir, home, tmpdir]
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                argv, cwd=task_dir, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, preexec_fn=preexec, pass_fds=pass_fds,
            )
        except OSError as exc:
            raise RunnerError(f"could not start {manifest.entrypoint}: {exc}") from exc
        finally:
            for fd in pass_fds:
                os.close(fd)
        assert proc.stdout is not None
        pump = threading.Thread(target=_pump, args=(proc.stdout, log, on_log),
                                name="decentralml-task-log", daemon=True)
        pump.start()
        pgid = proc.pid  # start_new_session: the child leads its own group

        def stop(_reason: str) -> None:
            _kill_group(pgid, signal.SIGKILL)

        watch = DiskWatch(writable, max_bytes=max_output_bytes, max_entries=MAX_OUTPUT_ENTRIES,
                          on_exceeded=stop)
        with watch:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(pgid, signal.SIGTERM)
                try:
                    proc.wait(timeout=KILL_GRACE)
                except subprocess.TimeoutExpired:
                    _kill_group(pgid, signal.SIGKILL)
                    proc.wait()
            except BaseException:
                # KeyboardInterrupt in the caller: never leave the task running behind us.
                _kill_group(pgid, signal.SIGKILL)
                proc.wait()
                raise
            finally:
                # Background children still in the group would keep the log pipe open. (In the
                # sandbox, the PID namespace is gone with its init already.)
                _kill_group(pgid, signal.SIGKILL)
        pump.join(timeout=KILL_GRACE)
        # The last word on size is a measurement after every process of the task is gone.
        exceeded = watch.reason or over_limit(
            measure(writable, max_entries=MAX_OUTPUT_ENTRIES), max_bytes=max_output_bytes,
            max_entries=MAX_OUTPUT_ENTRIES)
        if timed_out:
            log.write(f"\n[decentralml: killed after the {timeout:g}s timeout]\n".encode())
        if exceeded is not None:
            log.write(f"\n[decentralml: stopped: {exceeded}; its output was deleted]\n".encode())
    duration = time.monotonic() - started
    if backend == "bubblewrap" and sb.runs_as_root():
        with contextlib.suppress(OSError):
            sb.reclaim(output_dir)
    if exceeded is not None:
        # Nothing over the limit is ever packed: the output goes, an empty dir stays.
        remove_tree_quietly(output_dir)
        output_dir.mkdir(exist_ok=True)
        for directory in (home, tmpdir):
            remove_tree_quietly(directory)

    num_examples, metrics = (None, {}) if exceeded else _read_sidecar(output_dir)[:2]
    result = RunResult(returncode=proc.returncode, output_dir=output_dir, log_path=log_path,
                       num_examples=num_examples, metrics=metrics, duration=duration,
                       timed_out=timed_out, task_id=ids["task_id"],
                       submission_id=ids["submission_id"], task_type=manifest.task_type,
                       bundle_cid=bundle.cid, workdir=workdir, sandbox=backend,
                       output_exceeded=exceeded)
    if check:
        if exceeded is not None:
            raise TaskFailed(f"task stopped: {exceeded}; its output was deleted, nothing is "
                             f"packed (log: {log_path})", result)
        if timed_out:
            raise TaskFailed(f"task timed out after {timeout:g}s (log: {log_path})", result)
        if proc.returncode != 0:
            how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
                   else f"exited with status {proc.returncode}")
            raise TaskFailed(f"task {how} (log: {log_path})\n{_tail(log_path)}", result)
        absent = [out for out in manifest.outputs if not (output_dir / out).exists()]
        if absent:
            raise TaskFailed(f"task did not produce its declared output(s) {absent} "
                             f"(log: {log_path})", result)
    return result


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

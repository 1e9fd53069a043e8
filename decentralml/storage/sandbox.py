"""The task sandbox: every untrusted ``start_task.sh`` runs under bubblewrap (``bwrap``).

Why bubblewrap: it is the small, well-kept setuid-free sandbox Flatpak is built on, packaged by
every distribution (Debian/Ubuntu ``bubblewrap``), and it builds exactly what a task needs from
kernel namespaces without a daemon, an image or root. What a sandboxed task gets:

* a filesystem of its own, built from nothing: the system (``/usr``, ``/etc`` and the
  ``/bin``-style links) read-only; the Python environment the runner uses (its prefix, its base
  prefix and, for an editable install, the ``decentralml`` package directory only) read-only at
  its host path; the verified bundle (``/dml/task``, its cwd) and the contributor's data
  (``/dml/data``) read-only; a private writable output (``/dml/output``), home (``/dml/home``)
  and ``/tmp``; a fresh ``/proc`` and a minimal ``/dev``. Nothing else of the host exists in
  it: no ``$HOME``, no ``$DECENTRALML_HOME`` (keyring, journals, store, ``config.toml``), no
  ``/root``, ``/home``, ``/run`` or ``/sys``;
* its own PID namespace (it cannot see, signal or read ``/proc/<pid>/environ`` of any process
  outside), a new session, its own IPC and UTS namespaces, and no network namespace but an
  empty one unless the bundle declares ``"network": true`` and the contributor allows it;
* no capabilities and ``no_new_privs`` (setuid binaries do nothing), and every process it
  starts dies with it: when the entry point exits, times out or is killed, the PID namespace's
  init exits and the kernel kills everything left in the namespace, ``setsid`` and
  double-forked daemons included;
* when the runner is root, the task runs as the unprivileged uid :data:`SANDBOX_UID`, so file
  permissions and ``RLIMIT_NPROC`` (which never applies to root) hold.

What it does not contain: kernel exploits (the task shares the host kernel), CPU/cache side
channels, and whatever the task is allowed to reach when network is granted. GPUs are not
passed in. See docs/security.md.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from decentralml.errors import RunnerError

#: What ``run_bundle(sandbox=...)`` accepts. ``auto`` is bubblewrap, refused when unavailable.
SandboxMode = Literal["auto", "bubblewrap", "none"]
#: Which backend ran a task (recorded in :class:`~decentralml.storage.runner.RunResult`).
SandboxBackend = Literal["bubblewrap", "none"]

#: The unprivileged uid/gid a task runs as when the runner is root ("nobody" on Debian).
SANDBOX_UID = 65534
SANDBOX_GID = 65534

#: Where the task's own directories appear inside the sandbox.
ROOT = PurePosixPath("/dml")
TASK_DIR = ROOT / "task"
DATA_DIR = ROOT / "data"
OUTPUT_DIR = ROOT / "output"
HOME_DIR = ROOT / "home"
BIN_DIR = ROOT / "bin"
TMP_DIR = PurePosixPath("/tmp")

#: Top-level system paths given read-only (or recreated as the same symlink) when they exist.
SYSTEM_PATHS: tuple[str, ...] = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                 "/libx32")
#: Size of the sandbox's private ``/dev/shm`` (a tmpfs, so memory).
SHM_BYTES = 64 * 1024**2

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`, Fedora: "
                "`sudo dnf install bubblewrap`, Arch: `sudo pacman -S bubblewrap`)")
NO_SANDBOX_RISK = ("without the sandbox the task runs with your user's full rights: it can read "
                   "your home, SSH keys, keyring and $DECENTRALML_HOME, reach the network and "
                   "your node, and leave processes running")


class SandboxUnavailable(RunnerError):
    """The sandbox cannot run here; nothing was run. The message says how to fix it."""


@dataclass(frozen=True)
class Layout:
    """Host directories of one run, each mounted at its fixed place in the sandbox."""

    task_dir: Path
    output_dir: Path
    home: Path
    tmpdir: Path
    bin_dir: Path
    data_dir: Path | None


def find_bwrap() -> str | None:
    """The ``bwrap`` executable on ``PATH``, if any."""
    return shutil.which("bwrap")


def runs_as_root() -> bool:
    """Whether the runner is root, in which case the task is dropped to :data:`SANDBOX_UID`."""
    return os.geteuid() == 0


def python_paths() -> list[Path]:
    """Host directories the task's ``python`` needs, read-only: nothing more.

    The interpreter's prefix (a venv), its base prefix (the Python it was made from) and, when
    ``decentralml`` is not inside either (an editable install from a clone), that package's own
    directory, never the clone around it: the clone's ``.git``, ``.env`` files and anything else
    next to the venv stay out of the sandbox.
    """
    paths = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent,
             Path(os.path.realpath(sys.executable)).parent]
    spec = importlib.util.find_spec("decentralml")
    if spec is not None and spec.submodule_search_locations:
        paths.extend(Path(p) for p in spec.submodule_search_locations)
    # site dirs outside the prefix (another environment's site-packages added by a .pth file):
    # installed packages only; a plain directory on sys.path (an editable install's clone root)
    # is never bound
    paths.extend(Path(p) for p in sys.path
                 if p and Path(p).name in ("site-packages", "dist-packages"))
    return _minimal([p.absolute() for p in paths if p.is_dir()])


def _minimal(paths: Iterable[Path]) -> list[Path]:
    """Drop duplicates and paths inside another one of the list or inside a system path."""
    system = [Path(p) for p in SYSTEM_PATHS if os.path.isdir(p) and not os.path.islink(p)]
    out: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if any(path.is_relative_to(kept) for kept in out + system):
            continue
        out.append(path)
    return out


def check_exposure(paths: Iterable[Path], private: Iterable[Path]) -> None:
    """Refuse to bind a Python path that would show the task one of the ``private`` dirs.

    A venv made at ``~`` itself, or a Python installed at ``/``, would expose the whole home.
    """
    for path in paths:
        real = Path(os.path.realpath(path))
        for secret in private:
            secret_real = Path(os.path.realpath(secret))
            if secret_real == real or secret_real.is_relative_to(real):
                raise SandboxUnavailable(
                    f"the Python environment at {path} contains {secret}; binding it into the "
                    "sandbox would expose it to the task. Use a virtualenv in its own directory")


def _system_args() -> list[str]:
    args: list[str] = []
    for name in SYSTEM_PATHS:
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    return args


def _dirs_for(destinations: Iterable[PurePosixPath | Path], made: set[str]) -> list[str]:
    """``--dir`` (mode 0755) for every missing ancestor of ``destinations``.

    bwrap creates missing parents 0700, which the unprivileged task uid could not traverse.
    """
    args: list[str] = []
    for dest in destinations:
        for parent in reversed(PurePosixPath(dest).parents):
            text = str(parent)
            if text == "/" or text in made or any(text == p or text.startswith(p + "/")
                                                  for p in SYSTEM_PATHS):
                continue
            made.add(text)
            args += ["--perms", "0755", "--dir", text]
    return args


def bwrap_command(bwrap: str, argv: list[str], layout: Layout, *, network: bool,
                  as_root: bool, setpriv: str | None = None) -> list[str]:
    """The full bwrap command line running ``argv`` (inside paths) in a fresh sandbox."""
    cmd = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session", "--hostname", "dml-task"]
    if not network:
        cmd.append("--unshare-net")
    if not as_root:
        # The user namespace is what lets an ordinary user build the mounts; root needs none
        # (and would stay root in the kernel's eyes inside one), so it drops to SANDBOX_UID.
        cmd.append("--unshare-user")
    cmd += _system_args()
    made: set[str] = set()
    if network:
        # resolv.conf is often a link into /run, which the sandbox otherwise does not have
        cmd += ["--ro-bind-try", "/run/systemd/resolve", "/run/systemd/resolve"]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_BYTES),
            # writable by the task's uid: joblib (scikit-learn) makes its semaphores there
            "--perms", "1777", "--tmpfs", "/dev/shm"]
    mounts: list[tuple[str, Path, PurePosixPath]] = [
        ("--ro-bind", layout.task_dir, TASK_DIR), ("--ro-bind", layout.bin_dir, BIN_DIR),
        ("--bind", layout.output_dir, OUTPUT_DIR), ("--bind", layout.home, HOME_DIR),
        ("--bind", layout.tmpdir, TMP_DIR)]
    if layout.data_dir is not None:
        mounts.append(("--ro-bind", layout.data_dir, DATA_DIR))
    cmd += _dirs_for([dest for _, _, dest in mounts], made)
    for flag, src, dest in mounts:
        cmd += [flag, str(src), str(dest)]
    # The Python environment last: bwrap mounts in order, so a venv or interpreter that lives
    # under /tmp on the host (a CI checkout in /tmp, say) is mounted over the task's private
    # /tmp instead of being hidden by it.
    python = python_paths()
    cmd += _dirs_for(python, made)
    for path in python:
        cmd += ["--ro-bind", str(path), str(path)]
    cmd += ["--chdir", str(TASK_DIR)]
    if as_root:
        if setpriv is None:
            raise SandboxUnavailable("setpriv (util-linux) is needed to drop root in the sandbox")
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", setpriv,
                "--reuid", str(SANDBOX_UID), "--regid", str(SANDBOX_GID), "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    else:
        cmd += ["--cap-drop", "ALL", "--"]
    return cmd + argv


def args_pipe(args: list[str]) -> int:
    """A pipe's read end holding ``args`` NUL-separated, for ``bwrap --args FD``.

    The whole list is written before bwrap starts (it is a few KiB, far below a pipe's buffer),
    so nothing has to feed the pipe while the task runs.
    """
    read_fd, write_fd = os.pipe()
    try:
        data = b"".join(os.fsencode(arg) + b"\0" for arg in args)
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view):]
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return read_fd


def probe(bwrap: str, *, as_root: bool, setpriv: str | None) -> str | None:
    """Why a minimal sandbox cannot start here, or ``None`` when it can.

    Distributions that forbid unprivileged user namespaces (some Ubuntu/AppArmor setups) make
    bwrap fail at start-up; that must be a refusal up front, not a task failure later.
    """
    cmd = [bwrap, "--unshare-pid", "--unshare-net", "--die-with-parent", "--new-session"]
    if not as_root:
        cmd.append("--unshare-user")
    cmd += [*_system_args(), "--proc", "/proc", "--dev", "/dev"]
    if as_root:
        if setpriv is None:
            return "setpriv (util-linux) is not installed"
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", setpriv,
                "--reuid", str(SANDBOX_UID), "--regid", str(SANDBOX_GID), "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", "true"]
    else:
        cmd += ["--", "true"]
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                              env={"PATH": os.defpath})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
    return None


def resolve(mode: str) -> tuple[SandboxBackend, str | None, str | None]:
    """(backend, bwrap path, setpriv path) for ``mode``; :class:`SandboxUnavailable` when
    bubblewrap is wanted (``auto`` or ``bubblewrap``) but cannot run here."""
    if mode == "none":
        return "none", None, None
    if mode not in ("auto", "bubblewrap"):
        from decentralml.errors import InvalidInput

        raise InvalidInput("sandbox", f"{mode!r} is not a sandbox mode",
                           "one of 'auto', 'bubblewrap', 'none'")
    bwrap = find_bwrap()
    if bwrap is None:
        raise SandboxUnavailable(
            f"refusing to run an untrusted task: bubblewrap (bwrap) is not installed. "
            f"{INSTALL_HINT[0].upper()}{INSTALL_HINT[1:]}, or opt out explicitly with "
            f"--no-sandbox (sandbox='none'); {NO_SANDBOX_RISK}")
    as_root = runs_as_root()
    setpriv = shutil.which("setpriv") if as_root else None
    why = probe(bwrap, as_root=as_root, setpriv=setpriv)
    if why is not None:
        raise SandboxUnavailable(
            f"refusing to run an untrusted task: bubblewrap cannot start a sandbox here ({why}). "
            "Allow unprivileged user namespaces (e.g. sysctl kernel.unprivileged_userns_clone=1, "
            "or the AppArmor profile for bwrap on Ubuntu), or opt out explicitly with "
            f"--no-sandbox (sandbox='none'); {NO_SANDBOX_RISK}")
    return "bubblewrap", bwrap, setpriv


def prepare_dirs(layout: Layout, *, as_root: bool) -> None:
    """Make the writable dirs the task's own (it runs as :data:`SANDBOX_UID` under root) and
    the read-only ones traversable by it."""
    for directory in (layout.task_dir, layout.bin_dir):
        for dirpath, _dirs, _files in os.walk(directory):
            os.chmod(dirpath, 0o755)
    for directory in (layout.output_dir, layout.home, layout.tmpdir):
        os.chmod(directory, 0o700)
        if as_root:
            os.chown(directory, SANDBOX_UID, SANDBOX_GID)


def reclaim(directory: Path) -> None:
    """Give the runner back ownership of what the task wrote, so no process of the sandbox uid
    (another task, later) can change a result between the run and its upload."""
    uid, gid = os.getuid(), os.getgid()
    pending = [directory]
    while pending:
        current = pending.pop()
        os.lchown(current, uid, gid)
        if current.is_dir() and not current.is_symlink():
            with os.scandir(current) as it:
                for item in it:
                    if item.is_dir(follow_symlinks=False):
                        pending.append(Path(item.path))
                    else:
                        os.lchown(item.path, uid, gid)

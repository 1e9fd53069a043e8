"""Take ``DECENTRALML_KEYRING_PASSWORD`` out of the CLI's environment before anything else runs.

The environment variable is the documented headless way to give the keystore password, and the
dangerous one: every process of the same user can read ``/proc/PID/environ``, and removing the
variable from ``os.environ`` does not change what the kernel shows there (the block the process
was exec'd with). So the entry point, before it imports anything heavy, writes the value into a
pipe and re-executes the same command (same pid) with the variable removed and only the pipe's
fd number in ``DECENTRALML_KEYRING_PASSWORD_FD``. The new image reads the pipe once and closes it
(:func:`take_handed_over_password`). From then on no environment block of this process, nor of
any process it starts, holds the password.

Light on purpose (the standard library and two constants): the re-exec happens before the CLI's
real imports, so it costs an interpreter start and nothing more. The console script that calls it
first is :mod:`decentralml.cli.entry`; the CLI (:mod:`decentralml.cli.main`) imports this module,
never the other way round.
"""

from __future__ import annotations

import contextlib
import os
import sys

from decentralml.keystore import ENV_KEYRING_PASSWORD, MAX_PASSWORD_BYTES

ENV_PASSWORD_FD = "DECENTRALML_KEYRING_PASSWORD_FD"
# MAX_PASSWORD_BYTES is well under a pipe's buffer (64 KiB on Linux): the write before the exec
# never blocks.


def _fail(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(3)


def hand_over_env_password() -> None:
    """Re-exec this command without ``DECENTRALML_KEYRING_PASSWORD`` in its environment, the
    value passed on through an inherited pipe. Returns only when the variable is not set.

    Only for the ``decentralml`` entry points (it re-runs ``sys.orig_argv``); library code never
    calls it.
    """
    value = os.environ.get(ENV_KEYRING_PASSWORD)
    if value is None:
        return
    if os.name != "posix":  # pragma: no cover - no /proc to hide it from; drop it and go on
        os.environ.pop(ENV_KEYRING_PASSWORD, None)
        return
    data = value.encode("utf-8")
    if len(data) > MAX_PASSWORD_BYTES:
        _fail(f"{ENV_KEYRING_PASSWORD} is longer than {MAX_PASSWORD_BYTES} bytes")
    env = {k: v for k, v in os.environ.items()
           if k not in (ENV_KEYRING_PASSWORD, ENV_PASSWORD_FD)}
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data)
    finally:
        os.close(write_end)
    os.set_inheritable(read_end, True)
    env[ENV_PASSWORD_FD] = str(read_end)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    except OSError as exc:  # pragma: no cover - the interpreter vanished under us
        os.close(read_end)
        _fail(f"could not restart without {ENV_KEYRING_PASSWORD} in the environment ({exc}); "
              f"use DECENTRALML_KEYRING_PASSWORD_FILE instead")


def take_handed_over_password() -> str | None:
    """The password :func:`hand_over_env_password` passed on, read once from its pipe."""
    raw_fd = os.environ.pop(ENV_PASSWORD_FD, None)
    if raw_fd is None or not raw_fd.isdigit():
        return None
    fd = int(raw_fd)
    chunks: list[bytes] = []
    try:
        while chunk := os.read(fd, MAX_PASSWORD_BYTES + 1):
            chunks.append(chunk)
            if sum(map(len, chunks)) > MAX_PASSWORD_BYTES:
                break
    except OSError:
        return None  # not our pipe (set by hand?): as if nothing had been handed over
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    data = b"".join(chunks)
    if not data or len(data) > MAX_PASSWORD_BYTES:
        return None
    return data.decode("utf-8", errors="replace")

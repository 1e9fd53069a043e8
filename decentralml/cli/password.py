"""How the CLI gets the keystore password, and how it keeps it away from the tasks it runs.

Sources, in order, asked only when a command reads or writes a secret, and at most once:
``--keyring-password-file`` / ``DECENTRALML_KEYRING_PASSWORD_FILE`` / ``keyring_password_file``,
then ``DECENTRALML_KEYRING_PASSWORD``, then a prompt on a terminal (never with ``--yes``).

The environment variable is the documented headless setup, and the dangerous one: every process
of the same user can read ``/proc/PID/environ``, and removing the variable from ``os.environ``
does not change what the kernel shows there (it shows the block the process was exec'd with).
So :func:`hand_over_env_password`, the first thing the entry point does, takes the value out of
the environment for real: it writes it into a pipe, and re-executes the same command with the
variable removed and only the pipe's fd number in ``DECENTRALML_KEYRING_PASSWORD_FD``. The new
image (same pid) reads the pipe once and closes it (:func:`take_handed_over_password`). From then
on no environment block of this process, and none of its children's, holds the password.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from decentralml.accounts import ENV_KEYRING_PASSWORD
from decentralml.keystore import (
    MAX_PASSWORD_BYTES,
    KeystoreLocked,
    Password,
    PasswordSource,
    read_password_file,
)

ENV_PASSWORD_FD = "DECENTRALML_KEYRING_PASSWORD_FD"
#: How a handed-over password names its origin in messages.
_HANDED_OVER = f"{ENV_KEYRING_PASSWORD} (taken out of the environment at start)"


def hand_over_env_password() -> None:
    """Re-exec this command without ``DECENTRALML_KEYRING_PASSWORD`` in its environment, the
    value passed on through an inherited pipe. Returns only when the variable is not set.

    Only for the ``decentralml`` entry point (it re-runs ``sys.orig_argv``); library code never
    calls it.
    """
    value = os.environ.get(ENV_KEYRING_PASSWORD)
    if value is None:
        return
    env = {k: v for k, v in os.environ.items() if k not in (ENV_KEYRING_PASSWORD,
                                                            ENV_PASSWORD_FD)}
    data = value.encode("utf-8")
    if os.name != "posix":  # pragma: no cover - no /proc to hide it from; drop it and go on
        os.environ.pop(ENV_KEYRING_PASSWORD, None)
        return
    if len(data) > MAX_PASSWORD_BYTES:
        # well under a pipe's buffer (64 KiB on Linux), so the write below never blocks
        click.secho(f"error: {ENV_KEYRING_PASSWORD} is longer than {MAX_PASSWORD_BYTES} bytes",
                    fg="red", err=True)
        raise SystemExit(3)
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data)
    finally:
        os.close(write_end)
    os.set_inheritable(read_end, True)
    env[ENV_PASSWORD_FD] = str(read_end)
    argv = [sys.executable, *sys.orig_argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, argv, env)
    except OSError as exc:  # pragma: no cover - the interpreter vanished under us
        os.close(read_end)
        click.secho(f"error: could not restart without {ENV_KEYRING_PASSWORD} in the "
                    f"environment ({exc}); use DECENTRALML_KEYRING_PASSWORD_FILE instead",
                    fg="red", err=True)
        raise SystemExit(3) from None


def take_handed_over_password() -> Password | None:
    """The password :func:`hand_over_env_password` passed on, read once from its pipe."""
    raw_fd = os.environ.pop(ENV_PASSWORD_FD, None)
    if raw_fd is None:
        return None
    try:
        fd = int(raw_fd)
    except ValueError:
        return None
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
    return Password(data.decode("utf-8", errors="strict"), _HANDED_OVER)


def cli_password_source(*, password_file: str | None, handed_over: Password | None,
                        may_prompt: bool, keystore: str) -> PasswordSource:
    """The CLI's source: the file, else the handed-over value, else a prompt, else a clear
    error naming every way to give it."""

    def source(new: bool) -> Password:
        if password_file:
            return read_password_file(password_file)
        if handed_over is not None:
            return handed_over
        if may_prompt and sys.stdin.isatty():
            if new:
                value = click.prompt(f"new password for the keystore {keystore}",
                                     hide_input=True, confirmation_prompt=True, err=True)
            else:
                value = click.prompt(f"password of the keystore {keystore}", hide_input=True,
                                     err=True)
            return Password(str(value), "the prompt")
        why = "--yes forbids asking" if not may_prompt else "no terminal to ask on"
        raise KeystoreLocked(Path(keystore), f"nothing was given, and {why}")

    return source

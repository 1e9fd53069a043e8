"""How the CLI gets the keystore password: asked only when a command reads or writes a secret,
and at most once, from ``--keyring-password-file`` / ``DECENTRALML_KEYRING_PASSWORD_FILE`` /
``keyring_password_file``, then ``DECENTRALML_KEYRING_PASSWORD`` (taken out of the environment
at start, see :mod:`decentralml.cli.handover`), then a prompt on a terminal (never with
``--yes``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from decentralml.keystore import KeystoreLocked, Password, PasswordSource, read_password_file


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

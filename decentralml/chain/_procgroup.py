"""Ending a node process started in its own process group (a session leader), for the local
chains this package starts: Chopsticks and decentralml-node."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any


def end_process_group(process: subprocess.Popen[Any], sig: signal.Signals = signal.SIGTERM,
                      timeout: float = 10.0) -> None:
    """Send ``sig`` to the group ``process`` leads, SIGKILL it after ``timeout``, reap the leader.

    The whole group, not the leader alone: a node's helpers (Node.js workers, a wasm compiler)
    must not outlive it. A leader that already exited still has its group killed, so nothing it
    started lingers."""
    if process.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

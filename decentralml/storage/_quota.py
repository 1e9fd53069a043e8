"""How much a running task has written, and a watchdog that stops it at a limit.

There is no portable, unprivileged way to give a process a disk quota (tmpfs ``size=`` is memory,
project quotas need root and a prepared filesystem), so the runner combines two bounds:
``RLIMIT_FSIZE`` stops any single file at the limit in the kernel, and this watchdog sums what
the task's writable directories hold a few times a second and kills the task once the total (or
the number of entries) is over. A task can overshoot by what it writes between two polls; what it
wrote is then deleted and nothing of it is packed or uploaded.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

#: Seconds between two measurements while a task runs.
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Usage:
    """Bytes and entries under some directories; ``problem`` when they could not be walked."""

    bytes: int
    entries: int
    problem: str | None = None


def measure(directories: Iterable[Path], *, max_entries: int) -> Usage:
    """Sum the size of everything under ``directories`` (iteratively: any depth is fine).

    A file counts for the larger of its length and its allocated blocks, so neither a sparse
    file (huge length, no blocks) nor preallocation (blocks, no length) slips under the limit.
    The walk stops at ``max_entries``: a tree with more is over the limit whatever its size.
    """
    total = 0
    entries = 0
    pending = [str(d) for d in directories]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as it:
                for item in it:
                    entries += 1
                    if entries > max_entries:
                        return Usage(total, entries)
                    st = item.stat(follow_symlinks=False)
                    total += max(st.st_size, getattr(st, "st_blocks", 0) * 512)
                    if stat.S_ISDIR(st.st_mode):
                        pending.append(item.path)
        except FileNotFoundError:
            continue  # removed while we looked: it holds nothing any more
        except OSError as exc:  # e.g. a path too deep to name
            return Usage(total, entries, f"{current}: {exc.strerror or exc}")
    return Usage(total, entries)


def over_limit(usage: Usage, *, max_bytes: int, max_entries: int) -> str | None:
    """Why ``usage`` breaks the limits, or ``None``."""
    if usage.problem is not None:
        return f"its files could not be measured ({usage.problem})"
    if usage.bytes > max_bytes:
        return f"it wrote more than {max_bytes} bytes (limit: max_output_bytes={max_bytes})"
    if usage.entries > max_entries:
        return f"it created more than {max_entries} files and directories (limit: {max_entries})"
    return None


class DiskWatch:
    """Polls ``directories`` in a thread; calls ``on_exceeded(reason)`` once, at the first
    measurement over the limits."""

    def __init__(self, directories: list[Path], *, max_bytes: int, max_entries: int,
                 on_exceeded: Callable[[str], None]) -> None:
        self.directories = directories
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.reason: str | None = None
        self._on_exceeded = on_exceeded
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decentralml-disk-watch",
                                        daemon=True)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def check(self) -> str | None:
        """Measure now; record and report the reason when over the limits."""
        usage = measure(self.directories, max_entries=self.max_entries)
        reason = over_limit(usage, max_bytes=self.max_bytes, max_entries=self.max_entries)
        if reason is not None and self.reason is None:
            self.reason = reason
            self._on_exceeded(reason)
        return reason

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            if self.check() is not None:
                return

"""Progress bars for transfers: shown in a terminal or a notebook, silent anywhere else.

A bar on a pipe or in CI logs is noise (and rich would print its final frame into the log), so a
bar is only drawn when the console is interactive (a TTY or Jupyter) and ``CI`` is not set.
``DECENTRALML_PROGRESS=0``/``1`` overrides the guess, and stores take ``progress=`` to override it
per instance.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

ENV_PROGRESS = "DECENTRALML_PROGRESS"

#: Called with the number of bytes just transferred.
Advance = Callable[[int], None]


def _noop(_n: int) -> None:
    return None


def progress_enabled(explicit: bool | None = None) -> bool:
    """Whether to draw bars: ``explicit``, else ``DECENTRALML_PROGRESS``, else interactive and
    not CI."""
    if explicit is not None:
        return explicit
    forced = os.environ.get(ENV_PROGRESS, "").strip().lower()
    if forced in ("0", "false", "no", "off"):
        return False
    if forced in ("1", "true", "yes", "on"):
        return True
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false"):
        return False
    from rich.console import Console  # imported lazily: only interactive sessions pay for it

    console = Console(stderr=True)
    return bool(console.is_terminal or console.is_jupyter)


@contextmanager
def transfer_progress(description: str, total: int | None, enabled: bool | None = None
                      ) -> Iterator[Advance]:
    """Yield an ``advance(nbytes)`` callback that drives a bar (or does nothing when quiet)."""
    if not progress_enabled(enabled):
        yield _noop
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int) -> None:
            bar.advance(task, n)

        yield advance

"""A contributor's local journal: one small JSON file per submission, rewritten atomically.

``work`` records each stage (accepted, fetched, ran, uploaded, submitted) as soon as it is done, so
a contributor that crashed or was killed resumes at the first unfinished stage. Nothing is lost
(the output directory and result CID are kept) and nothing is duplicated (the chain is asked
whether a result already landed before sending it again).

An entry is keyed by what makes its submission unique on one chain: the journal directory is per
genesis hash and account, and the entry records the hash of the block that created its task and
of the block that assigned its submission. Every dev chain starts from the same genesis and counts
tasks and submissions from 0 again, so after a restart ``task 1, submission 0`` names something
else; the block hashes do not match any more, and the contributor sets such a *stale* entry aside
(``stale/`` next to the others) and says so, instead of resuming a submission that does not exist.

One process at a time works from a journal: :meth:`Journal.locked` takes an exclusive lock on the
directory, and a second ``work`` for the same account and chain gets :class:`JournalBusy`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from enum import IntEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from decentralml.errors import DecentralMLError


class Stage(IntEnum):
    """Stages of a contribution, in order; the journal remembers the last one completed."""

    ACCEPTED = 1
    FETCHED = 2
    RAN = 3
    UPLOADED = 4
    SUBMITTED = 5


class JournalBusy(DecentralMLError):
    """Another process is working from the same journal (same account, same chain)."""


class JournalEntry(BaseModel):
    """What a contributor knows about one submission of its own."""

    model_config = ConfigDict(validate_assignment=True)

    task_id: int
    submission_id: int
    worker: str
    stage: Stage = Stage.ACCEPTED
    #: the hash of the block that created the task, and of the one that assigned the submission:
    #: with the journal's genesis hash, they tell this submission from any other of the same ids
    task_block_hash: str | None = None
    assigned_block_hash: str | None = None
    assets_cid: str | None = None
    bundle_dir: str | None = None
    #: A task that ships its data: the shard the chain assigned this slot, and where it was
    #: fetched (verified) to; the task runs on it instead of on the contributor's own data.
    shard: int | None = None
    shard_dir: str | None = None
    output_dir: str | None = None
    num_examples: int | None = None
    metrics: dict[str, Any] = {}
    result_cid: str | None = None
    extrinsic_hash: str | None = None
    block_number: int | None = None
    #: Which sandbox ran the task (``bubblewrap`` or ``none``), once it ran.
    sandbox: str | None = None

    @property
    def key(self) -> str:
        """The file stem: the submission id, and its assigning block's hash when known."""
        if self.assigned_block_hash:
            return f"submission-{self.submission_id}-{self.assigned_block_hash[2:18]}"
        return f"submission-{self.submission_id}"


class Journal:
    """The journal directory of one account on one chain."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"Journal({str(self.root)!r})"

    def _path(self, entry: JournalEntry) -> Path:
        return self.root / f"{entry.key}.json"

    def _files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(self.root.glob("submission-*.json"))

    def load(self, submission_id: int, assigned_block_hash: str | None = None
             ) -> JournalEntry | None:
        """The entry of that submission (the one assigned in that block, when given)."""
        for entry in self.entries():
            if entry.submission_id == submission_id and (
                    assigned_block_hash is None
                    or entry.assigned_block_hash == assigned_block_hash):
                return entry
        return None

    def save(self, entry: JournalEntry) -> None:
        """Write ``entry`` atomically (temp file + fsync + rename): a kill leaves old or new."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".journal-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(entry.model_dump_json(indent=2))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path(entry))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remove(self, entry: JournalEntry) -> None:
        self._path(entry).unlink(missing_ok=True)

    def set_aside(self, entry: JournalEntry, reason: str) -> Path:
        """Move a stale entry to ``stale/`` with the reason next to it (kept, not deleted: its
        output directory may still be of use to someone)."""
        stale = self.root / "stale"
        stale.mkdir(parents=True, exist_ok=True)
        dest = stale / self._path(entry).name
        n = 1
        while dest.exists():
            dest = stale / f"{entry.key}.{n}.json"
            n += 1
        payload = {**json.loads(entry.model_dump_json()), "stale_reason": reason}
        dest.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        self.remove(entry)
        return dest

    def entries(self) -> list[JournalEntry]:
        return sorted((JournalEntry.model_validate(json.loads(p.read_text(encoding="utf-8")))
                       for p in self._files()), key=lambda e: e.submission_id)

    def unfinished(self, task_id: int) -> list[JournalEntry]:
        """Every entry for ``task_id`` not yet submitted, oldest first (stale ones included)."""
        return [e for e in self.entries() if e.task_id == task_id and e.stage < Stage.SUBMITTED]

    def for_task(self, task_id: int) -> JournalEntry | None:
        """The newest unfinished entry for ``task_id`` (what ``work`` should resume), if any."""
        pending = self.unfinished(task_id)
        return pending[-1] if pending else None

    @contextlib.contextmanager
    def locked(self, what: str) -> Iterator[None]:
        """Hold the journal's exclusive lock while working; raise :class:`JournalBusy` at once
        if another process holds it. ``what`` (e.g. ``work 3``) is shown to the one refused.

        ``flock`` rather than a lock-file library: the kernel drops the lock when its holder
        dies, so a crashed ``work`` (the case the journal is for) never leaves a stale lock.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", errors="replace").strip()
                raise JournalBusy(
                    f"another decentralml process is already working from the journal "
                    f"{self.root} ({holder or 'unknown'}): one command at a time per account "
                    f"and chain; wait for it to finish or stop it") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}: {what}".encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

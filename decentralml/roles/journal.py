"""A contributor's local journal: one small JSON file per submission, rewritten atomically.

``work`` records each stage (accepted, fetched, ran, uploaded, submitted) as soon as it is done, so
a contributor that crashed or was killed resumes at the first unfinished stage. Nothing is lost
(the output directory and result CID are kept) and nothing is duplicated (the chain is asked
whether a result already landed before sending it again).
"""

from __future__ import annotations

import json
import os
import tempfile
from enum import IntEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict


class Stage(IntEnum):
    """Stages of a contribution, in order; the journal remembers the last one completed."""

    ACCEPTED = 1
    FETCHED = 2
    RAN = 3
    UPLOADED = 4
    SUBMITTED = 5


class JournalEntry(BaseModel):
    """What a contributor knows about one submission of its own."""

    model_config = ConfigDict(validate_assignment=True)

    task_id: int
    submission_id: int
    worker: str
    stage: Stage = Stage.ACCEPTED
    bundle_dir: str | None = None
    output_dir: str | None = None
    num_examples: int | None = None
    metrics: dict[str, Any] = {}
    result_cid: str | None = None
    extrinsic_hash: str | None = None
    block_number: int | None = None
    #: Which sandbox ran the task (``bubblewrap`` or ``none``), once it ran.
    sandbox: str | None = None


class Journal:
    """The journal directory of one account on one chain."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, submission_id: int) -> Path:
        return self.root / f"submission-{submission_id}.json"

    def load(self, submission_id: int) -> JournalEntry | None:
        path = self._path(submission_id)
        if not path.is_file():
            return None
        return JournalEntry.model_validate_json(path.read_text(encoding="utf-8"))

    def save(self, entry: JournalEntry) -> None:
        """Write ``entry`` atomically (temp file + fsync + rename): a kill leaves old or new."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".journal-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(entry.model_dump_json(indent=2))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path(entry.submission_id))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def entries(self) -> list[JournalEntry]:
        if not self.root.is_dir():
            return []
        return sorted((JournalEntry.model_validate(json.loads(p.read_text(encoding="utf-8")))
                       for p in self.root.glob("submission-*.json")),
                      key=lambda e: e.submission_id)

    def for_task(self, task_id: int) -> JournalEntry | None:
        """The newest unfinished entry for ``task_id`` (what ``work`` should resume), if any."""
        pending = [e for e in self.entries() if e.task_id == task_id and e.stage < Stage.SUBMITTED]
        return pending[-1] if pending else None

from __future__ import annotations

from pathlib import Path

from decentralml.roles.journal import Journal, JournalEntry, Stage


def test_round_trip_and_resume_point(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    assert journal.entries() == []
    entry = JournalEntry(task_id=3, submission_id=7, worker="5F")
    journal.save(entry)
    entry.stage = Stage.RAN
    entry.output_dir = "/tmp/out"
    journal.save(entry)
    loaded = journal.load(7)
    assert loaded is not None and loaded.stage is Stage.RAN and loaded.output_dir == "/tmp/out"
    assert journal.for_task(3) == loaded
    entry.stage = Stage.SUBMITTED
    journal.save(entry)
    assert journal.for_task(3) is None
    assert journal.load(8) is None
    assert not list((tmp_path / "j").glob(".journal-*"))

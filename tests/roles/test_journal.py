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


def test_entries_keyed_by_block_hash_and_set_aside(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    old = JournalEntry(task_id=0, submission_id=0, worker="5F", stage=Stage.RAN,
                       task_block_hash="0x" + "aa" * 32, assigned_block_hash="0x" + "bb" * 32)
    new = JournalEntry(task_id=0, submission_id=0, worker="5F",
                       task_block_hash="0x" + "cc" * 32, assigned_block_hash="0x" + "dd" * 32)
    journal.save(old)
    journal.save(new)  # same ids on another chain history: a second entry, not an overwrite
    assert len(journal.entries()) == 2
    assert journal.load(0, "0x" + "dd" * 32) == new
    moved = journal.set_aside(old, "the chain was restarted")
    assert moved.parent.name == "stale" and "restarted" in moved.read_text()
    assert journal.entries() == [new]


def test_one_process_at_a_time(tmp_path: Path) -> None:
    import pytest

    from decentralml.roles.journal import JournalBusy

    journal = Journal(tmp_path / "j")
    with journal.locked("work 3"), pytest.raises(JournalBusy, match="work 3"), \
            Journal(tmp_path / "j").locked("work 4"):
        pass
    with journal.locked("work 5"):  # released after the first
        pass

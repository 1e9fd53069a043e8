"""GroupCommit on a real SQLite store: blocks become final only after the fsync covering them,
groups share an fsync, a failing fsync is retried, and close() finalizes the rest."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from decentralml.devnode.finality import GroupCommit
from decentralml.devnode.storage import ChainStore

pytestmark = pytest.mark.timeout(60)


class GatedStore(ChainStore):
    """A real store whose fsync waits for the test (to see what is final while one runs)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.gate.set()
        self.fail_next = False
        self.synced_up_to: list[int] = []

    def sync(self) -> None:
        committed = self.committed
        self.gate.wait(30)
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk on fire")
        super().sync()
        self.synced_up_to.append(committed)


def _block(store: ChainStore, number: int) -> None:
    store.commit_block(number, number.to_bytes(32, "big"), b"header", b"body",
                       {b"key": number.to_bytes(4, "little")})


def test_blocks_are_final_only_after_their_fsync(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = GatedStore(tmp_path)
        finals: list[int] = []
        group = GroupCommit(store, finals.append, asyncio.get_running_loop())
        assert group.final == -1  # an empty database
        store.gate.clear()  # the next fsync blocks
        _block(store, 0)
        group.sealed(0)
        await asyncio.sleep(0.05)
        assert finals == [] and store.committed == 0  # committed, not yet fsynced
        for n in range(1, 6):  # sealed while the fsync runs: one group
            _block(store, n)
            group.sealed(n)
        await asyncio.sleep(0.05)
        assert finals == [] and store.pending == 5
        store.gate.set()
        while not finals or finals[-1] < 5:
            await asyncio.sleep(0.01)
        assert finals == [0, 5]  # two fsyncs for six blocks
        assert store.synced_up_to == [-1, 0, 5]  # -1: at start, for a previous run's blocks
        group.close()
        store.close()

    asyncio.run(scenario())


def test_a_failed_fsync_is_retried_and_nothing_is_final_meanwhile(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = GatedStore(tmp_path)
        finals: list[int] = []
        group = GroupCommit(store, finals.append, asyncio.get_running_loop())
        store.fail_next = True
        _block(store, 0)
        group.sealed(0)
        await asyncio.sleep(0.1)
        assert finals == []
        while not finals:
            await asyncio.sleep(0.05)
        assert finals == [0] and store.synced_up_to == [-1, 0]
        group.close()
        store.close()

    asyncio.run(scenario())


def test_close_makes_everything_final(tmp_path: Path) -> None:
    async def scenario() -> list[int]:
        store = GatedStore(tmp_path)
        finals: list[int] = []
        group = GroupCommit(store, finals.append, asyncio.get_running_loop())
        for n in range(3):
            _block(store, n)
            group.sealed(n)
        group.close()  # before the loop ran the scheduled commit
        store.close()
        return finals

    assert asyncio.run(scenario())[-1] == 2
    reopened = ChainStore(tmp_path)
    assert reopened.committed == 2
    reopened.close()

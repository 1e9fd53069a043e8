"""SQLite persistence of the chain: blocks and every block's state changes.

One database holds everything, in WAL mode: ``blocks`` (header and body by number and hash) and
``history`` (each key's value after each block that changed it, ``NULL`` for a deletion), which
answers state queries at any past block (events included: they live in ``System.Events``) and
rebuilds the head state at start. ``--tmp`` uses the same schema in memory.

Writes are batched: sealed blocks wait in memory and are written in one transaction by
:meth:`ChainStore.flush` (every read flushes first), so many blocks share one commit. Blocks are
written whole and in order, so a crash loses at most the last unflushed blocks, never half a block.

Durability is split from the commit: with ``synchronous=NORMAL`` a WAL commit writes the pages
but does not wait for the disk, and :meth:`ChainStore.sync` then fsyncs the WAL (what
``synchronous=FULL`` would do inside the commit). :class:`~decentralml.devnode.finality.GroupCommit`
runs that fsync on its own thread, so the event loop never waits for the disk and one fsync covers
every block committed while the previous one was in flight; a block is announced final only after
the fsync that covers it has returned.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, header BLOB NOT NULL,
    body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    key BLOB NOT NULL, block INTEGER NOT NULL, value BLOB,
    PRIMARY KEY (key, block)) WITHOUT ROWID;
"""


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: unbounded)."""
    raw = bytearray(prefix)
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return None


class ChainStore:
    """The node's database; ``path=None`` keeps it in memory (``--tmp``)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
            target = str(path / "chain.sqlite")
        else:
            target = ":memory:"
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._pending: list[tuple[int, bytes, bytes, bytes, Mapping[bytes, bytes | None]]] = []
        row = self._db.execute("SELECT MAX(number) FROM blocks").fetchone()
        #: Highest block number written to the database (-1: none yet).
        self.committed = -1 if row is None or row[0] is None else int(row[0])
        self._sync_lock = threading.Lock()
        self._wal_fd: int | None = None

    @property
    def persistent(self) -> bool:
        """Whether blocks survive the process (a base path, not ``--tmp``)."""
        return self.path is not None

    def close(self) -> None:
        self.flush()
        self.sync()
        with self._sync_lock:
            if self._wal_fd is not None:
                os.close(self._wal_fd)
                self._wal_fd = None
        self._db.close()

    def sync(self) -> None:
        """Make every committed block durable: fsync the WAL.

        Thread-safe with respect to the loop thread's commits (it only fsyncs a file and never
        touches the connection): the fsync covers at least every commit that returned before it
        was called. Only the WAL is synced here: checkpoints sync the database file themselves
        under ``synchronous=NORMAL``, and opening and closing the database file outside SQLite
        would drop SQLite's POSIX locks on it (the WAL holds none). No-op in memory.
        """
        if self.path is None:
            return
        with self._sync_lock:
            if self._wal_fd is None:
                try:
                    self._wal_fd = os.open(self.path / "chain.sqlite-wal", os.O_RDONLY)
                except FileNotFoundError:  # nothing written in WAL mode yet
                    return
                dir_fd = os.open(self.path, os.O_RDONLY)  # the WAL's directory entry, once
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            os.fsync(self._wal_fd)

    # -- meta ------------------------------------------------------------------------------

    def get_meta(self, key: str) -> bytes | None:
        self.flush()
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, key: str, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- blocks ----------------------------------------------------------------------------

    def best(self) -> tuple[int, bytes] | None:
        self.flush()
        row = self._db.execute(
            "SELECT number, hash FROM blocks ORDER BY number DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def block_by_hash(self, block_hash: bytes) -> tuple[int, bytes, bytes] | None:
        self.flush()
        row = self._db.execute("SELECT number, header, body FROM blocks WHERE hash = ?",
                               (block_hash,)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))

    def hash_by_number(self, number: int) -> bytes | None:
        self.flush()
        row = self._db.execute("SELECT hash FROM blocks WHERE number = ?", (number,)).fetchone()
        return None if row is None else bytes(row[0])

    def commit_block(self, number: int, block_hash: bytes, header: bytes, body: bytes,
                     changes: Mapping[bytes, bytes | None]) -> None:
        """Queue a block with its state changes; written by the next :meth:`flush`."""
        self._pending.append((number, block_hash, header, body, changes))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        """Write the queued blocks in one transaction."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO blocks (number, hash, header, body) VALUES (?, ?, ?, ?)",
                           [(n, h, hd, b) for n, h, hd, b, _ in pending])
            db.executemany("INSERT OR REPLACE INTO history (key, block, value) VALUES (?, ?, ?)",
                           [(k, n, v) for n, _, _, _, ch in pending for k, v in ch.items()])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._pending = pending + self._pending
            raise
        self.committed = pending[-1][0]

    # -- state -----------------------------------------------------------------------------

    def head_state(self) -> dict[bytes, bytes]:
        """The state after the last stored block (each key's latest value)."""
        self.flush()
        rows = self._db.execute(
            "SELECT key, value FROM history AS h WHERE block = "
            "(SELECT MAX(block) FROM history WHERE key = h.key) AND value IS NOT NULL")
        return {bytes(k): bytes(v) for k, v in rows}

    def storage_at(self, key: bytes, number: int) -> bytes | None:
        self.flush()
        row = self._db.execute(
            "SELECT value FROM history WHERE key = ? AND block <= ? ORDER BY block DESC LIMIT 1",
            (key, number)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def iter_prefix_at(self, prefix: bytes, number: int, after: bytes | None = None
                       ) -> Iterator[tuple[bytes, bytes]]:
        """Key-ordered entries under ``prefix`` in the state after block ``number``."""
        self.flush()
        lo = prefix if after is None or after < prefix else after
        hi = _prefix_end(prefix)
        op = ">" if after is not None and after >= prefix else ">="
        sql = (f"SELECT key, value FROM history AS h WHERE key {op} ?"
               + (" AND key < ?" if hi is not None else "")
               + " AND block = (SELECT MAX(block) FROM history WHERE key = h.key AND block <= ?)"
               " AND value IS NOT NULL ORDER BY key")
        args: tuple[object, ...] = (lo, hi, number) if hi is not None else (lo, number)
        for k, v in self._db.execute(sql, args):
            yield bytes(k), bytes(v)

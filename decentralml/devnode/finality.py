"""When a sealed block becomes final: only once it is durable on disk (a group commit).

A Substrate node notifies finality only for blocks in its database. The devnode seals a block and
announces it as the new best block at once (``inBlock``, ``chain_newHead``), but calls it final
(``finalized``, ``chain_finalizedHead``, ``chain_getFinalizedHead``) only when the block has been
committed to SQLite *and* the WAL has been fsynced, so a ``kill -9`` or a power cut can never take
back a block a client was told is final.

Throughput comes from grouping: at most one fsync is in flight, on a worker thread, and commits
start at most every :data:`MIN_COMMIT_INTERVAL_S`; every block sealed meanwhile is committed in one
transaction and covered by one fsync. A commit costs the loop thread about half a millisecond
whatever it holds (a few B-tree pages rewritten, the WAL appended), so a commit per block would
cost a busy node a third of its CPU; grouped, a block costs a fraction of that. When idle, a
sealed block is committed at once and is final one commit and one fsync later; under load, at
most an interval later. In memory (``--tmp``) nothing survives the process anyway, and a sealed
block is final at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable

from decentralml.devnode.storage import ChainStore

log = logging.getLogger(__name__)

#: Delay before trying again after a failed commit or fsync (disk full, I/O error...).
RETRY_S = 0.5
#: Shortest time between the starts of two commits: the bound on what finality waits for
#: grouping, under load (an idle node commits a new block at once).
MIN_COMMIT_INTERVAL_S = 0.05

#: Called with the highest block number that is now final.
OnFinal = Callable[[int], None]


class Finality:
    """The policy interface :class:`~decentralml.devnode.chain.Chain` reports sealed blocks to."""

    def sealed(self, number: int) -> None:
        """Block ``number`` was sealed (and queued in the store)."""
        raise NotImplementedError

    def close(self) -> None:
        """Make everything sealed final before the node stops."""


class Immediate(Finality):
    """In-memory chains: a sealed block is final at once (nothing to make durable)."""

    def __init__(self, on_final: OnFinal) -> None:
        self.on_final = on_final

    def sealed(self, number: int) -> None:
        self.on_final(number)


class GroupCommit(Finality):
    """Persistent chains: commit and fsync in groups, then report the blocks final.

    Runs on the node's event loop; only :meth:`ChainStore.sync` runs on the worker thread.
    """

    def __init__(self, store: ChainStore, on_final: OnFinal,
                 loop: asyncio.AbstractEventLoop,
                 min_interval: float = MIN_COMMIT_INTERVAL_S) -> None:
        self.store = store
        self.on_final = on_final
        self.loop = loop
        self.min_interval = min_interval
        self._last_start = -min_interval
        store.flush()  # genesis, on a new chain
        store.sync()  # what a previous run committed (maybe not fsynced before a crash)
        self.final = store.committed
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="decentralml-devnode-fsync")
        self._scheduled = False
        self._syncing = False
        self._closed = False
        #: fsyncs done, for the bench and tests (how many blocks each covered on average).
        self.syncs = 0

    def sealed(self, number: int) -> None:
        if not self._scheduled and not self._syncing and not self._closed:
            self._schedule()

    def _schedule(self) -> None:
        """Start a commit after the current batch of requests (blocks sealed meanwhile share
        it), and no sooner than ``min_interval`` after the previous one started."""
        self._scheduled = True
        delay = self._last_start + self.min_interval - self.loop.time()
        if delay <= 0:
            self.loop.call_soon(self._start)
        else:
            self.loop.call_later(delay, self._start)

    def _start(self) -> None:
        self._scheduled = False
        if self._syncing or self._closed:
            return
        self._last_start = self.loop.time()
        try:
            self.store.flush()
        except Exception:
            log.exception("writing blocks to the database failed; retrying")
            self._retry()
            return
        target = self.store.committed
        if target <= self.final:
            return
        self._syncing = True
        future = self.loop.run_in_executor(self._executor, self.store.sync)
        future.add_done_callback(lambda f: self._synced(target, f))

    def _synced(self, target: int, future: asyncio.Future[None]) -> None:
        self._syncing = False
        if future.cancelled() or self._closed:
            return
        exc = future.exception()
        if exc is not None:
            log.error("fsync of the chain database failed (%s); retrying", exc)
            self._retry()
            return
        self.syncs += 1
        self._advance(target)
        if (self.store.pending or self.store.committed > self.final) and not self._scheduled:
            self._schedule()

    def _advance(self, target: int) -> None:
        if target > self.final:
            self.final = target
            try:
                self.on_final(target)
            except Exception:
                log.exception("finality notification failed")

    def _retry(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_later(RETRY_S, self._start)

    def close(self) -> None:
        """Wait for the fsync in flight, then commit, fsync and finalize the rest."""
        self._closed = True
        self._executor.shutdown(wait=True)
        self.store.flush()
        self.store.sync()
        self._advance(self.store.committed)

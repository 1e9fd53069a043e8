"""``DevNode``: the embeddable dev chain, running its server on a background thread.

Everything chain-related runs on that thread's asyncio loop (RPC handling, block sealing,
SQLite), so the runtime needs no locks; other threads only start and stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path
from types import TracebackType

from decentralml.devnode.chain import Chain
from decentralml.devnode.finality import GroupCommit
from decentralml.devnode.rpc import RpcApi
from decentralml.devnode.server import RpcLimits, RpcServer
from decentralml.devnode.storage import ChainStore

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
#: How often an in-memory chain's sealed blocks are written to its SQLite (see ChainStore); with
#: a base path every block is written (and fsynced) as soon as possible by the GroupCommit.
FLUSH_INTERVAL_S = 0.1


class DevNode:
    """A running devnode: ``with DevNode() as node: SubstrateInterface(url=node.url)``.

    ``base_path=None`` keeps the chain in memory; otherwise it is persisted in
    ``base_path/chain.sqlite`` and a new node on the same path resumes at the same head: every
    block a client was told is final (``finalized``, finalized heads) is on disk, fsynced, so it
    survives ``kill -9`` and power loss. ``block_time=None`` seals one block per extrinsic
    (instant seal); a number of seconds seals a block at that interval from a transaction pool.
    ``limits`` bounds what clients can make the RPC server hold (connections, subscriptions,
    buffers); see :class:`~decentralml.devnode.server.RpcLimits` for the defaults.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, base_path: Path | None = None,
                 block_time: float | None = None, limits: RpcLimits | None = None) -> None:
        if block_time is not None and block_time <= 0:
            raise ValueError("block_time must be positive")
        self.host = host
        self.port = port
        self.base_path = None if base_path is None else Path(base_path)
        self.block_time = block_time
        self.limits = limits or RpcLimits()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.chain: Chain | None = None
        #: The RPC server while running (its connection and drop counters are read by tests).
        self.server: RpcServer | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    def start(self) -> DevNode:
        """Start the node; returns once it accepts connections (raises if it cannot start)."""
        if self._thread is not None:
            raise RuntimeError("DevNode already started")
        self._thread = threading.Thread(target=self._run, name="decentralml-devnode",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("devnode did not start in time")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def stop(self) -> None:
        """Stop serving and close the database (idempotent)."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop.set)
        thread.join()
        self._thread = None

    def __enter__(self) -> DevNode:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until the node stops (the CLI's foreground mode)."""
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start() if it happens before ready
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("devnode stopped with an error")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        store = ChainStore(self.base_path)
        group: GroupCommit | None = None
        try:
            chain = Chain(store, instant=self.block_time is None)
            if store.persistent:
                group = GroupCommit(store, chain.finalize, self._loop)
                chain.finality = group
            _ = chain.metadata  # encode once now, not on the first client's request
            self.chain = chain
            server = RpcServer(RpcApi(chain, self.limits.max_subscriptions_per_connection),
                               self.limits)
            self.server = server
            self.port = await server.start(self.host, self.port)
            tasks = []
            if not store.persistent:
                tasks.append(asyncio.create_task(self._flush_every(store, FLUSH_INTERVAL_S)))
            if self.block_time is not None:
                tasks.append(asyncio.create_task(self._seal_every(chain, self.block_time)))
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                for task in tasks:
                    task.cancel()
                await server.stop()
        finally:
            if group is not None:
                group.close()
            store.close()

    @staticmethod
    async def _flush_every(store: ChainStore, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                store.flush()
            except Exception:
                log.exception("writing blocks to the database failed")

    @staticmethod
    async def _seal_every(chain: Chain, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                chain.produce_block()
            except Exception:
                log.exception("sealing failed")

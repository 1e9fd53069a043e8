"""Signing and sending extrinsics so that each lands exactly once, from any number of threads.

Three pieces:

* :class:`NonceManager` hands out nonces locally per account. Signing and the pool's verdict happen
  in one critical section of the connection lock, so a nonce is only consumed once the node took
  the transaction; a refusal for a nonce reason (stale, future, priority too low: someone else
  used the account) resyncs from ``system_accountNextIndex`` and re-signs, which is safe because
  the refused transaction is not in the pool.
* :class:`InclusionTracker` follows new best blocks and records every extrinsic hash it sees; all
  waiting threads share one poller (a leader), so 50 waiters cost one block fetch per block.
* :class:`Submitter` glues them: sign, send, wait for inclusion, decode the outcome. If the socket
  breaks after the transaction may have left (``ConnectionLost``), it never re-signs: it looks the
  hash up in the blocks since sending and in the pool, and only re-sends the *identical* bytes
  (same nonce, so it cannot execute twice) when the node has no trace of it.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from scalecodec.types import GenericCall, GenericExtrinsic
from substrateinterface import Keypair, SubstrateInterface

from decentralml.chain.connection import Connection, ConnectionLost
from decentralml.chain.errors import (
    ALREADY_IMPORTED,
    TEMPORARILY_BANNED,
    BlockRetracted,
    FinalityStalled,
    TransactionRejected,
)
from decentralml.chain.errors import dispatch_error as map_dispatch_error
from decentralml.errors import ChainError, ChainTimeout, DispatchError

#: How many times a nonce conflict is resolved by resyncing before giving up.
_NONCE_RETRIES = 100
#: Seconds between checks, while waiting for inclusion, that our nonce was not taken by another
#: transaction (see ``Submitter._superseded``).
_SUPERSEDED_CHECK = 2.0
#: How many recent blocks' extrinsic hashes the tracker remembers.
_TRACKED_BLOCKS = 4096


@dataclass(frozen=True)
class Location:
    """Where an extrinsic was included."""

    block_hash: str
    block_number: int
    index: int


@dataclass(frozen=True)
class Inclusion:
    """An included extrinsic and its outcome (``error`` is set when dispatch failed)."""

    extrinsic_hash: str
    signer: str
    nonce: int
    location: Location
    records: list[dict[str, Any]]
    fee: int
    error: DispatchError | None = None

    @property
    def success(self) -> bool:
        return self.error is None


class NonceManager:
    """Next nonce per account, assigned locally. Callers hold the connection lock."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        #: how many times a refused nonce made us resync (for diagnostics and tests)
        self.resyncs = 0

    def next(self, conn: Connection, address: str) -> int:
        if address not in self._next:
            self._next[address] = self.chain_next(conn, address)
        return self._next[address]

    def consumed(self, address: str, nonce: int) -> None:
        self._next[address] = max(self._next.get(address, 0), nonce + 1)

    def forget(self, address: str) -> None:
        self._next.pop(address, None)

    def resync(self, conn: Connection, address: str) -> int:
        self.resyncs += 1
        self._next[address] = self.chain_next(conn, address)
        return self._next[address]

    @staticmethod
    def chain_next(conn: Connection, address: str) -> int:
        """The pool-aware next nonce (``system_accountNextIndex``), else the on-chain one."""
        try:
            return int(conn.rpc("system_accountNextIndex", [address]))
        except ChainError:
            return int(conn.run(lambda si: si.get_account_nonce(address)) or 0)


@dataclass
class _TrackerState:
    scanned: int | None = None
    found: dict[str, Location] = field(default_factory=dict)
    history: deque[tuple[int, tuple[str, ...]]] = field(default_factory=deque)
    waiting: Counter[int] = field(default_factory=Counter)
    polling: bool = False
    #: bumped by every rewind: a scan that started before one records nothing more
    epoch: int = 0


class InclusionTracker:
    """Finds extrinsics by hash in new best blocks, for many waiters at once.

    It scans forward from the lowest starting block of the threads currently waiting, so an idle
    client does not walk through blocks nobody cares about.
    """

    def __init__(self, conn: Connection, *, poll_interval: float = 0.05) -> None:
        self._conn = conn
        self._poll = poll_interval
        self._cond = threading.Condition()
        self._state = _TrackerState()

    def _record(self, number: int, epoch: int) -> bool:
        info = self._conn.block(number)
        if info is None:
            return False
        with self._cond:
            st = self._state
            if st.epoch != epoch:
                return False  # rewound meanwhile: this block may be of the old fork
            for index, xhash in enumerate(info.extrinsic_hashes):
                st.found[xhash] = Location(info.hash, number, index)
            st.history.append((number, info.extrinsic_hashes))
            while len(st.history) > _TRACKED_BLOCKS:
                _, old = st.history.popleft()
                for xhash in old:
                    st.found.pop(xhash, None)
        return True

    @contextmanager
    def watching(self, since: int | None = None) -> Iterator[None]:
        """Keep every block after ``since`` scannable while the caller follows an extrinsic.

        A scan jumps forward to the lowest start of the waiters it knows of, so a caller must be
        known before it sends: otherwise another waiter's scan could move past the block its
        extrinsic lands in, which would then never be found (and could look superseded).
        Without ``since`` the head read now pins it: whatever block a later scan jumps to was the
        head before this caller sends, so its extrinsic lands after it."""
        pin = self._conn.head_number() if since is None else since
        with self._cond:
            self._state.waiting[pin] += 1
        try:
            yield
        finally:
            with self._cond:
                self._state.waiting[pin] -= 1
                if self._state.waiting[pin] <= 0:
                    del self._state.waiting[pin]

    def scan(self, since: int) -> int:
        """Record every block after ``since`` (and after every waiter's start) up to the head;
        returns the highest block recorded so far (below the head if a block could not be read).
        """
        head = self._conn.head_number()
        with self._cond:
            st = self._state
            floor = min([since, *st.waiting])
            if st.scanned is None or st.scanned < floor:
                st.scanned = floor
            number = st.scanned + 1
            epoch = st.epoch
        while number <= head and self._record(number, epoch):
            with self._cond:
                if st.epoch != epoch:
                    break
                st.scanned = max(st.scanned or 0, number)
            number += 1
        with self._cond:
            return st.scanned if st.scanned is not None else since

    def lookup(self, extrinsic_hash: str) -> Location | None:
        with self._cond:
            return self._state.found.get(extrinsic_hash)

    def rewind(self, number: int) -> None:
        """Forget what was recorded from block ``number`` on: the best chain there changed (a
        block was retracted), so the next scan reads those heights again, on the new chain."""
        with self._cond:
            st = self._state
            while st.history and st.history[-1][0] >= number:
                at, hashes = st.history.pop()
                for xhash in hashes:
                    location = st.found.get(xhash)
                    if location is not None and location.block_number == at:
                        del st.found[xhash]
            if st.scanned is not None:
                st.scanned = min(st.scanned, number - 1)
            st.epoch += 1

    def wait(self, extrinsic_hash: str, since: int, deadline: float) -> Location:
        """Block until the extrinsic is in a best block after ``since``; ChainTimeout otherwise."""
        with self.watching(since):
            return self._wait(extrinsic_hash, since, deadline)

    def _wait(self, extrinsic_hash: str, since: int, deadline: float) -> Location:
        while True:
            with self._cond:
                st = self._state
                location = st.found.get(extrinsic_hash)
                if location is not None:
                    return location
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ChainTimeout(
                        f"extrinsic {extrinsic_hash} was not included within the timeout; it may "
                        f"still be included later: look it up by hash before re-sending")
                if st.polling:
                    self._cond.wait(min(remaining, 1.0))
                    continue
                st.polling = True
            try:
                self.scan(since)
            finally:
                with self._cond:
                    self._state.polling = False
                    self._cond.notify_all()
            if self.lookup(extrinsic_hash) is None:
                time.sleep(max(0.0, min(self._poll, deadline - time.monotonic())))


def retraction_error(extrinsic_hash: str, location: Location, conn: Connection,
              detail: str = "") -> BlockRetracted:
    """The error for an extrinsic whose block at ``location`` is not the finalized one."""
    canonical = conn.block_hash(location.block_number)
    return BlockRetracted(
        f"extrinsic {extrinsic_hash} was in block #{location.block_number} "
        f"{location.block_hash}, which was retracted: the finalized block at that height is "
        f"{canonical}{detail}; its effects do not count",
        block_hash=location.block_hash, block_number=location.block_number,
        finalized_hash=canonical)


class Submitter:
    """Signs, sends and follows extrinsics for a client (shared by all its signers)."""

    def __init__(self, conn: Connection, *, poll_interval: float = 0.05,
                 finality: bool = False) -> None:
        self.conn = conn
        self.nonces = NonceManager()
        self.tracker = InclusionTracker(conn, poll_interval=poll_interval)
        #: whether an extrinsic is done only once its block is finalized (see ``_submit``)
        self.finality = finality
        self._poll = poll_interval
        #: extrinsic hashes this submitter has sent (for tests and diagnostics)
        self.sent: list[str] = []

    def submit(self, compose: Callable[[SubstrateInterface], GenericCall], keypair: Keypair, *,
               timeout: float) -> Inclusion:
        """Sign ``compose``'s call with ``keypair``, send it and wait for its inclusion.

        Raises the pallet's exception class if dispatch failed, :class:`TransactionRejected` if
        the pool refused it, :class:`ChainTimeout` if it was not included in time. With
        ``finality``, it returns only once the block is finalized, and :class:`BlockRetracted`
        if its block lost a fork and it could not be included again in time.
        """
        deadline = time.monotonic() + timeout
        address = keypair.ss58_address
        with self.tracker.watching():
            return self._submit(compose, keypair, address, deadline)

    def _submit(self, compose: Callable[[SubstrateInterface], GenericCall], keypair: Keypair,
                address: str, deadline: float) -> Inclusion:
        since, extrinsic, nonce = self._sign_and_send(compose, keypair, address, deadline)
        retracted: Location | None = None
        while True:
            extrinsic_hash = "0x" + extrinsic.extrinsic_hash.hex()
            try:
                location = self.tracker.wait(
                    extrinsic_hash, since, min(deadline, time.monotonic() + _SUPERSEDED_CHECK))
            except ChainTimeout:
                if time.monotonic() >= deadline:
                    # If the pool dropped it, its nonce is a gap: ask the node (pool-aware) next
                    # time.
                    with self.conn.lock:
                        self.nonces.forget(address)
                    if retracted is not None:
                        raise retraction_error(extrinsic_hash, retracted, self.conn,
                                        ", and it was not included again in time") from None
                    raise
            else:
                if not self.finality or self.finalized(location, deadline, extrinsic_hash):
                    break
                # Its block lost a fork: what it did there does not count. Follow it on the new
                # best chain, read again from where it was sent: the fork may have started below
                # its block, and the new chain may hold it lower (another node's pool had it).
                # Reading every block since sending is what lets ``_superseded`` tell "ours, in
                # another block" from "another transaction took the nonce".
                retracted = location
                self.tracker.rewind(since + 1)
                self._reoffer(extrinsic, since)
                continue
            if retracted is not None:
                self._reoffer(extrinsic, since)
            if self._superseded(address, nonce, extrinsic_hash, since):
                # Another transaction of this account (another client, or another node's pool)
                # took our nonce, so ours can never execute: signing the call again with a new
                # nonce cannot make it run twice.
                with self.conn.lock:
                    self.nonces.resync(self.conn, address)
                since, extrinsic, nonce = self._sign_and_send(compose, keypair, address, deadline)
        return self._outcome(extrinsic_hash, address, nonce, location)

    def _reoffer(self, extrinsic: GenericExtrinsic, since: int) -> None:
        """Offer an extrinsic whose block was retracted to the pool again, unless a block after
        ``since`` or the pool holds it. The node's pool puts back the extrinsics of retracted
        blocks itself, but not always: a node that restarted, or one that judged it against a
        view still on the old fork ("stale"), has dropped it. The identical bytes (same nonce)
        run at most once, so offering them at every check until a block holds them is safe."""
        extrinsic_hash = "0x" + extrinsic.extrinsic_hash.hex()
        encoded = str(extrinsic.data)
        with self.conn.lock:
            try:
                if self._known(extrinsic_hash, encoded, since):
                    return
                self.conn.rpc("author_submitExtrinsic", [encoded], retry=False)
            except TransactionRejected as exc:
                # a nonce conflict: the pool's view still holds the retracted block, or another
                # transaction took the nonce (then ``_superseded`` re-signs); or it is pooled
                if not (exc.is_nonce_conflict
                        or exc.code in (TEMPORARILY_BANNED, ALREADY_IMPORTED)):
                    raise
            except ConnectionLost:
                pass  # the next check offers it again

    def finalized(self, location: Location, deadline: float, extrinsic_hash: str) -> bool:
        """Wait until finality reaches ``location``'s height: True if its block is the finalized
        one there, False if that block was retracted. :class:`FinalityStalled` when finality did
        not move while blocks went on until ``deadline`` (too few validators voting), else
        :class:`ChainTimeout`."""
        start = self.conn.finalized_number()
        while True:
            final = self.conn.finalized_number()
            if final >= location.block_number:
                return self.conn.block_hash(location.block_number) == location.block_hash
            if time.monotonic() >= deadline:
                best = self.conn.head_number()
                if final == start and best > location.block_number:
                    raise FinalityStalled(
                        f"finality is stalled on {self.conn.url}: the last finalized block is "
                        f"#{final} while the best is #{best}, and block #{location.block_number} "
                        f"(with extrinsic {extrinsic_hash}) is not final. Fewer than two thirds of "
                        f"the validators are voting: bring validators back online; until then "
                        f"treat the extrinsic as not final",
                        node=self.conn.url, finalized_number=final, best_number=best)
                raise ChainTimeout(f"block #{location.block_number} was not finalized in time on "
                                   f"{self.conn.url} (finalized #{final}, best #{best})")
            time.sleep(max(self._poll, 0.2))

    def _superseded(self, address: str, nonce: int, extrinsic_hash: str, since: int) -> bool:
        """Is ``nonce`` used on chain by a transaction other than ours?

        A node's pool refuses a second transaction with a nonce it already holds, but it cannot
        know of one waiting in another node's pool (or, with Chopsticks, it does not check): then
        the loser is silently dropped when the winner is included, and nothing would tell us.
        """
        head = self.conn.head_number()
        block_hash = self.conn.block_hash(head)
        if block_hash is None:
            return False
        account = self.conn.run(
            lambda si: si.query("System", "Account", [address], block_hash=block_hash))
        if int(account.value["nonce"]) <= nonce:
            return False
        if self.tracker.scan(since) < head:
            return False  # a block up to ``head`` could not be read: ours may be in it
        return self.tracker.lookup(extrinsic_hash) is None

    def _sign_and_send(self, compose: Callable[[SubstrateInterface], GenericCall],
                       keypair: Keypair, address: str, deadline: float
                       ) -> tuple[int, GenericExtrinsic, int]:
        """Sign with the next nonce and hand the extrinsic to the pool; returns the head before
        sending, the extrinsic and its nonce.

        Each attempt is one critical section (nonce, sign, send), so within this client a nonce
        is consumed only when the pool took the transaction. Between attempts that lost a nonce
        race to another process the lock is released for a short random pause, so two clients
        hammering one account do not keep colliding in lockstep.
        """
        conflicts = 0
        while True:
            with self.conn.lock:
                since = self.conn.head_number()
                nonce = self.nonces.next(self.conn, address)

                def sign(si: SubstrateInterface, nonce: int = nonce) -> GenericExtrinsic:
                    return si.create_signed_extrinsic(call=compose(si), keypair=keypair,
                                                      nonce=nonce)
                extrinsic = self.conn.run(sign)
                try:
                    self._send(extrinsic, since)
                except TransactionRejected as exc:
                    if not exc.is_nonce_conflict:
                        raise
                    self.nonces.resync(self.conn, address)
                    conflicts += 1
                else:
                    self.nonces.consumed(address, nonce)
                    return since, extrinsic, nonce
            if conflicts >= _NONCE_RETRIES or time.monotonic() >= deadline:
                raise ChainError(f"could not find a free nonce for {address} after {conflicts} "
                                 f"resyncs; another process keeps using this account")
            time.sleep(random.uniform(0.0, min(0.05 * conflicts, 0.5)))

    def _send(self, extrinsic: GenericExtrinsic, since: int) -> None:
        """Put the extrinsic into the pool, or prove it is already there or included."""
        extrinsic_hash = "0x" + extrinsic.extrinsic_hash.hex()
        encoded = str(extrinsic.data)
        self.sent.append(extrinsic_hash)
        try:
            self.conn.rpc("author_submitExtrinsic", [encoded], retry=False)
            return
        except TransactionRejected as exc:
            if exc.code == ALREADY_IMPORTED:
                return
            raise
        except ConnectionLost:
            pass
        # The request may or may not have reached the node. Never re-sign here: find it first.
        for _attempt in range(5):
            if self._known(extrinsic_hash, encoded, since):
                return
            try:
                self.conn.rpc("author_submitExtrinsic", [encoded], retry=False)
                return
            except TransactionRejected as exc:
                # the same bytes were imported, or their nonce got used: by this very
                # transaction (then it is in a block) or by someone else's.
                conflict = exc.code in (ALREADY_IMPORTED, TEMPORARILY_BANNED) \
                    or exc.is_nonce_conflict
                if conflict and (exc.code == ALREADY_IMPORTED
                                 or self._known(extrinsic_hash, encoded, since)):
                    return
                raise
            except ConnectionLost:
                continue
        raise ChainError(f"could not confirm whether extrinsic {extrinsic_hash} reached the node")

    def _known(self, extrinsic_hash: str, encoded: str, since: int) -> bool:
        """Is the extrinsic already in a block after ``since`` or in the node's pool?"""
        self.tracker.scan(since)
        if self.tracker.lookup(extrinsic_hash) is not None:
            return True
        pending = self.conn.rpc("author_pendingExtrinsics", []) or []
        return encoded in pending or any(str(p).lower() == encoded.lower() for p in pending)

    def _outcome(self, extrinsic_hash: str, signer: str, nonce: int,
                 location: Location) -> Inclusion:
        records = [r for r in self.conn.events(location.block_hash)
                   if r.get("extrinsic_idx") == location.index and r.get("phase") ==
                   "ApplyExtrinsic"]
        fee = 0
        error: DispatchError | None = None
        for record in records:
            module, name = record.get("module_id"), record.get("event_id")
            attrs = record.get("attributes") or {}
            if module == "TransactionPayment" and name == "TransactionFeePaid":
                fee = int(attrs["actual_fee"]) + int(attrs.get("tip", 0))
            elif module == "System" and name == "ExtrinsicFailed":
                error = map_dispatch_error(attrs["dispatch_error"], self.conn.error_table,
                                           extrinsic_hash)
        if error is not None:
            error.extrinsic_hash = extrinsic_hash
            error.block_hash = location.block_hash
            error.block_number = location.block_number
            error.fee = fee
        return Inclusion(extrinsic_hash=extrinsic_hash, signer=signer, nonce=nonce,
                         location=location, records=records, fee=fee, error=error)

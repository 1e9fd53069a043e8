"""The transaction pool: ready and future transactions by sender nonce.

A transaction is *ready* when its nonce is the sender's next one (on-chain nonce plus the ready
transactions already queued for that sender), *future* when there is a gap; futures are promoted
once the gap is filled by a block or a new submission. Same sender and nonce twice is refused as
FRAME's pool does (no replacement on the devnode: tips do not buy priority here).

Bounded like a Substrate node's pool (``--pool-limit`` 8192 transactions, ``--pool-kbytes`` 20 MiB
ready, a tenth of both for futures): a transaction that would exceed a bound is refused with
1016 "Immediately Dropped", so a flood of valid transactions cannot grow the node's memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from decentralml.devnode.extrinsics import Extrinsic, TransactionInvalid


@dataclass
class PoolTx:
    xt: Extrinsic
    signer: bytes


MAX_READY = 8192
MAX_READY_BYTES = 20 * 1024 * 1024
MAX_FUTURE = MAX_READY // 10
MAX_FUTURE_BYTES = MAX_READY_BYTES // 10


def pool_full() -> TransactionInvalid:
    return TransactionInvalid("The transaction couldn't enter the pool because of the limit",
                              1016, "Immediately Dropped")


class Pool:
    """Ready queue in submission order (nonce-consistent per sender) plus a future set."""

    def __init__(self, max_ready: int = MAX_READY, max_ready_bytes: int = MAX_READY_BYTES,
                 max_future: int = MAX_FUTURE, max_future_bytes: int = MAX_FUTURE_BYTES) -> None:
        self.ready: dict[bytes, PoolTx] = {}
        self.future: dict[tuple[bytes, int], PoolTx] = {}
        self._ready_nonces: dict[tuple[bytes, int], bytes] = {}
        self.max_ready, self.max_ready_bytes = max_ready, max_ready_bytes
        self.max_future, self.max_future_bytes = max_future, max_future_bytes
        self.ready_bytes = 0
        self.future_bytes = 0

    def __len__(self) -> int:
        return len(self.ready) + len(self.future)

    def contains(self, tx_hash: bytes) -> bool:
        return tx_hash in self.ready or any(t.xt.hash == tx_hash for t in self.future.values())

    def next_nonce(self, signer: bytes, chain_nonce: int) -> int:
        """The nonce the sender's next transaction should carry (``system_accountNextIndex``)."""
        n = chain_nonce
        while (signer, n) in self._ready_nonces:
            n += 1
        return n

    def add(self, tx: PoolTx, chain_nonce: int) -> tuple[str, list[PoolTx]]:
        """Queue ``tx``; returns ``"ready"`` or ``"future"`` and the futures it made ready."""
        if self.contains(tx.xt.hash):
            raise TransactionInvalid("The transaction is already in the pool.", 1013,
                                     "Transaction Already Imported")
        key = (tx.signer, tx.xt.nonce)
        if key in self._ready_nonces or key in self.future:
            raise TransactionInvalid(
                "The transaction has too low priority to replace another transaction already "
                "in the pool.", 1014, "Priority is too low: (0 vs 0)")
        size = tx.xt.length
        if tx.xt.nonce == self.next_nonce(tx.signer, chain_nonce):
            if len(self.ready) >= self.max_ready \
                    or self.ready_bytes + size > self.max_ready_bytes:
                raise pool_full()
            self._push_ready(tx)
            return "ready", self._promote(tx.signer, tx.xt.nonce + 1)
        if len(self.future) >= self.max_future or self.future_bytes + size > self.max_future_bytes:
            raise pool_full()
        self.future[key] = tx
        self.future_bytes += size
        return "future", []

    def _push_ready(self, tx: PoolTx) -> None:
        self.ready[tx.xt.hash] = tx
        self._ready_nonces[(tx.signer, tx.xt.nonce)] = tx.xt.hash
        self.ready_bytes += tx.xt.length

    def _promote(self, signer: bytes, nonce: int) -> list[PoolTx]:
        promoted = []
        while (signer, nonce) in self.future:
            tx = self.future.pop((signer, nonce))
            self.future_bytes -= tx.xt.length
            self._push_ready(tx)
            promoted.append(tx)
            nonce += 1
        return promoted

    def take_ready(self, limit: int, max_bytes: int | None = None) -> list[PoolTx]:
        """Remove and return up to ``limit`` ready transactions, in order, of at most
        ``max_bytes`` together (the first that does not fit and all after it stay ready)."""
        out = []
        total = 0
        for h in list(self.ready)[:limit]:
            tx = self.ready[h]
            if max_bytes is not None and total + tx.xt.length > max_bytes:
                break
            total += tx.xt.length
            del self.ready[h]
            del self._ready_nonces[(tx.signer, tx.xt.nonce)]
            self.ready_bytes -= tx.xt.length
            out.append(tx)
        return out

    def revalidate(self, chain_nonce: Callable[[bytes], int]) -> tuple[list[PoolTx], list[PoolTx]]:
        """After a block: drop stale futures, promote those whose gap closed.

        Returns (promoted, dropped).
        """
        dropped = [t for (s, n), t in self.future.items() if n < chain_nonce(s)]
        for t in dropped:
            del self.future[(t.signer, t.xt.nonce)]
            self.future_bytes -= t.xt.length
        promoted: list[PoolTx] = []
        for signer in {s for s, _ in self.future}:
            promoted += self._promote(signer, self.next_nonce(signer, chain_nonce(signer)))
        return promoted, dropped

"""The transaction pool: ready and future transactions by sender nonce.

A transaction is *ready* when its nonce is the sender's next one (on-chain nonce plus the ready
transactions already queued for that sender), *future* when there is a gap; futures are promoted
once the gap is filled by a block or a new submission. Same sender and nonce twice is refused as
FRAME's pool does (no replacement on the devnode: tips do not buy priority here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from decentralml.devnode.extrinsics import Extrinsic, TransactionInvalid


@dataclass
class PoolTx:
    xt: Extrinsic
    signer: bytes


class Pool:
    """Ready queue in submission order (nonce-consistent per sender) plus a future set."""

    def __init__(self) -> None:
        self.ready: dict[bytes, PoolTx] = {}
        self.future: dict[tuple[bytes, int], PoolTx] = {}
        self._ready_nonces: dict[tuple[bytes, int], bytes] = {}

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
        if tx.xt.nonce == self.next_nonce(tx.signer, chain_nonce):
            self._push_ready(tx)
            return "ready", self._promote(tx.signer, tx.xt.nonce + 1)
        self.future[key] = tx
        return "future", []

    def _push_ready(self, tx: PoolTx) -> None:
        self.ready[tx.xt.hash] = tx
        self._ready_nonces[(tx.signer, tx.xt.nonce)] = tx.xt.hash

    def _promote(self, signer: bytes, nonce: int) -> list[PoolTx]:
        promoted = []
        while (signer, nonce) in self.future:
            tx = self.future.pop((signer, nonce))
            self._push_ready(tx)
            promoted.append(tx)
            nonce += 1
        return promoted

    def take_ready(self, limit: int) -> list[PoolTx]:
        """Remove and return up to ``limit`` ready transactions, in order."""
        out = []
        for h in list(self.ready)[:limit]:
            tx = self.ready.pop(h)
            del self._ready_nonces[(tx.signer, tx.xt.nonce)]
            out.append(tx)
        return out

    def revalidate(self, chain_nonce: Callable[[bytes], int]) -> tuple[list[PoolTx], list[PoolTx]]:
        """After a block: drop stale futures, promote those whose gap closed.

        Returns (promoted, dropped).
        """
        dropped = [t for (s, n), t in self.future.items() if n < chain_nonce(s)]
        for t in dropped:
            del self.future[(t.signer, t.xt.nonce)]
        promoted: list[PoolTx] = []
        for signer in {s for s, _ in self.future}:
            promoted += self._promote(signer, self.next_nonce(signer, chain_nonce(signer)))
        return promoted, dropped

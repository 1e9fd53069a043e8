"""The chain: genesis, block production (sealing), the pool in front of it, and state queries.

Blocks are sealed by the node itself (no consensus): with instant seal every submitted extrinsic
gets its own block; with interval seal a timer seals whatever is ready. Each block is
``[Timestamp.set inherent] ++ ready extrinsics``, executed by the :class:`Runtime`, queued in the
:class:`ChainStore` and announced as the new best block (``inBlock``, new heads). It becomes final
(``finalized``, finalized heads, ``chain_getFinalizedHead``) when the :class:`Finality` policy
says so: at once in memory, once it is durable on disk with a base path
(see :mod:`decentralml.devnode.finality`).

Header hashes are real (``blake2_256`` of the SCALE header); the state and extrinsics roots are
blake2 commitments to the block's changes and extrinsics, not Merkle-Patricia trie roots (no
client of the devnode verifies storage proofs).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from decentralml.devnode.accounts import DEV_ENDOWMENT, dev_accounts
from decentralml.devnode.extrinsics import (
    ChainView,
    Extrinsic,
    TransactionInvalid,
    check_extensions,
    check_length,
    check_signature,
    decode_call,
    decode_envelope,
    decode_extrinsic,
    extensions_weight,
    precheck_extensions,
)
from decentralml.devnode.finality import Finality, Immediate
from decentralml.devnode.hashing import blake2_256
from decentralml.devnode.metadata import encode_metadata
from decentralml.devnode.pallets.system import DIGEST
from decentralml.devnode.pool import Pool, PoolTx
from decentralml.devnode.runtime import MAX_EXTRINSIC_LENGTH, SPEC_VERSION, Runtime
from decentralml.devnode.runtime_api import call_runtime_api
from decentralml.devnode.scale import (
    Bytes,
    DecodeError,
    Vec,
    decode_compact,
    encode_compact,
)
from decentralml.devnode.state import HeadState, StateReader
from decentralml.devnode.storage import SCHEMA_VERSION, ChainStore

log = logging.getLogger(__name__)

BODY = Vec(Bytes())
MAX_BLOCK_EXTRINSICS = 2_000
#: Bytes of extrinsics a block takes from the pool: the normal class's share of the block length
#: (what remains waits for the next block).
MAX_BLOCK_BODY_BYTES = MAX_EXTRINSIC_LENGTH
#: Calls longer than this are prechecked (nonce, length fee) before they are decoded; shorter
#: ones (a transfer is ~40 bytes) decode in less time than the precheck takes (~50 us).
PRECHECK_CALL_BYTES = 256
#: Blocks kept in memory for ``chain_getBlock`` on recent hashes (receipts read their block).
RECENT_BLOCKS = 256


class IncompatibleDatabase(RuntimeError):
    """The base path holds a chain of another runtime version or schema."""


@dataclass
class Block:
    number: int
    hash: bytes
    header: bytes
    parent_hash: bytes
    state_root: bytes
    extrinsics_root: bytes
    extrinsics: list[bytes] = field(default_factory=list)
    _json: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_header(cls, header: bytes, extrinsics: list[bytes]) -> Block:
        parent = header[:32]
        number, pos = decode_compact(header, 32)
        return cls(number, blake2_256(header), header, parent, header[pos:pos + 32],
                   header[pos + 32:pos + 64], extrinsics)

    def header_json(self) -> dict[str, Any]:
        """The header as ``chain_getHeader`` returns it (computed once per block)."""
        if self._json is None:
            self._json = self._header_json()
        return self._json

    def _header_json(self) -> dict[str, Any]:
        _, pos = decode_compact(self.header, 32)
        digest = DIGEST.decode_all(self.header[pos + 64:])
        return {
            "parentHash": "0x" + self.parent_hash.hex(),
            "number": hex(self.number),
            "stateRoot": "0x" + self.state_root.hex(),
            "extrinsicsRoot": "0x" + self.extrinsics_root.hex(),
            "digest": {"logs": ["0x" + _digest_item(d).hex() for d in digest["logs"]]},
        }


def _digest_item(item: Any) -> bytes:
    from decentralml.devnode.pallets.system import DIGEST_ITEM
    return DIGEST_ITEM.encode(item)


def encode_header(parent: bytes, number: int, state_root: bytes, extrinsics_root: bytes,
                  digest_logs: list[Any]) -> bytes:
    return (parent + encode_compact(number) + state_root + extrinsics_root
            + DIGEST.encode({"logs": digest_logs}))


def _changes_commitment(parent_root: bytes, changes: Mapping[bytes, bytes | None]) -> bytes:
    parts = [parent_root]
    for k in sorted(changes):
        v = changes[k]
        parts.append(encode_compact(len(k)) + k + (b"\x00" if v is None
                                                   else b"\x01" + encode_compact(len(v)) + v))
    return blake2_256(b"".join(parts))


class HistoricalState:
    """The state after a past block, read from the store (for queries at old block hashes)."""

    def __init__(self, store: ChainStore, number: int) -> None:
        self.store = store
        self.number = number

    def get(self, key: bytes) -> bytes | None:
        return self.store.storage_at(key, self.number)

    def iter_prefix(self, prefix: bytes, after: bytes | None = None
                    ) -> Iterator[tuple[bytes, bytes]]:
        return self.store.iter_prefix_at(prefix, self.number, after)


#: Watch callback: receives ``author_extrinsicUpdate`` results ("ready", {"inBlock": h}, ...).
Watcher = Callable[[Any], None]
#: New block listener: (block, state changes).
BlockListener = Callable[[Block, Mapping[bytes, bytes | None]], None]
#: Finality listener: a block that just became final (called in block order, none skipped).
FinalityListener = Callable[[Block], None]


class Chain:
    """Genesis or resume, validate and pool transactions, seal blocks, answer state queries."""

    def __init__(self, store: ChainStore, *, instant: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.instant = instant
        self.clock = clock
        self.pool = Pool()
        self.watchers: dict[bytes, list[Watcher]] = {}
        self.listeners: list[BlockListener] = []
        self.finality_listeners: list[FinalityListener] = []
        #: Decides when sealed blocks become final; the node installs a GroupCommit for a
        #: persistent store (see :mod:`decentralml.devnode.finality`).
        self.finality: Finality = Immediate(self.finalize)
        #: Sealed blocks not final yet, oldest first, with the hashes of their extrinsics.
        self._unfinal: deque[tuple[Block, list[bytes]]] = deque()
        self._metadata: bytes | None = None
        self._recent: dict[bytes, Block] = {}
        best = store.best()
        if best is None:
            self.head = HeadState()
            self.runtime = Runtime(self.head)
            self.genesis = self._build_genesis()
            self.best = self.genesis
        else:
            self._check_compatible()
            self.head = HeadState(store.head_state())
            self.runtime = Runtime(self.head)
            genesis_hash = store.hash_by_number(0)
            genesis = None if genesis_hash is None else self._load(genesis_hash)
            head = self._load(best[1])
            if genesis is None or head is None:
                raise IncompatibleDatabase("the chain database is incomplete")
            self.genesis, self.best = genesis, head
        #: The last final block: everything up to it is durable (with a base path).
        self.finalized = self.best

    # -- genesis ------------------------------------------------------------------------------

    def _check_compatible(self) -> None:
        spec = self.store.get_meta("spec_version")
        schema = self.store.get_meta("schema")
        if schema != SCHEMA_VERSION.encode() or spec != str(SPEC_VERSION).encode():
            raise IncompatibleDatabase(
                f"the base path holds a chain of spec_version {spec!r} / schema {schema!r}; "
                f"this devnode runs spec_version {SPEC_VERSION}: use another --base-path")

    def _build_genesis(self) -> Block:
        rt = self.runtime
        accounts = dev_accounts()
        rt.build_genesis([(who, DEV_ENDOWMENT) for _, who in accounts], sudo_key=accounts[0][1])
        changes = dict(rt.state.changes())
        rt.state.layers = [{}]
        state_root = _changes_commitment(b"genesis", changes)
        header = encode_header(bytes(32), 0, state_root, blake2_256(b""), [])
        block = Block.from_header(header, [])
        self.store.set_meta("schema", SCHEMA_VERSION.encode())
        self.store.set_meta("spec_version", str(SPEC_VERSION).encode())
        self.store.commit_block(0, block.hash, header, BODY.encode([]), changes)
        self.head.apply(changes)
        return block

    # -- lookups ------------------------------------------------------------------------------

    @property
    def metadata(self) -> bytes:
        if self._metadata is None:
            self._metadata = encode_metadata(self.runtime)
        return self._metadata

    def view(self) -> ChainView:
        return ChainView(self.best.number, self.best.hash, self.genesis.hash)

    def _load(self, block_hash: bytes) -> Block | None:
        found = self.store.block_by_hash(block_hash)
        if found is None:
            return None
        _, header, body = found
        return Block.from_header(header, BODY.decode_all(body))

    def block(self, block_hash: bytes) -> Block | None:
        if block_hash == self.best.hash:
            return self.best
        return self._recent.get(block_hash) or self._load(block_hash)

    def hash_of(self, number: int) -> bytes | None:
        if number == self.best.number:
            return self.best.hash
        if number == 0:
            return self.genesis.hash
        if number > self.best.number:
            return None
        return self.store.hash_by_number(number)

    def state_at(self, block_hash: bytes | None) -> StateReader | None:
        """The state after ``block_hash`` (head when None); None for an unknown block."""
        if block_hash is None or block_hash == self.best.hash:
            return self.head
        found = self.store.block_by_hash(block_hash)
        if found is None:
            return None
        return HistoricalState(self.store, found[0])

    def runtime_at(self, block_hash: bytes | None) -> Runtime | None:
        if block_hash is None or block_hash == self.best.hash:
            return self.runtime
        state = self.state_at(block_hash)
        return None if state is None else Runtime(state)

    def call(self, method: str, data: bytes, block_hash: bytes | None) -> bytes | None:
        rt = self.runtime_at(block_hash)
        if rt is None:
            return None
        return call_runtime_api(rt, method, data, lambda: self.metadata)

    def next_nonce(self, who: bytes) -> int:
        return self.pool.next_nonce(who, self.runtime.system.nonce(who))

    # -- transactions -------------------------------------------------------------------------

    def validate(self, raw: bytes) -> tuple[Extrinsic, bytes]:
        """Decode and check ``raw`` against the head; raise DecodeError / TransactionInvalid.

        Cheapest first (see :mod:`decentralml.devnode.extrinsics`): length, envelope,
        signature, nonce and length fee, and only then the call, within its decode limits.
        """
        rt = self.runtime
        future = not self.instant
        check_length(raw)
        xt = decode_envelope(raw)
        signer = check_signature(rt, xt, self.view())
        if len(xt.call_bytes) > PRECHECK_CALL_BYTES:  # a small call decodes faster than this
            precheck_extensions(rt, xt, signer, allow_future=future)
        decode_call(rt, xt)
        check_extensions(rt, xt, signer, allow_future=future)
        return xt, signer

    def submit(self, raw: bytes, watcher: Watcher | None = None
               ) -> tuple[Extrinsic, str, list[PoolTx]]:
        """Validate and pool ``raw``; returns the extrinsic, its pool status and the futures
        it promoted to ready.

        Nothing is announced or sealed here: the RPC layer answers the request first and then
        calls :meth:`announce_ready` and :meth:`seal_if_instant`, so a subscription id always
        precedes its status updates.
        """
        xt, signer = self.validate(raw)
        status, promoted = self.pool.add(PoolTx(xt, signer), self.runtime.system.nonce(signer))
        if watcher is not None:
            self.watchers.setdefault(xt.hash, []).append(watcher)
        return xt, status, promoted

    def announce_ready(self, txs: list[PoolTx]) -> None:
        for tx in txs:
            self._notify(tx.xt.hash, "ready")

    def unwatch(self, tx_hash: bytes, watcher: Watcher) -> None:
        ws = self.watchers.get(tx_hash)
        if ws and watcher in ws:
            ws.remove(watcher)
            if not ws:
                del self.watchers[tx_hash]

    def seal_if_instant(self) -> None:
        if self.instant and self.pool.ready:
            self.produce_block()

    def _notify(self, tx_hash: bytes, status: Any, final: bool = False) -> None:
        watchers = self.watchers.pop(tx_hash, []) if final else self.watchers.get(tx_hash, [])
        for w in list(watchers):
            try:
                w(status)
            except Exception:  # a broken subscriber must not stop block production
                log.exception("extrinsic watcher failed")

    # -- block production -----------------------------------------------------------------------

    def produce_block(self) -> Block:
        """Seal one block with the ready transactions; final when :attr:`finality` says so."""
        rt = self.runtime
        parent = self.best
        number = parent.number + 1
        txs = self.pool.take_ready(MAX_BLOCK_EXTRINSICS, MAX_BLOCK_BODY_BYTES)
        included: list[PoolTx] = []
        invalid: list[PoolTx] = []
        try:
            rt.initialize_block(number, parent.hash)
            inherent = rt.timestamp_inherent(int(self.clock() * 1000))
            rt.apply_unsigned(decode_extrinsic(rt, inherent).call)
            body = [inherent]
            for tx in txs:
                try:
                    check_extensions(rt, tx.xt, tx.signer, allow_future=False)
                except TransactionInvalid:
                    invalid.append(tx)
                    continue
                rt.apply_signed(tx.signer, tx.xt.call, tx.xt.length, tx.xt.tip,
                                extensions_weight(tx.xt))
                body.append(tx.xt.raw)
                included.append(tx)
            changes = rt.finalize_block()
        except Exception:
            log.exception("block production failed; dropping its transactions")
            rt.discard_block()
            for tx in txs:
                self._notify(tx.xt.hash, "dropped", final=True)
            raise
        state_root = _changes_commitment(parent.state_root, changes)
        ext_root = blake2_256(b"".join(blake2_256(x) for x in body))
        header = encode_header(parent.hash, number, state_root, ext_root, [])
        block = Block.from_header(header, body)
        self.store.commit_block(number, block.hash, header, BODY.encode(body), changes)
        self.head.apply(changes)
        self.best = block
        self._recent[block.hash] = block
        if len(self._recent) > RECENT_BLOCKS:
            del self._recent[next(iter(self._recent))]
        for tx in invalid:
            self._notify(tx.xt.hash, "invalid", final=True)
        promoted, dropped = self.pool.revalidate(self.runtime.system.nonce)
        for tx in dropped:
            self._notify(tx.xt.hash, "invalid", final=True)
        for tx in promoted:
            self._notify(tx.xt.hash, "ready")
        for listener in list(self.listeners):
            try:
                listener(block, changes)
            except Exception:
                log.exception("block listener failed")
        hash_hex = "0x" + block.hash.hex()
        for tx in included:
            self._notify(tx.xt.hash, {"inBlock": hash_hex})
        self._unfinal.append((block, [tx.xt.hash for tx in included]))
        self.finality.sealed(number)
        return block

    def finalize(self, number: int) -> None:
        """Blocks up to ``number`` are final: tell finality listeners and extrinsic watchers."""
        while self._unfinal and self._unfinal[0][0].number <= number:
            block, tx_hashes = self._unfinal.popleft()
            self.finalized = block
            for listener in list(self.finality_listeners):
                try:
                    listener(block)
                except Exception:
                    log.exception("finality listener failed")
            hash_hex = "0x" + block.hash.hex()
            for tx_hash in tx_hashes:
                self._notify(tx_hash, {"finalized": hash_hex}, final=True)

    def decode_or_none(self, raw: bytes) -> Extrinsic | None:
        try:
            return decode_extrinsic(self.runtime, raw)
        except (DecodeError, TransactionInvalid):
            return None

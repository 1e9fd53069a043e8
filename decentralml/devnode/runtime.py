"""The devnode runtime: the pallet set, transactional dispatch and block execution.

This is FRAME's ``construct_runtime!`` plus ``frame_executive`` in Python: it owns the outer
``RuntimeCall``/``RuntimeEvent`` types built from the pallets, dispatches calls with an origin
inside a storage transaction (a failing call leaves no state change), and executes blocks:
initialize -> timestamp inherent -> signed extrinsics (nonce and fee applied outside the call's
transaction, so they stick even when the call fails) -> finalize.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from decentralml.devnode.hashing import blake2_64
from decentralml.devnode.pallet import (
    NONE,
    DispatchFailure,
    Origin,
    Pallet,
    PostInfo,
)
from decentralml.devnode.pallets.balances import Balances
from decentralml.devnode.pallets.decentralml import DecentralML
from decentralml.devnode.pallets.sudo import Sudo
from decentralml.devnode.pallets.system import PHASE, System
from decentralml.devnode.pallets.timestamp import Timestamp
from decentralml.devnode.pallets.transaction_payment import (
    EXTRINSIC_BASE_WEIGHT,
    TransactionPayment,
    fee_parts,
)
from decentralml.devnode.pallets.utility import Utility
from decentralml.devnode.primitives import ACCOUNT_ID, HASH, ZERO_WEIGHT, Weight
from decentralml.devnode.scale import (
    COMPACT_U64,
    Codec,
    Enum,
    Field,
    Lazy,
    Struct,
    Variant,
    Vec,
    encode_compact,
)
from decentralml.devnode.state import Overlay, StateReader

log = logging.getLogger(__name__)

SPEC_NAME = "decentralml-devnode"
#: Bump whenever the metadata changes: substrate-interface caches metadata by spec version.
SPEC_VERSION = 103
TRANSACTION_VERSION = 1

#: Runtime APIs announced in the runtime version (name, version); ids are blake2_64(name).
RUNTIME_APIS = (
    ("Core", 4), ("Metadata", 2), ("BlockBuilder", 6), ("TaggedTransactionQueue", 3),
    ("OffchainWorkerApi", 2), ("SessionKeys", 1), ("AccountNonceApi", 1),
    ("TransactionPaymentApi", 4), ("TransactionPaymentCallApi", 3),
)

PALLET_CLASSES: tuple[type[Pallet], ...] = (
    System, Timestamp, Balances, TransactionPayment, Sudo, Utility, DecentralML)

#: The weight of one block (2 s of compute, as the node template), and the normal-class share.
MAX_BLOCK_REF_TIME = 2 * 10**12
MAX_EXTRINSIC_LENGTH = 5 * 1024 * 1024 * 3 // 4


@dataclass
class ApplyResult:
    """What happened to one applied extrinsic (for the watcher and the caller)."""

    success: bool
    error: Any = None
    fee: int = 0
    weight: Weight = ZERO_WEIGHT


class Runtime:
    """Pallets + dispatch + block execution over an :class:`Overlay` of the head state."""

    def __init__(self, head: StateReader) -> None:
        self.state = Overlay(head)
        self.call_codec: Codec = Lazy(self._build_call_codec)
        self.event_record_codec: Codec = Lazy(self._build_event_record_codec)
        self.outer_codecs: dict[str, Codec] = {"RuntimeCall": self.call_codec,
                                               "EventRecord": self.event_record_codec}
        self.system = System(self)
        self.timestamp = Timestamp(self)
        self.balances = Balances(self)
        self.transaction_payment = TransactionPayment(self)
        self.sudo = Sudo(self)
        self.utility = Utility(self)
        self.decentralml = DecentralML(self)
        self.pallets: tuple[Pallet, ...] = (
            self.system, self.timestamp, self.balances, self.transaction_payment, self.sudo,
            self.utility, self.decentralml)
        self.by_name = {p.NAME: p for p in self.pallets}
        # block context
        self.block_number = 0
        self.parent_hash = bytes(32)
        self.events: list[bytes] = []
        self.extrinsic_count = 0
        self._phase = b"\x02"  # Initialization

    # -- outer types -------------------------------------------------------------------------

    def _build_call_codec(self) -> Codec:
        return Enum("decentralml_devnode_runtime::RuntimeCall", [
            Variant(p.NAME, p.INDEX, (Field(None, p.call_codec, f"self::sp_api_hidden_includes_"
                                            f"construct_runtime::hidden_include::dispatch::"
                                            f"CallableCallFor<{p.NAME}, Runtime>"),))
            for p in self.pallets if p.call_codec is not None])

    def runtime_event_codec(self) -> Enum:
        return Enum("decentralml_devnode_runtime::RuntimeEvent", [
            Variant(p.NAME, p.INDEX, (Field(None, p.event_codec, f"{p.MODULE}::Event<Runtime>"),))
            for p in self.pallets if p.event_codec is not None])

    def _build_event_record_codec(self) -> Codec:
        return Struct("frame_system::EventRecord", [
            Field("phase", PHASE, "Phase"),
            Field("event", self.runtime_event_codec(), "E"),
            Field("topics", Vec(HASH), "Vec<T>"),
        ], params=[("E", self.runtime_event_codec()), ("T", HASH)])

    def version_value(self) -> dict[str, Any]:
        return {
            "spec_name": SPEC_NAME, "impl_name": SPEC_NAME, "authoring_version": 1,
            "spec_version": SPEC_VERSION, "impl_version": 1,
            "apis": [(blake2_64(name.encode()), ver) for name, ver in RUNTIME_APIS],
            "transaction_version": TRANSACTION_VERSION, "state_version": b"\x01",
        }

    # -- dispatch ----------------------------------------------------------------------------

    @staticmethod
    def split_call(call: Any) -> tuple[str, str, dict[str, Any]]:
        pallet, inner = call
        if isinstance(inner, str):
            return pallet, inner, {}
        return pallet, inner[0], inner[1] or {}

    def call_weight(self, call: Any) -> Weight:
        pallet, name, args = self.split_call(call)
        return self.by_name[pallet].weight_of(name, args)

    def call_info(self, call: Any) -> tuple[Weight, str, bool]:
        """(declared weight, dispatch class, pays fee) of ``call``."""
        pallet, name, args = self.split_call(call)
        p = self.by_name[pallet]
        d = p.calls_by_name[name]
        return p.weight_of(name, args), d.dispatch_class, d.pays_fee

    def dispatch(self, call: Any, origin: Origin) -> PostInfo:
        """Run ``call`` in a storage transaction; on failure undo it and re-raise."""
        pallet, name, args = self.split_call(call)
        state = self.state
        mark = len(self.events)
        state.start()
        try:
            post = self.by_name[pallet].dispatch(origin, name, args)
        except DispatchFailure:
            state.rollback()
            del self.events[mark:]
            raise
        except Exception as exc:  # a bug in a pallet must not take the node down
            state.rollback()
            del self.events[mark:]
            log.exception("internal error dispatching %s.%s", pallet, name)
            raise DispatchFailure("Other", f"internal error: {exc}") from exc
        state.commit()
        return post or PostInfo()

    def dispatch_result(self, call: Any, origin: Origin) -> tuple[str, Any]:
        """``DispatchResult`` of ``call`` as a SCALE value: ``("Ok", ())`` or ``("Err", e)``."""
        try:
            self.dispatch(call, origin)
        except DispatchFailure as failure:
            return ("Err", failure.error)
        return ("Ok", ())

    def lookup(self, address: Any) -> bytes:
        """``StaticLookup`` for ``MultiAddress``: ``Id`` and ``Address32`` resolve, others fail."""
        kind, value = address
        if kind in ("Id", "Address32"):
            return bytes(value)
        raise DispatchFailure("CannotLookup", "cannot lookup")

    @staticmethod
    def other_error(reason: str) -> DispatchFailure:
        return DispatchFailure("Other", reason)

    def deposit_event(self, encoded_event: bytes) -> None:
        self.events.append(self._phase + encoded_event + b"\x00")

    # -- genesis and blocks -------------------------------------------------------------------

    def build_genesis(self, endowed: list[tuple[bytes, int]], sudo_key: bytes) -> None:
        for who, amount in endowed:
            self.balances.endow(who, amount)
        self.sudo.Key.set(self.state, sudo_key)
        for p in self.pallets:
            p.genesis()
        self.events.clear()

    def initialize_block(self, number: int, parent_hash: bytes) -> None:
        self.block_number = number
        self.parent_hash = parent_hash
        self.events = []
        self.extrinsic_count = 0
        self._phase = b"\x02"
        for p in self.pallets:
            p.on_initialize(number)

    def timestamp_inherent(self, wall_ms: int) -> bytes:
        """The encoded unsigned ``Timestamp.set`` extrinsic for the block being built."""
        now = self.timestamp.next_timestamp(wall_ms)
        call = bytes([Timestamp.INDEX, 0]) + COMPACT_U64.encode(now)
        body = b"\x04" + call
        return encode_compact(len(body)) + body

    def apply_unsigned(self, call: Any) -> ApplyResult:
        """Apply an inherent (no fee, no nonce); inherents must succeed."""
        self._phase = b"\x00" + self.extrinsic_count.to_bytes(4, "little")
        weight, dclass, _ = self.call_info(call)
        try:
            self.dispatch(call, NONE)
            result = ApplyResult(True, weight=weight)
            self.system.deposit_event("ExtrinsicSuccess", dispatch_info=self._info(
                weight + EXTRINSIC_BASE_WEIGHT, dclass, True))
        except DispatchFailure as failure:
            result = ApplyResult(False, failure.error, weight=weight)
            self.system.deposit_event("ExtrinsicFailed", dispatch_error=failure.error,
                                      dispatch_info=self._info(weight + EXTRINSIC_BASE_WEIGHT,
                                                               dclass, True))
        self.extrinsic_count += 1
        return result

    def apply_signed(self, signer: bytes, call: Any, length: int, tip: int,
                     extension: Weight = ZERO_WEIGHT) -> ApplyResult:
        """Apply a checked signed extrinsic: bump nonce, take fee, dispatch, settle the fee.

        The caller has validated nonce and fee payability against this very state; ``extension``
        is the weight the transaction extensions declare (charged like the call's).
        """
        self._phase = b"\x00" + self.extrinsic_count.to_bytes(4, "little")
        weight, dclass, _ = self.call_info(call)
        fee = sum(fee_parts(weight + extension, length)) + tip
        self.system.inc_nonce(signer)
        self.balances.withdraw_fee(signer, fee)
        try:
            post = self.dispatch(call, Origin("signed", signer))
            ok, error, pays = True, None, post.pays_fee
            if post.actual_weight is not None:
                # FRAME charges min(actual, declared) and refunds the rest after dispatch
                weight = Weight(min(weight.ref_time, post.actual_weight.ref_time),
                                min(weight.proof_size, post.actual_weight.proof_size))
        except DispatchFailure as failure:
            ok, error, pays = False, failure.error, True
        weight = weight + extension
        actual_fee = sum(fee_parts(weight, length)) + tip
        if not pays:
            actual_fee = tip
        if actual_fee < fee:
            self.balances.deposit(signer, fee - actual_fee)
        self.transaction_payment.deposit_event("TransactionFeePaid", who=signer,
                                               actual_fee=actual_fee, tip=tip)
        info = self._info(weight + EXTRINSIC_BASE_WEIGHT, dclass, pays)
        if ok:
            self.system.deposit_event("ExtrinsicSuccess", dispatch_info=info)
        else:
            self.system.deposit_event("ExtrinsicFailed", dispatch_error=error, dispatch_info=info)
        self.extrinsic_count += 1
        return ApplyResult(ok, error, actual_fee, weight)

    @staticmethod
    def _info(weight: Weight, dclass: str, pays: bool) -> dict[str, Any]:
        return {"weight": weight.as_value(), "class": dclass, "pays_fee": "Yes" if pays else "No"}

    def finalize_block(self) -> dict[bytes, bytes | None]:
        """Run ``on_finalize`` hooks and return the block's state changes."""
        self._phase = b"\x01"
        for p in reversed(self.pallets):
            p.on_finalize(self.block_number)
        changes = dict(self.state.changes())
        self.state.layers = [{}]
        return changes

    def discard_block(self) -> None:
        self.state.layers = [{}]
        self.events = []

    def account_key(self, who: bytes) -> bytes:
        return self.system.Account.key(who)

    def encode_account(self, who: bytes) -> bytes:
        return ACCOUNT_ID.encode(who)

"""``frame_system``: accounts and nonces, block number and hashes, the per-block event list.

Only what a client observes is implemented: ``System.Account`` (with the Balances ``AccountData``
inside, as in every FRAME runtime since balances moved into system), ``Number``, ``ParentHash``,
``BlockHash``, ``Events``/``EventCount``, ``ExtrinsicCount``, the ``remark`` calls and the
constants substrate-interface reads (``SS58Prefix``, ``BlockHashCount``, ``Version``).
"""

from __future__ import annotations

from typing import Any

from decentralml.devnode.hashing import blake2_256
from decentralml.devnode.pallet import (
    EVENT_RECORD,
    ConstantDef,
    ErrorDef,
    EventDef,
    Origin,
    Pallet,
    Storage,
    call,
)
from decentralml.devnode.primitives import (
    ACCOUNT_ID,
    BLOCK_NUMBER,
    DISPATCH_ERROR,
    DISPATCH_INFO,
    HASH,
    Weight,
)
from decentralml.devnode.scale import (
    BYTES,
    STR,
    U16,
    U32,
    U128,
    ByteArray,
    Enum,
    Field,
    Struct,
    Tuple,
    Variant,
    Vec,
    encode_compact,
)

SS58_PREFIX = 42
BLOCK_HASH_COUNT = 2400

#: ``pallet_balances::types::ExtraFlags``: bit 127 marks accounts already on the "new" logic.
NEW_LOGIC_FLAG = 1 << 127

ACCOUNT_DATA = Struct("pallet_balances::types::AccountData", [
    Field("free", U128, "Balance"),
    Field("reserved", U128, "Balance"),
    Field("frozen", U128, "Balance"),
    Field("flags", Struct("pallet_balances::types::ExtraFlags", [Field(None, U128, "u128")]),
          "ExtraFlags"),
], params=[("Balance", U128)])

ACCOUNT_INFO = Struct("frame_system::AccountInfo", [
    Field("nonce", U32, "Nonce"),
    Field("consumers", U32, "RefCount"),
    Field("providers", U32, "RefCount"),
    Field("sufficients", U32, "RefCount"),
    Field("data", ACCOUNT_DATA, "AccountData"),
], params=[("Nonce", U32), ("AccountData", ACCOUNT_DATA)])

EMPTY_ACCOUNT: dict[str, Any] = {
    "nonce": 0, "consumers": 0, "providers": 0, "sufficients": 0,
    "data": {"free": 0, "reserved": 0, "frozen": 0, "flags": NEW_LOGIC_FLAG},
}

PHASE = Enum("frame_system::Phase", [
    Variant("ApplyExtrinsic", 0, (Field(None, U32, "u32"),)),
    Variant("Finalization", 1),
    Variant("Initialization", 2),
])

DIGEST_ITEM = Enum("sp_runtime::generic::digest::DigestItem", [
    Variant("PreRuntime", 6, (Field(None, ByteArray(4), "ConsensusEngineId"),
                              Field(None, BYTES, "Vec<u8>"))),
    Variant("Consensus", 4, (Field(None, ByteArray(4), "ConsensusEngineId"),
                             Field(None, BYTES, "Vec<u8>"))),
    Variant("Seal", 5, (Field(None, ByteArray(4), "ConsensusEngineId"),
                        Field(None, BYTES, "Vec<u8>"))),
    Variant("Other", 0, (Field(None, BYTES, "Vec<u8>"),)),
    Variant("RuntimeEnvironmentUpdated", 8),
])
DIGEST = Struct("sp_runtime::generic::digest::Digest", [
    Field("logs", Vec(DIGEST_ITEM), "Vec<DigestItem>")])

RUNTIME_VERSION = Struct("sp_version::RuntimeVersion", [
    Field("spec_name", STR, "RuntimeString"),
    Field("impl_name", STR, "RuntimeString"),
    Field("authoring_version", U32, "u32"),
    Field("spec_version", U32, "u32"),
    Field("impl_version", U32, "u32"),
    Field("apis", Vec(Tuple(ByteArray(8), U32)), "ApisVec"),
    Field("transaction_version", U32, "u32"),
    Field("state_version", ByteArray(1), "u8"),
])

_WHO = Field("account", ACCOUNT_ID, "T::AccountId")


class System(Pallet):
    """Accounts, nonces, block bookkeeping and the event list of the current block."""

    NAME = "System"
    INDEX = 0
    MODULE = "frame_system"

    EVENTS = (
        EventDef("ExtrinsicSuccess", (Field("dispatch_info", DISPATCH_INFO, "DispatchEventInfo"),),
                 "An extrinsic completed successfully."),
        EventDef("ExtrinsicFailed", (Field("dispatch_error", DISPATCH_ERROR, "DispatchError"),
                                     Field("dispatch_info", DISPATCH_INFO, "DispatchEventInfo")),
                 "An extrinsic failed."),
        EventDef("CodeUpdated", (), "`:code` was updated."),
        EventDef("NewAccount", (_WHO,), "A new account was created."),
        EventDef("KilledAccount", (_WHO,), "An account was reaped."),
        EventDef("Remarked", (Field("sender", ACCOUNT_ID, "T::AccountId"),
                              Field("hash", HASH, "T::Hash")), "On on-chain remark happened."),
    )
    ERRORS = (
        ErrorDef("InvalidSpecName", "The name of specification does not match between the "
                 "current runtime and the new runtime."),
        ErrorDef("SpecVersionNeedsToIncrease", "The specification version is not allowed to "
                 "decrease between the current runtime and the new runtime."),
        ErrorDef("FailedToExtractRuntimeVersion", "Failed to extract the runtime version from "
                 "the new runtime."),
        ErrorDef("NonDefaultComposite", "Suicide called when the account has non-default "
                 "composite data."),
        ErrorDef("NonZeroRefCount", "There is a non-zero reference count preventing the account "
                 "from being purged."),
        ErrorDef("CallFiltered", "The origin filter prevent the call to be dispatched."),
    )

    Account = Storage(ACCOUNT_INFO, ("Blake2_128Concat", ACCOUNT_ID), default=EMPTY_ACCOUNT,
                      docs="The full account information for a particular account ID.")
    ExtrinsicCount = Storage(U32, docs="Total extrinsics count for the current block.")
    Number = Storage(BLOCK_NUMBER, default=0, docs="The current block number being processed.")
    ParentHash = Storage(HASH, default=bytes(32), docs="Hash of the previous block.")
    BlockHash = Storage(HASH, ("Twox64Concat", BLOCK_NUMBER), default=bytes(32),
                        docs="Map of block numbers to block hashes.")
    Digest = Storage(DIGEST, default={"logs": []},
                     docs="Digest of the current block, also part of the block header.")
    Events = Storage(Vec(EVENT_RECORD), default=[],
                     docs="Events deposited for the current block.")
    EventCount = Storage(U32, default=0, docs="The number of events in the `Events<T>` list.")

    def constants(self) -> tuple[ConstantDef, ...]:
        return (
            ConstantDef("BlockHashCount", U32, BLOCK_HASH_COUNT,
                        "Maximum number of block number to block hash mappings to keep."),
            ConstantDef("Version", RUNTIME_VERSION, self.rt.version_value(),
                        "Get the chain's current version."),
            ConstantDef("SS58Prefix", U16, SS58_PREFIX,
                        "The designated SS58 prefix of this chain."),
        )

    # -- accounts ---------------------------------------------------------------------------

    def account(self, who: bytes) -> dict[str, Any]:
        info: dict[str, Any] = self.Account.get(self.state, who)
        return info

    def set_account(self, who: bytes, info: dict[str, Any]) -> None:
        """Store ``info``, creating or reaping the account as its provider count says."""
        existed = self.state.get(self.Account.key(who)) is not None
        if info["providers"] == 0 and info["sufficients"] == 0:
            if existed:
                self.Account.remove(self.state, who)
                self.deposit_event("KilledAccount", account=who)
            return
        self.Account.set(self.state, who, info)
        if not existed:
            self.deposit_event("NewAccount", account=who)

    def nonce(self, who: bytes) -> int:
        raw = self.state.get(self.Account.key(who))
        if raw is None:
            return 0
        return int.from_bytes(raw[:4], "little")

    def inc_nonce(self, who: bytes) -> None:
        info = self.account(who)
        info["nonce"] += 1
        self.Account.set(self.state, who, info)

    # -- calls ------------------------------------------------------------------------------

    @call(0, Field("remark", BYTES, "Vec<u8>"), weight=Weight(2_000_000, 0))
    def remark(self, origin: Origin, remark: bytes) -> None:
        """Make some on-chain remark."""
        origin.ensure_signed()

    @call(7, Field("remark", BYTES, "Vec<u8>"), weight=Weight(8_000_000, 0))
    def remark_with_event(self, origin: Origin, remark: bytes) -> None:
        """Make some on-chain remark and emit an event."""
        who = origin.ensure_signed()
        self.deposit_event("Remarked", sender=who, hash=blake2_256(remark))

    # -- block bookkeeping -----------------------------------------------------------------

    def on_initialize(self, number: int) -> None:
        parent = self.rt.parent_hash
        self.Number.set(self.state, number)
        self.ParentHash.set(self.state, parent)
        self.BlockHash.set(self.state, number - 1, parent)
        self.Digest.set(self.state, {"logs": []})
        self.state.delete(self.ExtrinsicCount.key())

    def on_finalize(self, number: int) -> None:
        self.ExtrinsicCount.set(self.state, self.rt.extrinsic_count)
        events = self.rt.events
        self.state.set(self.Events.key(), encode_compact(len(events)) + b"".join(events))
        self.EventCount.set(self.state, len(events))
        to_remove = number - BLOCK_HASH_COUNT - 1
        if to_remove > 0:
            self.BlockHash.remove(self.state, to_remove)


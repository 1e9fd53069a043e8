"""Runtime primitive types shared by the pallets, with FRAME's exact scale-info paths.

scalecodec picks its special decoder classes by type path (``sp_core::crypto::AccountId32`` ->
SS58 addresses, ``sp_runtime::multiaddress::MultiAddress``, ``sp_runtime::generic::era::Era``,
``sp_weights::weight_v2::Weight``...), so these paths are part of the wire contract, not cosmetics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from decentralml.devnode.scale import (
    BYTES,
    COMPACT_U64,
    U8,
    U32,
    U64,
    U128,
    ByteArray,
    Codec,
    CompactUnit,
    DecodeError,
    Enum,
    Field,
    Struct,
    Tuple,
    TypeRegistry,
    Variant,
    simple_enum,
)

COMPACT_UNIT = CompactUnit()
ACCOUNT_ID = Struct("sp_core::crypto::AccountId32", [Field(None, ByteArray(32), "[u8; 32]")])
HASH = Struct("primitive_types::H256", [Field(None, ByteArray(32), "[u8; 32]")])
BALANCE = U128
BLOCK_NUMBER = U32
NONCE = U32

MULTI_ADDRESS = Enum(
    "sp_runtime::multiaddress::MultiAddress",
    [
        Variant("Id", 0, (Field(None, ACCOUNT_ID, "AccountId"),)),
        # `MultiAddress<AccountId, ()>` as in the runtime (no indices pallet): Index is a bare tag
        Variant("Index", 1, (Field(None, COMPACT_UNIT, "AccountIndex"),)),
        Variant("Raw", 2, (Field(None, BYTES, "Vec<u8>"),)),
        Variant("Address32", 3, (Field(None, ByteArray(32), "[u8; 32]"),)),
        Variant("Address20", 4, (Field(None, ByteArray(20), "[u8; 20]"),)),
    ],
    params=[("AccountId", ACCOUNT_ID), ("AccountIndex", Tuple())],
)

WEIGHT = Struct("sp_weights::weight_v2::Weight", [
    Field("ref_time", COMPACT_U64, "u64"),
    Field("proof_size", COMPACT_U64, "u64"),
])

DISPATCH_CLASS = simple_enum("frame_support::dispatch::DispatchClass",
                             ["Normal", "Operational", "Mandatory"])
PAYS = simple_enum("frame_support::dispatch::Pays", ["Yes", "No"])
#: What ``ExtrinsicSuccess``/``ExtrinsicFailed`` carry: FRAME's ``DispatchInfo`` without its
#: extension weight, under frame_system's own name (as the runtime's metadata has it).
DISPATCH_INFO = Struct("frame_system::DispatchEventInfo", [
    Field("weight", WEIGHT, "Weight"),
    Field("class", DISPATCH_CLASS, "DispatchClass"),
    Field("pays_fee", PAYS, "Pays"),
])

MODULE_ERROR = Struct("sp_runtime::ModuleError", [
    Field("index", U8, "u8"),
    Field("error", ByteArray(4), "[u8; MAX_MODULE_ERROR_ENCODED_SIZE]"),
])
TOKEN_ERROR = simple_enum("sp_runtime::TokenError", [
    "FundsUnavailable", "OnlyProvider", "BelowMinimum", "CannotCreate", "UnknownAsset", "Frozen",
    "Unsupported", "CannotCreateHold", "NotExpendable", "Blocked"])
ARITHMETIC_ERROR = simple_enum("sp_arithmetic::ArithmeticError",
                               ["Underflow", "Overflow", "DivisionByZero"])
TRIE_ERROR = simple_enum("sp_runtime::proving_trie::TrieError", [
    "InvalidStateRoot", "IncompleteDatabase", "ValueAtIncompleteKey", "DecoderError",
    "InvalidHash", "DuplicateKey", "ExtraneousNode", "ExtraneousValue",
    "ExtraneousHashReference", "InvalidChildReference", "ValueMismatch", "IncompleteProof",
    "RootMismatch", "DecodeError"])
TRANSACTIONAL_ERROR = simple_enum("sp_runtime::TransactionalError",
                                  ["LimitReached", "NoLayer"])
DISPATCH_ERROR = Enum("sp_runtime::DispatchError", [
    Variant("Other", 0),
    Variant("CannotLookup", 1),
    Variant("BadOrigin", 2),
    Variant("Module", 3, (Field(None, MODULE_ERROR, "ModuleError"),)),
    Variant("ConsumerRemaining", 4),
    Variant("NoProviders", 5),
    Variant("TooManyConsumers", 6),
    Variant("Token", 7, (Field(None, TOKEN_ERROR, "TokenError"),)),
    Variant("Arithmetic", 8, (Field(None, ARITHMETIC_ERROR, "ArithmeticError"),)),
    Variant("Transactional", 9, (Field(None, TRANSACTIONAL_ERROR, "TransactionalError"),)),
    Variant("Exhausted", 10),
    Variant("Corruption", 11),
    Variant("Unavailable", 12),
    Variant("RootNotAllowed", 13),
    Variant("Trie", 14, (Field(None, TRIE_ERROR, "TrieError"),)),
])


class EraCodec(Codec):
    """``sp_runtime::generic::era::Era``: ``"Immortal"`` or ``(period, phase)``.

    Encoded as FRAME does (one zero byte, or a u16 packing log2(period) and a quantized phase);
    the metadata describes it as the 256-variant enum scale-info derives for it.
    """

    def encode(self, value: Any) -> bytes:
        if value == "Immortal":
            return b"\x00"
        period, phase = value
        quantize = max(period >> 12, 1)
        encoded = min(15, max(1, period.bit_length() - 2)) | ((phase // quantize) << 4)
        return encoded.to_bytes(2, "little")

    def decode(self, data: bytes, pos: int) -> tuple[Any, int]:
        if pos >= len(data):
            raise DecodeError("not enough data")
        if data[pos] == 0:
            return "Immortal", pos + 1
        if pos + 2 > len(data):
            raise DecodeError("not enough data")
        encoded = int.from_bytes(data[pos:pos + 2], "little")
        period = 2 << (encoded % (1 << 4))
        quantize = max(period >> 12, 1)
        phase = (encoded >> 4) * quantize
        if period < 4 or phase >= period:
            raise DecodeError("Invalid period and phase")
        return (period, phase), pos + 2

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        variants: list[dict[str, Any]] = [
            {"name": "Immortal", "fields": [], "index": 0, "docs": []}]
        for i in range(1, 256):
            variants.append({"name": f"Mortal{i}", "index": i, "docs": [],
                             "fields": [{"name": None, "type": reg.id_of(U8), "typeName": None,
                                         "docs": []}]})
        return {"path": ["sp_runtime", "generic", "era", "Era"], "params": [],
                "def": {"variant": {"variants": variants}}, "docs": []}


ERA = EraCodec()


def era_birth(era: Any, current: int) -> int:
    """The block whose hash a mortal transaction signed, seen from block ``current``."""
    if era == "Immortal":
        return 0
    period, phase = era
    return (max(current, phase) - phase) // period * period + phase


def era_death(era: Any, current: int) -> int:
    if era == "Immortal":
        return 2**64 - 1
    return era_birth(era, current) + era[0]


@dataclass(frozen=True)
class Weight:
    """A (ref_time, proof_size) weight; ref_time is in picoseconds as in FRAME."""

    ref_time: int
    proof_size: int = 0

    def __add__(self, other: Weight) -> Weight:
        return Weight(self.ref_time + other.ref_time, self.proof_size + other.proof_size)

    def as_value(self) -> dict[str, int]:
        return {"ref_time": self.ref_time, "proof_size": self.proof_size}


ZERO_WEIGHT = Weight(0, 0)

__all__ = [
    "ACCOUNT_ID", "BALANCE", "BLOCK_NUMBER", "DISPATCH_CLASS", "DISPATCH_ERROR", "DISPATCH_INFO",
    "ERA", "HASH", "MULTI_ADDRESS", "NONCE", "PAYS", "U64", "WEIGHT", "ZERO_WEIGHT", "Weight",
    "era_birth", "era_death",
]

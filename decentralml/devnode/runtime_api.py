"""Runtime APIs served through ``state_call`` (``<Api>_<method>`` with SCALE-encoded arguments).

substrate-interface decodes the answers with its own runtime-API type table, so every result has
exactly the SCALE shape it expects: ``AccountNonceApi_account_nonce`` a bare ``u32``,
``TransactionPaymentApi_query_info`` a ``RuntimeDispatchInfo`` with a v2 weight (compact fields),
a ``DispatchClass`` byte and a ``u128`` partial fee.
"""

from __future__ import annotations

from collections.abc import Callable

from decentralml.devnode.extrinsics import call_limits, decode_extrinsic, extensions_weight
from decentralml.devnode.pallets.system import RUNTIME_VERSION
from decentralml.devnode.pallets.transaction_payment import fee_parts
from decentralml.devnode.primitives import DISPATCH_CLASS, WEIGHT, Weight
from decentralml.devnode.runtime import Runtime
from decentralml.devnode.scale import (
    BYTES,
    U32,
    U128,
    DecodeError,
    Field,
    Option,
    Struct,
    Vec,
    decode_compact,
)

RUNTIME_DISPATCH_INFO = Struct("pallet_transaction_payment::types::RuntimeDispatchInfo", [
    Field("weight", WEIGHT, "Weight"), Field("class", DISPATCH_CLASS, "DispatchClass"),
    Field("partial_fee", U128, "Balance")])
INCLUSION_FEE = Struct("pallet_transaction_payment::types::InclusionFee", [
    Field("base_fee", U128, "Balance"), Field("len_fee", U128, "Balance"),
    Field("adjusted_weight_fee", U128, "Balance")])
FEE_DETAILS = Struct("pallet_transaction_payment::types::FeeDetails", [
    Field("inclusion_fee", Option(INCLUSION_FEE), "Option<InclusionFee<Balance>>"),
    Field("tip", U128, "Balance")])


class UnknownRuntimeApi(LookupError):
    """No such exported runtime function."""


def _split_extrinsic_and_len(data: bytes) -> tuple[bytes, int]:
    length, pos = decode_compact(data, 0)
    end = pos + length
    if end + 4 != len(data):
        raise DecodeError("expected an extrinsic followed by a u32 length")
    return data[:end], int.from_bytes(data[end:end + 4], "little")


def _dispatch_info(rt: Runtime, data: bytes) -> tuple[Weight, str, int, int, int, bool]:
    raw, length = _split_extrinsic_and_len(data)
    xt = decode_extrinsic(rt, raw)
    weight, dclass, _ = rt.call_info(xt.call)
    weight = weight + extensions_weight(xt)
    base, len_fee, weight_fee = fee_parts(weight, length)
    return weight, dclass, base, len_fee, weight_fee, xt.signed


def query_info(rt: Runtime, data: bytes) -> bytes:
    weight, dclass, base, len_fee, weight_fee, signed = _dispatch_info(rt, data)
    partial = base + len_fee + weight_fee if signed else 0
    return RUNTIME_DISPATCH_INFO.encode({"weight": weight.as_value(), "class": dclass,
                                         "partial_fee": partial})


def query_fee_details(rt: Runtime, data: bytes) -> bytes:
    _, _, base, len_fee, weight_fee, signed = _dispatch_info(rt, data)
    raw, _ = _split_extrinsic_and_len(data)
    tip = decode_extrinsic(rt, raw).tip
    inclusion = {"base_fee": base, "len_fee": len_fee, "adjusted_weight_fee": weight_fee}
    return FEE_DETAILS.encode({"inclusion_fee": inclusion if signed else None, "tip": tip})


def query_call_info(rt: Runtime, data: bytes) -> bytes:
    with call_limits(rt):  # untrusted: bounded like a submitted call
        call, pos = rt.call_codec.decode(data, 0)
    length = U32.decode_all(data[pos:])
    weight, dclass, _ = rt.call_info(call)
    return RUNTIME_DISPATCH_INFO.encode({"weight": weight.as_value(), "class": dclass,
                                         "partial_fee": sum(fee_parts(weight, length))})


def call_runtime_api(rt: Runtime, method: str, data: bytes, metadata: Callable[[], bytes]
                     ) -> bytes:
    """Execute runtime API ``method`` on ``rt``'s state; raise :class:`UnknownRuntimeApi`."""
    if method == "AccountNonceApi_account_nonce":
        who = data
        if len(who) != 32:
            raise DecodeError("expected a 32-byte AccountId")
        return U32.encode(rt.system.nonce(who))
    if method == "TransactionPaymentApi_query_info":
        return query_info(rt, data)
    if method == "TransactionPaymentApi_query_fee_details":
        return query_fee_details(rt, data)
    if method == "TransactionPaymentCallApi_query_call_info":
        return query_call_info(rt, data)
    if method == "Core_version":
        return RUNTIME_VERSION.encode(rt.version_value())
    if method == "Metadata_metadata":
        return BYTES.encode(metadata())
    if method == "Metadata_metadata_versions":
        return Vec(U32).encode([14])
    if method == "Metadata_metadata_at_version":
        version = U32.decode_all(data)
        return Option(BYTES).encode(metadata() if version == 14 else None)
    raise UnknownRuntimeApi(f"Exported method {method} is not found")

"""Extrinsic decoding and transaction validity: FRAME's signed extensions, in FRAME's order.

An extrinsic is ``Compact(len) ++ version ++ [address ++ signature ++ extra] ++ call`` (version 4,
``0x84`` signed, ``0x04`` unsigned). ``extra`` is what the signed extensions put in the
transaction (era, ``Compact`` nonce, ``Compact`` tip); the signature covers
``call ++ extra ++ spec_version ++ tx_version ++ genesis_hash ++ era_birth_block_hash``,
blake2_256-hashed when longer than 256 bytes.

Check order (``UncheckedExtrinsic::check`` then each extension's ``validate``): signer lookup,
``CheckMortality`` birth block known, signature, ``CheckNonZeroSender``, ``CheckNonce``,
``CheckWeight`` (length), ``ChargeTransactionPayment``. Failures raise :class:`TransactionInvalid`
with the exact texts a Substrate node puts in the ``data`` of JSON-RPC error 1010.

Cheap checks come before expensive work, because the pool is open to anyone: the length against
the block length limit before any decoding; the envelope (address, signature, extra) is decoded
and the signature checked over the *undecoded* call bytes; nonce, length and the part of the fee
the length alone determines are checked next; only then is the call decoded, with at most
:data:`MAX_CALL_DEPTH` nesting levels and :data:`MAX_DECODED_CALLS` calls (see
:meth:`~decentralml.devnode.scale.Lazy.limited`). An unsigned extrinsic is refused before its call
is decoded (no call of this runtime is valid unsigned in the pool).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import ed25519_zebra
import sr25519

from decentralml.devnode.hashing import blake2_256
from decentralml.devnode.pallets.system import BLOCK_HASH_COUNT
from decentralml.devnode.pallets.transaction_payment import extension_weight, fee_parts
from decentralml.devnode.pallets.utility import BATCHED_CALLS_LIMIT
from decentralml.devnode.primitives import ERA, MULTI_ADDRESS, ZERO_WEIGHT, Weight, era_birth
from decentralml.devnode.runtime import (
    MAX_BLOCK_REF_TIME,
    MAX_EXTRINSIC_LENGTH,
    SPEC_VERSION,
    TRANSACTION_VERSION,
    Runtime,
)
from decentralml.devnode.scale import (
    ByteArray,
    DecodeError,
    DecodeLimitExceeded,
    Enum,
    Field,
    Lazy,
    Struct,
    Variant,
    decode_compact,
)

MULTI_SIGNATURE = Enum("sp_runtime::MultiSignature", [
    Variant("Ed25519", 0, (Field(None, Struct("sp_core::ed25519::Signature",
                                              [Field(None, ByteArray(64), "[u8; 64]")]),
                                 "ed25519::Signature"),)),
    Variant("Sr25519", 1, (Field(None, Struct("sp_core::sr25519::Signature",
                                              [Field(None, ByteArray(64), "[u8; 64]")]),
                                 "sr25519::Signature"),)),
    Variant("Ecdsa", 2, (Field(None, Struct("sp_core::ecdsa::Signature",
                                            [Field(None, ByteArray(65), "[u8; 65]")]),
                               "ecdsa::Signature"),)),
])

# Texts of sp_runtime's InvalidTransaction / UnknownTransaction, as nodes report them.
BAD_PROOF = "Transaction has a bad signature"
STALE = "Transaction is outdated"
FUTURE = "Transaction will be valid in the future"
ANCIENT_BIRTH = "Transaction has an ancient birth block"
PAYMENT = "Inability to pay some fees (e.g. account balance too low)"
EXHAUSTS = "Transaction would exhaust the block limits"
BAD_SIGNER = "Invalid signing address"
CALL = "Transaction call is not expected"
CANNOT_LOOKUP = "Could not lookup information required to validate the transaction"


#: CheckWeight: a normal extrinsic may use at most 75% of the block's ref_time.
MAX_NORMAL_REF_TIME = MAX_BLOCK_REF_TIME * 3 // 4

#: Deepest call nesting decoded (``batch`` in ``batch``..., ``sudo(sudo(...))``). Substrate decodes
#: extrinsics with a depth limit of 256 nested *types*, two of which each call level takes
#: (``RuntimeCall`` and the pallet's ``Call``); 64 levels leave Python's stack ample room for the
#: decode, weigh and dispatch recursions that follow.
MAX_CALL_DEPTH = 64
#: Most calls one extrinsic may contain, nested ones included: one full ``Utility`` batch
#: (``batched_calls_limit``), plus one so that the pallet still answers an over-long batch with
#: its own ``TooManyCalls``. A call costs the devnode's Python decoder tens of microseconds, so a
#: block-length batch of one-byte calls would take minutes, for anyone (the dev keys are
#: public); the protocol's largest batch, a review of a task's results, has at most
#: ``MaxAssignments`` (64) calls. A batch longer than what is left is refused from its length
#: prefix, before any of it is decoded.
MAX_DECODED_CALLS = BATCHED_CALLS_LIMIT + 2


class TransactionInvalid(Exception):
    """The pool refuses a transaction: JSON-RPC error ``code`` with ``data`` as a node words it."""

    def __init__(self, data: str, code: int = 1010, message: str = "Invalid Transaction") -> None:
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"{message}: {data}")


def unknown_validity(data: str) -> TransactionInvalid:
    return TransactionInvalid(data, 1011, "Unknown Transaction Validity")


@dataclass
class Extrinsic:
    """A decoded extrinsic; ``raw`` is the full encoding (length prefix included)."""

    raw: bytes
    hash: bytes
    signed: bool
    call: Any
    call_bytes: bytes
    address: Any = None
    signature: Any = None
    era: Any = "Immortal"
    era_bytes: bytes = b"\x00"
    nonce: int = 0
    tip: int = 0
    signer: bytes | None = None

    @property
    def length(self) -> int:
        return len(self.raw)


def check_length(raw: bytes) -> None:
    """``CheckWeight``'s length limit, before anything is decoded."""
    if len(raw) > MAX_EXTRINSIC_LENGTH:
        raise TransactionInvalid(EXHAUSTS)


def decode_envelope(raw: bytes) -> Extrinsic:
    """Decode everything but the call (left as ``call_bytes``), or raise :class:`DecodeError`."""
    try:
        length, pos = decode_compact(raw, 0)
        if length != len(raw) - pos:
            raise DecodeError("length prefix does not match the extrinsic")
        version = raw[pos]
        pos += 1
        if version & 0x7F != 4:
            raise DecodeError(f"unsupported extrinsic version {version & 0x7F}")
        xt = Extrinsic(raw=raw, hash=blake2_256(raw), signed=bool(version & 0x80), call=None,
                       call_bytes=b"")
        if xt.signed:
            xt.address, pos = MULTI_ADDRESS.decode(raw, pos)
            xt.signature, pos = MULTI_SIGNATURE.decode(raw, pos)
            era_start = pos
            xt.era, pos = ERA.decode(raw, pos)
            xt.era_bytes = raw[era_start:pos]
            xt.nonce, pos = decode_compact(raw, pos)
            xt.tip, pos = decode_compact(raw, pos)
            if xt.nonce > 2**32 - 1 or xt.tip > 2**128 - 1:
                raise DecodeError("nonce or tip out of range")
        xt.call_bytes = raw[pos:]
    except DecodeError:
        raise
    except (IndexError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise DecodeError(f"could not decode extrinsic: {exc}") from None
    return xt


def decode_call(runtime: Runtime, xt: Extrinsic) -> None:
    """Decode ``xt.call_bytes`` into ``xt.call`` within the nesting and count limits.

    Raises :class:`DecodeError` for a bad encoding and :class:`TransactionInvalid` (1010) for a
    call beyond :data:`MAX_CALL_DEPTH` or :data:`MAX_DECODED_CALLS`.
    """
    try:
        with call_limits(runtime):
            xt.call = runtime.call_codec.decode_all(xt.call_bytes)
    except DecodeLimitExceeded as exc:
        raise TransactionInvalid(
            f"Could not decode the call: {exc} (the devnode decodes at most "
            f"{MAX_CALL_DEPTH} nested levels and {MAX_DECODED_CALLS} calls)") from None
    except DecodeError:
        raise
    except (IndexError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise DecodeError(f"could not decode extrinsic: {exc}") from None


def call_limits(runtime: Runtime) -> AbstractContextManager[None]:
    """The decode limits of :func:`decode_call`, for other decoders of untrusted calls."""
    codec = runtime.call_codec
    if isinstance(codec, Lazy):
        return codec.limited(MAX_CALL_DEPTH, MAX_DECODED_CALLS)
    return nullcontext()  # pragma: no cover - the runtime's call codec is always a Lazy


def decode_extrinsic(runtime: Runtime, raw: bytes) -> Extrinsic:
    """Decode ``raw`` completely or raise :class:`DecodeError` / :class:`TransactionInvalid`."""
    xt = decode_envelope(raw)
    decode_call(runtime, xt)
    return xt


def signing_payload(xt: Extrinsic, genesis_hash: bytes, birth_hash: bytes) -> bytes:
    from decentralml.devnode.scale import encode_compact

    payload = (xt.call_bytes + xt.era_bytes + encode_compact(xt.nonce) + encode_compact(xt.tip)
               + SPEC_VERSION.to_bytes(4, "little") + TRANSACTION_VERSION.to_bytes(4, "little")
               + genesis_hash + birth_hash)
    return blake2_256(payload) if len(payload) > 256 else payload


def verify_signature(signature: Any, message: bytes, signer: bytes) -> bool:
    kind, sig = signature
    try:
        if kind == "Sr25519":
            return bool(sr25519.verify(sig, message, signer))
        if kind == "Ed25519":
            return bool(ed25519_zebra.ed_verify(sig, message, signer))
    except (ValueError, TypeError):
        return False
    return False  # Ecdsa would need public key recovery; not supported on the devnode


@dataclass(frozen=True)
class ChainView:
    """What validation needs from the chain: the best block and the hashes of recent blocks."""

    best_number: int
    best_hash: bytes
    genesis_hash: bytes


def block_hash_for(runtime: Runtime, view: ChainView, number: int) -> bytes | None:
    """``System::block_hash(number)`` as seen while building block ``best + 1``."""
    if number == view.best_number:
        return view.best_hash
    if number == 0:
        return view.genesis_hash
    if number > view.best_number or view.best_number + 1 - number > BLOCK_HASH_COUNT:
        return None
    value: bytes = runtime.system.BlockHash.get(runtime.state, number)
    return value if value != bytes(32) else None


def check_signature(runtime: Runtime, xt: Extrinsic, view: ChainView) -> bytes:
    """Lookup, mortality and signature; returns the signer's AccountId."""
    if not xt.signed:
        raise TransactionInvalid(CALL)
    kind, value = xt.address
    if kind not in ("Id", "Address32"):
        raise unknown_validity(CANNOT_LOOKUP)
    signer = bytes(value)
    current = view.best_number + 1
    birth = era_birth(xt.era, current)
    birth_hash = block_hash_for(runtime, view, birth)
    if birth_hash is None:
        raise TransactionInvalid(ANCIENT_BIRTH)
    if not verify_signature(xt.signature, signing_payload(xt, view.genesis_hash, birth_hash),
                            signer):
        if xt.era != "Immortal" and _signed_for_earlier_era(runtime, xt, view, birth, signer):
            raise TransactionInvalid(STALE)
        raise TransactionInvalid(BAD_PROOF)
    xt.signer = signer
    return signer


def _signed_for_earlier_era(runtime: Runtime, xt: Extrinsic, view: ChainView, birth: int,
                            signer: bytes) -> bool:
    """Whether the signature is valid for an earlier period of the era: the tx has expired.

    FRAME reports such a transaction as a bad signature; telling the client it is *outdated* is
    the same rejection with a more useful reason.
    """
    period = xt.era[0]
    earlier = birth - period
    for _ in range(4):
        if earlier < 0:
            return False
        h = block_hash_for(runtime, view, earlier)
        if h is None:
            return False
        if verify_signature(xt.signature, signing_payload(xt, view.genesis_hash, h), signer):
            return True
        earlier -= period
    return False


def _check_sender_and_nonce(runtime: Runtime, xt: Extrinsic, signer: bytes,
                            allow_future: bool) -> int:
    """CheckNonZeroSender and CheckNonce, shared by the pre-decode and the full checks."""
    if signer == bytes(32):
        raise TransactionInvalid(BAD_SIGNER)
    account_nonce: int = runtime.system.nonce(signer)
    if xt.nonce < account_nonce:
        raise TransactionInvalid(STALE)
    if xt.nonce > account_nonce and not allow_future:
        raise TransactionInvalid(FUTURE)
    return account_nonce


def extensions_weight(xt: Extrinsic) -> Weight:
    """The weight a signed extrinsic's transaction extensions add (none for unsigned ones)."""
    return extension_weight(xt.era != "Immortal") if xt.signed else ZERO_WEIGHT


def precheck_extensions(runtime: Runtime, xt: Extrinsic, signer: bytes, *,
                        allow_future: bool) -> None:
    """The extension checks that need no decoded call, run before decoding it.

    CheckNonZeroSender, CheckNonce, CheckWeight's length and the fee the length alone costs
    (the weight fee can only add to it): a transaction failing these is refused before its call
    costs any decoding.
    """
    _check_sender_and_nonce(runtime, xt, signer, allow_future)
    check_length(xt.raw)
    if not runtime.balances.can_withdraw_preserving(
            signer, sum(fee_parts(ZERO_WEIGHT, xt.length)) + xt.tip):
        raise TransactionInvalid(PAYMENT)


def check_extensions(runtime: Runtime, xt: Extrinsic, signer: bytes, *,
                     allow_future: bool) -> tuple[int, int]:
    """CheckNonZeroSender, CheckNonce, CheckWeight, ChargeTransactionPayment on the current state.

    Returns (account nonce, total fee). ``allow_future`` lets a pool queue nonces ahead of the
    account's (interval sealing); instant sealing needs the exact next nonce.
    """
    account_nonce = _check_sender_and_nonce(runtime, xt, signer, allow_future)
    if xt.length > MAX_EXTRINSIC_LENGTH:
        raise TransactionInvalid(EXHAUSTS)
    weight, _, _ = runtime.call_info(xt.call)
    weight = weight + extensions_weight(xt)
    if weight.ref_time > MAX_NORMAL_REF_TIME:
        raise TransactionInvalid(EXHAUSTS)
    fee = sum(fee_parts(weight, xt.length)) + xt.tip
    if not runtime.balances.can_withdraw_preserving(signer, fee):
        raise TransactionInvalid(PAYMENT)
    return account_nonce, fee

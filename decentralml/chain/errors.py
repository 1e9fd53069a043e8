"""Turn what a node says into the one exception tree of :mod:`decentralml.errors`.

Two sources of failure reach the client: the node refusing an extrinsic or a request over
JSON-RPC (before inclusion), and a dispatch error recorded in ``System.ExtrinsicFailed`` (after
inclusion, fee paid). Pallet errors are resolved through the runtime's own metadata (pallet index
-> name, error index -> name and docs), never through a table kept here, so a runtime that adds an
error gets a precise class without a client release.
"""

from __future__ import annotations

from typing import Any

from decentralml.errors import (
    DECENTRALML_ERRORS,
    ChainError,
    DispatchError,
    InvalidTransaction,
    PalletError,
    pallet_error_class,
)

#: JSON-RPC error codes of the transaction pool (``author_*``), as Substrate's ``sc-rpc-api``.
INVALID_TRANSACTION = 1010
UNKNOWN_TRANSACTION = 1011
TEMPORARILY_BANNED = 1012
ALREADY_IMPORTED = 1013
PRIORITY_TOO_LOW = 1014


class TransactionRejected(InvalidTransaction):
    """The node's transaction pool refused an extrinsic; ``code`` is the JSON-RPC error code.

    1010 is an invalid transaction (``data`` says why: "Transaction is outdated", "Inability to
    pay some fees", ...); 1012-1014 are pool conflicts. Kept as one subclass so callers can catch
    :class:`~decentralml.errors.InvalidTransaction` and still look at the precise code.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        self.code = code
        super().__init__(message, data)

    @property
    def reason(self) -> str:
        return f"{self.args[0]}".lower()

    @property
    def is_nonce_conflict(self) -> bool:
        """True when re-signing with a fresh nonce is the right fix (the tx did NOT enter the pool).

        Stale ("outdated"): the nonce was used already; Future: the nonce is ahead of the chain
        (only some nodes refuse those); 1014: another transaction holds that nonce in the pool.
        """
        if self.code == PRIORITY_TOO_LOW:
            return True
        if self.code != INVALID_TRANSACTION:
            return False
        return any(word in self.reason for word in ("outdated", "stale", "future"))


class BlockRetracted(ChainError):
    """An extrinsic was seen in a block that is not on the finalized chain: a fork lost, the
    block was retracted, and the extrinsic's effects there do not count. (It may be included
    again in another block: resubmitting is for the caller to decide, with the same nonce.)"""

    def __init__(self, message: str, *, block_hash: str, block_number: int,
                 finalized_hash: str | None) -> None:
        self.block_hash = block_hash
        self.block_number = block_number
        self.finalized_hash = finalized_hash
        super().__init__(message)


class FinalityStalled(ChainError):
    """Blocks go on but GRANDPA does not finalize them (fewer than two thirds of the validators
    are voting): nothing after ``finalized_number`` is final, whatever the best chain says."""

    def __init__(self, message: str, *, node: str, finalized_number: int,
                 best_number: int) -> None:
        self.node = node
        self.finalized_number = finalized_number
        self.best_number = best_number
        super().__init__(message)


class RpcError(ChainError):
    """A JSON-RPC request failed for a reason other than the transaction pool."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message if code is None else f"{message} (code {code})")


def rpc_error(payload: Any) -> ChainError:
    """Map the payload of a ``SubstrateRequestException`` (a JSON-RPC error object or a string)."""
    if isinstance(payload, dict):
        code = payload.get("code")
        message = str(payload.get("message", "RPC error"))
        data = payload.get("data")
        if isinstance(code, int) and INVALID_TRANSACTION <= code <= PRIORITY_TOO_LOW:
            return TransactionRejected(code, message, data)
        return RpcError(message if data is None else f"{message}: {data}",
                        code if isinstance(code, int) else None)
    return RpcError(str(payload))


def register_metadata_errors(metadata: Any) -> dict[tuple[int, int], type[PalletError]]:
    """Create (or complete with docs) one class per error of every pallet in ``metadata``.

    Returns ``(pallet index, error index) -> class`` for decoding ``Module`` dispatch errors.
    """
    table: dict[tuple[int, int], type[PalletError]] = {}
    for pallet in metadata.pallets:
        errors = pallet.errors
        if not errors:
            continue
        pallet_name = str(pallet.value["name"])
        pallet_index = int(pallet.value["index"])
        for error_index, error in enumerate(errors):
            value = error.value
            docs = " ".join(str(line).strip() for line in value.get("docs", [])).strip()
            table[(pallet_index, error_index)] = pallet_error_class(
                pallet_name, str(value["name"]), docs)
    return table


def _module_indices(module: Any) -> tuple[int, int]:
    if isinstance(module, tuple | list):
        pallet_index, error = module[0], module[1]
    else:
        pallet_index, error = module["index"], module["error"]
    if isinstance(error, str):
        # [u8; 4] since Substrate 0.9.25: the first byte is the error variant
        error = int(error[2:4], 16)
    elif isinstance(error, bytes | bytearray | list | tuple):
        error = int(error[0])
    return int(pallet_index), int(error)


def dispatch_error(value: Any, table: dict[tuple[int, int], type[PalletError]],
                   extrinsic_hash: str | None = None) -> DispatchError:
    """The exception for a decoded ``DispatchError`` value from ``System.ExtrinsicFailed``."""
    if isinstance(value, dict) and "Module" in value:
        key = _module_indices(value["Module"])
        cls = table.get(key)
        if cls is not None:
            return cls(extrinsic_hash=extrinsic_hash)
        return DispatchError(f"unknown module error {key} (extrinsic {extrinsic_hash})")
    if isinstance(value, dict) and len(value) == 1:
        kind, detail = next(iter(value.items()))
        return DispatchError(f"{kind}: {detail} (extrinsic {extrinsic_hash})")
    return DispatchError(f"{value} (extrinsic {extrinsic_hash})")


def __getattr__(name: str) -> type[PalletError]:
    """The DecentralML pallet's errors by name (``decentralml.chain.errors.NotPendingOnTask``):
    the same classes as ``decentralml.errors`` gives and the client raises."""
    if name in DECENTRALML_ERRORS:
        return pallet_error_class("DecentralML", name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

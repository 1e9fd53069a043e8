"""The one exception tree of decentralml.

Every error the SDK raises derives from :class:`DecentralMLError`, so a notebook can catch the
whole family in one ``except`` and a script can catch precisely what it can recover from.
Pallet errors (``TaskNotFound``, ``NoSlotsLeft``, ...) are subclasses of :class:`PalletError`
created from the chain's metadata by :func:`pallet_error_class`; the ones of the DecentralML
pallet can be imported by name from this module (``from decentralml.errors import NoSlotsLeft``)
and are the very classes the client raises.
"""

from __future__ import annotations

import threading
from typing import Any


class DecentralMLError(Exception):
    """Root of every error raised by decentralml."""


class InvalidInput(DecentralMLError, ValueError):
    """An argument is out of bounds; raised before anything is signed, sent or written.

    ``field`` names the offending argument and ``limit`` states the rule it broke, so the message
    can be shown to a user as is.
    """

    def __init__(self, field: str, message: str, limit: str | None = None) -> None:
        self.field = field
        self.limit = limit
        text = f"{field}: {message}"
        if limit:
            text += f" (limit: {limit})"
        super().__init__(text)


class ConfigurationError(DecentralMLError):
    """The configuration is inconsistent or unusable."""


class MissingConfiguration(ConfigurationError):
    """A required setting is absent; the message says which option or env var to set."""

    def __init__(self, what: str, env_var: str | None = None, option: str | None = None) -> None:
        self.what = what
        self.env_var = env_var
        self.option = option
        hints = [h for h in (f"set {env_var}" if env_var else None,
                             f"pass {option}" if option else None) if h]
        super().__init__(f"missing {what}" + (f": {' or '.join(hints)}" if hints else ""))


class ChainError(DecentralMLError):
    """Anything that went wrong talking to, or on, the chain."""


class ConnectionFailed(ChainError):
    """The node could not be reached or the connection dropped beyond recovery."""


class InvalidTransaction(ChainError):
    """The node refused the extrinsic before inclusion (JSON-RPC error 1010)."""

    def __init__(self, message: str, data: Any = None) -> None:
        self.data = data
        super().__init__(message if data is None else f"{message}: {data}")


class ChainTimeout(ChainError, TimeoutError):
    """A wait on the chain (inclusion, an event, a condition) ran out of time."""


class DispatchError(ChainError):
    """The extrinsic was included but its dispatch failed (fee paid, state reverted).

    The client fills in where it landed and the fee it cost (None when not known).
    """

    extrinsic_hash: str | None = None
    block_hash: str | None = None
    block_number: int | None = None
    fee: int | None = None


class PalletError(DispatchError):
    """A pallet's ``Module`` error. Subclasses are named after the error variant."""

    pallet: str = ""
    error_name: str = ""
    docs: str = ""

    def __init__(self, message: str | None = None, *, extrinsic_hash: str | None = None) -> None:
        self.extrinsic_hash = extrinsic_hash
        text = message or self.docs or self.error_name
        super().__init__(f"{self.pallet}.{self.error_name}: {text}")


class StorageError(DecentralMLError):
    """Content-addressed storage failed (unreachable backend, missing content)."""


class IntegrityError(StorageError):
    """Downloaded content does not match its CID or manifest; nothing was kept."""


class FetchLimitExceeded(StorageError):
    """A fetch went over its size, entry-count, depth or time limit; nothing was kept."""


class BundleError(DecentralMLError):
    """A task bundle is malformed or unsafe (paths outside, undeclared files, bad manifest)."""


class RunnerError(DecentralMLError):
    """Running a task bundle failed (non-zero exit, timeout, missing requirements)."""


class ModelError(DecentralMLError):
    """A model or a weights update is unsafe, malformed or does not fit the model."""


_registry: dict[tuple[str, str], type[PalletError]] = {}
_registry_lock = threading.Lock()


def pallet_error_class(pallet: str, name: str, docs: str = "") -> type[PalletError]:
    """The exception class for ``pallet``'s error ``name``, created on first use.

    Classes are keyed by (pallet, name) so a class built from the metadata on one connection is
    the same object a user imported earlier from this module. ``docs`` (from the metadata) fills
    in the class docstring the first time it is known.
    """
    key = (pallet, name)
    with _registry_lock:
        cls = _registry.get(key)
        if cls is None:
            cls = type(name, (PalletError,), {"pallet": pallet, "error_name": name,
                                              "docs": docs, "__doc__": docs or None,
                                              "__module__": __name__})
            _registry[key] = cls
        elif docs and not cls.docs:
            cls.docs = docs
            cls.__doc__ = docs
    return cls


#: The DecentralML pallet's errors, in the order of docs/protocol.md. Only the names live here so
#: they can be imported; their docs come from the chain's metadata when a client connects.
DECENTRALML_ERRORS = (
    "TaskNotFound", "SubmissionNotFound", "TaskClosed", "TaskExpired", "NoSlotsLeft",
    "AlreadyAccepted", "CreatorCannotAccept", "NotTaskCreator", "NotSubmissionWorker",
    "InvalidStatus", "PendingValidations", "ZeroReward", "RewardTooLow", "InvalidQuestion",
    "InvalidMaxAssignments", "ExpirationInPast", "EmptyAssets", "AssetsCidTooLong", "EmptyResult",
    "ResultTooLong", "InvalidResultCid", "MissingStorageType", "Overflow", "InsufficientBalance",
    # protocol 2 (spec_version 103)
    "InvalidShards", "InvalidTerms", "PaidByContribution", "NotPaidByContribution", "NoScores",
    "TooManyScores", "ScoreTooHigh", "DuplicateScore", "NotPendingOnTask", "InvalidPeerJob",
    "PeerJobNotFound", "PeerJobEnded", "AlreadyJoined", "PeerJobFull", "NotAPeer", "WrongRound",
    "WrongPhase", "AlreadyPosted", "NoUpdateThisRound",
)


def __getattr__(name: str) -> type[PalletError]:
    if name in DECENTRALML_ERRORS:
        return pallet_error_class("DecentralML", name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

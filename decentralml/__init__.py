"""decentralml: train models on other people's machines and data, paid through a Substrate chain.

The public API is exactly what ``__all__`` names; every other module is internal and may move.
Names are resolved lazily (PEP 562) so ``import decentralml`` does no work and never imports
TensorFlow or opens a connection.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "DecentralMLError": "decentralml.errors",
    "InvalidInput": "decentralml.errors",
    "ConfigurationError": "decentralml.errors",
    "MissingConfiguration": "decentralml.errors",
    "ChainError": "decentralml.errors",
    "ConnectionFailed": "decentralml.errors",
    "InvalidTransaction": "decentralml.errors",
    "ChainTimeout": "decentralml.errors",
    "DispatchError": "decentralml.errors",
    "PalletError": "decentralml.errors",
    "StorageError": "decentralml.errors",
    "IntegrityError": "decentralml.errors",
    "BundleError": "decentralml.errors",
    "RunnerError": "decentralml.errors",
    "ModelError": "decentralml.errors",
    # protocol types
    "TaskType": "decentralml.chain.types",
    "ValidationStrategy": "decentralml.chain.types",
    "StorageType": "decentralml.chain.types",
    "TaskStatus": "decentralml.chain.types",
    "SubmissionStatus": "decentralml.chain.types",
    "TaskInfo": "decentralml.chain.types",
    "Submission": "decentralml.chain.types",
    "CreateTaskArgs": "decentralml.chain.types",
    "SendTaskResultArgs": "decentralml.chain.types",
    "escrow_account_id": "decentralml.chain.types",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'decentralml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from decentralml.chain.types import (
        CreateTaskArgs,
        SendTaskResultArgs,
        StorageType,
        Submission,
        SubmissionStatus,
        TaskInfo,
        TaskStatus,
        TaskType,
        ValidationStrategy,
        escrow_account_id,
    )
    from decentralml.errors import (
        BundleError,
        ChainError,
        ChainTimeout,
        ConfigurationError,
        ConnectionFailed,
        DecentralMLError,
        DispatchError,
        IntegrityError,
        InvalidInput,
        InvalidTransaction,
        MissingConfiguration,
        ModelError,
        PalletError,
        RunnerError,
        StorageError,
    )

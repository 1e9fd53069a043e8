"""decentralml: train models on other people's machines and data, paid through a Substrate chain.

The public API is exactly what ``__all__`` names; every other module is internal and may move.
Names are resolved lazily (PEP 562) so ``import decentralml`` does no work and never imports
TensorFlow or opens a connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from decentralml._lazy import lazy_exports

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
    "FetchLimitExceeded": "decentralml.errors",
    "BundleError": "decentralml.errors",
    "RunnerError": "decentralml.errors",
    "ModelError": "decentralml.errors",
    "BlockRetracted": "decentralml.chain.errors",
    "FinalityStalled": "decentralml.chain.errors",
    # protocol types
    "TaskType": "decentralml.chain.types",
    "ValidationStrategy": "decentralml.chain.types",
    "StorageType": "decentralml.chain.types",
    "TaskStatus": "decentralml.chain.types",
    "SubmissionStatus": "decentralml.chain.types",
    "TaskInfo": "decentralml.chain.types",
    "Submission": "decentralml.chain.types",
    "CreateTaskArgs": "decentralml.chain.types",
    "PayoutMode": "decentralml.chain.types",
    "TaskTerms": "decentralml.chain.types",
    "PeerJob": "decentralml.chain.types",
    "CreatePeerJobArgs": "decentralml.chain.types",
    "SendTaskResultArgs": "decentralml.chain.types",
    "ProtocolLimits": "decentralml.chain.types",
    "Token": "decentralml.amounts",
    "escrow_account_id": "decentralml.chain.types",
    # the chain client, its results, events and validation policies
    "Client": "decentralml.chain.client",
    "ExtrinsicResult": "decentralml.chain.results",
    "CreateTaskResult": "decentralml.chain.results",
    "AcceptTaskResult": "decentralml.chain.results",
    "SendResultResult": "decentralml.chain.results",
    "CloseTaskResult": "decentralml.chain.results",
    "AbandonTaskResult": "decentralml.chain.results",
    "SettleContributionsResult": "decentralml.chain.results",
    "CreatePeerJobResult": "decentralml.chain.results",
    "PeerJobCallResult": "decentralml.chain.results",
    "PostAggregateResult": "decentralml.chain.results",
    "ValidationReport": "decentralml.chain.results",
    "MarketEvent": "decentralml.chain.events",
    "AutoAccept": "decentralml.chain.policies",
    "Manual": "decentralml.chain.policies",
    "Threshold": "decentralml.chain.policies",
    "Custom": "decentralml.chain.policies",
    "Decision": "decentralml.chain.policies",
    # accounts
    "Accounts": "decentralml.accounts",
    "Account": "decentralml.accounts",
    # storage, bundles, the runner
    "Store": "decentralml.storage.base",
    "FetchLimits": "decentralml.storage.base",
    "LocalStore": "decentralml.storage.local",
    "IPFSStore": "decentralml.storage.ipfs",
    "open_store": "decentralml.storage.config",
    "Manifest": "decentralml.storage.bundle",
    "Bundle": "decentralml.storage.bundle",
    "pack_bundle": "decentralml.storage.bundle",
    "fetch_bundle": "decentralml.storage.bundle",
    "run_bundle": "decentralml.storage.runner",
    "RunResult": "decentralml.storage.runner",
    "RunLimits": "decentralml.storage.runner",
    "CancelHandle": "decentralml.storage.runner",
    "TaskHostPool": "decentralml.storage.task_host",
    "Round": "decentralml.storage.entry",
    "RoundResult": "decentralml.storage.entry",
    "SandboxUnavailable": "decentralml.storage.sandbox",
    # roles
    "ModelCreator": "decentralml.roles.creator",
    "ModelContributor": "decentralml.roles.contributor",
    "ModelEngineer": "decentralml.roles.contributor",
    "DataAnnotator": "decentralml.roles.contributor",
    "WorkReport": "decentralml.roles.contributor",
    "holdout_policy": "decentralml.roles.policies",
    "run_federated_job": "decentralml.roles.federated_job",
    "ContributionPay": "decentralml.roles.contribution",
    "Settlement": "decentralml.roles.contribution",
    "Verification": "decentralml.roles.contribution",
    "settle_task": "decentralml.roles.contribution",
    "settled_contributions": "decentralml.roles.contribution",
    "verify_task_scores": "decentralml.roles.contribution",
    "FederatedJobReport": "decentralml.roles.federated_job",
    "merge_annotations": "decentralml.roles.annotation",
    "Peer": "decentralml.roles.peer_job",
    "create_peer_job": "decentralml.roles.peer_job",
    "peer_job_status": "decentralml.roles.peer_job",
    "PeerRoundReport": "decentralml.roles.peer_job",
    "PeerRunReport": "decentralml.roles.peer_job",
    "PeerJobStatus": "decentralml.roles.peer_job",
    # the embedded dev chain
    "DevNode": "decentralml.devnode",
    "RpcLimits": "decentralml.devnode",
    # settings
    "Settings": "decentralml.config",
    "load_settings": "decentralml.config",
}

#: Public subpackages, reached as attributes (``decentralml.fl.FedAvg``), imported on first use.
_SUBPACKAGES = ("fl",)

__all__ = [*sorted(_EXPORTS), *_SUBPACKAGES, "__version__"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBPACKAGES)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from decentralml import fl
    from decentralml.accounts import (
        Account,
        Accounts,
    )
    from decentralml.amounts import (
        Token,
    )
    from decentralml.chain.client import (
        Client,
    )
    from decentralml.chain.errors import (
        BlockRetracted,
        FinalityStalled,
    )
    from decentralml.chain.events import (
        MarketEvent,
    )
    from decentralml.chain.policies import (
        AutoAccept,
        Custom,
        Decision,
        Manual,
        Threshold,
    )
    from decentralml.chain.results import (
        AbandonTaskResult,
        AcceptTaskResult,
        CloseTaskResult,
        CreatePeerJobResult,
        CreateTaskResult,
        ExtrinsicResult,
        PeerJobCallResult,
        PostAggregateResult,
        SendResultResult,
        SettleContributionsResult,
        ValidationReport,
    )
    from decentralml.chain.types import (
        CreatePeerJobArgs,
        CreateTaskArgs,
        PayoutMode,
        PeerJob,
        ProtocolLimits,
        SendTaskResultArgs,
        StorageType,
        Submission,
        SubmissionStatus,
        TaskInfo,
        TaskStatus,
        TaskTerms,
        TaskType,
        ValidationStrategy,
        escrow_account_id,
    )
    from decentralml.config import (
        Settings,
        load_settings,
    )
    from decentralml.devnode import (
        DevNode,
        RpcLimits,
    )
    from decentralml.errors import (
        BundleError,
        ChainError,
        ChainTimeout,
        ConfigurationError,
        ConnectionFailed,
        DecentralMLError,
        DispatchError,
        FetchLimitExceeded,
        IntegrityError,
        InvalidInput,
        InvalidTransaction,
        MissingConfiguration,
        ModelError,
        PalletError,
        RunnerError,
        StorageError,
    )
    from decentralml.roles.annotation import (
        merge_annotations,
    )
    from decentralml.roles.contribution import (
        ContributionPay,
        Settlement,
        Verification,
        settle_task,
        settled_contributions,
        verify_task_scores,
    )
    from decentralml.roles.contributor import (
        DataAnnotator,
        ModelContributor,
        ModelEngineer,
        WorkReport,
    )
    from decentralml.roles.creator import (
        ModelCreator,
    )
    from decentralml.roles.federated_job import (
        FederatedJobReport,
        run_federated_job,
    )
    from decentralml.roles.peer_job import (
        Peer,
        PeerJobStatus,
        PeerRoundReport,
        PeerRunReport,
        create_peer_job,
        peer_job_status,
    )
    from decentralml.roles.policies import (
        holdout_policy,
    )
    from decentralml.storage.base import (
        FetchLimits,
        Store,
    )
    from decentralml.storage.bundle import (
        Bundle,
        Manifest,
        fetch_bundle,
        pack_bundle,
    )
    from decentralml.storage.config import (
        open_store,
    )
    from decentralml.storage.entry import (
        Round,
        RoundResult,
    )
    from decentralml.storage.ipfs import (
        IPFSStore,
    )
    from decentralml.storage.local import (
        LocalStore,
    )
    from decentralml.storage.runner import (
        CancelHandle,
        RunLimits,
        RunResult,
        run_bundle,
    )
    from decentralml.storage.sandbox import (
        SandboxUnavailable,
    )
    from decentralml.storage.task_host import (
        TaskHostPool,
    )

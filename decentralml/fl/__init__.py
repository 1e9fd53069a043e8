"""Federated learning helpers: exchange weights safely, aggregate them, score contributions.

Names resolve lazily (PEP 562) so ``import decentralml.fl`` imports neither TensorFlow nor Keras;
the numpy strategies (:class:`FedAvg`, the server optimizers :class:`FedAvgM`, :class:`FedAdam`,
:class:`FedYogi`, :class:`FedAdagrad`, :class:`DPFedAvg`, the robust :class:`Median`,
:class:`TrimmedMean`, :class:`Krum`, :class:`MultiKrum`) work without the ``[tf]`` extra, and the
Keras helpers raise an ImportError saying ``pip install "decentralml[tf]"`` when it is missing.
:func:`strategy_from_name` builds any of them by name. The privacy accountant needs the ``[dp]``
extra (``dp-accounting``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from decentralml._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # strategies (numpy only)
    "Update": "decentralml.fl.base",
    "Aggregator": "decentralml.fl.base",
    "FedAvg": "decentralml.fl.fedavg",
    "fedavg_shares": "decentralml.fl.fedavg",
    "Median": "decentralml.fl.median",
    "TrimmedMean": "decentralml.fl.trimmed_mean",
    "Krum": "decentralml.fl.krum",
    "MultiKrum": "decentralml.fl.krum",
    "Strategy": "decentralml.fl.base",
    "ServerOptimizer": "decentralml.fl.server_opt",
    "FedAvgM": "decentralml.fl.fedavgm",
    "FedAdam": "decentralml.fl.fedadam",
    "FedYogi": "decentralml.fl.fedyogi",
    "FedAdagrad": "decentralml.fl.fedadagrad",
    "DPFedAvg": "decentralml.fl.dp_fedavg",
    "strategy_from_name": "decentralml.fl.registry",
    "strategy_name": "decentralml.fl.registry",
    "strategy_names": "decentralml.fl.registry",
    # deterministic aggregation: compare aggregates by digest
    "UpdateKey": "decentralml.fl.base",
    "in_key_order": "decentralml.fl.base",
    "aggregate_digest": "decentralml.fl.digest",
    # differential privacy (the accountant needs the [dp] extra)
    "PrivacyGuarantee": "decentralml.fl.privacy",
    "privacy_guarantee": "decentralml.fl.privacy",
    "privatize_update": "decentralml.fl.privacy",
    "update_norm": "decentralml.fl.privacy",
    "dp_epsilon": "decentralml.fl.privacy",
    "noise_multiplier_for": "decentralml.fl.privacy",
    # task options a bundle reads (FedProx, client-side DP)
    "TaskOptions": "decentralml.fl.task_options",
    "ClientDP": "decentralml.fl.task_options",
    "read_task_options": "decentralml.fl.task_options",
    "write_task_options": "decentralml.fl.task_options",
    "apply_client_dp": "decentralml.fl.task_options",
    # exchange (numpy only)
    "UPDATE_FILE": "decentralml.fl.exchange",
    "SIDECAR_FILE": "decentralml.fl.exchange",
    "WeightSpec": "decentralml.fl.exchange",
    "NpzWeights": "decentralml.fl.exchange",
    "save_update": "decentralml.fl.exchange",
    "save_weights": "decentralml.fl.exchange",
    "load_weights": "decentralml.fl.exchange",
    "load_update": "decentralml.fl.exchange",
    "read_sidecar": "decentralml.fl.exchange",
    "model_weight_names": "decentralml.fl.exchange",
    # creator side
    "load_contributor_models": "decentralml.fl.federate",
    "federated_contributors_model": "decentralml.fl.federate",
    "LoadedUpdates": "decentralml.fl.federate",
    "Rejection": "decentralml.fl.federate",
    # contribution scores (pay by contribution) and their verification
    "Contribution": "decentralml.fl.contribution",
    "ContributionReport": "decentralml.fl.contribution",
    "ScoringSpec": "decentralml.fl.contribution",
    "ScoreMismatch": "decentralml.fl.verification",
    "ScoreVerification": "decentralml.fl.verification",
    "contribution_scores": "decentralml.fl.contribution",
    "holdout_commitment": "decentralml.fl.verification",
    "holdout_evaluator": "decentralml.fl.contribution",
    "verify_scores": "decentralml.fl.verification",
    # the creator's data, one shard per slot (compute rental)
    "split_shards": "decentralml.fl.shards",
    "save_shard": "decentralml.fl.shards",
    "load_shard": "decentralml.fl.shards",
    "write_shards": "decentralml.fl.shards",
    "shard_file_name": "decentralml.fl.shards",
    # scoring
    "evaluate": "decentralml.fl.scoring",
    "HoldoutScorer": "decentralml.fl.scoring",
    "Score": "decentralml.fl.scoring",
    # Keras adapters and the reference model (import Keras on first call)
    "save_architecture": "decentralml.fl.keras",
    "load_architecture": "decentralml.fl.keras",
    "get_weights": "decentralml.fl.keras",
    "set_weights": "decentralml.fl.keras",
    "clone_model": "decentralml.fl.keras",
    "save_model": "decentralml.fl.keras",
    "load_model": "decentralml.fl.keras",
    "make_digits_cnn": "decentralml.fl.models",
    "train_local": "decentralml.fl.models",
    # data
    "Dataset": "decentralml.fl.data",
    "partition_iid": "decentralml.fl.data",
    "partition_dirichlet": "decentralml.fl.data",
    "partition_by_label": "decentralml.fl.data",
    "load_digits_dataset": "decentralml.fl.data",
    "load_mnist": "decentralml.fl.data",
    "iid_indices": "decentralml.fl.data",
    "dirichlet_indices": "decentralml.fl.data",
    "label_indices": "decentralml.fl.data",
    # the digits example's files (creator's model, holdout, contributor shards)
    "DigitsExample": "decentralml.fl.example",
    "write_digits_example": "decentralml.fl.example",
}

__all__ = [
    "SIDECAR_FILE",
    "UPDATE_FILE",
    "Aggregator",
    "ClientDP",
    "Contribution",
    "ContributionReport",
    "DPFedAvg",
    "Dataset",
    "DigitsExample",
    "FedAdagrad",
    "FedAdam",
    "FedAvg",
    "FedAvgM",
    "FedYogi",
    "HoldoutScorer",
    "Krum",
    "LoadedUpdates",
    "Median",
    "MultiKrum",
    "NpzWeights",
    "PrivacyGuarantee",
    "Rejection",
    "Score",
    "ScoreMismatch",
    "ScoreVerification",
    "ScoringSpec",
    "ServerOptimizer",
    "Strategy",
    "TaskOptions",
    "TrimmedMean",
    "Update",
    "UpdateKey",
    "WeightSpec",
    "aggregate_digest",
    "apply_client_dp",
    "clone_model",
    "contribution_scores",
    "dirichlet_indices",
    "dp_epsilon",
    "evaluate",
    "fedavg_shares",
    "federated_contributors_model",
    "get_weights",
    "holdout_commitment",
    "holdout_evaluator",
    "iid_indices",
    "in_key_order",
    "label_indices",
    "load_architecture",
    "load_contributor_models",
    "load_digits_dataset",
    "load_mnist",
    "load_model",
    "load_shard",
    "load_update",
    "load_weights",
    "make_digits_cnn",
    "model_weight_names",
    "noise_multiplier_for",
    "partition_by_label",
    "partition_dirichlet",
    "partition_iid",
    "privacy_guarantee",
    "privatize_update",
    "read_sidecar",
    "read_task_options",
    "save_architecture",
    "save_model",
    "save_shard",
    "save_update",
    "save_weights",
    "set_weights",
    "shard_file_name",
    "split_shards",
    "strategy_from_name",
    "strategy_name",
    "strategy_names",
    "train_local",
    "update_norm",
    "verify_scores",
    "write_digits_example",
    "write_shards",
    "write_task_options",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from decentralml.fl.base import Aggregator, Strategy, Update, UpdateKey, in_key_order
    from decentralml.fl.contribution import (
        Contribution,
        ContributionReport,
        ScoringSpec,
        contribution_scores,
        holdout_evaluator,
    )
    from decentralml.fl.data import (
        Dataset,
        dirichlet_indices,
        iid_indices,
        label_indices,
        load_digits_dataset,
        load_mnist,
        partition_by_label,
        partition_dirichlet,
        partition_iid,
    )
    from decentralml.fl.digest import aggregate_digest
    from decentralml.fl.dp_fedavg import DPFedAvg
    from decentralml.fl.example import DigitsExample, write_digits_example
    from decentralml.fl.exchange import (
        SIDECAR_FILE,
        UPDATE_FILE,
        NpzWeights,
        WeightSpec,
        load_update,
        load_weights,
        model_weight_names,
        read_sidecar,
        save_update,
        save_weights,
    )
    from decentralml.fl.fedadagrad import FedAdagrad
    from decentralml.fl.fedadam import FedAdam
    from decentralml.fl.fedavg import FedAvg, fedavg_shares
    from decentralml.fl.fedavgm import FedAvgM
    from decentralml.fl.federate import (
        LoadedUpdates,
        Rejection,
        federated_contributors_model,
        load_contributor_models,
    )
    from decentralml.fl.fedyogi import FedYogi
    from decentralml.fl.keras import (
        clone_model,
        get_weights,
        load_architecture,
        load_model,
        save_architecture,
        save_model,
        set_weights,
    )
    from decentralml.fl.krum import Krum, MultiKrum
    from decentralml.fl.median import Median
    from decentralml.fl.models import make_digits_cnn, train_local
    from decentralml.fl.privacy import (
        PrivacyGuarantee,
        dp_epsilon,
        noise_multiplier_for,
        privacy_guarantee,
        privatize_update,
        update_norm,
    )
    from decentralml.fl.registry import strategy_from_name, strategy_name, strategy_names
    from decentralml.fl.scoring import HoldoutScorer, Score, evaluate
    from decentralml.fl.server_opt import ServerOptimizer
    from decentralml.fl.shards import (
        load_shard,
        save_shard,
        shard_file_name,
        split_shards,
        write_shards,
    )
    from decentralml.fl.task_options import (
        ClientDP,
        TaskOptions,
        apply_client_dp,
        read_task_options,
        write_task_options,
    )
    from decentralml.fl.trimmed_mean import TrimmedMean
    from decentralml.fl.verification import (
        ScoreMismatch,
        ScoreVerification,
        holdout_commitment,
        verify_scores,
    )

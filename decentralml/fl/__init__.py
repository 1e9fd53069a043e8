"""Federated learning helpers: exchange weights safely, aggregate them, score contributions.

Names resolve lazily (PEP 562) so ``import decentralml.fl`` imports neither TensorFlow nor Keras;
the numpy strategies (:class:`FedAvg`, :class:`Median`, :class:`TrimmedMean`, :class:`Krum`,
:class:`MultiKrum`) work without the ``[tf]`` extra, and the Keras helpers raise an ImportError
saying ``pip install "decentralml[tf]"`` when it is missing.
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
    # exchange (numpy only)
    "UPDATE_FILE": "decentralml.fl.exchange",
    "SIDECAR_FILE": "decentralml.fl.exchange",
    "WeightSpec": "decentralml.fl.exchange",
    "NpzWeights": "decentralml.fl.exchange",
    "save_update": "decentralml.fl.exchange",
    "load_update": "decentralml.fl.exchange",
    "read_sidecar": "decentralml.fl.exchange",
    "model_weight_names": "decentralml.fl.exchange",
    # creator side
    "load_contributor_models": "decentralml.fl.federate",
    "federated_contributors_model": "decentralml.fl.federate",
    "LoadedUpdates": "decentralml.fl.federate",
    "Rejection": "decentralml.fl.federate",
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
    "Dataset",
    "DigitsExample",
    "FedAvg",
    "HoldoutScorer",
    "Krum",
    "LoadedUpdates",
    "Median",
    "MultiKrum",
    "NpzWeights",
    "Rejection",
    "Score",
    "TrimmedMean",
    "Update",
    "WeightSpec",
    "clone_model",
    "dirichlet_indices",
    "evaluate",
    "fedavg_shares",
    "federated_contributors_model",
    "get_weights",
    "iid_indices",
    "label_indices",
    "load_architecture",
    "load_contributor_models",
    "load_digits_dataset",
    "load_mnist",
    "load_model",
    "load_update",
    "make_digits_cnn",
    "model_weight_names",
    "partition_by_label",
    "partition_dirichlet",
    "partition_iid",
    "read_sidecar",
    "save_architecture",
    "save_model",
    "save_update",
    "set_weights",
    "train_local",
    "write_digits_example",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from decentralml.fl.base import Aggregator, Update
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
    from decentralml.fl.example import DigitsExample, write_digits_example
    from decentralml.fl.exchange import (
        SIDECAR_FILE,
        UPDATE_FILE,
        NpzWeights,
        WeightSpec,
        load_update,
        model_weight_names,
        read_sidecar,
        save_update,
    )
    from decentralml.fl.fedavg import FedAvg, fedavg_shares
    from decentralml.fl.federate import (
        LoadedUpdates,
        Rejection,
        federated_contributors_model,
        load_contributor_models,
    )
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
    from decentralml.fl.scoring import HoldoutScorer, Score, evaluate
    from decentralml.fl.trimmed_mean import TrimmedMean

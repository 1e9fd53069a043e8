"""Contributor side of the federated MNIST example: train the creator's model on local data.

The creator ships the architecture and the current global weights (``model.keras``, loaded with
``safe_mode=True``) and the hyperparameters (``config.json``). The contributor's own data is
``data.npz`` in the data directory, with arrays ``x`` (N, 28, 28) or (N, 8, 8) and ``y`` (N,).
The result is a weights-only update plus its example count and metrics.

``fit`` is the bundle's Python entry point (``"entry": "train:fit"`` in template.json): the
runner calls it once per round. In a warm task host the module stays loaded between the rounds of
a job, so the data and the compiled model are kept here and only the round's weights are read
again; on a cold run it is called once. ``start_task.sh`` runs the same ``fit`` by hand.

Federated options in ``config.json`` (see docs/fl.md): ``proximal_mu`` trains with FedProx's
proximal term; ``dp`` (``clipping_norm``, ``noise_multiplier``) clips and noises the update here,
before it leaves this machine, and then reports no metrics computed on the data.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from decentralml.fl import (
    apply_client_dp,
    get_weights,
    model_weight_names,
    read_task_options,
    train_local,
)
from decentralml.storage.entry import Round, RoundResult

HERE = Path(__file__).resolve().parent
#: What this process keeps between rounds: the data (by directory) and the compiled model.
_KEPT: dict[str, Any] = {}


def load_data(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The contributor's local shard; never leaves this machine."""
    with np.load(data_dir / "data.npz", allow_pickle=False) as data:
        return data["x"].astype("float32"), data["y"].astype("int64")


def round_model(path: Path) -> Any:
    """The round's global model: the kept, compiled model with this round's weights when the
    architecture is the same, else loaded fresh (``safe_mode``, scanned first)."""
    from decentralml.fl.keras import load_architecture, scan_architecture

    architecture = json.dumps(scan_architecture(path), sort_keys=True)
    model = _KEPT.get("model")
    if model is not None and _KEPT.get("architecture") == architecture:
        model.load_weights(path)  # weights only: nothing in the file is code
        return model
    model = load_architecture(path)
    _KEPT.update(model=model, architecture=architecture)
    return model


def fit(task: Round) -> RoundResult:
    """One round: train the global model on the local shard, return the weights."""
    config = task.config
    options = read_task_options(config)  # FedProx and client-side DP: checked before training
    if task.data_dir is None:
        raise SystemExit("run this task with your data directory (--data DIR)")
    key = f"data:{task.data_dir}"
    if key not in _KEPT:
        _KEPT[key] = load_data(task.data_dir)
    x, y = _KEPT[key]
    model = round_model(task.task_dir / "model.keras")
    start = get_weights(model) if options.dp is not None else None
    started = time.perf_counter()
    history = train_local(model, x, y, epochs=int(config["epochs"]),
                          batch_size=int(config["batch_size"]), seed=int(config["seed"]),
                          learning_rate=float(config["learning_rate"]),
                          proximal_mu=options.proximal_mu)
    seconds = time.perf_counter() - started
    metrics = {"train_accuracy": float(history["accuracy"][-1]),
               "train_loss": float(history["loss"][-1]), "train_seconds": seconds}
    weights: Any = model
    if options.dp is not None and start is not None:
        weights = apply_client_dp(model, start, options.dp)
        metrics = {"train_seconds": seconds}  # loss/accuracy on the data are not private
    print(json.dumps({"round": task.number, "num_examples": len(y), **metrics}))
    return RoundResult(weights=dict(zip(model_weight_names(weights), get_weights(weights),
                                        strict=True)),
                       num_examples=len(y), metrics=metrics)


def main() -> None:
    """By hand (``start_task.sh``): the same round, from the runner's environment."""
    from decentralml.storage.entry import run_once

    raise SystemExit(run_once("train:fit"))


if __name__ == "__main__":
    main()

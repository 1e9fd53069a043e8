"""Contributor side of the federated MNIST example: train the creator's model on local data.

The creator ships the architecture and the current global weights (``model.keras``, loaded with
``safe_mode=True``) and the hyperparameters (``config.json``). The contributor's own data is
``$DECENTRALML_DATA_DIR/data.npz`` with arrays ``x`` (N, 28, 28) or (N, 8, 8) and ``y`` (N,).
The result is a weights-only update plus a sidecar with ``num_examples`` and metrics.

Federated options in ``config.json`` (see docs/fl.md): ``proximal_mu`` trains with FedProx's
proximal term; ``dp`` (``clipping_norm``, ``noise_multiplier``) clips and noises the update here,
before it leaves this machine, and then reports no metrics computed on the data.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from decentralml.fl import (
    apply_client_dp,
    get_weights,
    load_model,
    read_task_options,
    save_update,
    train_local,
)

HERE = Path(__file__).resolve().parent


def load_data(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The contributor's local shard; never leaves this machine."""
    with np.load(data_dir / "data.npz", allow_pickle=False) as data:
        return data["x"].astype("float32"), data["y"].astype("int64")


def main() -> None:
    config = json.loads((HERE / "config.json").read_text(encoding="utf-8"))
    options = read_task_options(config)  # FedProx and client-side DP: checked before training
    x, y = load_data(Path(os.environ["DECENTRALML_DATA_DIR"]))
    model = load_model(HERE / "model.keras")
    start = get_weights(model) if options.dp is not None else None
    started = time.perf_counter()
    history = train_local(model, x, y, epochs=int(config["epochs"]),
                          batch_size=int(config["batch_size"]), seed=int(config["seed"]),
                          learning_rate=float(config["learning_rate"]),
                          proximal_mu=options.proximal_mu)
    seconds = time.perf_counter() - started
    metrics = {"train_accuracy": float(history["accuracy"][-1]),
               "train_loss": float(history["loss"][-1]), "train_seconds": seconds}
    if options.dp is not None and start is not None:
        model = apply_client_dp(model, start, options.dp)
        metrics = {"train_seconds": seconds}  # loss/accuracy on the data are not private
    save_update(model, Path(os.environ["DECENTRALML_OUTPUT_DIR"]), num_examples=len(y),
                metrics=metrics)
    print(json.dumps({"num_examples": len(y), **metrics}))


if __name__ == "__main__":
    main()

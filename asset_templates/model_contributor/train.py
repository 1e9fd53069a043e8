"""Model-contributor task: train the creator's model on the contributor's data, return weights.

``fit`` is the bundle's Python entry point (``"entry": "train:fit"`` in template.json): the runner
calls it once per round, in a fresh sandboxed process or in a warm task host that keeps this
module loaded between the rounds of a job (so the data and the compiled model are loaded once).
``start_task.sh`` runs the same round by hand. Either way the task sees:

* ``DECENTRALML_DATA_DIR``   the contributor's data; the default ``load_data`` reads ``data.npz``
  (or the only ``*.npz``) holding arrays ``x`` and ``y``, loaded with ``allow_pickle=False``;
* ``DECENTRALML_OUTPUT_DIR`` where ``update.npz`` (weights only, never data) and ``update.json``
  (``num_examples`` and metrics) are written by :func:`decentralml.fl.save_update`;
* ``DECENTRALML_TASK_DIR``   this bundle; ``model.keras`` there is the current global model
  (``task create --model`` ships it; a federated round ships each round's), and an optional
  ``config.json`` carries the federated options (``proximal_mu`` for FedProx, ``dp`` for
  client-side differential privacy; docs/fl.md), applied by the default ``train_model`` and by
  ``main``.

The creator edits the hooks between the markers and nothing else: ``fit`` and ``main`` below are
the contract with the runner. TensorFlow/Keras are imported only inside the default hooks, so
hooks that do
not use them do not need them installed. ``model_creator/setup_task.py --hooks my_hooks.py``
replaces the marked block with a file of your own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

#: What this process keeps between the rounds of a job (a warm task host): data, compiled model.
KEPT: dict[str, Any] = {}

# --- hooks: begin ---
# 8 epochs on a third of the digits training set (~450 images) gives each contributor ~0.95
# holdout accuracy and the FedAvg of three such updates ~0.95 after one round (1 epoch: ~0.15).
EPOCHS = 8
BATCH_SIZE = 32


def load_data(data_dir: Path) -> tuple[Any, Any]:
    """The contributor's training examples as ``(x, y)``; ``len(x)`` is the reported count."""
    import numpy as np

    path = data_dir / "data.npz"
    if not path.is_file():
        found = sorted(data_dir.glob("*.npz"))
        if len(found) != 1:
            raise SystemExit(f"put your data in {data_dir}/data.npz (arrays x and y); "
                             f"found {[p.name for p in found]}")
        path = found[0]
    with np.load(path, allow_pickle=False) as data:
        return data["x"], data["y"]


def load_model(task_dir: Path, x: Any, y: Any) -> Any:
    """The model to train: the creator's ``model.keras``, the same for every contributor.

    Every contributor must start from the same initial model, or averaging their updates
    (FedAvg) averages unrelated networks; ``task create`` refuses to publish this template
    without one (``--model FILE.keras``).
    """
    model_file = task_dir / "model.keras"
    if not model_file.is_file():
        raise SystemExit(f"{model_file} is missing: the creator publishes it with "
                         "`decentralml task create --model FILE.keras`")
    import json

    from decentralml.fl import load_model as load_global_model
    from decentralml.fl.keras import scan_architecture

    # A warm task host keeps the compiled model of the last round: same architecture, so only
    # this round's weights are read (the file is scanned first; weights hold no code).
    architecture = json.dumps(scan_architecture(model_file), sort_keys=True)
    if KEPT.get("architecture") == architecture:
        KEPT["model"].load_weights(model_file)
        return KEPT["model"]
    model = load_global_model(model_file)  # safe_mode loading, no custom code
    KEPT.update(model=model, architecture=architecture)
    return model


def train_model(model: Any, x: Any, y: Any) -> tuple[Any, dict[str, float]]:
    """Train on ``(x, y)``; return the trained model (or its weights) and final metrics."""
    from decentralml.fl import train_local

    history = train_local(model, x, y, epochs=EPOCHS, batch_size=BATCH_SIZE,
                          proximal_mu=task_options().proximal_mu)
    return model, {name: float(values[-1]) for name, values in history.items()}
# --- hooks: end ---


# --- federated options (FedProx, client-side DP): begin ---
def task_options() -> Any:
    """The task's ``config.json`` options (FedProx ``proximal_mu``, client-side ``dp``), checked."""
    from decentralml.fl import read_task_options

    task_dir = Path(os.environ.get("DECENTRALML_TASK_DIR", Path(__file__).resolve().parent))
    return read_task_options(task_dir / "config.json")


def privatize(trained: Any, start: Any, metrics: dict[str, float]) -> tuple[Any, dict[str, float]]:
    """With client-side DP: clip and noise the update before upload, drop data metrics."""
    options = task_options()
    if options.dp is None:
        return trained, metrics
    from decentralml.fl import apply_client_dp

    return apply_client_dp(trained, start, options.dp), {}


def snapshot(model: Any) -> Any:
    """The global weights before training (what client-side DP clips the update against)."""
    from decentralml.fl.task_options import weights_of

    return weights_of(model) if task_options().dp is not None else None
# --- federated options (FedProx, client-side DP): end ---


def fit(task: Any) -> None:
    """One round (a ``decentralml.Round``): load data (once per job), train, save the update."""
    if task.data_dir is None:
        raise RuntimeError("DECENTRALML_DATA_DIR is not set: run this task with your data "
                           "directory (--data DIR)")
    key = f"data:{task.data_dir}"
    if key not in KEPT:
        KEPT[key] = load_data(task.data_dir)
        print(f"loaded {len(KEPT[key][0])} examples from {task.data_dir}")
    x, y = KEPT[key]
    model = load_model(task.task_dir, x, y)
    start = snapshot(model)
    trained, metrics = train_model(model, x, y)
    trained, metrics = privatize(trained, start, metrics)

    from decentralml.fl import save_update

    path = save_update(trained, task.output_dir, num_examples=len(x), metrics=metrics)
    print(f"wrote {path.name} ({len(x)} examples, metrics {metrics})")


def main() -> int:
    """By hand (``start_task.sh``): the same round, from the runner's environment."""
    if "DECENTRALML_OUTPUT_DIR" not in os.environ:
        print("DECENTRALML_OUTPUT_DIR is not set: run this task with the decentralml runner",
              file=sys.stderr)
        return 2
    from decentralml.storage.entry import run_once

    return run_once("train:fit")


if __name__ == "__main__":
    sys.exit(main())

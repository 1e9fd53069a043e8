"""Model-engineer task: propose an architecture for the creator's data, report its scores.

The creator ships the dataset (``data.npz`` with ``x_train``, ``y_train``, ``x_val``, ``y_val``)
in this bundle, or the engineer has it in ``DECENTRALML_DATA_DIR``. The engineer fills in
``build_model`` (and may change training); the task writes to ``DECENTRALML_OUTPUT_DIR``:

* ``model.keras``  the architecture and weights, standard layers only (the creator loads it with
  ``safe_mode=True``: custom code in a model file is refused, not executed);
* ``result.json``  ``{"num_examples": <training examples>, "metrics": {"val_accuracy": ...}}``,
  which the runner reads into the result bundle's manifest.

Keras is imported only inside the default hooks.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

# --- hooks: begin ---
EPOCHS = 5


def load_data(data_dir: Path) -> tuple[Any, Any, Any, Any]:
    """``(x_train, y_train, x_val, y_val)`` from ``data.npz`` (no pickles)."""
    import numpy as np

    with np.load(data_dir / "data.npz", allow_pickle=False) as data:
        return data["x_train"], data["y_train"], data["x_val"], data["y_val"]


def build_model(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """The engineer's architecture. Replace this with your design."""
    import keras

    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])


def train_model(model: Any, x: Any, y: Any, x_val: Any, y_val: Any) -> dict[str, float]:
    """Train ``model`` in place; return validation metrics."""
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=EPOCHS, batch_size=32, verbose=2)
    loss, accuracy = model.evaluate(x_val, y_val, verbose=0)
    return {"val_loss": float(loss), "val_accuracy": float(accuracy)}


def save_model(model: Any, path: Path) -> None:
    """Write the model file the creator will load."""
    from decentralml.fl import save_model as save_architecture

    save_architecture(model, path)
# --- hooks: end ---


def _data_dir(given: Path | None, task_dir: Path) -> Path:
    """The contributor's ``data.npz`` when given, else the dataset the creator shipped."""
    if given is not None and (given / "data.npz").is_file():
        return given
    return task_dir


def fit(round: Any) -> None:
    """The bundle's Python entry point (``"entry": "engineer:fit"`` in template.json).

    An engineer's result is a model, not a weights update, so this writes ``model.keras`` and
    ``result.json`` itself and returns ``None``."""
    x, y, x_val, y_val = load_data(_data_dir(round.data_dir, round.task_dir))
    num_classes = int(max(y.max(), y_val.max())) + 1
    model = build_model(tuple(x.shape[1:]), num_classes)
    metrics = train_model(model, x, y, x_val, y_val)
    save_model(model, round.output_dir / "model.keras")
    result = {"num_examples": len(x), "metrics": metrics}
    (round.output_dir / "result.json").write_text(json.dumps(result, allow_nan=False))
    print(f"trained on {len(x)} examples: {metrics}")


def main() -> int:
    """By hand (``start_task.sh``): the same run, from the runner's environment."""
    if "DECENTRALML_OUTPUT_DIR" not in os.environ:
        print("DECENTRALML_OUTPUT_DIR is not set: run this task with the decentralml runner",
              file=sys.stderr)
        return 2
    from decentralml.storage.entry import run_once

    return run_once("engineer:fit")


if __name__ == "__main__":
    sys.exit(main())

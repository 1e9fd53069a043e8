"""The small reference model and local-training recipe used by the example bundle and the tests.

Kept here, not in the example, so the creator (building the architecture), the contributors'
``train.py`` (training it) and the tests (measuring federated vs central accuracy) all use one
definition. Layers and the model are named explicitly so variable names, and therefore the names
in ``update.npz``, do not depend on how many models a process built before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from decentralml.errors import InvalidInput
from decentralml.fl.keras import require_keras

#: Marks a model compiled by :func:`train_local`, with the learning rate it was compiled for.
_RECIPE_ATTR = "_decentralml_train_local_lr"


def _reset_optimizer(optimizer: Any, learning_rate: float) -> None:
    """Put a built Adam back in its initial state: step 0, zero moments, the learning rate."""
    for v in optimizer.variables:
        if str(v.path).rsplit("/", 1)[-1] == "learning_rate":
            v.assign(learning_rate)
        else:
            v.assign(np.zeros(tuple(v.shape), dtype=str(v.dtype)))


def make_digits_cnn(input_shape: Sequence[int] = (8, 8, 1), num_classes: int = 10,
                    *, seed: int = 0) -> Any:
    """A small CNN for digit images (151k parameters on 8x8 inputs), uncompiled.

    Two 3x3 convolutions, a 2x2 max-pool and two dense layers; standard layers only (no Lambda),
    so it survives ``safe_mode=True`` loading. ``seed`` fixes the initial weights, which is the
    round-0 global model every contributor starts from.
    """
    keras = require_keras()
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InvalidInput("input_shape", f"is {shape}", "(height, width, channels)")
    if num_classes < 2:
        raise InvalidInput("num_classes", f"is {num_classes}", ">= 2")
    init = keras.initializers.GlorotUniform
    inputs = keras.Input(shape=shape, name="image")
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1",
                            kernel_initializer=init(seed=seed))(inputs)
    h = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2",
                            kernel_initializer=init(seed=seed + 1))(h)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(128, activation="relu", name="dense",
                           kernel_initializer=init(seed=seed + 2))(h)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="logits",
                                 kernel_initializer=init(seed=seed + 3))(h)
    return keras.Model(inputs, outputs, name="digits_cnn")


def train_local(model: Any, x: np.ndarray, y: np.ndarray, epochs: int = 1,
                batch_size: int = 32, seed: int = 0, *, learning_rate: float = 1e-3,
                verbose: int = 0, proximal_mu: float = 0.0) -> dict[str, list[float]]:
    """Train ``model`` in place on (x, y) with a fresh Adam optimizer; return the history.

    The history maps each metric (``loss``, ``accuracy``) to its per-epoch values, as Keras'
    ``History.history`` does.

    A fresh optimizer per call is the federated recipe measured for this project: each round a
    contributor starts from the global weights, and carrying Adam's moments over from a previous
    round (computed for other weights) would only add noise. ``seed`` makes shuffling and any
    randomness in the model reproducible.

    Compiling makes Keras trace a new training function (about 1.5 s for this model on 2 cores,
    several times the training itself in a simulation), so a model already compiled here with the
    same learning rate keeps its compiled function and only has its optimizer reset to the state
    of a new Adam (zero moments, step 0), which is the same thing numerically.

    ``proximal_mu`` > 0 trains with FedProx's proximal term ``mu/2 * ||w - w_start||^2``, where
    ``w_start`` are the model's weights when the call starts (the global model, in a round); see
    :mod:`decentralml.fl.fedprox`.
    """
    keras = require_keras()
    if epochs < 1 or batch_size < 1:
        raise InvalidInput("epochs", "epochs and batch_size must be >= 1")
    if len(x) != len(y) or len(x) == 0:
        raise InvalidInput("x", f"{len(x)} examples for {len(y)} labels", "same, non-zero")
    keras.utils.set_random_seed(seed)
    mu = 0.0
    if proximal_mu:
        from decentralml.fl.fedprox import check_mu

        mu = check_mu(proximal_mu)
    recipe: float | tuple[float, float] = (float(learning_rate) if mu == 0
                                           else (float(learning_rate), mu))
    optimizer = getattr(model, "optimizer", None)
    if (getattr(model, _RECIPE_ATTR, None) == recipe and model.compiled
            and optimizer is not None and optimizer.built):
        _reset_optimizer(optimizer, float(learning_rate))
    else:
        if mu == 0:
            optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        else:
            from decentralml.fl.fedprox import proximal_adam

            optimizer = proximal_adam(learning_rate, mu)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        setattr(model, _RECIPE_ATTR, recipe)
    if mu:
        from decentralml.fl.fedprox import set_anchors

        set_anchors(model.optimizer, model)
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True,
                        verbose=verbose)
    return {k: [float(x) for x in v] for k, v in history.history.items()}

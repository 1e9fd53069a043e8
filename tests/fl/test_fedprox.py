"""FedProx in ``train_local``: the proximal term's gradient is exactly mu * (w - w_start)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

from decentralml.errors import InvalidInput
from decentralml.fl import clone_model, get_weights, set_weights, train_local, update_norm

pytestmark = pytest.mark.tf


def small_model(keras: ModuleType) -> Any:
    init = keras.initializers.GlorotUniform
    inputs = keras.Input(shape=(64,), name="x")
    h = keras.layers.Dense(16, activation="relu", name="h", kernel_initializer=init(seed=1))(
        inputs)
    out = keras.layers.Dense(10, activation="softmax", name="out",
                             kernel_initializer=init(seed=2))(h)
    return keras.Model(inputs, out, name="small")


@pytest.fixture(scope="module")
def data(digits: Any) -> tuple[np.ndarray, np.ndarray]:
    (x, y), _test, _source = digits
    return x[:256].reshape(256, -1), y[:256]


def reference_fedprox(keras: ModuleType, model: Any, x: np.ndarray, y: np.ndarray, mu: float,
                      steps: int, lr: float) -> list[np.ndarray]:
    """Full-batch Adam on loss + mu/2 ||w - w0||^2, the objective differentiated by autodiff."""
    import tensorflow as tf

    start = [tf.constant(v.numpy()) for v in model.trainable_variables]
    opt = keras.optimizers.Adam(learning_rate=lr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
            prox = tf.add_n([tf.reduce_sum(tf.square(v - a))
                             for v, a in zip(model.trainable_variables, start, strict=True)])
            total = loss + 0.5 * mu * prox
        grads = tape.gradient(total, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return get_weights(model)


def test_matches_the_proximal_objective(keras: ModuleType, data: Any) -> None:
    x, y = data
    base = small_model(keras)
    ours = clone_model(base)
    train_local(ours, x, y, epochs=4, batch_size=len(x), learning_rate=0.05, proximal_mu=0.5)
    ref = reference_fedprox(keras, clone_model(base), x, y, mu=0.5, steps=4, lr=0.05)
    plain = clone_model(base)
    train_local(plain, x, y, epochs=4, batch_size=len(x), learning_rate=0.05)
    for a, b in zip(get_weights(ours), ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # and the term really does something at this mu: plain training lands elsewhere
    assert update_norm(get_weights(plain), ref) > 100 * update_norm(get_weights(ours), ref)


def test_pulls_towards_the_start_and_reuses_the_compiled_model(keras: ModuleType,
                                                               data: Any) -> None:
    x, y = data
    base = small_model(keras)
    start = get_weights(base)
    free, held = clone_model(base), clone_model(base)
    train_local(free, x, y, epochs=3, batch_size=32)
    train_local(held, x, y, epochs=3, batch_size=32, proximal_mu=5.0)
    assert update_norm(get_weights(held), start) < 0.8 * update_norm(get_weights(free), start)
    # a second round on the same (compiled) model: the anchors move to the new start, and the
    # optimizer's own state is reset, as a freshly compiled model would have it
    n_vars = len(held.optimizer.variables)
    second_start = get_weights(free)
    set_weights(held, second_start)
    train_local(held, x, y, epochs=2, batch_size=32, seed=5, proximal_mu=5.0)
    fresh = clone_model(base, second_start)
    train_local(fresh, x, y, epochs=2, batch_size=32, seed=5, proximal_mu=5.0)
    assert len(held.optimizer.variables) == n_vars  # the anchors are not optimizer state
    for a, b in zip(get_weights(held), get_weights(fresh), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bad_mu(keras: ModuleType, data: Any) -> None:
    x, y = data
    with pytest.raises(InvalidInput, match="proximal_mu"):
        train_local(small_model(keras), x, y, proximal_mu=-0.1)

"""FedProx (Li et al., 2020): local training pulled back towards the global model.

Each contributor minimises its loss plus the proximal term ``mu / 2 * ||w - w_global||^2``, which
keeps contributors with very different data from drifting apart during long local training
(``mu = 0`` is plain local training, i.e. FedAvg). The creator sets ``proximal_mu`` in the task's
config; :func:`decentralml.fl.train_local` applies it (``proximal_mu=``).

Implemented as an optimizer that adds the proximal term's gradient ``mu * (w - w_global)`` to
each gradient before Keras' own Adam step, so ``model.fit`` (its data pipeline, metrics and
compiled function) is used unchanged and the reported loss stays the task loss. The anchors
``w_global`` are non-trainable variables set from the model's weights when training starts.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from decentralml.errors import InvalidInput
from decentralml.fl.keras import require_keras


def check_mu(mu: float) -> float:
    """``mu`` as a finite float >= 0, :class:`InvalidInput` otherwise."""
    v = float(mu)
    if not math.isfinite(v) or v < 0:
        raise InvalidInput("proximal_mu", f"is {mu}", ">= 0, finite")
    return v


class _Anchors:
    """The global weights, held outside Keras' attribute tracking (a plain object is not
    tracked, so the anchors never count as optimizer variables and survive its reset)."""

    def __init__(self, variables: dict[int, Any]) -> None:
        self.by_id = variables


@cache
def _prox_adam_class() -> type:
    keras = require_keras()

    class ProximalAdam(keras.optimizers.Adam):  # type: ignore[name-defined]
        """Adam on ``loss + mu/2 * ||w - anchor||^2``."""

        def __init__(self, mu: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.mu = float(mu)
            self._anchors = _Anchors({})

        def set_anchors(self, model: Any) -> None:
            anchors = self._anchors.by_id
            for v in model.trainable_variables:
                # a numpy copy: a variable initialised from ``v.value`` would read ``v`` itself
                start = keras.ops.convert_to_numpy(v)
                a = anchors.get(id(v))
                if a is None:
                    anchors[id(v)] = keras.Variable(start, trainable=False,
                                                    name="fedprox_anchor")
                else:
                    a.assign(start)

        def apply(self, grads: Any, trainable_variables: Any = None) -> Any:
            variables = (self._trainable_variables if trainable_variables is None
                         else list(trainable_variables))
            ops = keras.ops
            pulled = []
            for g, v in zip(grads, variables, strict=True):
                anchor = self._anchors.by_id.get(id(v))
                if g is None or anchor is None:
                    pulled.append(g)
                else:
                    pulled.append(ops.add(g, ops.multiply(self.mu, ops.subtract(v, anchor))))
            return super().apply(pulled, trainable_variables)

    return ProximalAdam


def proximal_adam(learning_rate: float, mu: float) -> Any:
    """A Keras Adam that also pulls every trainable weight towards its anchor with ``mu``."""
    return _prox_adam_class()(mu=check_mu(mu), learning_rate=learning_rate)


def set_anchors(optimizer: Any, model: Any) -> None:
    """Make ``model``'s current weights the point the proximal term pulls towards."""
    optimizer.set_anchors(model)

"""FedAvgM (Hsu et al., 2019): federated averaging with server momentum.

The pseudo-gradient ``d = mean(updates) - x`` is accumulated into a momentum buffer and the global
model moves along it (Reddi et al., 2021, Algorithm 1 with SGD-momentum as the server optimizer)::

    m = momentum * m + d
    x = x + eta * m

With ``momentum=0`` and ``eta=1`` this is FedAvg. Momentum helps most when contributors' data
differ (label skew), where successive rounds' means point in noisy but correlated directions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from decentralml.fl.server_opt import ServerOptimizer, beta


class FedAvgM(ServerOptimizer):
    """Server momentum ``momentum`` in [0, 1) and server learning rate ``eta`` (> 0)."""

    name = "fedavgm"
    SLOTS = ("m",)

    def __init__(self, eta: float = 1.0, momentum: float = 0.9, *,
                 max_share: float | None = None,
                 initial: Sequence[np.ndarray] | None = None) -> None:
        super().__init__(eta=eta, max_share=max_share, initial=initial)
        self.momentum = beta("momentum", momentum)

    def _update(self, index: int, delta: np.ndarray) -> np.ndarray:
        m = self._slots["m"][index]
        m *= self.momentum
        m += delta
        np.multiply(m, self.eta, out=delta)
        return delta

    def _params(self) -> dict[str, Any]:
        return {"eta": self.eta, "momentum": self.momentum}

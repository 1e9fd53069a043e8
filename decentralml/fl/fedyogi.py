"""FedYogi (Reddi et al., 2021, Algorithm 2, after Zaheer et al.'s Yogi): an additive second
moment that grows or shrinks by at most ``(1 - beta_2) * d**2`` per round::

    v = v - (1 - beta_2) * d**2 * sign(v - d**2)

Unlike Adam's average, ``v`` cannot collapse after a few quiet rounds, which keeps the step size
from jumping when contributors disagree from round to round (heterogeneous data).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from decentralml.fl.server_opt import AdaptiveServerOptimizer


class FedYogi(AdaptiveServerOptimizer):
    """``FedYogi(eta=1e-2, beta_1=0.9, beta_2=0.99, tau=1e-3)``."""

    name = "fedyogi"

    def __init__(self, eta: float = 1e-2, beta_1: float = 0.9, beta_2: float = 0.99,
                 tau: float = 1e-3, *, max_share: float | None = None,
                 initial: Sequence[np.ndarray] | None = None) -> None:
        super().__init__(eta=eta, beta_1=beta_1, beta_2=beta_2, tau=tau, max_share=max_share,
                         initial=initial)

    def _second_moment(self, v: np.ndarray, d2: np.ndarray) -> None:
        sign = np.sign(v - d2)
        sign *= d2
        sign *= 1.0 - self.beta_2
        v -= sign

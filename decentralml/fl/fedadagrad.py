"""FedAdagrad (Reddi et al., 2021, Algorithm 2): the second moment sums every round's squared
pseudo-gradient::

    v = v + d**2

so step sizes only ever shrink; ``beta_2`` is not used. Suits short jobs where the first rounds
should move the model most.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from decentralml.fl.server_opt import AdaptiveServerOptimizer


class FedAdagrad(AdaptiveServerOptimizer):
    """``FedAdagrad(eta=1e-2, beta_1=0.9, tau=1e-3)``."""

    name = "fedadagrad"

    def __init__(self, eta: float = 1e-2, beta_1: float = 0.9, tau: float = 1e-3, *,
                 max_share: float | None = None,
                 initial: Sequence[np.ndarray] | None = None) -> None:
        super().__init__(eta=eta, beta_1=beta_1, tau=tau, max_share=max_share,
                         initial=initial)

    def _second_moment(self, v: np.ndarray, d2: np.ndarray) -> None:
        v += d2

    def _params(self) -> dict[str, Any]:
        return {"eta": self.eta, "beta_1": self.beta_1, "tau": self.tau}

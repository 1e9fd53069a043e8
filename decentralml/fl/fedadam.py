"""FedAdam (Reddi et al., 2021, Algorithm 2): Adam on the server, over rounds.

The second moment is an exponential average of squared pseudo-gradients::

    v = beta_2 * v + (1 - beta_2) * d**2

so a coordinate's step size adapts to how much the contributors have recently moved it. See
:class:`~decentralml.fl.server_opt.AdaptiveServerOptimizer` for the shared rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from decentralml.fl.server_opt import AdaptiveServerOptimizer


class FedAdam(AdaptiveServerOptimizer):
    """``FedAdam(eta=1e-2, beta_1=0.9, beta_2=0.99, tau=1e-3)``."""

    name = "fedadam"

    def __init__(self, eta: float = 1e-2, beta_1: float = 0.9, beta_2: float = 0.99,
                 tau: float = 1e-3, *, max_share: float | None = None,
                 initial: Sequence[np.ndarray] | None = None) -> None:
        super().__init__(eta=eta, beta_1=beta_1, beta_2=beta_2, tau=tau, max_share=max_share,
                         initial=initial)

    def _second_moment(self, v: np.ndarray, d2: np.ndarray) -> None:
        v *= self.beta_2
        v += (1.0 - self.beta_2) * d2

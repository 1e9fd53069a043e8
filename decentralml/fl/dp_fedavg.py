"""DP-FedAvg, server side (McMahan et al., 2018, "Learning Differentially Private Recurrent
Language Models"): clip every update, average, add Gaussian noise to the average.

Per round, with the current global model ``x`` and K accepted updates ``w_k``::

    d_k = (w_k - x) * min(1, C / ||w_k - x||)          # clipped, so no one moves it more than C
    x   = x + eta * (mean_k d_k + N(0, (sigma * C / K)^2))

The mean is unweighted: weighing by the claimed ``num_examples`` would let one contributor's
share, hence the sensitivity, grow beyond C / K. The noise has standard deviation
``noise_multiplier * C`` on the *sum* (the sensitivity of the sum is C under zero-out adjacency,
see :mod:`decentralml.fl.privacy`), i.e. ``sigma * C / K`` on the mean. Streaming like FedAvg:
each update is read twice (its norm, then its clipped contribution), one layer at a time.

``seed`` makes the noise reproducible (round ``t`` draws from ``default_rng([seed, t])``, so a
resumed job draws the same noise); leave it None in a real job, where each round's noise then
comes from fresh OS entropy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from decentralml.fl.base import Layout, Update, check_array
from decentralml.fl.privacy import (
    Accountant,
    Adjacency,
    PrivacyGuarantee,
    check_dp_params,
    clip_factor,
    privacy_guarantee,
)
from decentralml.fl.server_opt import ServerOptimizer


class DPFedAvg(ServerOptimizer):
    """``DPFedAvg(clipping_norm=C, noise_multiplier=sigma, delta=1e-5)``; ``eta`` defaults to 1.

    ``delta`` and ``accountant`` only matter for :meth:`guarantee`. After each round
    ``last_norms`` holds every update's norm before clipping (for logs: if most are clipped, C is
    too small and the model learns slowly; if none, C could be smaller for the same noise).
    """

    name = "dp-fedavg"
    SLOTS = ()

    def __init__(self, clipping_norm: float, noise_multiplier: float, *, eta: float = 1.0,
                 delta: float = 1e-5, seed: int | None = None, accountant: Accountant = "pld",
                 adjacency: Adjacency = "zero-out",
                 initial: Sequence[np.ndarray] | None = None) -> None:
        super().__init__(eta=eta, initial=initial)
        self.clipping_norm, self.noise_multiplier = check_dp_params(clipping_norm,
                                                                    noise_multiplier)
        self.delta = float(delta)
        self.seed = seed
        self.accountant: Accountant = accountant
        self.adjacency: Adjacency = adjacency
        self.last_norms: list[float] = []

    def guarantee(self, rounds: int | None = None) -> PrivacyGuarantee:
        """The (epsilon, delta) after ``rounds`` rounds (default: the rounds run so far, >= 1)."""
        return privacy_guarantee(side="server", clipping_norm=self.clipping_norm,
                                 noise_multiplier=self.noise_multiplier,
                                 rounds=rounds if rounds is not None else max(self.steps, 1),
                                 delta=self.delta, accountant=self.accountant,
                                 adjacency=self.adjacency)

    def _rng(self) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([int(self.seed), self.steps])

    def _pseudo_gradient(self, updates: Sequence[Update], layout: Layout,
                         current: Sequence[np.ndarray]) -> list[np.ndarray]:
        k = len(updates)
        acc = [np.zeros(shape, dtype=np.float64) for shape in layout.shapes]
        norms: list[float] = []
        for u in updates:
            total = 0.0
            for i in range(len(layout)):
                d = _delta(u, i, layout, current)
                total += float(np.dot(d.reshape(-1), d.reshape(-1)))
            norm = math.sqrt(total)
            norms.append(norm)
            factor = clip_factor(norm, self.clipping_norm) / k
            for i in range(len(layout)):
                d = _delta(u, i, layout, current)
                d *= factor
                acc[i] += d
        if self.noise_multiplier > 0:
            rng = self._rng()
            std = self.noise_multiplier * self.clipping_norm / k
            for a in acc:
                a += rng.normal(0.0, std, size=a.shape)
        self.last_norms = norms
        return acc

    def _update(self, index: int, delta: np.ndarray) -> np.ndarray:
        delta *= self.eta
        return delta

    def _params(self) -> dict[str, Any]:
        return {"clipping_norm": self.clipping_norm, "noise_multiplier": self.noise_multiplier,
                "eta": self.eta, "delta": self.delta}


def _delta(u: Update, index: int, layout: Layout, current: Sequence[np.ndarray]) -> np.ndarray:
    w = check_array(u, index, u.weights[index], layout)
    return np.subtract(w, current[index], dtype=np.float64)



"""Coordinate-wise trimmed mean (Yin et al., 2018): drop the extremes, average the rest.

For each coordinate the ``floor(beta * K)`` largest and as many smallest proposals are discarded
and the remaining ones averaged, so up to that many arbitrary updates cannot pull a coordinate
beyond the honest range. Between the mean (``beta=0``) and the median (``beta`` close to 0.5).
Claims of ``num_examples`` are ignored, for the same reason as in :mod:`.median`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from decentralml.errors import InvalidInput
from decentralml.fl.base import (
    Aggregator,
    Update,
    Weights,
    layout_of,
    stack_layer,
    validate_fraction,
)


class TrimmedMean(Aggregator):
    """Mean of each coordinate after trimming a fraction ``beta`` (in [0, 0.5)) from each end."""

    name = "trimmed-mean"

    def __init__(self, beta: float = 0.1) -> None:
        self.beta = validate_fraction("beta", beta, low=0.0, high=0.5)

    def __repr__(self) -> str:
        return f"TrimmedMean(beta={self.beta})"

    def trimmed(self, k: int) -> int:
        """How many proposals are dropped at each end when there are ``k`` updates."""
        return int(np.floor(self.beta * k))

    def aggregate(self, updates: Sequence[Update]) -> Weights:
        layout = layout_of(updates)
        k = len(updates)
        t = self.trimmed(k)
        if k - 2 * t < 1:  # unreachable for beta < 0.5, kept as a guard for subclasses
            raise InvalidInput("beta", f"{self.beta} trims every one of {k} updates", "< 0.5")
        out: Weights = []
        for i in range(len(layout)):
            stacked = stack_layer(updates, i, layout)
            if t:
                stacked.sort(axis=0)
                stacked = stacked[t : k - t]
            mean = stacked.mean(axis=0, dtype=np.float64)
            out.append(np.asarray(mean).astype(layout.dtypes[i]))
        return out

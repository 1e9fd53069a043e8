"""Coordinate-wise median (Yin et al., 2018): each weight is the median of the K proposals.

Robust to fewer than half the updates being arbitrary, whatever their scale, because one huge value
only moves a coordinate's median by one rank. Claims of ``num_examples`` are ignored: a robust
strategy that trusted them would be as easy to poison as :class:`~decentralml.fl.fedavg.FedAvg`.
Works one layer at a time, so memory is K copies of the largest layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from decentralml.fl.base import Aggregator, Update, Weights, layout_of, stack_layer


class Median(Aggregator):
    """Coordinate-wise median of the updates (unweighted); the mean of the two middle values
    when K is even. Computed in float64 and cast back to the updates' dtype."""

    name = "median"

    def aggregate(self, updates: Sequence[Update]) -> Weights:
        layout = layout_of(updates)
        out: Weights = []
        for i in range(len(layout)):
            stacked = stack_layer(updates, i, layout)
            med = np.median(stacked, axis=0, overwrite_input=True)
            out.append(np.asarray(med, dtype=np.float64).astype(layout.dtypes[i]))
        return out

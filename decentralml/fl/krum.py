"""Krum and Multi-Krum (Blanchard et al., 2017): keep the updates that agree with the most others.

Each update is scored by the sum of its squared distances to its ``K - f - 2`` nearest
neighbours; an attacker controlling at most ``f`` updates cannot make an outlier look central, as
long as ``K >= 2f + 3``. :class:`Krum` returns the single best-scored update, :class:`MultiKrum`
the plain mean of the ``m`` best. Unlike the coordinate-wise strategies Krum selects whole
updates, which also makes it a way to tell which contributors to trust (:meth:`MultiKrum.select`).
Distances are accumulated layer by layer in float64 (K copies of one layer in memory at a time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from decentralml.errors import InvalidInput
from decentralml.fl.base import (
    Aggregator,
    Layout,
    Update,
    Weights,
    check_array,
    layout_of,
    stack_layer,
)


def pairwise_sq_distances(updates: Sequence[Update], layout: Layout) -> np.ndarray:
    """K x K matrix of squared Euclidean distances between whole updates (float64).

    Computed from differences rather than from norms and dot products, which would cancel
    catastrophically for the nearly identical updates honest contributors tend to send.
    """
    k = len(updates)
    d = np.zeros((k, k), dtype=np.float64)
    for i in range(len(layout)):
        stacked = stack_layer(updates, i, layout).reshape(k, -1)
        for a in range(k):
            for b in range(a + 1, k):
                diff = np.subtract(stacked[a], stacked[b], dtype=np.float64)
                d[a, b] += float(np.dot(diff, diff))
        del stacked
    return d + d.T


class MultiKrum(Aggregator):
    """Mean of the ``m`` updates with the best Krum scores, tolerating ``f`` Byzantine ones.

    ``m`` defaults to ``K - f``. Needs ``K >= 2f + 3`` updates, otherwise the score is
    meaningless and :class:`~decentralml.errors.InvalidInput` is raised.
    """

    name = "multi-krum"

    def __init__(self, f: int = 1, m: int | None = None) -> None:
        if isinstance(f, bool) or not isinstance(f, int) or f < 0:
            raise InvalidInput("f", f"is {f!r}", "an integer >= 0")
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise InvalidInput("m", f"is {m!r}", "an integer >= 1")
        self.f = f
        self.m = m

    def __repr__(self) -> str:
        return f"{type(self).__name__}(f={self.f}, m={self.m})"

    def _count(self, k: int) -> int:
        m = k - self.f if self.m is None else self.m
        if m > k:
            raise InvalidInput("m", f"{m} is more than the {k} updates", f"<= {k}")
        return m

    def scores(self, updates: Sequence[Update]) -> list[float]:
        """Each update's Krum score (lower is more central)."""
        layout = layout_of(updates)
        k = len(updates)
        if k < 2 * self.f + 3:
            raise InvalidInput("updates", f"{k} updates cannot tolerate f={self.f}",
                               f">= 2f + 3 = {2 * self.f + 3}")
        d = pairwise_sq_distances(updates, layout)
        neighbours = k - self.f - 2
        scores = []
        for a in range(k):
            others = np.delete(d[a], a)
            scores.append(float(np.sort(others)[:neighbours].sum()))
        return scores

    def select(self, updates: Sequence[Update]) -> list[int]:
        """Indices of the updates kept, best first (ties broken by position)."""
        scores = self.scores(updates)
        m = self._count(len(updates))
        return sorted(range(len(updates)), key=lambda i: (scores[i], i))[:m]

    def aggregate(self, updates: Sequence[Update]) -> Weights:
        chosen = self.select(updates)
        layout = layout_of(updates)
        out: Weights = []
        for i in range(len(layout)):
            acc = np.zeros(layout.shapes[i], dtype=np.float64)
            for c in chosen:
                u = updates[c]
                acc += check_array(u, i, u.weights[i], layout)
            out.append((acc / len(chosen)).astype(layout.dtypes[i]))
        return out


class Krum(MultiKrum):
    """The single update with the best Krum score (Multi-Krum with ``m = 1``)."""

    name = "krum"

    def __init__(self, f: int = 1) -> None:
        super().__init__(f=f, m=1)

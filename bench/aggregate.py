"""Streaming FedAvg against a load-all baseline and against the machine's memory bandwidth.

K updates of P float32 parameters (default 10 x 10M) are aggregated three ways:

- ``add``: ``acc += w`` for every array of every update, the memory-bound limit of any weighted
  average on this machine (a weighted add cannot touch less memory), measured in the same run;
- ``fedavg``: :class:`decentralml.fl.FedAvg` with a float32 accumulator (the default is float64;
  float32 measures the streaming path at its smallest), weights, NaN/inf check;
- ``load-all``: stack the K models and call ``np.average`` per layer, the naive approach.

Reported: best-of-N seconds, effective bandwidth, ``add/fedavg`` ratio (target >= 0.7) and the
peak extra memory each approach allocates (tracemalloc, in a separate run; target for FedAvg: at
most one model). Run: ``.venv/bin/python bench/aggregate.py [--k 10] [--params 10000000]``.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from decentralml.fl import FedAvg, Update


def layer_sizes(params: int) -> list[int]:
    """A model-like split: two big matrices, a medium one, a few small ones."""
    big = int(params * 0.4)
    medium = int(params * 0.15)
    small = [1000, 512, 10]
    return [big, big, medium, params - 2 * big - medium - sum(small), *small]


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def peak_extra_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    result = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return peak - base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    sizes = layer_sizes(args.params)
    rng = np.random.default_rng(0)
    nums = [int(n) for n in rng.integers(100, 1000, size=args.k)]
    base = [rng.standard_normal(s, dtype=np.float32) for s in sizes]
    updates = [Update([b + np.float32(0.01 * k) for b in base], n, source=f"u{k}")
               for k, n in enumerate(nums)]
    model_bytes = sum(s * 4 for s in sizes)

    def add() -> list[np.ndarray]:
        acc = [np.zeros(s, np.float32) for s in sizes]
        for u in updates:
            for a, w in zip(acc, u.weights, strict=True):
                a += w
        return acc

    fedavg = FedAvg(accumulator=np.float32)

    def stream() -> list[np.ndarray]:
        return fedavg.aggregate(updates)

    def load_all() -> list[np.ndarray]:
        out = []
        for i in range(len(sizes)):
            stacked = np.stack([u.weights[i] for u in updates])
            out.append(np.average(stacked, axis=0, weights=nums).astype(np.float32))
        return out

    # correctness first: the three agree
    ref = load_all()
    for got, want in zip(stream(), ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    moved = 3 * model_bytes * args.k  # read acc, read w, write acc, per update
    rows = []
    t_add = best_of(add, args.repeat)
    for name, fn in (("add (limit)", add), ("fedavg (streaming)", stream),
                     ("load-all (np.average)", load_all)):
        t = t_add if fn is add else best_of(fn, args.repeat)
        rows.append((name, t, moved / t / 1e9, t_add / t, peak_extra_bytes(fn) / model_bytes))

    print(f"K={args.k} updates x {args.params / 1e6:g}M float32 params "
          f"({model_bytes / 1e6:.0f} MB per model), best of {args.repeat}")
    print(f"{'approach':<24}{'seconds':>9}{'GB/s':>8}{'add/this':>10}{'extra mem (models)':>20}")
    for name, t, bw, ratio, mem in rows:
        print(f"{name:<24}{t:>9.3f}{bw:>8.1f}{ratio:>10.2f}{mem:>20.2f}")
    ratio = t_add / rows[1][1]
    mem = rows[1][4]
    print(f"fedavg reaches {ratio:.2f} of the memory-bound limit (target >= 0.7) with "
          f"{mem:.2f} models of extra memory (target <= 1)")


if __name__ == "__main__":
    main()

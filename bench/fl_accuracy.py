"""Central vs federated accuracy on scikit-learn's digits, for several splits and strategies.

K in {3, 5} clients x {IID, Dirichlet(0.5), by-label} splits, R rounds of E local epochs each
(defaults R=5, E=2, as measured when scoping), with FedAvg and a robust strategy (coordinate-wise
Median by default). The central baseline trains the same model on all the data for R*E epochs.
Every run starts from the same seeded initial model, and each client's optimizer is reset every
round (``train_local``). Offline: the data ships with scikit-learn.

Run: ``.venv/bin/python bench/fl_accuracy.py [--rounds 5] [--epochs 2] [--robust median]``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from decentralml.fl import (
    Aggregator,
    FedAvg,
    Median,
    TrimmedMean,
    Update,
    clone_model,
    evaluate,
    get_weights,
    load_digits_dataset,
    make_digits_cnn,
    partition_by_label,
    partition_dirichlet,
    partition_iid,
    set_weights,
    train_local,
)

Shards = list[tuple[np.ndarray, np.ndarray]]
SPLITS: dict[str, Callable[[np.ndarray, np.ndarray, int], Shards]] = {
    "IID": lambda x, y, k: partition_iid(x, y, k, seed=0),
    "Dirichlet(0.5)": lambda x, y, k: partition_dirichlet(x, y, k, alpha=0.5, seed=0),
    "by-label": lambda x, y, k: partition_by_label(x, y, k, seed=0),
}
ROBUST: dict[str, Callable[[], Aggregator]] = {
    "median": Median,
    "trimmed_mean": lambda: TrimmedMean(0.2),
}


def federate(template: Any, clients: list[Any], shards: Shards, strategy: Aggregator,
             rounds: int, epochs: int) -> list[np.ndarray]:
    """R rounds of local training from the global weights, then ``strategy``; in memory."""
    weights = get_weights(template)
    for r in range(rounds):
        updates = []
        for k, (xs, ys) in enumerate(shards):
            set_weights(clients[k], weights)
            train_local(clients[k], xs, ys, epochs=epochs, batch_size=32, seed=1000 * r + k)
            updates.append(Update(get_weights(clients[k]), len(ys), source=f"client {k}"))
        weights = strategy.aggregate(updates)
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--clients", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--robust", choices=sorted(ROBUST), default="median")
    args = parser.parse_args()

    started = time.perf_counter()
    (x, y), (x_test, y_test), source = load_digits_dataset()
    template = make_digits_cnn(x.shape[1:], 10, seed=0)
    central = clone_model(template)
    train_local(central, x, y, epochs=args.rounds * args.epochs, batch_size=32, seed=0)
    central_acc = evaluate(central, x_test, y_test)["accuracy"]
    scorer = clone_model(template)
    clients = [clone_model(template) for _ in range(max(args.clients))]

    rows = []
    for split, make in SPLITS.items():
        for k in args.clients:
            shards = make(x, y, k)
            accs = []
            for strategy in (FedAvg(), ROBUST[args.robust]()):
                set_weights(scorer, federate(template, clients, shards, strategy,
                                             args.rounds, args.epochs))
                accs.append(evaluate(scorer, x_test, y_test)["accuracy"])
            sizes = "/".join(str(len(s[1])) for s in shards)
            rows.append((split, k, sizes, *accs))
            print(f"  {split} K={k}: fedavg {accs[0]:.3f}, {args.robust} {accs[1]:.3f}",
                  flush=True)

    print(f"\n{source}: {len(y)} train / {len(y_test)} test, R={args.rounds} rounds x "
          f"E={args.epochs} epochs, Adam 1e-3, batch 32, optimizer reset per client per round")
    print(f"central ({args.rounds * args.epochs} epochs on all data): {central_acc:.3f}\n")
    robust = args.robust
    print(f"| split | K | client sizes | FedAvg | {robust} | FedAvg - central |")
    print("|---|---|---|---|---|---|")
    for split, k, sizes, fed, rob in rows:
        print(f"| {split} | {k} | {sizes} | {fed:.3f} | {rob:.3f} | {fed - central_acc:+.3f} |")
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()

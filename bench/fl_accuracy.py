"""Federated vs central accuracy on digits: server optimizers, FedProx and DP, on the demo's budget.

Everything is simulated in one process (the protocol does not change the numbers: the demo's
federated accuracy per round equals this simulation's FedAvg row), with the demo's recipe: the
digits CNN from seed 0, R=4 rounds of E=2 local epochs, batch 32, Adam 1e-3 reset every round,
contributor seed 0 (the bundle's config), the demo's split of the 450 test images into a holdout
half (225, used here to pick each optimizer's hyperparameters from a small grid) and an evaluation
half (225, every accuracy reported). The central baseline trains the same model on all the
training data for R*E epochs.

Tables:

1. the demo's 3 IID shards: every server optimizer (best of its grid on the holdout) and FedProx
   next to FedAvg, against central; the goal is the best within 0.01 of central;
2. Dirichlet(0.5) label skew with K=5 and by-label shards with K=3, each optimizer with the
   hyperparameters chosen in table 1;
3. DP-FedAvg (server side) calibrated to epsilon <= 8 at delta=1e-5 for the whole job, with the
   demo's K=3 and with K=100 small contributors, and its accuracy cost against FedAvg.

Run: ``.venv/bin/python bench/fl_accuracy.py [--rounds 4] [--epochs 2] [--skip-dp]``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from decentralml.fl import (
    Aggregator,
    DPFedAvg,
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedYogi,
    Update,
    clone_model,
    evaluate,
    get_weights,
    load_digits_dataset,
    make_digits_cnn,
    noise_multiplier_for,
    partition_by_label,
    partition_dirichlet,
    partition_iid,
    set_weights,
    train_local,
)

Shards = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Candidate:
    """One strategy setting: a label, a factory (fresh state per run) and FedProx's mu."""

    family: str
    label: str
    make: Callable[[], Aggregator]
    mu: float = 0.0


GRID: list[Candidate] = [
    Candidate("FedAvg", "FedAvg", FedAvg),
    *[Candidate("FedProx", f"FedProx mu={mu:g}", FedAvg, mu) for mu in (0.01, 0.1)],
    *[Candidate("FedAvgM", f"FedAvgM eta={e:g} momentum={b:g}",
                lambda e=e, b=b: FedAvgM(eta=e, momentum=b))
      for e, b in ((1.0, 0.5), (1.0, 0.9), (1.5, 0.0), (2.0, 0.0))],
    *[Candidate("FedAdam", f"FedAdam eta={e:g}", lambda e=e: FedAdam(eta=e, tau=1e-3))
      for e in (1e-2, 3e-2, 1e-1)],
    *[Candidate("FedYogi", f"FedYogi eta={e:g}", lambda e=e: FedYogi(eta=e, tau=1e-3))
      for e in (1e-2, 3e-2, 1e-1)],
    *[Candidate("FedAdagrad", f"FedAdagrad eta={e:g}", lambda e=e: FedAdagrad(eta=e, tau=1e-3))
      for e in (1e-2, 3e-2, 1e-1)],
]


class Simulation:
    """R rounds of local training from the global weights, then the strategy; in memory."""

    def __init__(self, template: Any, rounds: int, epochs: int) -> None:
        self.template = template
        self.rounds = rounds
        self.epochs = epochs
        # one client model for every contributor: each starts from the global weights with a
        # fresh optimizer anyway, and its compiled training function is then traced only once
        self.client = clone_model(template)
        self.scorer = clone_model(template)

    def run(self, shards: Shards, strategy: Aggregator, mu: float = 0.0) -> list[np.ndarray]:
        weights = get_weights(self.template)
        for _ in range(self.rounds):
            updates = []
            for k, (xs, ys) in enumerate(shards):
                client = self.client
                set_weights(client, weights)
                train_local(client, xs, ys, epochs=self.epochs, batch_size=32, seed=0,
                            proximal_mu=mu)
                updates.append(Update(get_weights(client), len(ys), source=f"client {k}"))
            weights = strategy.apply(weights, updates)
        return weights

    def accuracy(self, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
        set_weights(self.scorer, weights)
        return float(evaluate(self.scorer, x, y)["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--epsilon", type=float, default=8.0)
    parser.add_argument("--skip-dp", action="store_true")
    parser.add_argument("--only", nargs="+", metavar="LABEL",
                        help="run only these grid points of table 1 (and FedAvg), no other table")
    args = parser.parse_args()

    started = time.perf_counter()
    (x, y), (x_test, y_test), source = load_digits_dataset()
    half = len(y_test) // 2
    holdout = (x_test[:half], y_test[:half])
    evaluation = (x_test[half:], y_test[half:])
    template = make_digits_cnn(x.shape[1:], 10, seed=0)
    central = clone_model(template)
    train_local(central, x, y, epochs=args.rounds * args.epochs, batch_size=32, seed=0)
    central_acc = float(evaluate(central, *evaluation)["accuracy"])
    sim = Simulation(template, args.rounds, args.epochs)
    print(f"{source}: {len(y)} train, holdout {half}, evaluation {len(y_test) - half}; "
          f"R={args.rounds} x E={args.epochs}, Adam 1e-3, batch 32; central {central_acc:.3f}",
          flush=True)

    # 1. the demo's split: every candidate, best of each family chosen on the holdout
    iid = partition_iid(x, y, 3, seed=0)
    results: dict[str, tuple[float, float]] = {}
    grid = [c for c in GRID if not args.only or c.label in args.only or c.label == "FedAvg"]
    for cand in grid:
        w = sim.run(iid, cand.make(), cand.mu)
        results[cand.label] = (sim.accuracy(w, *holdout), sim.accuracy(w, *evaluation))
        print(f"  IID K=3 {cand.label}: holdout {results[cand.label][0]:.3f}, "
              f"evaluation {results[cand.label][1]:.3f}", flush=True)
    best: dict[str, Candidate] = {}
    for cand in grid:
        if cand.family not in best or results[cand.label][0] > results[best[cand.family].label][0]:
            best[cand.family] = cand

    print(f"\n### The demo's job (3 IID shards), central {central_acc:.3f}\n")
    print("| strategy | setting (best on holdout) | holdout | evaluation | - central |")
    print("|---|---|---|---|---|")
    for family, cand in best.items():
        h, e = results[cand.label]
        print(f"| {family} | {cand.label} | {h:.3f} | {e:.3f} | {e - central_acc:+.3f} |")
    top = max(best.values(), key=lambda c: results[c.label][0])
    gap = central_acc - results[top.label][1]
    print(f"\nbest on the holdout: {top.label}, evaluation {results[top.label][1]:.3f}, "
          f"{gap:.3f} below central (goal <= 0.01: {'met' if gap <= 0.01 else 'NOT met'})")
    print("all grid points (evaluation): " + ", ".join(
        f"{label} {acc[1]:.3f}" for label, acc in results.items()))

    if args.only:
        return

    # 2. heterogeneous splits, the chosen settings
    splits: dict[str, Shards] = {
        "Dirichlet(0.5) K=5": partition_dirichlet(x, y, 5, alpha=0.5, seed=0),
        "by-label K=3": partition_by_label(x, y, 3, seed=0),
    }
    rows = []
    for split, shards in splits.items():
        accs = {}
        for family, cand in best.items():
            accs[family] = sim.accuracy(sim.run(shards, cand.make(), cand.mu), *evaluation)
            print(f"  {split} {cand.label}: {accs[family]:.3f}", flush=True)
        rows.append((split, "/".join(str(len(s[1])) for s in shards), accs))
    print("\n### Heterogeneous contributors (evaluation accuracy; settings from the IID table)\n")
    print("| split | sizes | " + " | ".join(best) + " |")
    print("|---|---|" + "---|" * len(best))
    for split, sizes, accs in rows:
        cells = " | ".join(f"{accs[f]:.3f} ({accs[f] - accs['FedAvg']:+.3f})" if f != "FedAvg"
                           else f"{accs[f]:.3f}" for f in best)
        print(f"| {split} | {sizes} | {cells} |")

    # 3. DP-FedAvg at epsilon <= target for the whole job
    if not args.skip_dp:
        delta = 1e-5
        sigma = noise_multiplier_for(args.epsilon, args.rounds, delta)
        print(f"\n### DP-FedAvg (server side), epsilon <= {args.epsilon:g} at delta={delta:g} "
              f"over {args.rounds} rounds: noise multiplier {sigma:.3f}\n")
        print("| contributors | clipping norm (median update norm) | FedAvg | DP-FedAvg | cost |")
        print("|---|---|---|---|---|")
        for k in (3, 100):
            shards = partition_iid(x, y, k, seed=0)
            fed = (results["FedAvg"][1] if k == 3
                   else sim.accuracy(sim.run(shards, FedAvg()), *evaluation))
            probe = DPFedAvg(clipping_norm=1e9, noise_multiplier=0.0)  # norms, no clipping
            sim_one = Simulation(template, 1, args.epochs)
            sim_one.run(shards, probe)
            c = float(np.median(probe.last_norms))  # clip at the median first-round norm
            dp = DPFedAvg(clipping_norm=c, noise_multiplier=sigma, delta=delta, seed=0)
            acc = sim.accuracy(sim.run(shards, dp), *evaluation)
            eps = dp.guarantee(args.rounds).epsilon
            print(f"| {k} | {c:.3f} | {fed:.3f} | {acc:.3f} (epsilon {eps:.2f}) | "
                  f"{acc - fed:+.3f} |", flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()

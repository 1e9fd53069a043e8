"""What contribution scoring costs on the demo's model: leave-one-out against Shapley.

The demo's digits CNN, K contributors (default 5, issue 22's mix: a free rider, a copy, one on
shuffled labels, the rest honest, each trained for 2 epochs on its own shard), scored on the 450
holdout images by :func:`decentralml.fl.contribution_scores` with ``"loo"``, exact ``"shapley"``
and sampled ``"shapley"`` (``--samples`` permutations, forced by an update set too large for the
exact game when ``--sampled-k`` > 0). Reported per method: best-of-N wall time, holdout
evaluations, seconds per evaluation, and the ratio to leave-one-out measured in the same run;
the scores themselves, so a reader sees what the time bought.

Run: ``.venv/bin/python bench/contribution.py [--k 5] [--repeat 3] [--samples 10]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from decentralml.fl import (
    ContributionReport,
    Update,
    clone_model,
    contribution_scores,
    get_weights,
    holdout_evaluator,
    load_digits_dataset,
    make_digits_cnn,
    split_shards,
    train_local,
)


def best_of(fn: Callable[[], ContributionReport], repeat: int) -> tuple[float, ContributionReport]:
    best, report = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        report = fn()
        best = min(best, time.perf_counter() - t)
    assert report is not None
    return best, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=5, help="contributors (>= 4)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10, help="permutations, sampled Shapley")
    parser.add_argument("--sampled-k", type=int, default=8,
                        help="honest contributors for the sampled run (0: skip it)")
    args = parser.parse_args()

    (x, y), (x_test, y_test), _ = load_digits_dataset()
    model = make_digits_cnn(seed=0)
    start = get_weights(model)
    honest = args.k - 3
    shards = split_shards(x, y, max(honest + 1, args.sampled_k), seed=0)

    def trained(xs: np.ndarray, ys: np.ndarray, seed: int) -> list[np.ndarray]:
        local = clone_model(model, start)
        train_local(local, xs, ys, epochs=2, seed=seed)
        return get_weights(local)

    t = time.perf_counter()
    updates: dict[int, Update] = {0: Update(start, len(shards[0][1]))}            # free rider
    honest_updates = [trained(*shards[i], i) for i in range(max(honest, args.sampled_k))]
    updates[1] = Update(honest_updates[0], len(shards[0][1]))
    shuffled_y = np.random.default_rng(3).permutation(shards[-1][1])
    updates[2] = Update(trained(shards[-1][0], shuffled_y, 99), len(shuffled_y))  # shuffled
    updates[3] = Update([w.copy() for w in honest_updates[0]], len(shards[0][1]))  # a copy
    for i in range(1, honest):
        updates[3 + i] = Update(honest_updates[i], len(shards[i][1]))
    print(f"trained {len(honest_updates) + 1} models in {time.perf_counter() - t:.1f} s")

    evaluate = holdout_evaluator(model, x_test, y_test)
    evaluate(start)  # the first call traces the model: not part of any method's cost

    runs: list[tuple[str, float, ContributionReport]] = []
    for label, kwargs in (("loo", {"method": "loo"}),
                          ("shapley (exact)", {"method": "shapley", "samples": 30})):
        seconds, report = best_of(lambda kw=kwargs: contribution_scores(  # type: ignore[misc]
            start, updates, evaluate, **kw), args.repeat)
        runs.append((label, seconds, report))
    if args.sampled_k:
        many = {i: Update(w, len(shards[i][1])) for i, w in enumerate(honest_updates)}
        seconds, report = best_of(lambda: contribution_scores(
            start, many, evaluate, method="shapley", samples=args.samples), args.repeat)
        runs.append((f"shapley ({args.samples} permutations, K={len(many)})", seconds, report))
        seconds, report = best_of(lambda: contribution_scores(start, many, evaluate),
                                  args.repeat)
        runs.append((f"loo (K={len(many)})", seconds, report))

    base = runs[0][1]
    print(f"{'method':<36} {'seconds':>8} {'evals':>6} {'s/eval':>7} {'x loo':>6}  ppm")
    for label, seconds, report in runs:
        ppm = " ".join(f"{c.key}:{c.ppm}" + ("(copy)" if c.duplicate_of is not None else "")
                       for c in report.contributions)
        print(f"{label:<36} {seconds:8.3f} {report.evaluations:6d} "
              f"{seconds / report.evaluations:7.4f} {seconds / base:6.2f}  {ppm}")


if __name__ == "__main__":
    main()

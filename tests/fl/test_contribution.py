"""Contribution scores on the digits data with a numpy softmax regression (fast, no TensorFlow).

The scenario of issue 22: a free rider (sends the global model back), a copy of an honest update,
one trained on shuffled labels and two honest contributors. The Keras version of the same
scenario is in test_contribution_tf.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decentralml.errors import InvalidInput, ModelError
from decentralml.fl import (
    FedAvg,
    ScoringSpec,
    Update,
    contribution_scores,
    holdout_commitment,
    save_shard,
    split_shards,
    verify_scores,
)
from decentralml.fl.contribution import MAX_EVALUATIONS, MAX_UPDATES, PPM, SCORING_VERSION

pytest.importorskip("sklearn")  # the digits ship with scikit-learn (the [tf] extra)


def _probs(w: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    z = x @ np.asarray(w[0], np.float64) + np.asarray(w[1], np.float64)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def softmax_loss(w: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    p = _probs(w, x)[np.arange(len(y)), y]
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())


def train(w: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, steps: int = 30
          ) -> list[np.ndarray]:
    """Full-batch gradient descent on the cross-entropy: a contributor's local training."""
    out = [np.asarray(a, np.float64).copy() for a in w]
    onehot = np.eye(10)[y]
    for _ in range(steps):
        g = (_probs(out, x) - onehot) / len(y)
        out[0] -= 0.5 * x.T @ g
        out[1] -= 0.5 * g.sum(axis=0)
    return [a.astype(np.float32) for a in out]


class Scenario:
    """The five contributors, keyed by submission id in the order they reached the chain."""

    def __init__(self) -> None:
        from decentralml.fl import load_digits_dataset

        (x, y), (xt, yt), _ = load_digits_dataset()
        self.x_test, self.y_test = xt.reshape(len(xt), -1), yt
        x = x.reshape(len(x), -1)
        self.x_train, self.y_train = x, y
        self.glob = [np.zeros((64, 10), np.float32), np.zeros(10, np.float32)]
        shards = split_shards(x, y, 4, seed=0)
        honest_a = train(self.glob, *shards[0])
        honest_b = train(self.glob, *shards[1])
        shuffled = train(self.glob, shards[2][0],
                         np.random.default_rng(3).permutation(shards[2][1]))
        n = [len(s[1]) for s in shards]
        # the copier took a slot early but copies A's result once it is on chain: after it
        self.updates: dict[int, Update] = {
            10: Update(self.glob, n[3]),                      # free rider
            11: Update(honest_a, n[0]),
            12: Update(shuffled, n[2]),
            13: Update([w.copy() for w in honest_a], n[0]),   # copy of 11
            14: Update(honest_b, n[1]),
        }

    def evaluate(self, weights: Sequence[np.ndarray]) -> float:
        return softmax_loss(weights, self.x_test, self.y_test)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario()


@pytest.mark.parametrize("method", ["loo", "shapley"])
def test_free_rider_copy_and_shuffled_labels_earn_nothing(scenario: Scenario,
                                                          method: Any) -> None:
    report = contribution_scores(scenario.glob, scenario.updates, scenario.evaluate,
                                 method=method)
    by_key = {c.key: c for c in report.contributions}
    assert list(by_key) == [10, 11, 12, 13, 14]
    assert by_key[13].duplicate_of == 11 and by_key[13].ppm == 0 and by_key[13].value == 0
    # the free rider adds nothing to any coalition: worth exactly 0, not a dilution bonus
    assert by_key[10].value == 0.0 and by_key[10].ppm == 0
    # shuffled labels on a convex model still teach the label marginals: a little, no more
    assert by_key[12].ppm <= 20_000
    honest = by_key[11].ppm + by_key[14].ppm
    assert honest >= PPM - 20_000 and min(by_key[11].ppm, by_key[14].ppm) >= 300_000
    assert all(0 <= c.ppm <= PPM for c in report.contributions)
    assert report.scores() == {k: c.ppm for k, c in by_key.items()}
    # the copy does not halve its original: A scores as it would without the copier
    alone = contribution_scores(scenario.glob,
                                {k: u for k, u in scenario.updates.items() if k != 13},
                                scenario.evaluate, method=method)
    assert alone.ppm[11] == by_key[11].ppm


def counting(evaluate: Any) -> tuple[Any, list[int]]:
    calls = [0]

    def wrapped(weights: Sequence[np.ndarray]) -> float:
        calls[0] += 1
        return float(evaluate(weights))

    return wrapped, calls


def many_updates(scenario: Scenario, k: int) -> dict[int, Update]:
    """k distinct honest-ish updates: each trained on its own slice of a shard."""
    from decentralml.fl import load_digits_dataset

    (x, y), _, _ = load_digits_dataset()
    x = x.reshape(len(x), -1)
    parts = split_shards(x, y, k, seed=1)
    return {i: Update(train(scenario.glob, px, py, steps=10), len(py))
            for i, (px, py) in enumerate(parts)}


def test_leave_one_out_costs_k_plus_one_evaluations(scenario: Scenario) -> None:
    evaluate, calls = counting(scenario.evaluate)
    report = contribution_scores(scenario.glob, scenario.updates, evaluate)
    assert calls[0] == report.evaluations == 4 + 1  # 4 kept (the copy is not evaluated)
    assert report.method == "loo" and report.exact


def test_exact_shapley_is_efficient_and_within_its_budget(scenario: Scenario) -> None:
    evaluate, calls = counting(scenario.evaluate)
    report = contribution_scores(scenario.glob, scenario.updates, evaluate, method="shapley",
                                 samples=30)
    assert report.exact and calls[0] == report.evaluations == 2 ** 4
    kept = {k: u for k, u in scenario.updates.items() if k != 13}
    equal = [Update(u.weights) for u in kept.values()]     # default weighting: equal shares
    whole = scenario.evaluate(scenario.glob) - scenario.evaluate(FedAvg().aggregate(equal))
    assert math.isclose(sum(c.value for c in report.contributions), whole, rel_tol=1e-9)


def test_sampled_shapley_stays_within_the_budget_and_is_seeded(scenario: Scenario) -> None:
    updates = many_updates(scenario, 9)
    evaluate, calls = counting(scenario.evaluate)
    first = contribution_scores(scenario.glob, updates, evaluate, method="shapley", samples=6,
                                seed=7)
    assert not first.exact
    assert calls[0] == first.evaluations <= 2 + 6 * (9 - 1)
    again = contribution_scores(scenario.glob, updates, scenario.evaluate, method="shapley",
                                samples=6, seed=7)
    assert again == first                                     # same seed: same ppm and values
    other = contribution_scores(scenario.glob, updates, scenario.evaluate, method="shapley",
                                samples=6, seed=8)
    assert [c.value for c in other.contributions] != [c.value for c in first.contributions]
    # each permutation's marginals telescope to v(all): the estimate is efficient too
    assert math.isclose(sum(c.value for c in first.contributions),
                        sum(c.value for c in other.contributions), rel_tol=1e-9)


def test_a_budget_too_large_is_refused_before_any_evaluation(scenario: Scenario) -> None:
    updates = many_updates(scenario, 20)
    evaluate, calls = counting(scenario.evaluate)
    with pytest.raises(InvalidInput, match=f"samples.*limit: <= {MAX_EVALUATIONS}"):
        contribution_scores(scenario.glob, updates, evaluate, method="shapley", samples=500)
    assert calls[0] == 0


_SCORE_IN_A_SUBPROCESS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.fl.test_contribution import Scenario, many_updates
from decentralml.fl import contribution_scores
s = Scenario()
r = contribution_scores(s.glob, many_updates(s, 7), s.evaluate, method="shapley", samples=4,
                        seed=3)
print(r.model_dump_json())
"""


def test_scores_are_the_same_in_another_process(scenario: Scenario) -> None:
    here = contribution_scores(scenario.glob, many_updates(scenario, 7), scenario.evaluate,
                               method="shapley", samples=4, seed=3)
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", _SCORE_IN_A_SUBPROCESS, str(repo)],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(here.model_dump_json())


def test_copies_are_found_however_disguised_and_only_later_ones(scenario: Scenario) -> None:
    g = scenario.glob
    a = scenario.updates[11].arrays()
    rng = np.random.default_rng(0)
    half = [gw + 0.5 * (aw - gw) for gw, aw in zip(g, a, strict=True)]       # scaled change
    noisy = [aw + rng.normal(scale=1e-4, size=aw.shape).astype(np.float32) for aw in a]
    report = contribution_scores(g, {"copy-first": half, "original": a, "noisy": noisy,
                                     "rider": g, "rider-2": [w.copy() for w in g]},
                                 scenario.evaluate)
    dup = {c.key: c.duplicate_of for c in report.contributions}
    # the earlier of two copies is the one kept, whoever made it: the caller's order decides
    assert dup == {"copy-first": None, "original": "copy-first", "noisy": "copy-first",
                   "rider": None, "rider-2": "rider"}
    with pytest.raises(InvalidInput, match="updates"):
        report.scores()                                  # string keys are not submission ids


def test_nobody_helps_means_all_zero(scenario: Scenario) -> None:
    """A free rider next to a harmful update: with FedAvg-renormalised coalitions it would earn
    for diluting the harm; here it is worth 0 and the harmful update less than 0."""
    g = scenario.glob
    harmful = [gw - (aw - gw) for gw, aw in zip(g, scenario.updates[11].arrays(), strict=True)]
    updates: dict[int, list[np.ndarray]] = {1: g, 2: harmful}
    for method in ("loo", "shapley"):
        report = contribution_scores(g, updates, scenario.evaluate,
                                     method=method)
        assert [c.ppm for c in report.contributions] == [0, 0]
        assert report.contributions[0].value == 0.0 and report.contributions[1].value < 0
    single = contribution_scores(g, {5: scenario.updates[11]}, scenario.evaluate)
    assert single.ppm == {5: PPM} and single.evaluations == 2


def test_zero_example_claims_do_not_break_the_scoring(scenario: Scenario) -> None:
    a = scenario.updates[11]
    zero = Update(scenario.updates[14].weights, 0)
    report = contribution_scores(scenario.glob, {1: zero, 2: a}, scenario.evaluate,
                                 weighting="examples")
    assert report.ppm == {1: 0, 2: PPM}                  # no share, no worth
    nobody = contribution_scores(scenario.glob, {1: zero, 2: Update(a.weights, 0)},
                                 scenario.evaluate, weighting="examples")
    assert nobody.ppm == {1: 0, 2: 0}


def test_inflated_example_claims_buy_nothing_by_default(scenario: Scenario) -> None:
    """A barely trained update claiming 2**40 examples: with FedAvg shares its change is the
    whole aggregate and the honest ones' vanish; with equal shares (the default) it is judged
    by its update."""
    lazy = Update(train(scenario.glob, scenario.x_train[:50], scenario.y_train[:50], steps=1),
                  2**40)
    updates = {1: scenario.updates[11], 2: lazy, 3: scenario.updates[14]}
    claimed = contribution_scores(scenario.glob, updates, scenario.evaluate,
                                  weighting="examples")
    fair = contribution_scores(scenario.glob, updates, scenario.evaluate)
    assert claimed.ppm[2] > 900_000                       # what the claim would buy
    assert fair.ppm[2] < min(fair.ppm[1], fair.ppm[3])


def test_bad_input_names_the_field_and_the_limit(scenario: Scenario) -> None:
    g, u, ev = scenario.glob, scenario.updates, scenario.evaluate
    cases: list[tuple[dict[str, Any], str]] = [
        ({"samples": 0}, r"samples: is 0 \(limit: 1..=1000\)"),
        ({"samples": 1001}, "samples"),
        ({"duplicate_cosine": 0.0}, r"duplicate_cosine: is 0.0 \(limit: \(0, 1\]\)"),
        ({"duplicate_cosine": 1.5}, "duplicate_cosine"),
        ({"duplicate_cosine": float("nan")}, "duplicate_cosine"),
        ({"seed": -1}, "seed"),
        ({"method": "banzhaf"}, "method"),
        ({"weighting": "claims"}, "weighting"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(InvalidInput, match=pattern):
            contribution_scores(g, u, ev, **kwargs)
    with pytest.raises(InvalidInput, match=rf"updates: 0 updates \(limit: 1..={MAX_UPDATES}\)"):
        contribution_scores(g, {}, ev)
    with pytest.raises(InvalidInput, match="updates: 65 updates"):
        contribution_scores(g, [g] * 65, ev)
    with pytest.raises(ModelError, match="shape"):
        contribution_scores(g, {1: [np.zeros((64, 9), np.float32), g[1]]}, ev)
    with pytest.raises(ModelError, match="finite"):
        contribution_scores(g, u, lambda w: float("nan"))
    with pytest.raises(InvalidInput, match="version"):
        ScoringSpec(version="someone-else/9").score(g, u, ev)
    with pytest.raises(InvalidInput, match="budget: Extra inputs are not permitted"):
        ScoringSpec(budget=3)


def test_spec_commitment_is_the_hash_of_its_canonical_json() -> None:
    spec = ScoringSpec(method="shapley", samples=40, seed=9, duplicate_cosine=0.995)
    assert spec.canonical_json() == (
        b'{"duplicate_cosine":0.995,"method":"shapley","samples":40,"seed":9,'
        b'"version":"' + SCORING_VERSION.encode() + b'","weighting":"uniform"}')
    assert spec.commitment() == hashlib.sha256(spec.canonical_json()).digest()
    assert ScoringSpec.from_json(spec.canonical_json()) == spec
    assert ScoringSpec.from_json(json.dumps(json.loads(spec.canonical_json()), indent=2)
                                 ).commitment() == spec.commitment()
    others = [ScoringSpec(method="loo", samples=40, seed=9, duplicate_cosine=0.995),
              ScoringSpec(method="shapley", samples=41, seed=9, duplicate_cosine=0.995),
              ScoringSpec(method="shapley", samples=40, seed=8, duplicate_cosine=0.995),
              ScoringSpec(method="shapley", samples=40, seed=9, duplicate_cosine=0.99),
              ScoringSpec(method="shapley", samples=40, seed=9, duplicate_cosine=0.995,
                          weighting="examples")]
    assert len({s.commitment() for s in [spec, *others]}) == 6
    with pytest.raises(InvalidInput, match="spec"):
        ScoringSpec.from_json(b"[1]")


def _reveal(scenario: Scenario, tmp_path: Path) -> Path:
    return save_shard(tmp_path / "holdout.npz", scenario.x_test, scenario.y_test)


def _softmax_model(x: np.ndarray, y: np.ndarray) -> Any:
    """The verifier's model for a non-Keras framework: ``model(x, y) -> evaluate``."""
    return lambda weights: softmax_loss(weights, x, y)


def test_verify_agrees_then_reports_an_altered_score(scenario: Scenario, tmp_path: Path) -> None:
    holdout = _reveal(scenario, tmp_path)
    spec = ScoringSpec()
    onchain = spec.score(scenario.glob, scenario.updates, scenario.evaluate).ppm
    kwargs: dict[str, Any] = {"model": _softmax_model,
                              "holdout_commitment": holdout_commitment(holdout),
                              "scoring_commitment": spec.commitment()}
    good = verify_scores(holdout, spec, scenario.glob, scenario.updates, onchain, **kwargs)
    assert good.ok and good.holdout_matches and good.spec_matches and good.mismatches == []
    assert good.report is not None and good.report.ppm == onchain

    altered = {**onchain, 11: onchain[11] - 5_000, 12: onchain[12] + 5_000}
    bad = verify_scores(holdout, spec, scenario.glob, scenario.updates, altered, **kwargs)
    assert not bad.ok
    assert [(m.key, m.onchain, m.recomputed) for m in bad.mismatches] == [
        (11, altered[11], onchain[11]), (12, altered[12], onchain[12])]
    tolerant = verify_scores(holdout, spec, scenario.glob, scenario.updates, altered,
                             tolerance_ppm=5_000, **kwargs)
    assert tolerant.ok

    missing = {k: v for k, v in onchain.items() if k != 14} | {99: 1}
    gaps = verify_scores(holdout, spec, scenario.glob, scenario.updates, missing, **kwargs)
    assert [(m.key, m.onchain, m.recomputed) for m in gaps.mismatches] == [
        (14, None, onchain[14]), (99, 1, None)]


def test_verify_refuses_a_holdout_or_spec_that_is_not_the_committed_one(
        scenario: Scenario, tmp_path: Path) -> None:
    holdout = _reveal(scenario, tmp_path)
    spec = ScoringSpec()
    onchain = spec.score(scenario.glob, scenario.updates, scenario.evaluate).ppm
    committed = holdout_commitment(holdout)
    assert committed == hashlib.sha256(holdout.read_bytes()).digest()
    # the creator reveals a different holdout (one example dropped) than the one it committed
    swapped = save_shard(tmp_path / "other.npz", scenario.x_test[1:], scenario.y_test[1:])
    calls = [0]

    def model(x: np.ndarray, y: np.ndarray) -> Any:
        calls[0] += 1
        return _softmax_model(x, y)

    report = verify_scores(swapped, spec, scenario.glob, scenario.updates, onchain,
                           model=model, holdout_commitment=committed)
    assert not report.ok and not report.holdout_matches and report.report is None
    assert calls[0] == 0                            # nothing is computed on uncommitted data
    wrong_spec = verify_scores(holdout, spec, scenario.glob, scenario.updates, onchain,
                               model=model, holdout_commitment=committed,
                               scoring_commitment=ScoringSpec(seed=1).commitment())
    assert wrong_spec.spec_matches is False and not wrong_spec.ok
    with pytest.raises(InvalidInput, match="holdout_commitment: must be 32 bytes"):
        verify_scores(holdout, spec, scenario.glob, scenario.updates, onchain, model=model,
                      holdout_commitment=b"short")
    with pytest.raises(InvalidInput, match="tolerance_ppm"):
        verify_scores(holdout, spec, scenario.glob, scenario.updates, onchain, model=model,
                      holdout_commitment=committed, tolerance_ppm=-1)

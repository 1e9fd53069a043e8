"""Contribution scores with the demo's model (the digits CNN) and its data, end to end on files.

Issue 22's five contributors: a free rider, a copy, shuffled labels and two honest ones. The
contributor's side is run as a contributor would: in a fresh process, from the files (the
creator's model, the updates, the revealed holdout) and the chain's scores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from decentralml.fl import (
    ScoringSpec,
    Update,
    clone_model,
    contribution_scores,
    get_weights,
    holdout_commitment,
    holdout_evaluator,
    load_update,
    make_digits_cnn,
    save_model,
    save_shard,
    save_update,
    split_shards,
    train_local,
    verify_scores,
)

pytestmark = pytest.mark.tf


class Round:
    def __init__(self, digits: Any, out: Path) -> None:
        (x, y), (self.x_test, self.y_test), _ = digits
        self.model = make_digits_cnn(seed=0)
        self.glob = get_weights(self.model)
        shards = split_shards(x, y, 4, seed=0)

        def trained(xs: np.ndarray, ys: np.ndarray, seed: int) -> list[np.ndarray]:
            local = clone_model(self.model, self.glob)
            train_local(local, xs, ys, epochs=2, seed=seed)
            return get_weights(local)

        honest_a = trained(*shards[0], 1)
        honest_b = trained(*shards[1], 2)
        shuffled = trained(shards[2][0], np.random.default_rng(3).permutation(shards[2][1]), 3)
        n = [len(s[1]) for s in shards]
        # submission id -> (weights, num_examples), in the order the results reached the chain
        contributions = {0: (self.glob, n[3]), 1: (honest_a, n[0]), 2: (shuffled, n[2]),
                         3: ([w.copy() for w in honest_a], n[0]), 4: (honest_b, n[1])}
        self.out = out
        save_model(self.model, out / "model.keras")
        self.updates: dict[int, Update] = {}
        for sid, (weights, examples) in contributions.items():
            # as a contributor's bundle does: the trained model, names from its variables
            save_update(clone_model(self.model, weights), out / f"result-{sid}", examples)
            self.updates[sid] = Update(weights, examples)
        self.holdout = save_shard(out / "holdout.npz", self.x_test, self.y_test)


@pytest.fixture(scope="module")
def round_(keras: ModuleType, digits: Any, tmp_path_factory: pytest.TempPathFactory) -> Round:
    return Round(digits, tmp_path_factory.mktemp("contribution-round"))


@pytest.mark.parametrize("method", ["loo", "shapley"])
def test_the_demo_models_scores(round_: Round, method: Any) -> None:
    evaluate = holdout_evaluator(round_.model, round_.x_test, round_.y_test)
    report = contribution_scores(round_.glob, round_.updates, evaluate, method=method)
    c = {x.key: x for x in report.contributions}
    assert c[0].value == 0.0 and c[0].ppm == 0                     # free rider
    assert c[3].duplicate_of == 1 and c[3].ppm == 0                # copy of 1
    assert c[2].ppm <= 10_000                                      # shuffled labels
    assert c[1].ppm + c[4].ppm >= 990_000 and min(c[1].ppm, c[4].ppm) >= 300_000
    assert report.evaluations == (5 if method == "loo" else 16)


_CONTRIBUTOR = """
import json, sys
from pathlib import Path
from decentralml.fl import ScoringSpec, load_model, load_update, verify_scores, get_weights
out = Path(sys.argv[1])
task = json.loads(sys.argv[2])
model = load_model(out / "model.keras")
updates = {sid: load_update(out / f"result-{sid}", like=model) for sid in range(5)}
results = []
for scores in task["scores"]:  # the chain's Scores, honest then tampered with
    report = verify_scores(out / "holdout.npz", ScoringSpec.from_json(task["spec"]),
                           get_weights(model), updates, {int(k): v for k, v in scores.items()},
                           model=model,
                           holdout_commitment=bytes.fromhex(task["holdout_commitment"]),
                           scoring_commitment=bytes.fromhex(task["scoring_commitment"]))
    results.append({"ok": report.ok, "mismatches": [m.model_dump() for m in report.mismatches]})
print(json.dumps(results))
"""


def test_a_contributor_recomputes_the_chains_scores_in_its_own_process(round_: Round) -> None:
    spec = ScoringSpec(method="shapley")
    evaluate = holdout_evaluator(round_.model, round_.x_test, round_.y_test)
    scores = spec.score(round_.glob, round_.updates, evaluate).scores()  # what goes on chain
    assert sum(scores.values()) <= 1_000_000
    altered = {**scores, 2: scores[2] + 40_000}

    task = {"spec": spec.canonical_json().decode(), "scores": [scores, altered],
            "holdout_commitment": holdout_commitment(round_.holdout).hex(),
            "scoring_commitment": spec.commitment().hex()}
    done = subprocess.run([sys.executable, "-c", _CONTRIBUTOR, str(round_.out),
                           json.dumps(task)], capture_output=True, text=True, check=False,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    honest, tampered = json.loads(done.stdout.strip().splitlines()[-1])
    assert honest == {"ok": True, "mismatches": []}               # exact: tolerance 0
    assert tampered == {"ok": False, "mismatches": [
        {"key": 2, "onchain": altered[2], "recomputed": scores[2]}]}


def test_verify_with_the_keras_model_refuses_another_holdout(round_: Round) -> None:
    spec = ScoringSpec()
    evaluate = holdout_evaluator(round_.model, round_.x_test, round_.y_test)
    scores = spec.score(round_.glob, round_.updates, evaluate).scores()
    committed = holdout_commitment(round_.holdout)
    easier = save_shard(round_.out / "easier.npz", round_.x_test[:100], round_.y_test[:100])
    updates = {sid: load_update(round_.out / f"result-{sid}", like=round_.model)
               for sid in range(5)}
    report = verify_scores(easier, spec, round_.glob, updates, scores, model=round_.model,
                           holdout_commitment=committed)
    assert not report.ok and not report.holdout_matches

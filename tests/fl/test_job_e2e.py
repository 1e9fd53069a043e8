"""A federated job on digits through the real devnode: FedAdam on the server, FedProx on the
contributors (each a ``decentralml work`` CLI process), then a server-side DP round whose task
metadata and report state the guarantee."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.roles.conftest import cli

pytestmark = [pytest.mark.tf, pytest.mark.slow]

BUNDLE = Path(__file__).resolve().parents[2] / "examples" / "federated_mnist" / "bundle"
CONTRIBUTORS = ("//Bob", "//Charlie")
UNIT = 10**12


def test_fedadam_job_then_a_dp_round(fresh_devnode: Any, tmp_path: Path, digits: Any) -> None:
    from decentralml.chain.client import Client
    from decentralml.fl import (
        DPFedAvg,
        FedAdam,
        TaskOptions,
        dp_epsilon,
        evaluate,
        make_digits_cnn,
        partition_iid,
    )
    from decentralml.roles.creator import ModelCreator
    from decentralml.roles.federated_job import run_federated_job
    from decentralml.storage import open_store
    from decentralml.storage.bundle import fetch_bundle

    (x, y), (x_test, y_test), _source = digits
    spec = f"local:{tmp_path / 'store'}"
    store = open_store(spec)
    data: dict[str, Path] = {}
    for account, (xs, ys) in zip(CONTRIBUTORS, partition_iid(x, y, 2, seed=0), strict=True):
        d = tmp_path / "data" / account.strip("/")
        d.mkdir(parents=True)
        np.savez(d / "data.npz", x=xs, y=ys)
        data[account] = d
    alice = Client(fresh_devnode.url, account="//Alice", home=tmp_path / "alice")
    creator = ModelCreator(alice, store, workdir=tmp_path / "creator")
    published: list[Any] = []

    def work(r: int, task: Any) -> None:
        published.append(task)

        def one(account: str) -> None:
            cli(["--node", fresh_devnode.url, "--storage", spec, "--account", account, "--json",
                 "--yes", "work", str(task.task_id), "--data", str(data[account])],
                home=tmp_path / account.strip("/"), timeout=600)

        with ThreadPoolExecutor(len(CONTRIBUTORS)) as pool:
            list(pool.map(one, CONTRIBUTORS))

    initial = make_digits_cnn(x.shape[1:], 10, seed=0)
    before = float(evaluate(initial, x_test, y_test)["accuracy"])
    strategy = FedAdam(eta=1e-2, tau=1e-3)
    model, report = run_federated_job(
        creator, initial, BUNDLE, rounds=2, slots=2, reward=UNIT, x_test=x_test, y_test=y_test,
        strategy=strategy, task_options=TaskOptions(proximal_mu=0.01),
        on_round_published=work, round_timeout=600)
    assert [r.accepted for r in report.rounds] == [2, 2]
    assert report.strategy == "fedadam" and report.privacy == []
    assert strategy.steps == 2  # one optimizer, stepped once per round
    # the chain, the store and the CLI processes change nothing: the same job simulated in this
    # process (the bundle's recipe: 2 epochs, batch 32, Adam 1e-3, seed 0) scores the same
    assert report.final_accuracy is not None and report.final_accuracy > before + 0.4
    assert report.final_accuracy == pytest.approx(_simulated(x, y, x_test, y_test), abs=0.02)
    # the round bundle told the contributors to use FedProx
    shipped = fetch_bundle(store, published[0].assets_cid, tmp_path / "shipped")
    assert json.loads((shipped.path / "config.json").read_text())["proximal_mu"] == 0.01
    assert "privacy" not in (shipped.manifest.metadata or {})

    dp = DPFedAvg(clipping_norm=5.0, noise_multiplier=1.2, delta=1e-5)
    _model, dp_report = run_federated_job(
        creator, model, BUNDLE, rounds=1, slots=2, reward=UNIT, x_test=x_test, y_test=y_test,
        strategy=dp, on_round_published=work, round_timeout=600)
    (guarantee,) = dp_report.privacy
    assert guarantee.side == "server" and guarantee.rounds == 1
    assert guarantee.epsilon == dp_epsilon(1.2, 1, 1e-5)
    assert dp_report.rounds[0].epsilon == guarantee.epsilon
    assert len(dp.last_norms) == 2
    stated = fetch_bundle(store, published[-1].assets_cid, tmp_path / "stated")
    (meta,) = stated.manifest.metadata["privacy"]
    assert meta["epsilon"] == guarantee.epsilon and meta["noise_multiplier"] == 1.2


def _simulated(x: Any, y: Any, x_test: Any, y_test: Any) -> float:
    from decentralml.fl import (
        FedAdam,
        Update,
        clone_model,
        evaluate,
        get_weights,
        make_digits_cnn,
        partition_iid,
        set_weights,
        train_local,
    )

    model = make_digits_cnn(x.shape[1:], 10, seed=0)
    client = clone_model(model)
    strategy = FedAdam(eta=1e-2, tau=1e-3)
    weights = get_weights(model)
    for _ in range(2):
        updates = []
        for xs, ys in partition_iid(x, y, 2, seed=0):
            set_weights(client, weights)
            train_local(client, xs, ys, epochs=2, batch_size=32, seed=0, proximal_mu=0.01)
            updates.append(Update(get_weights(client), len(ys)))
        weights = strategy.apply(weights, updates)
    set_weights(model, weights)
    return float(evaluate(model, x_test, y_test)["accuracy"])

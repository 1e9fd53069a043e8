"""The honest task still works in the sandbox: the digits training bundle of the example, run
through ``decentralml work`` (CLI subprocess) against the real devnode and a local store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from decentralml.chain.client import Client
from decentralml.roles.creator import ModelCreator
from decentralml.storage import open_store
from tests.quiet import assert_quiet
from tests.roles.conftest import cli

pytestmark = [pytest.mark.tf, pytest.mark.slow]

BUNDLE = Path(__file__).resolve().parents[2] / "examples" / "federated_mnist" / "bundle"


def test_digits_training_runs_inside_the_sandbox(devnode, tmp_path: Path) -> None:
    from decentralml.fl import load_mnist, load_update, make_digits_cnn, save_model

    (x_train, y_train), _test, _source = load_mnist(None)
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    model = make_digits_cnn(x_train.shape[1:], 10, seed=0)
    save_model(model, bundle / "model.keras")
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "data.npz", x=x_train[:200], y=y_train[:200])
    spec = f"local:{tmp_path / 'store'}"
    alice = Client(devnode.url, account="//Alice", home=tmp_path / "alice")
    task = ModelCreator(alice, open_store(spec), workdir=tmp_path / "creator").publish(
        bundle, question="train the digits CNN", reward=10**12,
        requirements=("numpy>=1.26", "keras>=3"), outputs=("update.npz", "update.json"))
    alice.close()

    home = tmp_path / "bob"
    done = cli(["--node", devnode.url, "--storage", spec, "--account", "//Bob", "--json",
                "work", str(task.task_id), "--data", str(data)], home=home, timeout=900)
    report = json.loads(done.stdout)
    assert_quiet(done.stderr)  # the task's log, streamed from the sandbox
    assert report["sandbox"] == "bubblewrap" and report["status"] == "PendingValidation"
    assert report["num_examples"] == 200 and 0 <= report["metrics"]["train_accuracy"] <= 1
    output = next(home.glob("work/*/run/output"))
    update = load_update(output, like=model)
    assert update.num_examples == 200 and len(update.weights) == len(model.weights)

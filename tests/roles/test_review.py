"""The reviewer's side with real models: a holdout policy pays the honest contributor and
rejects (and does not pay) a deliberately bad one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from decentralml.chain.client import Client
from decentralml.chain.types import SubmissionStatus, ValidationStrategy
from decentralml.roles.creator import ModelCreator
from decentralml.roles.policies import holdout_policy
from decentralml.storage import open_store

pytestmark = pytest.mark.tf

REWARD = 7 * 10**12


def _contribute(url: str, uri: str, store, task_id: int, trained,
                num_examples: int, tmp: Path):
    """A contributor outside our runner (as a malicious one would be): save, upload, send."""
    from decentralml.chain.types import TaskType
    from decentralml.fl import save_update
    from decentralml.storage.bundle import pack_bundle

    client = Client(url, account=uri, home=tmp / uri[2:])
    accepted = client.accept_task(task_id)
    out = tmp / f"out-{uri[2:]}"
    save_update(trained, out, num_examples=num_examples, metrics={})
    packed = pack_bundle(out, store, task_type=TaskType.ModelContributor, entrypoint=None)
    sent = client.send_task_result(accepted.submission_id, {"num_examples": num_examples},
                                   result_cid=packed.cid, result_storage=store.storage_type)
    before_fees = accepted.fee + sent.fee
    client.close()
    return accepted.submission_id, before_fees


def test_holdout_policy_rejects_bad_update_and_pays_only_the_good(
        fresh_devnode, tmp_path: Path, digits) -> None:
    from decentralml.fl import clone_model, get_weights, make_digits_cnn, save_model, train_local

    (x, y), (xt, yt) = digits
    model = make_digits_cnn(x.shape[1:], 10, seed=0)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "start_task.sh").write_text("echo train\n")
    save_model(model, bundle / "model.keras")
    store = open_store(f"local:{tmp_path / 'store'}")
    alice = Client(fresh_devnode.url, account="//Alice", home=tmp_path / "alice")
    creator = ModelCreator(alice, store, workdir=tmp_path / "creator")
    task = creator.publish(bundle, question="train", reward=REWARD, max_assignments=2,
                           validation_strategy=ValidationStrategy.CustomAccept)

    good = make_digits_cnn(x.shape[1:], 10, seed=0)
    train_local(good, x, y, epochs=3, batch_size=32, seed=0)
    rng = np.random.default_rng(1)
    bad = clone_model(model, [rng.normal(0, 5, w.shape).astype(w.dtype)
                              for w in get_weights(model)])
    before = {u: alice.balance(alice.resolve_address(u)) for u in ("//Bob", "//Eve")}
    bob_sub, bob_fees = _contribute(fresh_devnode.url, "//Bob", store, task.task_id,
                                    good, len(y), tmp_path)
    eve_sub, eve_fees = _contribute(fresh_devnode.url, "//Eve", store, task.task_id, bad,
                                    10**6, tmp_path)

    report = creator.validate(task.task_id, holdout_policy(creator, model, xt, yt,
                                                           min_accuracy=0.6))
    assert report.accepted == (bob_sub,), report.decisions
    assert report.rejected == (eve_sub,)
    after = {u: alice.balance(alice.resolve_address(u)) for u in ("//Bob", "//Eve")}
    assert after["//Bob"] - before["//Bob"] == REWARD - bob_fees
    assert after["//Eve"] - before["//Eve"] == -eve_fees  # fees only: not paid
    assert alice.submission(eve_sub).status is SubmissionStatus.Rejected
    closed = creator.close(task.task_id)
    assert closed.refund == REWARD  # Eve's slot reopened and was never filled
    assert alice.escrow_balance(task.task_id) == 0
    alice.close()

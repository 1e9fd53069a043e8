"""Declaring pay by contribution from the CLI: what goes on chain and into the bundle, and every
bad option refused before anything is stored or sent (exit 4, the option named). No TensorFlow:
the tiny line-counting bundle is enough to create tasks."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decentralml.chain.client import Client
from tests.roles.conftest import TINY_BUNDLE, cli


@pytest.fixture
def env(fresh_devnode: Any, tmp_path: Path) -> dict[str, Any]:
    holdout = tmp_path / "holdout.npz"
    np.savez(holdout, x=np.zeros((4, 8, 8, 1), "float32"), y=np.arange(4))
    return {"url": fresh_devnode.url, "store": tmp_path / "store", "tmp": tmp_path,
            "holdout": holdout}


def run(env: dict[str, Any], account: str, *args: str,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    return cli(["--node", env["url"], "--storage", f"local:{env['store']}", "--account", account,
                "--json", "--yes", *args], home=env["tmp"] / account.strip("/"), check=check)


def create(env: dict[str, Any], *extra: str, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
    return run(env, "//Alice", "task", "create", "--bundle", str(TINY_BUNDLE), "--question",
               "count lines", "--reward", "2", "--slots", "2", *extra, check=check)


def refused(done: subprocess.CompletedProcess[str], field: str, needle: str) -> None:
    assert done.returncode == 4, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["type"] == "InvalidInput", error
    assert error["message"].startswith(f"{field}:") and needle in error["message"], error


def test_task_paid_by_contribution_commits_to_its_holdout_and_scoring(
        env: dict[str, Any]) -> None:
    from decentralml.fl.contribution import ScoringSpec
    from decentralml.storage import open_store
    from decentralml.storage.bundle import fetch_bundle

    created = json.loads(create(env, "--validation", "custom", "--pay-by-contribution",
                                "--holdout", str(env["holdout"]), "--floor", "0.5",
                                "--scoring", "shapley", "--shapley-samples", "7").stdout)
    client = Client(env["url"])
    terms = client.task_terms(created["task_id"])
    spec = ScoringSpec(method="shapley", samples=7)
    assert terms.payout.value == "ByContribution" and terms.floor == 5 * 10**11
    assert terms.holdout_commitment == hashlib.sha256(env["holdout"].read_bytes()).digest()
    assert terms.scoring_commitment == spec.commitment()
    bundle = fetch_bundle(open_store(f"local:{env['store']}"), created["assets_cid"],
                          env["tmp"] / "fetched")
    assert ScoringSpec(**bundle.manifest.metadata["scoring"]) == spec  # contributors read it
    # a flat task stays flat, with no terms at all
    flat = json.loads(create(env, "--validation", "manual").stdout)
    assert client.task_terms(flat["task_id"]).payout.value == "Flat"
    # and settling or verifying it is refused, naming the task
    refused(run(env, "//Alice", "review", "settle", str(flat["task_id"]), "--scores", "0=1",
                check=False), "task_id", "flat reward")
    refused(run(env, "//Bob", "scores", "verify", "--task", str(flat["task_id"]), "--holdout",
                str(env["holdout"]), check=False), "task_id", "flat reward")
    client.close()


def test_bad_pay_options_are_refused_before_anything_is_stored_or_sent(
        env: dict[str, Any]) -> None:
    pickled = env["tmp"] / "pickled.npz"
    np.savez(pickled, x=np.array([{"a": 1}], dtype=object), y=np.arange(1))
    h = str(env["holdout"])
    pay = ("--validation", "custom", "--pay-by-contribution")
    for args, field, needle in (
            (("--floor", "1"), "floor", "--pay-by-contribution"),
            (("--holdout", h), "holdout", "--pay-by-contribution"),
            (("--scoring", "shapley"), "scoring", "--pay-by-contribution"),
            (pay, "holdout", "--holdout"),
            (("--validation", "auto", "--pay-by-contribution", "--holdout", h), "validation",
             "settled by you"),
            ((*pay, "--holdout", h, "--floor", "3"), "floor", "at most the reward, 2 UNIT"),
            ((*pay, "--holdout", h, "--shapley-samples", "5"), "shapley_samples", "shapley"),
            ((*pay, "--holdout", h, "--scoring", "shapley", "--shapley-samples", "5000"),
             "shapley_samples", "1000"),
            ((*pay, "--holdout", str(pickled)), "holdout", "not a holdout set")):
        refused(create(env, *args, check=False), field, needle)
    job = run(env, "//Alice", "job", "run", "paid", "--bundle", str(TINY_BUNDLE), "--model",
              str(env["holdout"]), "--holdout", h, "--reward", "1", "--pay-by-contribution",
              "--floor", "2", check=False)
    refused(job, "floor", "at most the reward")
    client = Client(env["url"])
    assert client.next_task_id() == 0  # nothing was sent
    assert not env["store"].exists() or not any(env["store"].rglob("*.*"))
    assert not (env["tmp"] / "Alice" / "jobs" / "paid").exists()
    client.close()

"""Pay by contribution end to end, through the CLI as a user runs it: a one-round federated job
paid by contribution, served by five contributor processes of which three are hostile, then a
contributor's own recomputation of the scores; and a reviewer who settles by hand with scores
that are not the real ones, which the recomputation reports.

The contributors (each a ``decentralml`` process with its own home):

* Bob and Charlie train honestly on their own shards;
* Dave trains on his shard with the labels shuffled;
* Eve is a free rider: she runs the task, then swaps her update for the global model she was
  given, unchanged, before submitting;
* Ferdie copies Bob's update (its weights file) over his own before submitting.

The model is tiny (a softmax layer over 8x8 digits) and the job runs one round, so the cost is
mostly TensorFlow imports. The initial model is first trained a little on the creator's own
examples, so that it is calibrated: a model that has not learned anything yet would be improved
even by training on shuffled labels (towards uniform predictions).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decentralml.chain.client import Client
from decentralml.chain.events import ContributionsSettledEvent, ResultAcceptedEvent
from tests.fixtures.chains import chains_under_test
from tests.roles.conftest import cli

pytestmark = [pytest.mark.tf, pytest.mark.slow, pytest.mark.timeout(1800)]

UNIT = 10**12
BUNDLE = Path(__file__).resolve().parents[2] / "examples" / "federated_mnist" / "bundle"
HONEST = ("Bob", "Charlie")
SHUFFLED = "Dave"
FREE_RIDER = "Eve"
COPIER = "Ferdie"
CONTRIBUTORS = (*HONEST, SHUFFLED, FREE_RIDER, COPIER)


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "DECENTRALML_HOME": str(home),
            "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
            "XDG_DATA_HOME": str(home / "xdg")}


class Market:
    """The files of one scenario: data shards, holdout, initial model, the creator's bundle."""

    def __init__(self, url: str, tmp: Path, digits: Any) -> None:
        import keras

        from decentralml.fl import partition_iid, save_model, train_local

        (x, y), (xt, yt) = digits
        self.url = url
        self.tmp = tmp
        self.store = f"local:{tmp / 'store'}"
        self.holdout = tmp / "holdout.npz"
        np.savez(self.holdout, x=xt, y=yt)
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(10, activation="softmax")])
        train_local(model, x[:150], y[:150], epochs=5, batch_size=32, seed=0,
                    learning_rate=0.01)  # the creator's own examples: a calibrated start
        self.model = tmp / "model.keras"
        save_model(model, self.model)
        self.data: dict[str, Path] = {}
        shards = partition_iid(x[150:], y[150:], len(CONTRIBUTORS), seed=0)
        for name, (xs, ys) in zip(CONTRIBUTORS, shards, strict=True):
            if name == SHUFFLED:
                ys = np.random.default_rng(1).permutation(ys)
            d = tmp / f"data-{name}"
            d.mkdir()
            np.savez(d / "data.npz", x=xs, y=ys)
            self.data[name] = d
        self.bundle = tmp / "bundle"
        shutil.copytree(BUNDLE, self.bundle)
        (self.bundle / "config.json").write_text(json.dumps(
            {"epochs": 3, "batch_size": 32, "learning_rate": 0.01, "seed": 0}))

    def home(self, name: str) -> Path:
        return self.tmp / f"home-{name}"

    def args(self, name: str, *extra: str) -> list[str]:
        return ["--node", self.url, "--storage", self.store, "--account", f"//{name}", *extra]

    def run(self, name: str, *extra: str, check: bool = True,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return cli(self.args(name, "--json", *extra), home=self.home(name), check=check,
                   timeout=timeout)

    def spawn(self, name: str, *extra: str) -> subprocess.Popen[str]:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        return subprocess.Popen([sys.executable, "-m", "decentralml.cli.main",
                                 *self.args(name, "--json", *extra)], env=_env(self.home(name)),
                                stdout=subprocess.PIPE, stderr=log, text=True,
                                start_new_session=True)

    def work(self, name: str, task_id: int) -> dict[str, Any]:
        out = self.run(name, "work", str(task_id), "--data", str(self.data[name]))
        return dict(json.loads(out.stdout))

    def run_then_swap(self, name: str, task_id: int, swap: Any) -> None:
        """Accept and run the task honestly, put ``swap(output_dir)`` in place of the update,
        then submit: a contributor lying about its work."""
        self.run(name, "accept", str(task_id))
        ran = json.loads(self.run(name, "run", str(task_id), "--data",
                                  str(self.data[name])).stdout)
        swap(Path(ran["output_dir"]))
        self.run(name, "submit", str(task_id))


def _free_ride(model_path: Path, tmp: Path) -> Any:
    """The global model's weights as an update file: training undone."""
    def swap(output_dir: Path) -> None:
        from decentralml.fl import load_model, save_update

        staged = tmp / "free-rider-update"
        save_update(load_model(model_path), staged, num_examples=1)
        shutil.copyfile(staged / "update.npz", output_dir / "update.npz")
    return swap


def _copy_of(source: dict[str, Any]) -> Any:
    def swap(output_dir: Path) -> None:
        shutil.copyfile(Path(source["output_dir"]) / "update.npz", output_dir / "update.npz")
    return swap


def _wait_for_task(client: Client, creator: str, proc: subprocess.Popen[str], log: Path,
                   timeout: float = 600) -> int:
    deadline = time.monotonic() + timeout
    while True:
        tasks = client.tasks(creator=creator)
        if tasks:
            return tasks[-1].task_id
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the job published no task"
        time.sleep(0.5)


def _serve(m: Market, task_id: int) -> None:
    """All five contributors; Ferdie copies Bob's update once Bob has one."""
    def bob_then_ferdie() -> None:
        bob = m.work("Bob", task_id)
        m.run_then_swap(COPIER, task_id, _copy_of(bob))

    with ThreadPoolExecutor(3) as pool:
        jobs: list[Future[Any]] = [
            pool.submit(bob_then_ferdie), pool.submit(m.work, "Charlie", task_id),
            pool.submit(m.work, SHUFFLED, task_id),
            pool.submit(m.run_then_swap, FREE_RIDER, task_id, _free_ride(m.model, m.tmp))]
        for done in jobs:
            done.result()


@pytest.fixture(params=["devnode", "runtime"])
def pay_chain(request: pytest.FixtureRequest) -> str:
    """A fresh chain: the devnode, or the FRAME runtime under Chopsticks (the runtime tier,
    chosen like every chain test with DECENTRALML_TEST_CHAINS)."""
    if request.param not in chains_under_test():
        pytest.skip(f"{request.param} is not among the chains under test")
    fixture = "fresh_devnode" if request.param == "devnode" else "fresh_runtime_node"
    return str(request.getfixturevalue(fixture).url)


def test_job_pays_by_contribution_and_a_contributor_checks_it(
        pay_chain: str, tmp_path: Path, digits: Any) -> None:
    m = Market(pay_chain, tmp_path, digits)
    alice = Client(pay_chain, account="//Alice", home=m.home("Alice"))
    addresses = {n: alice.resolve_address(f"//{n}") for n in CONTRIBUTORS}
    before = {n: alice.balance(a) for n, a in addresses.items()}
    start = alice.block_number()
    job = m.spawn("Alice", "job", "run", "paid", "--bundle", str(m.bundle), "--model",
                  str(m.model), "--holdout", str(m.holdout), "--rounds", "1", "--slots", "5",
                  "--reward", "1", "--round-timeout", "900", "--pay-by-contribution")
    try:
        task_id = _wait_for_task(alice, alice.address or "", job, tmp_path / "Alice.log")
        terms = alice.task_terms(task_id)
        assert terms.payout.value == "ByContribution" and terms.floor == 0
        _serve(m, task_id)
        out, _ = job.communicate(timeout=900)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, 9)
            job.wait()
    assert job.returncode == 0, (tmp_path / "Alice.log").read_text()
    report = json.loads(out)
    assert report["status"] == "done" and len(report["rounds"]) == 1

    subs = {s.worker: s for s in alice.task_submissions(task_id)}
    sid = {n: subs[a].submission_id for n, a in addresses.items()}
    assert all(s.status.value == "Accepted" for s in subs.values())

    # The chain's own account of the settlement: one ContributionsSettled, the pool of five
    # rewards, paid out to the planck but for the dust.
    events = list(alice.watch(kinds=["ResultAccepted", "ContributionsSettled"],
                              from_block=start, timeout=0.01))
    settled = [e for e in events if isinstance(e, ContributionsSettledEvent)]
    assert len(settled) == 1
    pool = 5 * UNIT
    assert settled[0].pool == pool and settled[0].results == 5
    payouts = {e.submission_id: e.reward for e in events if isinstance(e, ResultAcceptedEvent)}
    assert sorted(payouts) == sorted(sid.values())
    assert sum(payouts.values()) == settled[0].paid
    assert settled[0].paid + settled[0].dust == pool
    assert 0 <= settled[0].dust < 5
    paid = {n: payouts[sid[n]] for n in CONTRIBUTORS}
    fees = alice.fees_paid([f"//{n}" for n in CONTRIBUTORS], from_block=start)
    for n in CONTRIBUTORS:  # what each balance gained is its payout, net of its own fees
        assert alice.balance(addresses[n]) - before[n] == paid[n] - fees[f"//{n}"], n

    # Who got what: the free rider and the shuffled labels (near) nothing, the copy nothing,
    # the honest two the rest, and Bob is not halved by Ferdie's copy of his update.
    stored = {n: alice.submission_score(sid[n]) for n in CONTRIBUTORS}
    scores = {n: s for n, s in stored.items() if s is not None}
    assert scores.keys() == stored.keys(), stored  # every result settled with a score
    assert paid[FREE_RIDER] <= pool // 50 and paid[SHUFFLED] <= pool // 50, paid
    assert scores[COPIER] == 0 and paid[COPIER] == 0, (scores, paid)
    assert paid["Bob"] + paid["Charlie"] >= pool * 95 // 100, paid
    assert scores["Bob"] >= scores["Charlie"] * 0.8 and scores["Charlie"] >= scores["Bob"] * 0.8
    # the job's report says the same as the chain
    reported = {c["submission_id"]: c for c in report["rounds"][0]["contributors"]}
    for n in CONTRIBUTORS:
        assert reported[sid[n]]["reward"] == paid[n] and reported[sid[n]]["score"] == scores[n]
    assert reported[sid[COPIER]]["duplicate_of"] == sid["Bob"]
    assert report["total_paid"] == settled[0].paid
    # the round's model is the deterministic FedAvg of the results that contributed (Bob's and
    # Charlie's), recomputed here from the chain and the store alone
    from decentralml.fl import aggregate_digest, get_weights, load_contributor_models, load_model
    from decentralml.fl.fedavg import FedAvg
    from decentralml.storage import open_store

    initial = load_model(m.model)
    honest = load_contributor_models([subs[addresses[n]] for n in HONEST], open_store(m.store),
                                     like=initial, workdir=tmp_path / "recomputed")
    federated = load_model(m.home("Alice") / "jobs" / "paid" / "models" / "global-round-1.keras")
    assert aggregate_digest(get_weights(federated)) == \
        aggregate_digest(FedAvg().apply(get_weights(initial), honest))

    # Charlie recomputes every score from the committed holdout and the bundle's specification.
    checked = m.run("Charlie", "scores", "verify", "--task", str(task_id), "--holdout",
                    str(m.holdout))
    verdict = json.loads(checked.stdout)
    assert verdict["ok"] and verdict["mismatches"] == []
    assert {c["submission_id"]: c["recomputed"] for c in verdict["checks"]} == \
        {sid[n]: scores[n] for n in CONTRIBUTORS}
    human = cli(m.args("Charlie", "scores", "verify", "--task", str(task_id), "--holdout",
                       str(m.holdout)), home=m.home("Charlie"))
    assert "every score matches the chain" in human.stdout and "//Bob" in human.stdout
    alice.close()


def test_scores_settled_by_hand_are_reported_as_mismatches(
        fresh_devnode: Any, tmp_path: Path, digits: Any) -> None:
    m = Market(fresh_devnode.url, tmp_path, digits)
    created = json.loads(m.run(
        "Alice", "task", "create", "--bundle", str(m.bundle), "--model", str(m.model),
        "--question", "digits, paid by contribution", "--reward", "1", "--slots", "2",
        "--validation", "custom", "--pay-by-contribution", "--holdout", str(m.holdout),
        "--scoring", "shapley", "--shapley-samples", "5").stdout)
    task_id = int(created["task_id"])
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda n: m.work(n, task_id), HONEST))
    bob, charlie = (int(d["submission_id"]) for d in done)

    # bad scores are refused before anything is sent, each naming the field and the limit
    for text, needle in ((f"{bob}=2000000", "MaxScore"), ("999=5", "not pending"),
                         (f"{bob}=5,{bob}=6", "twice"), ("x=1", "SUBMISSION=PPM")):
        bad = m.run("Alice", "review", "settle", str(task_id), "--scores", text, check=False)
        assert bad.returncode == 4, bad.stdout
        error = json.loads(bad.stdout)["error"]
        assert error["type"] == "InvalidInput" and "scores" in error["message"]
        assert needle in error["message"], error
    # so is a holdout that is not the one the task committed to
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros((3, 8, 8, 1), "float32"), y=np.zeros(3, "int64"))
    bad = m.run("Alice", "review", "settle", str(task_id), "--holdout", str(other), check=False)
    assert bad.returncode == 4 and "committed" in json.loads(bad.stdout)["error"]["message"]
    assert len(Client(m.url).pending(task_id)) == 2

    # The reviewer settles with made-up scores and reveals the holdout.
    settled = json.loads(m.run("Alice", "review", "settle", str(task_id), "--scores",
                               f"{bob}=900000,{charlie}=100000", "--holdout", str(m.holdout),
                               "--reveal").stdout)
    assert settled["paid"] + settled["dust"] == settled["pool"] == 2 * UNIT
    cid = settled["holdout_cid"]
    # settling again finds nothing pending: the chain's pending list decides, nothing is paid twice
    again = json.loads(m.run("Alice", "review", "settle", str(task_id), "--holdout",
                             str(m.holdout)).stdout)
    assert again["contributions"] == [] and again["pool"] == 0 and again["block_number"] is None

    # Bob fetches the revealed holdout by its CID and recomputes: both scores are wrong.
    checked = m.run("Bob", "scores", "verify", "--task", str(task_id), "--holdout", cid,
                    check=False)
    assert checked.returncode == 9, checked.stdout
    verdict = json.loads(checked.stdout)
    assert not verdict["ok"]
    assert len(verdict["mismatches"]) == 2
    assert any(f"submission {bob}:" in line and "900000" in line
               for line in verdict["mismatches"])
    by_id = {c["submission_id"]: c for c in verdict["checks"]}
    assert by_id[bob]["chain"] == 900000 and by_id[bob]["recomputed"] < 900000
    assert verdict["method"] == "shapley"
    # a holdout that is not the committed one is a mismatch too, before any score is computed
    wrong = m.run("Bob", "scores", "verify", "--task", str(task_id), "--holdout", str(other),
                  check=False)
    assert wrong.returncode == 9
    assert "committed" in " ".join(json.loads(wrong.stdout)["mismatches"])


def test_a_killed_job_resumes_and_settles_once(fresh_devnode: Any, tmp_path: Path,
                                               digits: Any) -> None:
    """The creator dies while its round waits for results; ``job resume`` rejects what the
    round's policy rejects (Dave's shuffled labels fall below the minimum accuracy), settles the
    rest once, and resuming again settles nothing: the chain's pending list decides, not the
    job's record."""
    m = Market(fresh_devnode.url, tmp_path, digits)
    alice = Client(m.url, account="//Alice", home=m.home("Alice"))
    job = m.spawn("Alice", "job", "run", "paid", "--bundle", str(m.bundle), "--model",
                  str(m.model), "--holdout", str(m.holdout), "--rounds", "1", "--slots", "3",
                  "--reward", "1", "--pay-by-contribution", "--floor", "0.1",
                  "--validation", "min-accuracy=0.8")
    try:
        task_id = _wait_for_task(alice, alice.address or "", job, tmp_path / "Alice.log")
    finally:
        os.killpg(job.pid, 9)  # kill -9 while the round waits for its results
        job.wait()
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda n: m.work(n, task_id), (*HONEST, SHUFFLED)))

    resumed = json.loads(m.run("Alice", "job", "resume", "paid").stdout)
    assert resumed["status"] == "done"
    (record,) = resumed["rounds"]
    assert record["task_id"] == task_id and record["accepted"] == 2 and record["rejected"] == 1
    by_name = {c["name"]: c for c in record["contributors"]}
    assert by_name[SHUFFLED]["status"] == "Rejected" and by_name[SHUFFLED]["reward"] == 0
    assert by_name[SHUFFLED]["score"] is None
    assert all(by_name[n]["score"] > 0 and by_name[n]["reward"] >= UNIT // 10 for n in HONEST)
    again = json.loads(m.run("Alice", "job", "resume", "paid").stdout)
    assert again["rounds"][0]["paid"] == record["paid"]

    settled = [e for e in alice.watch(kinds="ContributionsSettled", from_block=1, timeout=0.01)
               if isinstance(e, ContributionsSettledEvent)]
    assert len(settled) == 1 and settled[0].results == 2
    assert settled[0].paid == record["paid"] and settled[0].paid + settled[0].dust == 2 * UNIT
    shown = json.loads(m.run("Alice", "job", "show", "paid").stdout)
    assert shown["rounds"][0]["matches_chain"]
    assert shown["total_paid"] == settled[0].paid
    human = cli(m.args("Alice", "job", "show", "paid"), home=m.home("Alice")).stdout
    assert "round 1 paid by contribution: " in human and "//Bob" in human, human

    # the job is over: Alice reveals its holdout, and Bob checks the round by its CID
    revealed = json.loads(m.run("Alice", "review", "reveal", str(
        m.home("Alice") / "jobs" / "paid" / "holdout.npz")).stdout)
    verdict = json.loads(m.run("Bob", "scores", "verify", "--task", str(task_id), "--holdout",
                               revealed["holdout_cid"]).stdout)
    assert verdict["ok"] and len(verdict["checks"]) == 2  # the rejected result is not scored
    alice.close()

"""The federated MNIST demo: the whole marketplace story on one machine, in one command.

An ephemeral devnode and a local store (or a real IPFS daemon) are started; creator //Alice
publishes a model-contributor task with 3 slots; 3 contributor processes (//Bob, //Charlie,
//Dave) each work it on their own shard through the CLI; the reviewer validates (round 1 with
on-chain AutoAccept, later rounds with a holdout min-accuracy policy); the creator federates.
The tables at the end compare each contributor's model, the federated model and a centrally
trained baseline on one evaluation set, show each round's validation policy, what was paid and
refunded, and where the time went: chain, storage, process start-up and training, each apart.

Run: ``make demo`` or ``python examples/federated_mnist/demo.py [--rounds 3] [--storage ipfs:URL]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

HERE = Path(__file__).resolve().parent
BUNDLE = HERE / "bundle"
CONTRIBUTORS = ("//Bob", "//Charlie", "//Dave")
UNIT = 10**12


class Ledger:
    """Seconds by kind of work, exclusive: a storage fetch inside a chain call counts once, as
    storage. Only the creator's thread charges it (contributors report their own stages)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._children: list[float] = []

    @contextmanager
    def charge(self, bucket: str) -> Iterator[None]:
        started = time.perf_counter()
        self._children.append(0.0)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            nested = self._children.pop()
            self.seconds[bucket] = self.seconds.get(bucket, 0.0) + elapsed - nested
            if self._children:
                self._children[-1] += elapsed


class _Timed:
    """Forwards every method call of ``target`` and charges its time to ``bucket``."""

    def __init__(self, target: Any, ledger: Ledger, bucket: str) -> None:
        self._target, self._ledger, self._bucket = target, ledger, bucket

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self._ledger.charge(self._bucket):
                return attr(*args, **kwargs)
        return timed


class _TimedPolicy:
    """A validation policy whose decisions (holdout scoring) are charged to ``scoring``."""

    def __init__(self, policy: Any, ledger: Ledger) -> None:
        self._policy, self._ledger = policy, ledger

    def decide(self, submission: Any) -> Any:
        with self._ledger.charge("scoring"):
            return self._policy.decide(submission)


class ContributorRun(BaseModel):
    account: str
    round: int
    submission_id: int
    num_examples: int | None
    train_seconds: float
    process_seconds: float
    stage_seconds: dict[str, float] = {}
    accuracy: float | None = None


class DemoReport(BaseModel):
    data_source: str
    storage: str
    rounds: list[dict[str, Any]]
    contributors: list[ContributorRun]
    federated_accuracy: float
    central_accuracy: float
    rewards_paid: int
    escrow_refunded: int
    fees_paid: int
    balances_ok: bool
    evaluation_examples: int
    holdout_examples: int
    wall_seconds: float
    training_seconds: float
    #: the federated job's wall time by kind of work, named for what it is (see ``overhead``)
    time_split: dict[str, float]
    steps: dict[str, float]


def _work_in_subprocess(url: str, storage: str, account: str, home: Path, task_id: int,
                        data_dir: Path) -> tuple[dict[str, Any], float]:
    """One contributor, as a user would run it: the CLI in its own process."""
    cmd = [sys.executable, "-m", "decentralml.cli.main", "--node", url, "--storage", storage,
           "--account", account, "--home", str(home), "--json", "--yes",
           "work", str(task_id), "--data", str(data_dir)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{account} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout), seconds


def run_demo(workdir: Path, *, rounds: int = 3, storage: str | None = None,
             mnist_path: Path | None = None, min_accuracy: float = 0.5,
             log: Any = print, node_url: str | None = None) -> DemoReport:
    """Run the demo in ``workdir``; return the numbers of its table (the e2e test checks them).

    ``node_url``: run against that node (e.g. the Rust runtime of ``make chain``) instead of an
    ephemeral devnode; the dev accounts //Alice, //Bob, //Charlie and //Dave must be funded there.
    """
    from decentralml import AutoAccept, Client, ModelCreator, holdout_policy, open_store
    from decentralml.chain.types import ValidationStrategy
    from decentralml.devnode import DevNode
    from decentralml.fl import (
        evaluate,
        load_mnist,
        make_digits_cnn,
        partition_iid,
        train_local,
    )
    from decentralml.roles.federated_job import run_federated_job

    steps: dict[str, float] = {}
    wall = time.perf_counter()
    storage = storage or f"local:{workdir / 'store'}"
    (x_train, y_train), (x_test, y_test), source = load_mnist(mnist_path)
    log(f"data: {source} ({len(y_train)} train / {len(y_test)} test)")
    shards = partition_iid(x_train, y_train, len(CONTRIBUTORS), seed=0)
    shard_dirs: dict[str, Path] = {}
    for account, (xs, ys) in zip(CONTRIBUTORS, shards, strict=True):
        d = workdir / "data" / account.strip("/").lower()
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / "data.npz", x=xs, y=ys)
        shard_dirs[account] = d
    config = json.loads((BUNDLE / "config.json").read_text(encoding="utf-8"))

    # One evaluation set for every accuracy in the table (central, federated, contributors);
    # the other half of the test split is the reviewer's holdout, used only to validate.
    holdout = (x_test[: len(x_test) // 2], y_test[: len(y_test) // 2])
    evaluation = (x_test[len(x_test) // 2:], y_test[len(y_test) // 2:])
    t = time.perf_counter()
    central = make_digits_cnn(x_train.shape[1:], 10, seed=0)
    train_local(central, x_train, y_train, epochs=rounds * int(config["epochs"]),
                batch_size=int(config["batch_size"]), seed=0)
    central_accuracy = float(evaluate(central, evaluation[0], evaluation[1])["accuracy"])
    steps["central baseline training"] = time.perf_counter() - t
    log(f"central baseline: accuracy {central_accuracy:.3f}")

    runs: list[ContributorRun] = []
    ledger = Ledger()
    policies: dict[int, str] = {}
    with contextlib.ExitStack() as stack:
        t = time.perf_counter()
        url = node_url or stack.enter_context(DevNode(port=0)).url
        store = open_store(storage, home=workdir / "home-alice")
        alice = Client(url, account="//Alice", home=workdir / "home-alice")
        accounts = ["//Alice", *CONTRIBUTORS]
        before = {a: alice.balance(alice.resolve_address(a)) for a in accounts}
        start_block = alice.block_number()
        creator = ModelCreator(_Timed(alice, ledger, "chain"),  # type: ignore[arg-type]
                               _Timed(store, ledger, "storage"),  # type: ignore[arg-type]
                               workdir=workdir / "creator")
        steps["devnode + store + connect"] = time.perf_counter() - t

        model = make_digits_cnn(x_train.shape[1:], 10, seed=0)

        def validation(r: int) -> tuple[ValidationStrategy, Any]:
            if r == 1:
                policies[r] = "AutoAccept on chain"
                return ValidationStrategy.AutoAccept, AutoAccept()
            policies[r] = f"holdout min-accuracy {min_accuracy:g}"
            return (ValidationStrategy.CustomAccept,
                    _TimedPolicy(holdout_policy(creator, model, holdout[0], holdout[1],
                                                min_accuracy=min_accuracy), ledger))

        def on_round(r: int, published: Any) -> None:
            log(f"round {r}: task {published.task_id} published ({published.assets_cid[:20]}...)")
            with ThreadPoolExecutor(len(CONTRIBUTORS)) as pool:
                futures = {a: pool.submit(_work_in_subprocess, url, storage, a,
                                          workdir / f"home-{a.strip('/').lower()}",
                                          published.task_id, shard_dirs[a])
                           for a in CONTRIBUTORS}
                for a, fut in futures.items():
                    out, seconds = fut.result()
                    runs.append(ContributorRun(
                        account=a, round=r, submission_id=out["submission_id"],
                        num_examples=out.get("num_examples"),
                        train_seconds=float(out.get("metrics", {}).get("train_seconds", 0.0)),
                        process_seconds=seconds, stage_seconds=out.get("timings", {}),
                        accuracy=out.get("metrics", {}).get("holdout_accuracy")))
            log(f"round {r}: {len(CONTRIBUTORS)} results submitted")

        t = time.perf_counter()
        model, job = run_federated_job(
            creator, model, BUNDLE, rounds=rounds, slots=len(CONTRIBUTORS), reward=10 * UNIT,
            x_test=evaluation[0], y_test=evaluation[1], question="Train the digits CNN",
            validation=validation, on_round_published=on_round, round_timeout=900)
        steps["federated job"] = time.perf_counter() - t
        federated_accuracy = float(evaluate(model, evaluation[0], evaluation[1])["accuracy"])
        after = {a: alice.balance(alice.resolve_address(a)) for a in accounts}
        fees = alice.fees_paid(accounts, from_block=start_block + 1)
        paid = job.total_paid
        refunded = sum(r.refund for r in job.rounds)
        earned = sum(after[a] - before[a] + fees.get(a, 0) for a in CONTRIBUTORS)
        spent = before["//Alice"] - after["//Alice"] - fees.get("//Alice", 0)
        balances_ok = earned == paid and spent == paid
        alice.close()

    # Each contributor's last update, scored on the same evaluation split as the federated model.
    last = [r for r in runs if r.round == job.rounds[-1].round]
    for run in last:
        run.accuracy = _score_update(workdir, run, evaluation)
    wall_seconds = time.perf_counter() - wall
    return DemoReport(
        data_source=source, storage=storage.split(":", 1)[0],
        rounds=[{**r.model_dump(), "policy": policies.get(r.round, "")} for r in job.rounds],
        contributors=runs, federated_accuracy=federated_accuracy,
        central_accuracy=central_accuracy, rewards_paid=paid, escrow_refunded=refunded,
        fees_paid=sum(fees.values()), balances_ok=balances_ok,
        evaluation_examples=len(evaluation[1]), holdout_examples=len(holdout[1]),
        wall_seconds=wall_seconds,
        training_seconds=_per_round_mean(runs, lambda r: r.train_seconds),
        time_split=_time_split(steps["federated job"], job, runs, ledger), steps=steps)


def _per_round_mean(runs: list[ContributorRun], value: Callable[[ContributorRun], float]
                    ) -> float:
    """Summed over rounds, the mean over that round's contributors (they run in parallel)."""
    total = 0.0
    for rnd in sorted({r.round for r in runs}):
        those = [value(r) for r in runs if r.round == rnd]
        total += sum(those) / len(those)
    return total


def _time_split(job_seconds: float, job: Any, runs: list[ContributorRun],
                ledger: Ledger) -> dict[str, float]:
    """The federated job's wall time by what it was spent on; the parts add up to the total.

    The contributors run in parallel, so their share is the per-round mean of each stage of
    their ``work`` process (a round waits for the slowest: the difference is "waiting").
    """
    def stage(*names: str) -> float:
        return _per_round_mean(runs, lambda r: sum(r.stage_seconds.get(n, 0.0) for n in names))

    training = _per_round_mean(runs, lambda r: r.train_seconds)
    cli_start = _per_round_mean(runs, lambda r: r.process_seconds - sum(r.stage_seconds.values()))
    task_start = stage("ran") - training
    contributors_phase = sum(rr.timings.get("contributors", 0.0) for rr in job.rounds)
    chain_c, storage_c = stage("accepted", "submitted"), stage("fetched", "uploaded")
    accounted = training + cli_start + task_start + chain_c + storage_c
    creator_chain = ledger.seconds.get("chain", 0.0)
    creator_storage = ledger.seconds.get("storage", 0.0)
    scoring = ledger.seconds.get("scoring", 0.0)
    creator_rest = (job_seconds - contributors_phase - creator_chain - creator_storage
                    - scoring)
    return {
        "training (contributors' train step in start_task.sh)": training,
        "process start-up: the contributors' decentralml CLI (Python, imports, connect)":
            cli_start,
        "process start-up: start_task.sh (Python, TensorFlow, model load)": task_start,
        "chain: contributors' accept_task + send_task_result": chain_c,
        "storage: contributors' fetch + verify bundle, upload result": storage_c,
        "waiting for the slowest contributor of a round": max(contributors_phase - accounted,
                                                              0.0),
        "chain: creator's create_task, queries, validation batch, close_task": creator_chain,
        "storage: creator's bundle store + pin, update fetches": creator_storage,
        "scoring: holdout evaluation of each update (validation policy)": scoring,
        "creator's model work: bundle packing, averaging, evaluation": max(creator_rest, 0.0),
    }


def _score_update(workdir: Path, run: ContributorRun, evaluation: tuple[Any, Any]) -> float | None:
    """Accuracy of one contributor's own update (from its work directory) on the evaluation set."""
    from decentralml.fl import evaluate, load_model, load_update

    home = workdir / f"home-{run.account.strip('/').lower()}"
    # work directories are named by the submission id and its assigning block's hash
    updates = list(home.glob(f"work/submission-{run.submission_id}-*/run/output/update.npz"))
    models = sorted((workdir / "creator" / "rounds").glob(f"round-{run.round}/model.keras"))
    if not updates or not models:
        return None
    model = load_model(models[0])
    update = load_update(updates[0], like=model)
    model.set_weights(list(update.weights))
    return float(evaluate(model, evaluation[0], evaluation[1])["accuracy"])


def print_report(report: DemoReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.width = max(console.width, 110)  # tables stay readable in logs and CI
    t = Table(title=f"federated digits demo ({report.data_source}, {report.storage} store): "
              f"every accuracy on the same {report.evaluation_examples} evaluation examples",
              title_justify="left")
    for col in ("model", "examples", "accuracy"):
        t.add_column(col)
    last_round = max(r.round for r in report.contributors)
    for run in report.contributors:
        if run.round == last_round:
            acc = "n/a" if run.accuracy is None else f"{run.accuracy:.3f}"
            t.add_row(f"contributor {run.account} (round {last_round})", str(run.num_examples),
                      acc)
    t.add_row(f"federated (FedAvg, {len(report.rounds)} rounds)", "",
              f"{report.federated_accuracy:.3f}")
    t.add_row("central baseline (all the training data)", "", f"{report.central_accuracy:.3f}")
    console.print(t)
    r = Table(title=f"rounds (amounts in UNIT; validation holdout: {report.holdout_examples} "
              "other examples)", title_justify="left")
    for col in ("round", "task", "validation policy", "sent", "accepted", "rejected", "paid",
                "refund", "accuracy", "seconds"):
        r.add_column(col)
    for rr in report.rounds:
        r.add_row(str(rr["round"]), str(rr["task_id"]), rr.get("policy", ""),
                  str(rr["submitted"]), str(rr["accepted"]), str(rr["rejected"]),
                  f"{rr['paid'] / UNIT:g}", f"{rr['refund'] / UNIT:g}",
                  "" if rr["accuracy"] is None else f"{rr['accuracy']:.3f}",
                  f"{rr['seconds']:.1f}")
    console.print(r)
    console.print(f"rewards paid {report.rewards_paid / UNIT:g} UNIT, escrow refunded "
                  f"{report.escrow_refunded / UNIT:g} UNIT, fees {report.fees_paid / UNIT:g} "
                  f"UNIT, balances reconcile: {report.balances_ok}")
    w = Table(title=f"where the federated job's {report.steps['federated job']:.1f} s went "
              "(contributors: mean per round, they run in parallel)", title_justify="left")
    w.add_column("work")
    w.add_column("seconds", justify="right")
    for name, seconds in report.time_split.items():
        w.add_row(name, f"{seconds:.1f}")
    console.print(w)
    console.print(f"wall time {report.wall_seconds:.1f} s: " + ", ".join(
        f"{name} {seconds:.1f} s" for name, seconds in report.steps.items()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--storage", help="local:PATH or ipfs:URL (default: a temp local store)")
    parser.add_argument("--mnist", type=Path, help="a local mnist.npz (default: sklearn digits)")
    parser.add_argument("--workdir", type=Path, help="keep the demo's files here")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--node", help="a node URL to run against (default: an ephemeral devnode)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="decentralml-demo-") as tmp:
        workdir = args.workdir or Path(tmp)
        report = run_demo(workdir, rounds=args.rounds, storage=args.storage,
                          mnist_path=args.mnist, log=(lambda *_: None) if args.json else print,
                          node_url=args.node)
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

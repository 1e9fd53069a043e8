"""The federated MNIST demo: the whole marketplace story on one machine, in one command.

An ephemeral devnode and a local store (or a real IPFS daemon) are started; 3 contributors
(//Bob, //Charlie, //Dave) each start one long-lived ``decentralml worker`` on their own shard;
creator //Alice runs a federated job: every round publishes a model-contributor task with 3 slots,
which the workers see in the block that created it (a block subscription, not polling) and run in
a warm task host (one sandboxed process per job that keeps TensorFlow, the data and the compiled
model between rounds); the reviewer validates (round 1 with on-chain AutoAccept, later rounds with
a holdout min-accuracy policy); the creator federates. The tables at the end compare each
contributor's model, the federated model and a centrally trained baseline on one evaluation set,
show each round's validation policy, what was paid and refunded, and where each round's time
went: training, task host, chain, storage, validation and aggregation.

Run: ``make demo`` or ``python examples/federated_mnist/demo.py [--rounds 3] [--storage ipfs:URL]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
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
    #: per round, where its wall time went (same parts as ``time_split``)
    breakdown: list[dict[str, float]] = []


class WorkerProcess:
    """One contributor's ``decentralml worker --json``, started once for the whole job, as a user
    would leave it running; its JSON event lines are collected by task."""

    def __init__(self, url: str, storage: str, account: str, home: Path, data_dir: Path,
                 creator: str, *, cold: bool = False) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.account = account
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        cmd = [sys.executable, "-m", "decentralml.cli.main", "--node", url, "--storage", storage,
               "--account", account, "--home", str(home), "--json", "--yes", "worker",
               "--data", str(data_dir), "--creator", creator, "--stop-grace", "5",
               *(["--cold"] if cold else [])]
        self._stderr = open(home / "worker.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL, text=True,
                                     env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            event["received"] = time.perf_counter()
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()

    def wait_for(self, event: str, task_id: int | None = None,
                 timeout: float = 600) -> dict[str, Any]:
        """The first ``event`` (of ``task_id``), waiting for it; RuntimeError on a failure."""
        def found() -> dict[str, Any] | None:
            for e in self.events:
                if e.get("task_id") == task_id and e["event"] in ("failed", "abandoned"):
                    raise RuntimeError(f"{self.account}: task {task_id} {e['message']}")
                if e["event"] == event and (task_id is None or e.get("task_id") == task_id):
                    return e
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.account}'s worker exited ({self.proc.returncode})")
            return None

        with self._cond:
            hit = self._cond.wait_for(found, timeout=timeout)
        if hit is None:
            raise RuntimeError(f"{self.account}: no {event} for task {task_id} in {timeout} s")
        return hit

    def stages(self, task_id: int) -> dict[str, float]:
        with self._cond:
            return {e["data"]["stage"]: float(e["data"].get("seconds", 0.0))
                    for e in self.events if e["event"] == "stage" and e.get("task_id") == task_id}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        self._stderr.close()


def run_demo(workdir: Path, *, rounds: int = 3, storage: str | None = None,
             mnist_path: Path | None = None, min_accuracy: float = 0.5,
             log: Any = print, node_url: str | None = None,
             contributor_nodes: Sequence[str] | None = None, cold: bool = False) -> DemoReport:
    """Run the demo in ``workdir``; return the numbers of its table (the e2e test checks them).

    ``node_url``: run against that node (e.g. the Rust runtime of ``make chain``) instead of an
    ephemeral devnode; the dev accounts //Alice, //Bob, //Charlie and //Dave must be funded there.
    ``contributor_nodes``: one node URL per contributor (//Bob, //Charlie, //Dave), for a network
    where every party runs, or trusts, a node of its own; by default they use the creator's.
    ``cold``: the workers start every round in a fresh sandboxed process (``worker --cold``).
    """
    from decentralml import AutoAccept, Client, ModelCreator, holdout_policy, open_store
    from decentralml.chain.types import ValidationStrategy
    from decentralml.devnode import DevNode
    from decentralml.errors import InvalidInput
    from decentralml.fl import (
        evaluate,
        load_mnist,
        make_digits_cnn,
        partition_iid,
        train_local,
    )
    from decentralml.roles.federated_job import run_federated_job

    if contributor_nodes is not None and len(contributor_nodes) != len(CONTRIBUTORS):
        raise InvalidInput("contributor_nodes", f"{len(contributor_nodes)} URLs given",
                           f"one per contributor, {len(CONTRIBUTORS)}")
    if contributor_nodes is not None and node_url is None:
        raise InvalidInput("contributor_nodes", "given without node_url",
                           "the creator's node must be on the same chain: give node_url too")
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

        scoring: list[Any] = []  # one holdout policy for every round (it keeps its scorer)

        def validation(r: int) -> tuple[ValidationStrategy, Any]:
            if r == 1:
                policies[r] = "AutoAccept on chain"
                return ValidationStrategy.AutoAccept, AutoAccept()
            policies[r] = f"holdout min-accuracy {min_accuracy:g}"
            if not scoring:
                scoring.append(_TimedPolicy(holdout_policy(
                    creator, model, holdout[0], holdout[1], min_accuracy=min_accuracy), ledger))
            return ValidationStrategy.CustomAccept, scoring[0]

        # The contributors' workers start once and serve every round.
        t = time.perf_counter()
        urls = dict(zip(CONTRIBUTORS, contributor_nodes or [url] * len(CONTRIBUTORS),
                        strict=True))
        workers = {a: WorkerProcess(urls[a], storage, a, workdir / f"home-{a.strip('/').lower()}",
                                    shard_dirs[a], "//Alice", cold=cold) for a in CONTRIBUTORS}
        for w in workers.values():
            stack.callback(w.stop)
        for w in workers.values():
            w.wait_for("started", timeout=300)
        steps["contributors' workers start"] = time.perf_counter() - t
        published_at: dict[int, float] = {}
        # the creator's ledger at each phase of each round
        ledger_marks: dict[int, dict[str, dict[str, float]]] = {}
        phases = {"round-published": "published", "round-results": "results",
                  "round-validated": "validated", "round-closed": "closed"}

        def on_round(r: int, published: Any) -> None:
            published_at[r] = time.perf_counter()
            log(f"round {r}: task {published.task_id} published ({published.assets_cid[:20]}...)")

        def on_progress(event: str, data: dict[str, Any]) -> None:
            if event in phases:
                r = int(data["round"])
                marks = ledger_marks.setdefault(r, {})
                marks.setdefault("start", ledger_marks[r - 1]["closed"])
                marks[phases[event]] = dict(ledger.seconds)
            if event == "round-results":
                task_id = int(data["task_id"])
                for a, w in workers.items():
                    done = w.wait_for("submitted", task_id)
                    metrics = done["data"].get("metrics") or {}
                    runs.append(ContributorRun(
                        account=a, round=int(data["round"]), submission_id=done["submission_id"],
                        num_examples=done["data"].get("num_examples"),
                        train_seconds=float(metrics.get("train_seconds", 0.0)),
                        process_seconds=done["received"] - published_at.get(data["round"],
                                                                            done["received"]),
                        stage_seconds=w.stages(task_id)))
                log(f"round {data['round']}: {len(workers)} results submitted")

        ledger_marks[0] = {"closed": dict(ledger.seconds)}
        t = time.perf_counter()
        model, job = run_federated_job(
            creator, model, BUNDLE, rounds=rounds, slots=len(CONTRIBUTORS), reward=10 * UNIT,
            x_test=evaluation[0], y_test=evaluation[1], question="Train the digits CNN",
            validation=validation, on_round_published=on_round, on_progress=on_progress,
            round_timeout=900)
        steps["federated job"] = time.perf_counter() - t
        creator.stop_watching()
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
    breakdown = _round_breakdown(job, runs, ledger_marks)
    return DemoReport(
        data_source=source, storage=storage.split(":", 1)[0],
        rounds=[{**r.model_dump(), "policy": policies.get(r.round, "")} for r in job.rounds],
        contributors=runs, federated_accuracy=federated_accuracy,
        central_accuracy=central_accuracy, rewards_paid=paid, escrow_refunded=refunded,
        fees_paid=sum(fees.values()), balances_ok=balances_ok,
        evaluation_examples=len(evaluation[1]), holdout_examples=len(holdout[1]),
        wall_seconds=wall_seconds,
        training_seconds=_per_round_mean(runs, lambda r: r.train_seconds),
        time_split=_time_split(steps["federated job"], breakdown), steps=steps,
        breakdown=breakdown)


def _per_round_mean(runs: list[ContributorRun], value: Callable[[ContributorRun], float]
                    ) -> float:
    """Summed over rounds, the mean over that round's contributors (they run in parallel)."""
    total = 0.0
    for rnd in sorted({r.round for r in runs}):
        those = [value(r) for r in runs if r.round == rnd]
        total += sum(those) / len(those)
    return total


#: The parts of a round's wall time, in the order the tables show them.
PARTS = ("training", "task host", "chain", "storage", "validation", "aggregation", "waiting",
         "other")
PART_NOTES = {
    "training": "the contributors' train step (mean of the three, they run in parallel)",
    "task host": "the sandboxed process around training: start-up, imports, model load, update",
    "chain": "accept_task + send_task_result, create_task, queries, close_task",
    "storage": "bundle store + pin, fetch + verify, result upload, update fetches",
    "validation": "the validation batch on chain and holdout scoring of each update",
    "aggregation": "federating the updates and evaluating the global model",
    "waiting": "for the slowest contributor and the block that wakes the workers",
    "other": "the creator's bundle packing and bookkeeping",
}


def _round_parts(rr: Any, runs: list[ContributorRun], marks: dict[str, dict[str, float]]
                 ) -> dict[str, float]:
    """Round ``rr``'s wall time by kind of work; the parts add up to ``rr.seconds``.

    ``marks`` are the creator's ledger at each phase of the round (published, results,
    validated, closed). The contributors' share is the per-round mean of each stage of their
    worker.
    """
    def stage(*names: str) -> float:
        return _per_round_mean(runs, lambda r: sum(r.stage_seconds.get(n, 0.0) for n in names))

    def spent(bucket: str, start: str, end: str) -> float:
        return marks[end].get(bucket, 0.0) - marks[start].get(bucket, 0.0)

    training = _per_round_mean(runs, lambda r: r.train_seconds)
    host = max(stage("ran") - training, 0.0)
    chain_c, storage_c = stage("accepted", "submitted"), stage("fetched", "uploaded")
    phase = rr.timings
    parts = {
        "training": training,
        "task host": host,
        "chain": chain_c + spent("chain", "start", "closed")
        - spent("chain", "results", "validated"),
        "storage": storage_c + spent("storage", "start", "closed"),
        "validation": phase.get("validate", 0.0),
        "aggregation": max(phase.get("federate", 0.0)
                           - spent("storage", "validated", "closed"), 0.0),
        "waiting": max(phase.get("contributors", 0.0) - training - host - chain_c - storage_c,
                       0.0),
    }
    parts["other"] = max(rr.seconds - sum(parts.values()), 0.0)
    return parts


def _round_breakdown(job: Any, runs: list[ContributorRun],
                     marks: dict[int, dict[str, dict[str, float]]]) -> list[dict[str, float]]:
    out = []
    for rr in job.rounds:
        parts = _round_parts(rr, [r for r in runs if r.round == rr.round], marks[rr.round])
        out.append({"round": float(rr.round), "seconds": rr.seconds, **parts})
    return out


def _time_split(job_seconds: float, breakdown: list[dict[str, float]]) -> dict[str, float]:
    """The federated job's wall time by kind of work; the parts add up to the total."""
    split = {name: sum(b[name] for b in breakdown) for name in PARTS}
    split["other"] += max(job_seconds - sum(b["seconds"] for b in breakdown), 0.0)
    return split


def _score_update(workdir: Path, run: ContributorRun, evaluation: tuple[Any, Any]) -> float | None:
    """Accuracy of one contributor's own update (from its work directory) on the evaluation set."""
    from decentralml.fl import evaluate, load_model, load_update

    home = workdir / f"home-{run.account.strip('/').lower()}"
    # the worker keeps a work directory per task, named by the submission id and its assigning
    # block's hash
    updates = list(home.glob(f"worker/*/*/tasks/task-*/work/submission-{run.submission_id}-*"
                             "/run/output/update.npz"))
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
    w = Table(title=f"where each round's time went, seconds (federated job "
              f"{report.steps['federated job']:.1f} s; contributors: mean of the three, they run "
              "in parallel)", title_justify="left")
    w.add_column("round")
    for name in ("wall", *PARTS):
        w.add_column(name, justify="right")
    for b in report.breakdown:
        w.add_row(str(int(b["round"])), f"{b['seconds']:.2f}",
                  *(f"{b[name]:.2f}" for name in PARTS))
    w.add_row("job", f"{report.steps['federated job']:.2f}",
              *(f"{report.time_split[name]:.2f}" for name in PARTS))
    console.print(w)
    console.print("; ".join(f"{name}: {note}" for name, note in PART_NOTES.items()),
                  highlight=False)
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
    parser.add_argument("--contributor-nodes", nargs=len(CONTRIBUTORS), metavar="URL",
                        help="a node URL for each contributor (default: --node's)")
    parser.add_argument("--cold", action="store_true",
                        help="no warm task hosts: a fresh sandboxed process every round")
    args = parser.parse_args(argv)
    if args.contributor_nodes and not args.node:
        parser.error("--contributor-nodes needs --node (the creator's node, on the same chain)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="decentralml-demo-") as tmp:
        workdir = args.workdir or Path(tmp)
        report = run_demo(workdir, rounds=args.rounds, storage=args.storage,
                          mnist_path=args.mnist, log=(lambda *_: None) if args.json else print,
                          node_url=args.node, contributor_nodes=args.contributor_nodes,
                          cold=args.cold)
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``decentralml job`` end to end: a 3-round federated job whose creator process is killed with
SIGKILL after round 1 and resumed, served by two ``decentralml worker`` processes; nothing is
published or paid twice and ``job show`` agrees with the chain.

The model is tiny (a softmax layer over 8x8 digits), so the TensorFlow cost is mostly imports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from decentralml.chain.client import Client
from decentralml.chain.types import SubmissionStatus, TaskStatus
from tests.roles.conftest import cli

pytestmark = [pytest.mark.tf, pytest.mark.slow]

UNIT = 10**12
BUNDLE = Path(__file__).resolve().parents[2] / "examples" / "federated_mnist" / "bundle"
WORKERS = ("//Bob", "//Charlie")


def _tiny_model(path: Path) -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    from decentralml.fl import save_model

    save_model(model, path)


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "DECENTRALML_HOME": str(home),
            "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
            "XDG_DATA_HOME": str(home / "xdg")}


def _spawn(args: list[str], home: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "decentralml.cli.main", *args],
                            env=_env(home), stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def job_fixture(url: str, tmp: Path, digits) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Data shards for the workers, a holdout file and a tiny model; shared with the dashboard
    test."""
    from decentralml.fl import partition_iid

    (x, y), (xt, yt) = digits
    shards = {}
    for uri, (xs, ys) in zip(WORKERS, partition_iid(x, y, len(WORKERS), seed=0), strict=True):
        d = tmp / f"data-{uri[2:]}"
        d.mkdir()
        np.savez(d / "data.npz", x=xs, y=ys)
        shards[uri] = d
    np.savez(tmp / "holdout.npz", x=xt, y=yt)
    _tiny_model(tmp / "model.keras")
    return {"url": url, "spec": f"local:{tmp / 'store'}", "shards": shards,
            "holdout": tmp / "holdout.npz", "model": tmp / "model.keras"}


def start_workers(f: dict[str, object], tmp: Path) -> list[subprocess.Popen[bytes]]:
    shards = f["shards"]
    assert isinstance(shards, dict)
    return [_spawn(["--node", str(f["url"]), "--storage", str(f["spec"]), "--account", uri,
                    "--json", "worker", "--data", str(shards[uri]), "--poll", "0.3"],
                   tmp / f"home-{uri[2:]}", tmp / f"worker-{uri[2:]}.log") for uri in WORKERS]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(w.pid, signal.SIGKILL)
            w.wait()


def job_args(f: dict[str, object], *extra: str) -> list[str]:
    return ["--node", str(f["url"]), "--storage", str(f["spec"]), "--account", "//Alice",
            *extra]


def test_job_killed_between_rounds_resumes_without_paying_twice(
        fresh_devnode, tmp_path: Path, digits) -> None:
    f = job_fixture(fresh_devnode.url, tmp_path, digits)
    home = tmp_path / "home-Alice"
    alice = Client(fresh_devnode.url, account="//Alice", home=home)
    before = alice.balance()
    workers = start_workers(f, tmp_path)
    try:
        run = _spawn(job_args(f, "job", "run", "digits", "--bundle", str(BUNDLE), "--model",
                              str(f["model"]), "--holdout", str(f["holdout"]), "--rounds", "3",
                              "--slots", "2", "--reward", "1", "--round-timeout", "300"),
                     home, tmp_path / "job-run.log")
        state_file = home / "jobs" / "digits" / "job.json"
        deadline = time.monotonic() + 600
        while True:
            assert run.poll() is None, (tmp_path / "job-run.log").read_text()
            assert time.monotonic() < deadline, "round 1 never closed"
            if state_file.is_file():
                state = json.loads(state_file.read_text())
                if state["rounds"] and state["rounds"][0]["phase"] == "closed":
                    break
            time.sleep(0.2)
        os.killpg(run.pid, signal.SIGKILL)  # the creator dies between rounds
        run.wait()
        assert len(json.loads(state_file.read_text())["rounds"]) <= 2  # round 3 not begun

        resumed = cli(job_args(f, "--json", "job", "resume", "digits"), home=home, timeout=900)
        final = json.loads(resumed.stdout)
        assert final["status"] == "done" and len(final["rounds"]) == 3
        progress = [json.loads(line) for line in resumed.stderr.splitlines()
                    if line.startswith("{")]
        assert {"event": "round-resumed", "round": 1, "phase": "closed"}.items() <= \
            progress[0].items()
        assert [p["round"] for p in progress if p["event"] == "round-closed"][-1] == 3
    finally:
        stop_workers(workers)

    # The chain: three tasks, one per round, every slot paid exactly once.
    tasks = alice.tasks(creator=alice.address)
    assert [t.question for t in tasks] == [
        f"Train the global model (job digits, round {r}/3)" for r in (1, 2, 3)]
    assert all(t.status is TaskStatus.Closed and t.accepted_results == 2 for t in tasks)
    paid = list(alice.watch(kinds="ResultAccepted", from_block=1, timeout=0.01))
    assert len(paid) == 6 and len({e.submission_id for e in paid}) == 6
    assert sum(e.reward for e in paid) == 6 * UNIT
    fees = alice.fees_paid(["//Alice"])["//Alice"]
    assert before - alice.balance() == 6 * UNIT + fees  # escrow all paid out, nothing refunded

    shown = json.loads(cli(job_args(f, "--json", "job", "show", "digits"), home=home).stdout)
    assert shown["total_paid"] == 6 * UNIT
    assert [r["task_id"] for r in shown["rounds"]] == [t.task_id for t in tasks]
    for r, task in zip(shown["rounds"], tasks, strict=True):
        assert r["matches_chain"] and r["chain"]["accepted"] == 2
        assert r["chain"]["paid"] == r["recorded"]["paid"] == 2 * UNIT
        subs = alice.task_submissions(task.task_id)
        assert sorted(c["submission_id"] for c in r["contributors"]) == sorted(
            s.submission_id for s in subs if s.status is SubmissionStatus.Accepted)
        assert all(0 <= c["accuracy"] <= 1 for c in r["contributors"])
        assert 0 <= r["accuracy"] <= 1
    assert shown["final_accuracy"] > shown["initial_accuracy"]
    assert Path(shown["plot"]).stat().st_size > 10_000  # the PNG next to the report

    listed = json.loads(cli(job_args(f, "--json", "job", "list"), home=home).stdout)
    assert [(j["name"], j["status"], j["rounds"]) for j in listed] == [("digits", "done", "3/3")]
    alice.close()

"""The contributor's commands through the CLI as a subprocess, against a real devnode and a real
local store: journals across a devnode restart, ``--reset``, ``abandon``, two ``work`` runs at
once, and ``accept``/``run``/``submit`` saying what really happened."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from decentralml.chain.client import Client
from decentralml.chain.types import SubmissionStatus
from decentralml.devnode import DevNode
from tests.roles.conftest import TINY_BUNDLE, cli


class Chain:
    """One devnode, a local store, and a home per account (dev accounts: no secrets needed)."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url = url
        self.tmp = tmp
        self.store = f"local:{tmp / 'store'}"

    def args(self, account: str, *args: str, as_json: bool = True) -> list[str]:
        return ["--node", self.url, "--storage", self.store, "--account", account,
                *(["--json"] if as_json else []), "--yes", *args]

    def run(self, account: str, *args: str, check: bool = True, as_json: bool = True
            ) -> subprocess.CompletedProcess[str]:
        return cli(self.args(account, *args, as_json=as_json), home=self.home(account),
                   check=check, env={"COLUMNS": "250"})

    def json(self, account: str, *args: str) -> Any:
        return json.loads(self.run(account, *args).stdout)

    def home(self, account: str) -> Path:
        return self.tmp / account.strip("/")

    def create(self, slots: int = 1, validation: str = "manual") -> int:
        created = self.json("//Alice", "task", "create", "--bundle", str(TINY_BUNDLE),
                            "--question", "count lines", "--reward", "1", "--slots", str(slots),
                            "--validation", validation)
        return int(created["task_id"])


def _data(tmp: Path, name: str, lines: int) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "samples.txt").write_text("".join(f"line {i}\n" for i in range(lines)))
    return d


def test_journal_after_a_devnode_restart_is_stale_and_reset_starts_over(tmp_path: Path) -> None:
    first = DevNode().start()
    port = first.port
    try:
        old = Chain(first.url, tmp_path)
        task_id = old.create()
        ran = old.json("//Bob", "run", str(task_id), "--data", str(_data(tmp_path, "d3", 3)))
        assert ran["status"] == "Assigned" and ran["num_examples"] == 3
    finally:
        first.stop()
    # The same URL, the same genesis, task and submission ids from 0 again: another chain.
    with DevNode(port=port) as second:
        new = Chain(second.url, tmp_path)
        assert new.create() == task_id
        d5 = _data(tmp_path, "d5", 5)
        done = new.run("//Bob", "work", str(task_id), "--data", str(d5))
        report = json.loads(done.stdout)
        assert len(report["stale"]) == 1 and "another task" in report["stale"][0]
        assert "warning" in done.stderr and "stale" in done.stderr
        assert report["resumed_from"] is None  # nothing of the old chain was resumed
        assert report["stages_run"] == ["fetched", "ran", "uploaded", "submitted"]
        assert report["num_examples"] == 5 and report["result_sent"] is True
        with Client(second.url) as client:
            sub = client.submission(report["submission_id"])
            assert sub.status is SubmissionStatus.PendingValidation
            assert sub.worker == client.resolve_address("//Bob")
        stale_dir = next((new.home("//Bob") / "journal").glob("*/*/stale"))
        assert [json.loads(p.read_text())["stale_reason"] for p in stale_dir.iterdir()]

        # --reset: forget the local progress of a run and run again on other data
        again = new.create()
        first_run = new.json("//Bob", "run", str(again), "--data", str(_data(tmp_path, "d2", 2)))
        assert first_run["num_examples"] == 2
        d7 = _data(tmp_path, "d7", 7)
        kept = new.run("//Bob", "run", str(again), "--data", str(d7), as_json=False)
        assert "already ran" in kept.stdout and "--reset" in kept.stdout
        redone = new.json("//Bob", "run", str(again), "--data", str(d7), "--reset")
        assert redone["reset"] is True and redone["stages_run"] == ["fetched", "ran"]
        assert redone["num_examples"] == 7
        assert redone["submission_id"] == first_run["submission_id"]  # the slot was kept
        sent = new.json("//Bob", "submit", str(again))
        assert sent["result_sent"] is True and sent["num_examples"] == 7


def test_abandon_gives_the_slot_back(fresh_devnode: DevNode, tmp_path: Path) -> None:
    chain = Chain(fresh_devnode.url, tmp_path)
    task_id = chain.create()
    accepted = chain.json("//Bob", "accept", str(task_id))
    assert accepted["sent"] is True
    abandoned = chain.json("//Bob", "abandon", str(task_id))
    assert abandoned["submission_id"] == accepted["submission_id"]
    assert abandoned["discarded"]  # the journal entry of that slot
    with Client(fresh_devnode.url) as client:
        assert client.submission(accepted["submission_id"]).status is \
            SubmissionStatus.Abandoned
        assert client.task(task_id).open_slots == 1
    none = chain.run("//Bob", "abandon", str(task_id), check=False)
    assert none.returncode == 4 and "holds no slot" in none.stderr

    # the slot reopened: Charlie takes it and finishes; a sent result cannot be abandoned
    worked = chain.json("//Charlie", "work", str(task_id), "--data",
                        str(_data(tmp_path, "d", 1)))
    assert worked["status"] == "PendingValidation"
    late = chain.run("//Charlie", "abandon", str(task_id), check=False)
    assert late.returncode == 4 and "cannot be withdrawn" in late.stderr
    assert "Traceback" not in late.stderr + none.stderr
    bob = chain.json("//Alice", "account", "overview", "//Bob")
    assert (bob["submissions"], bob["abandoned"], bob["results_submitted"]) == (1, 1, 0)
    charlie = chain.json("//Alice", "account", "overview", "//Charlie")
    assert (charlie["results_submitted"], charlie["pending"], charlie["accepted"]) == (1, 1, 0)


def test_two_work_runs_for_one_account_at_once(fresh_devnode: DevNode, tmp_path: Path) -> None:
    chain = Chain(fresh_devnode.url, tmp_path)
    task_id = chain.create(slots=2)
    data = _data(tmp_path, "data", 4)
    (data / "slow").touch()  # the tiny bundle waits while this file exists
    env = {**os.environ, "DECENTRALML_HOME": str(chain.home("//Bob"))}
    first = subprocess.Popen(
        [sys.executable, "-m", "decentralml.cli.main",
         *chain.args("//Bob", "work", str(task_id), "--data", str(data))],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        # the bundle says "running" in its output dir (the data dir is read-only in a sandbox)
        while not list(chain.home("//Bob").glob("work/*/run/output/running")):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run's task never started"
            time.sleep(0.05)
        second = chain.run("//Bob", "work", str(task_id), "--data", str(data), check=False)
        assert second.returncode == 1
        assert "already working" in second.stderr and f"work {task_id}" in second.stderr
        assert "Traceback" not in second.stderr and "FileNotFoundError" not in second.stderr
    finally:
        (data / "slow").unlink()
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert json.loads(stdout)["status"] == "PendingValidation"
    # and once the first is done, the account can work again
    again = chain.json("//Bob", "work", str(task_id), "--data", str(data))
    assert again["stages_run"] == [] and again["result_sent"] is False


def test_accept_run_submit_report_what_was_sent(fresh_devnode: DevNode, tmp_path: Path) -> None:
    chain = Chain(fresh_devnode.url, tmp_path)
    task_id = chain.create()
    data = _data(tmp_path, "data", 3)

    unrun = chain.run("//Bob", "submit", str(task_id), check=False)
    assert unrun.returncode == 4 and "holds no slot" in unrun.stderr
    assert chain.json("//Bob", "accept", str(task_id))["sent"] is True
    twice = chain.run("//Bob", "accept", str(task_id), as_json=False)
    assert "nothing sent" in twice.stdout and "already hold" in twice.stdout
    not_yet = chain.run("//Bob", "submit", str(task_id), check=False)
    assert not_yet.returncode == 4 and "has not run yet" in not_yet.stderr

    ran = chain.run("//Bob", "run", str(task_id), "--data", str(data), as_json=False)
    assert f"submit {task_id}` next" in ran.stdout
    submitted = chain.json("//Bob", "submit", str(task_id))  # as documented: no --data
    assert submitted["result_sent"] is True and submitted["status"] == "PendingValidation"
    resent = chain.run("//Bob", "submit", str(task_id), as_json=False)
    assert "nothing sent" in resent.stdout and "submitted" not in resent.stdout
    assert chain.json("//Bob", "submit", str(task_id))["result_sent"] is False

    chain.json("//Alice", "validate", str(task_id), "--policy", "auto")
    after = chain.run("//Bob", "run", str(task_id), "--data", str(data), as_json=False)
    assert "nothing to run" in after.stdout and "Accepted" in after.stdout
    assert "next" not in after.stdout
    with Client(fresh_devnode.url) as client:
        subs = client.task_submissions(task_id)
        assert [s.status for s in subs] == [SubmissionStatus.Accepted]  # one, sent once

    # what each side did, read back from the chain
    bob = chain.json("//Bob", "account", "overview")
    assert bob["results_submitted"] == 1 and bob["accepted"] == 1 and bob["pending"] == 0
    assert bob["rewards_earned"] == 10**12 and bob["tasks_created"] == 0
    alice = chain.json("//Alice", "account", "overview")
    assert alice["tasks_created"] == 1 and alice["tasks_open"] == 1
    assert alice["rewards_paid"] == 10**12 and alice["escrow_locked"] == 0
    shown = chain.run("//Bob", "account", "overview", as_json=False)
    assert "rewards earned" in shown.stdout and "1 UNIT" in shown.stdout

"""``decentralml work TASK --stay``: the task, then the creator's next round in the same warm task
host, then an exit once no new task came for ``--stay-idle`` seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from decentralml.chain.client import Client
from decentralml.roles.creator import ModelCreator
from decentralml.storage import open_store

FIT = """
import json, os

def fit(task):
    (task.output_dir / "result.json").write_text(json.dumps(
        {"num_examples": 1, "metrics": {"number": task.number, "pid": os.getpid()}}))
"""


def test_work_stay_serves_the_next_round_warm_then_exits(fresh_devnode, tmp_path: Path) -> None:
    store = f"local:{tmp_path / 'store'}"
    data = tmp_path / "data"
    data.mkdir()

    def publish(n: int) -> int:
        bundle = tmp_path / f"bundle-{n}"
        bundle.mkdir()
        (bundle / "train.py").write_text(FIT)
        (bundle / "start_task.sh").write_text("exec python train.py\n")
        (bundle / "template.json").write_text(json.dumps({"entry": "train:fit",
                                                          "round_files": ["config.json"]}))
        (bundle / "config.json").write_text(json.dumps({"round": n}))
        with Client(fresh_devnode.url, account="//Alice", home=tmp_path / "alice") as alice:
            creator = ModelCreator(alice, open_store(store), workdir=tmp_path / "creator")
            return creator.publish(bundle, question=f"round {n}", reward=10**12,
                                   metadata={"job": "stay"}).task_id

    first = publish(1)
    env = {**os.environ, "DECENTRALML_HOME": str(tmp_path / "bob")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "decentralml.cli.main", "--node", fresh_devnode.url, "--storage",
         store, "--account", "//Bob", "--json", "--yes", "work", str(first), "--data",
         str(data), "--stay", "--stay-idle", "8"], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        report = ""
        while not report.rstrip().endswith("}") or report.count("{") != report.count("}"):
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            report += line
        assert json.loads(report)["status"] == "PendingValidation"
        second = publish(2)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    done = [e for e in events if e["event"] == "submitted"]
    assert [e["task_id"] for e in done] == [second]
    assert done[0]["data"]["metrics"]["number"] == 2  # the first task's host, warm
    assert events[-1]["event"] == "stopped" and any(
        e["event"] == "done" and "no task for 8" in e["message"] for e in events)

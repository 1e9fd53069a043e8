"""New blocks pushed by the node: the subscription the worker and the job loop wait on, its drop
(the callers poll then) and a worker that takes a task with polling practically off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from decentralml.chain.client import Client
from decentralml.chain.heads import HeadWatch
from decentralml.chain.types import ValidationStrategy
from decentralml.devnode import DevNode
from decentralml.roles.creator import ModelCreator
from decentralml.storage import open_store

COUNT = """#!/usr/bin/env bash
printf '{"num_examples": 1, "metrics": {}}\\n' > "$DECENTRALML_OUTPUT_DIR/result.json"
"""


def _wait(condition, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_heads_arrive_and_a_dropped_subscription_says_so(tmp_path: Path) -> None:
    node = DevNode(port=0)
    node.start()
    seen: list[int] = []
    try:
        with Client(node.url, account="//Alice", home=tmp_path / "alice") as alice, \
                HeadWatch(node.url, on_head=seen.append) as heads:
            assert _wait(lambda: heads.subscribed)
            before = alice.block_number()
            alice.transfer(alice.resolve_address("//Bob"), 10**12)
            head = heads.wait_beyond(before, timeout=10)
            assert head is not None and head > before and seen and seen[-1] >= head
            node.stop()
            assert _wait(lambda: not heads.subscribed)
            started = time.monotonic()
            assert heads.wait_beyond(head, timeout=5) is None  # no blocking: callers poll
            assert time.monotonic() - started < 1
    finally:
        node.stop()


def test_worker_takes_a_new_task_with_polling_off(fresh_devnode, tmp_path: Path) -> None:
    """``--poll 3600``: only the block subscription can wake it for a task published later."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "start_task.sh").write_text(COUNT)
    data = tmp_path / "data"
    data.mkdir()
    store = f"local:{tmp_path / 'store'}"
    env = {**os.environ, "DECENTRALML_HOME": str(tmp_path / "bob")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "decentralml.cli.main", "--node", fresh_devnode.url, "--storage",
         store, "--account", "//Bob", "--json", "worker", "--data", str(data), "--poll", "3600",
         "--max-tasks", "1"], env=env, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["event"] == "started"
        time.sleep(1.0)  # it has looked once and is waiting now
        with Client(fresh_devnode.url, account="//Alice", home=tmp_path / "alice") as alice:
            creator = ModelCreator(alice, open_store(store), workdir=tmp_path / "creator")
            published = creator.publish(bundle, question="count", reward=10**12,
                                        validation_strategy=ValidationStrategy.AutoAccept)
            started = time.monotonic()
            out, err = proc.communicate(timeout=120)
            took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [e["task_id"] for e in events if e["event"] == "submitted"] == [published.task_id]
    assert took < 20  # the new block woke it (not the 3600 s poll, nor the 30 s safety net)

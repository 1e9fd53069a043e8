"""Warm task hosts (decentralml/storage/task_host.py) in the real sandbox: reuse within one key,
and what happens to a host whose round raises, hangs, crashes, writes too much or is cancelled."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from decentralml.chain.types import TaskType
from decentralml.storage.bundle import MANIFEST_NAME, Bundle, build_manifest, load_bundle
from decentralml.storage.runner import CancelHandle, RunLimits, TaskCancelled, TaskFailed
from decentralml.storage.task_host import TaskHostPool, descendants

ENTRY = '''
import json, os, time
from pathlib import Path

def fit(task):
    what = task.config.get("do", "")
    if what == "raise" and task.number > 1:
        raise ValueError("broken on purpose")
    if what == "hang" and task.number > 1:
        time.sleep(600)
    if what == "crash" and task.number > 1:
        os._exit(3)
    if what == "fill":  # files under the per-file limit, together over the output limit
        for i in range(5):
            (task.output_dir / f"part{i}").write_bytes(b"x" * (400 * 1024))
    (task.output_dir / "result.json").write_text(json.dumps(
        {"num_examples": 1, "metrics": {"number": task.number, "pid": os.getpid()}}))
'''


def _bundle(root: Path, do: str = "") -> Bundle:
    root.mkdir(parents=True)
    (root / "train.py").write_text(ENTRY)
    (root / "start_task.sh").write_text("exec python train.py\n")
    (root / "config.json").write_text(json.dumps({"do": do}))
    manifest = build_manifest(root, task_type=TaskType.ModelContributor, entry="train:fit",
                              round_files=("config.json",))
    (root / MANIFEST_NAME).write_bytes(manifest.to_json())
    return load_bundle(root, cid=f"bafy{root.name}")


class Rounds:
    def __init__(self, tmp: Path, pool: TaskHostPool) -> None:
        self.tmp, self.pool, self.n = tmp, pool, 0

    def run(self, do: str = "", *, job: str = "j", limits: RunLimits | None = None,
            cancel: CancelHandle | None = None):  # type: ignore[no-untyped-def]
        self.n += 1
        return self.pool.run(_bundle(self.tmp / f"b{self.n}", do), creator="alice", job=job,
                             task_id=self.n, submission_id=self.n, data_dir=None,
                             workdir=self.tmp / f"w{self.n}",
                             limits=limits or RunLimits(timeout=60), cancel=cancel)

    def hosts(self) -> list[str]:
        return [event for event, _job in self.pool.events]


@pytest.fixture
def rounds(tmp_path: Path):  # type: ignore[no-untyped-def]
    with TaskHostPool(tmp_path / "hosts") as pool:
        yield Rounds(tmp_path, pool)


def test_rounds_of_one_job_share_a_host_and_other_keys_do_not(rounds: Rounds) -> None:
    first, second = rounds.run(), rounds.run()
    assert second.metrics["number"] == 2 and second.metrics["pid"] == first.metrics["pid"]
    assert rounds.run(job="other").metrics["number"] == 1
    assert rounds.hosts() == ["started", "reused", "started"]


def test_a_round_that_raises_fails_and_ends_its_host(rounds: Rounds) -> None:
    rounds.run()
    with pytest.raises(TaskFailed, match="status 1"):
        rounds.run("raise")
    assert "broken on purpose" in (rounds.tmp / "w2" / "task.log").read_text()
    assert rounds.run().metrics["number"] == 1  # a fresh host
    assert rounds.hosts() == ["started", "reused", "started"]


def test_a_hanging_round_times_out_and_nothing_is_left(rounds: Rounds) -> None:
    limits = RunLimits(timeout=3)  # the limits are part of the host's key: the same both times
    rounds.run(limits=limits)
    [host] = rounds.pool._hosts.values()
    pid = host._spawned.proc.pid
    with pytest.raises(TaskFailed, match="timed out") as err:
        rounds.run("hang", limits=limits)
    assert err.value.result.timed_out
    assert descendants(pid) == set() and host._spawned.proc.poll() is not None


def test_a_crashing_host_is_replaced_by_a_cold_run(rounds: Rounds) -> None:
    rounds.run()
    result = rounds.run("crash")  # number 2 in the warm host: it dies; cold, it is round 1
    assert result.ok and result.metrics["number"] == 1
    assert any(event.startswith("cold: the task host died") for event in rounds.hosts())


def test_output_over_the_limit_fails_the_round_and_is_deleted(rounds: Rounds) -> None:
    limits = RunLimits(timeout=60, max_output_bytes=1024 * 1024)
    rounds.run(limits=limits)
    with pytest.raises(TaskFailed, match="more than 1048576 bytes") as err:
        rounds.run("fill", limits=limits)
    assert err.value.result.output_exceeded and list(err.value.result.output_dir.iterdir()) == []


def test_a_cancelled_round_stops_at_once(rounds: Rounds) -> None:
    rounds.run()
    cancel = CancelHandle()
    threading.Timer(1.0, cancel.cancel, args=("test",)).start()
    started = time.monotonic()
    with pytest.raises(TaskCancelled):
        rounds.run("hang", cancel=cancel)
    assert time.monotonic() - started < 30

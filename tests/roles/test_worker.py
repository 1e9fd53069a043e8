"""``decentralml worker`` against a real devnode and a real local store, run as a subprocess the
way a contributor (or systemd) runs it: filters, limits, failing tasks, ``kill -9`` and SIGTERM.

The bundles are shell only. A "held" bundle writes ``started`` into its output directory and waits
while the file ``hold`` exists in the data directory, so a test can catch the worker mid-task; the
data directory is only read by tasks (a sandboxed runner may mount it read-only).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from decentralml.chain.client import Client
from decentralml.chain.types import SubmissionStatus, TaskType, ValidationStrategy
from decentralml.roles.creator import ModelCreator
from decentralml.storage import open_store
from tests.roles.conftest import cli

UNIT = 10**12

HELD = """#!/usr/bin/env bash
set -euo pipefail
touch "$DECENTRALML_OUTPUT_DIR/started"
while [ -f "$DECENTRALML_DATA_DIR/hold" ]; do sleep 0.1; done
n=$(wc -l < "$DECENTRALML_DATA_DIR/samples.txt")
printf '{"num_examples": %d, "metrics": {"lines": %d}}\\n' "$n" "$n" \\
  > "$DECENTRALML_OUTPUT_DIR/result.json"
"""
FAILING = "#!/usr/bin/env bash\necho 'this task always fails' >&2\nexit 3\n"


@pytest.fixture
def market(fresh_devnode, tmp_path: Path) -> Iterator[dict[str, object]]:
    """Bundles, a data dir, a store and a publish helper on a pristine chain."""
    bundles = tmp_path / "bundles"
    for name, script in (("held", HELD), ("failing", FAILING)):
        (bundles / name).mkdir(parents=True)
        (bundles / name / "start_task.sh").write_text(script)
    data = tmp_path / "data"
    data.mkdir()
    (data / "samples.txt").write_text("".join(f"s{i}\n" for i in range(5)))
    spec = f"local:{tmp_path / 'store'}"
    clients: list[Client] = []

    def publish(creator: str, bundle: str = "held", *, reward: int = 2 * UNIT, slots: int = 1,
                task_type: TaskType = TaskType.ModelContributor,
                validation: ValidationStrategy = ValidationStrategy.AutoAccept) -> int:
        client = Client(fresh_devnode.url, account=creator, home=tmp_path / creator[2:])
        clients.append(client)
        mc = ModelCreator(client, open_store(spec), workdir=tmp_path / f"creator-{creator[2:]}")
        return mc.publish(bundles / bundle, question=f"{bundle} by {creator}", reward=reward,
                          task_type=task_type, max_assignments=slots,
                          validation_strategy=validation).task_id

    yield {"url": fresh_devnode.url, "spec": spec, "data": data, "publish": publish,
           "home": tmp_path / "bob"}
    for c in clients:
        c.close()


def _worker_args(m: dict[str, object], *extra: str) -> list[str]:
    return ["--node", str(m["url"]), "--storage", str(m["spec"]), "--account", "//Bob",
            "--json", "worker", "--data", str(m["data"]), "--poll", "0.2", *extra]


def _events(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _spawn(m: dict[str, object], *extra: str) -> subprocess.Popen[str]:
    home = Path(str(m["home"]))
    env = {**os.environ, "DECENTRALML_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "decentralml.cli.main",
                             *_worker_args(m, *extra)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _wait_started(m: dict[str, object], proc: subprocess.Popen[str], count: int = 1
                  ) -> list[Path]:
    """Until ``count`` held bundles are running (their ``started`` marker exists)."""
    home = Path(str(m["home"]))
    deadline = time.monotonic() + 120
    while True:
        found = sorted(home.glob("worker/*/*/tasks/*/work/*/run/output/started"))
        if len(found) >= count:
            return found
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"worker exited {proc.returncode}:\n{out}\n{err}")
        assert time.monotonic() < deadline, "the worker never started the bundle"
        time.sleep(0.05)


def _bob_subs(m: dict[str, object]) -> list:
    with Client(str(m["url"])) as c:
        return c.worker_submissions(c.resolve_address("//Bob"))


def _max_in_flight(events: list[dict[str, object]]) -> int:
    """The most tasks the worker held at once, from its own start/finish events."""
    held, peak = 0, 0
    for e in events:
        if e["event"] in ("accepted", "resumed"):
            held += 1
        elif e["event"] in ("submitted", "failed", "interrupted"):
            held -= 1
        peak = max(peak, held)
    return peak


def test_worker_takes_matching_tasks_skips_failing_and_respects_limits(market) -> None:
    m = market
    publish = m["publish"]
    good_alice = publish("//Alice")
    good_charlie = publish("//Charlie", reward=3 * UNIT)
    failing = publish("//Dave", "failing")
    cheap = publish("//Alice", reward=UNIT // 2)                    # below --min-reward
    stranger = publish("//Eve")                                    # creator not allowed
    annotate = publish("//Alice", task_type=TaskType.DataAnnotator)  # type not wanted

    done = cli(_worker_args(m, "--creator", "//Alice", "--creator", "//Charlie", "--creator",
                            "//Dave", "--min-reward", "1", "--max-concurrent", "1",
                            "--max-tasks", "3"), home=Path(str(m["home"])))
    events = _events(done.stdout)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "stopped"
    assert _max_in_flight(events) == 1
    passed = {e["task_id"]: e["data"]["reason"] for e in events if e["event"] == "passed"}
    assert set(passed) == {cheap, stranger, annotate}
    assert "below the minimum" in passed[cheap] and "allow-list" in passed[stranger]
    assert "DataAnnotator" in passed[annotate]
    failed = [e for e in events if e["event"] == "failed"]
    assert [e["task_id"] for e in failed] == [failing]
    assert "exited with status 3" in str(failed[0]["message"])
    assert [e["task_id"] for e in events if e["event"] == "abandoned"] == [failing]

    by_task = {s.task_id: s for s in _bob_subs(m)}
    assert set(by_task) == {good_alice, good_charlie, failing}
    assert by_task[good_alice].status is SubmissionStatus.Accepted
    assert by_task[good_charlie].status is SubmissionStatus.Accepted
    assert by_task[failing].status is SubmissionStatus.Abandoned
    final = events[-1]["data"]
    assert final["earned"] == 5 * UNIT  # 2 + 3 UNIT, AutoAccept paid on submission
    assert sorted(final["completed"]) == sorted([good_alice, good_charlie])

    # A second run never retries the task that failed here; it takes the new one.
    fresh = publish("//Dave")
    again = _events(cli(_worker_args(m, "--creator", "//Dave", "--max-tasks", "1"),
                        home=Path(str(m["home"]))).stdout)
    assert [e["task_id"] for e in again if e["event"] == "accepted"] == [fresh]
    assert [s.task_id for s in _bob_subs(m)].count(failing) == 1


def test_worker_runs_at_most_n_at_once(market) -> None:
    m = market
    ids = [m["publish"]("//Alice") for _ in range(3)]
    (Path(str(m["data"])) / "hold").touch()
    proc = _spawn(m, "--max-concurrent", "2", "--max-tasks", "3")
    try:
        _wait_started(m, proc, 2)
        held = [s for s in _bob_subs(m) if s.status is SubmissionStatus.Assigned]
        assert len(held) == 2  # the third task is left alone while two run
        (Path(str(m["data"])) / "hold").unlink()
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    events = _events(out)
    assert _max_in_flight(events) == 2
    assert sorted(s.task_id for s in _bob_subs(m)) == ids
    assert all(s.status is SubmissionStatus.Accepted for s in _bob_subs(m))


def test_worker_killed_mid_task_resumes_and_submits_exactly_once(market) -> None:
    m = market
    task_id = m["publish"]("//Alice", validation=ValidationStrategy.ManualAccept)
    (Path(str(m["data"])) / "hold").touch()
    proc = _spawn(m)
    _wait_started(m, proc)
    # kill -9 the worker and everything it started (the bundle leads its own session)
    tree = [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
    for pid in tree:
        # a short-lived child (e.g. one step of the sandbox's start-up) may be gone already
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    (Path(str(m["data"])) / "hold").unlink()
    [sub] = _bob_subs(m)
    assert sub.status is SubmissionStatus.Assigned

    events = _events(cli(_worker_args(m, "--max-tasks", "1"), home=Path(str(m["home"]))).stdout)
    resumed = [e for e in events if e["event"] == "resumed"]
    assert [(e["task_id"], e["submission_id"]) for e in resumed] == [(task_id, sub.submission_id)]
    assert resumed[0]["data"]["stage"] == "fetched"
    assert [e["data"]["stage"] for e in events if e["event"] == "stage"] == [
        "ran", "uploaded", "submitted"]
    assert not [e for e in events if e["event"] == "accepted"]
    [after] = _bob_subs(m)
    assert after.submission_id == sub.submission_id
    assert after.status is SubmissionStatus.PendingValidation
    with Client(str(m["url"])) as c:
        sent = list(c.watch(kinds="ResultSubmitted", task_id=task_id, from_block=1,
                            timeout=0.01))
    assert [e.submission_id for e in sent] == [sub.submission_id]  # exactly once on chain


def test_sigterm_finishes_the_stage_or_interrupts_the_bundle(market) -> None:
    m = market
    data = Path(str(m["data"]))
    first = m["publish"]("//Alice")

    # 1. SIGTERM with a grace period: the running stage finishes and is journaled, then it stops.
    (data / "hold").touch()
    proc = _spawn(m, "--stop-grace", "120")
    _wait_started(m, proc)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert proc.poll() is None  # still waiting for the bundle
    (data / "hold").unlink()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    events = _events(out)
    assert [e["data"]["stage"] for e in events if e["event"] == "stage"] == ["fetched", "ran"]
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "stopped" and "stopping" in kinds
    assert [e["task_id"] for e in events if e["event"] == "interrupted"] == [first]
    [sub] = _bob_subs(m)
    assert sub.status is SubmissionStatus.Assigned

    # 2. SIGTERM with no grace: the bundle is interrupted at once, nothing of its run is kept.
    #    (This run first resumes the first task, which only has upload and submit left.)
    second = m["publish"]("//Charlie")
    (data / "hold").touch()
    proc = _spawn(m, "--stop-grace", "0", "--max-concurrent", "2")
    _wait_started(m, proc, 2)  # the first task's marker from step 1, and the second's
    deadline = time.monotonic() + 120
    while {s.task_id: s.status for s in _bob_subs(m)}.get(first) is not SubmissionStatus.Accepted:
        assert time.monotonic() < deadline and proc.poll() is None, "first task not resumed"
        time.sleep(0.1)
    bundles = psutil.Process(proc.pid).children(recursive=True)
    assert bundles  # the second task's bundle is running
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    events = _events(out)
    assert "interrupting" in [e["event"] for e in events]
    assert [e["task_id"] for e in events if e["event"] == "interrupted"] == [second]
    assert not [p for p in bundles if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    # 3. A restart finishes both, each exactly once, from where it stopped.
    (data / "hold").unlink()
    events = _events(cli(_worker_args(m, "--max-tasks", "1"), home=Path(str(m["home"]))).stdout)
    assert [e["task_id"] for e in events if e["event"] == "resumed"] == [second]
    subs = {s.task_id: s for s in _bob_subs(m)}
    assert subs[first].status is SubmissionStatus.Accepted
    assert subs[second].status is SubmissionStatus.Accepted

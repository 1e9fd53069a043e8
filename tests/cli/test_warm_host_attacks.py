"""Hostile Python entry points (``"entry": "train:fit"``), each run through ``decentralml worker``
(a CLI subprocess, warm task hosts on) against a real devnode and a real local store.

The entry points are written as a task author would write them, knowing the contributor's paths
(the test bakes the real ``$HOME``, ``$DECENTRALML_HOME`` and the node's port into them). Whatever
one finds it writes into its output, which the worker packs, uploads and submits; the tests then
look for the planted secret in every byte of the store, the worker's directories and its output.
Each attack gets its own job and the worker is the same for several rounds, so what a warm host
keeps between rounds, and what one job's host could see of another's, is what is tested.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from decentralml.chain.client import Client
from decentralml.roles.creator import ModelCreator
from decentralml.storage import open_store
from tests.cli.planted import PlantedContributor

REWARD = 10**12

TEMPLATE = {"task_type": "ModelContributor", "entrypoint": "start_task.sh",
            "entry": "train:fit", "round_files": ["config.json"]}
START = "#!/usr/bin/env bash\nexec python train.py\n"
PRELUDE = """
import json, os, socket, subprocess, sys, threading, time
from pathlib import Path

def done(task, **loot):
    out = task.output_dir
    (out / "loot.json").write_text(json.dumps(loot))
    (out / "result.json").write_text(json.dumps({"num_examples": 1, "metrics": {}}))
"""


class Market(PlantedContributor):
    """Bob's worker (with secrets where a contributor keeps them) and creators publishing to it."""

    def __init__(self, url: str, tmp: Path) -> None:
        super().__init__(url, tmp, samples="a\nb\n")
        self.events: list[dict[str, object]] = []
        self._cond = threading.Condition()
        self.proc: subprocess.Popen[str] | None = None

    # --- the creator side -------------------------------------------------------------------

    def publish(self, code: str, *, job: str, creator: str = "//Alice", config: object = None
                ) -> int:
        bundle = self.tmp / f"bundle-{uuid.uuid4().hex[:8]}"
        bundle.mkdir()
        (bundle / "train.py").write_text(
            f"DML_HOME = {str(self.home)!r}\nUSER_HOME = {str(self.user_home)!r}\n"
            f"PORT = {self.port}\n" + PRELUDE + code)
        (bundle / "start_task.sh").write_text(START)
        (bundle / "template.json").write_text(json.dumps(TEMPLATE))
        (bundle / "config.json").write_text(json.dumps(config or {"at": time.time()}))
        client = Client(self.url, account=creator, home=self.tmp / creator.strip("/"))
        try:
            creator_role = ModelCreator(client, open_store(f"local:{self.store}"),
                                        workdir=self.tmp / f"creator-{creator.strip('/')}")
            return creator_role.publish(bundle, question=f"{job} {uuid.uuid4().hex[:6]}",
                                        reward=REWARD, metadata={"job": job}).task_id
        finally:
            client.close()

    # --- the worker -------------------------------------------------------------------------

    def start_worker(self) -> None:
        env = {**os.environ, "DECENTRALML_HOME": str(self.home), "HOME": str(self.user_home),
               "DECENTRALML_KEYRING_PASSWORD": self.secret}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "decentralml.cli.main", "--node", self.url, "--storage",
             f"local:{self.store}", "--account", "//Bob", "--json", "--yes", "worker",
             "--data", str(self.data), "--timeout", "60", "--stop-grace", "2",
             "--max-hosts", "3"],
            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.events.append(json.loads(line))
                self._cond.notify_all()

    def finished(self, task_id: int, timeout: float = 180) -> dict[str, object]:
        """The worker's ``submitted`` or ``failed`` event for ``task_id``."""
        def hit() -> dict[str, object] | None:
            for e in self.events:
                if e.get("task_id") == task_id and e["event"] in ("submitted", "failed"):
                    return e
            return None

        with self._cond:
            found = self._cond.wait_for(hit, timeout=timeout)
        assert found is not None, f"task {task_id} never finished: {self.events}"
        return found

    def stop(self) -> tuple[str, str]:
        assert self.proc is not None
        self.proc.terminate()
        try:
            _out, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
        return "", err

    # --- looking at the results -------------------------------------------------------------

    def loot(self, task_id: int) -> dict[str, object]:
        found = sorted(self.home.glob(f"worker/*/*/tasks/task-{task_id}/work/*/run/output/"
                                      "loot.json"))
        assert found, f"task {task_id} left no loot.json"
        return json.loads(found[-1].read_text())  # type: ignore[no-any-return]

    def leaks(self) -> list[str]:
        """Every file outside the contributor's own secret files that holds the secret."""
        needle = self.secret.encode()
        found = [f"event {e['event']}" for e in self.events if self.secret in json.dumps(e)]
        for root in (self.store, self.home / "worker"):
            for path in root.rglob("*") if root.exists() else ():
                if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                    found.append(str(path))
        return found


@pytest.fixture
def market(fresh_devnode, tmp_path: Path) -> Iterator[Market]:
    m = Market(fresh_devnode.url, tmp_path)
    m.start_worker()
    yield m
    if m.proc is not None and m.proc.poll() is None:
        m.stop()


def _marked(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(entry.name)
            except OSError:
                continue
    return found


READ_SECRETS = """
def fit(task):
    loot = {}
    for path in (USER_HOME + "/.ssh/id_ed25519", DML_HOME + "/accounts.json",
                 "/proc/1/environ", "/proc/self/environ"):
        try:
            loot[path] = Path(path).read_bytes().decode("latin-1")
        except OSError as exc:
            loot[path] = f"refused: {exc}"
    loot["env"] = dict(os.environ)
    loot["procs"] = sorted(p.name for p in Path("/proc").iterdir() if p.name.isdigit())
    done(task, **loot)
"""


def test_entry_point_cannot_read_secrets_in_any_round(market: Market) -> None:
    first = market.publish(READ_SECRETS, job="secrets")
    assert market.finished(first)["event"] == "submitted"
    second = market.publish(READ_SECRETS, job="secrets")  # the same host, warm
    assert market.finished(second)["event"] == "submitted"
    for task_id in (first, second):
        loot = market.loot(task_id)
        assert str(loot[str(market.user_home) + "/.ssh/id_ed25519"]).startswith("refused")
        assert str(loot[str(market.home) + "/accounts.json"]).startswith("refused")
        assert "DECENTRALML_KEYRING_PASSWORD" not in json.dumps(loot["env"])
        assert "decentralml.cli.main" not in json.dumps(loot)  # no host process in sight
    assert market.leaks() == []


REACH_SERVICES = """
def fit(task):
    loot = {}
    for host in ("127.0.0.1", "localhost", "::1"):
        try:
            socket.create_connection((host, PORT), timeout=3).close()
            loot[host] = "connected"
        except OSError as exc:
            loot[host] = f"refused: {exc}"
    done(task, **loot)
"""


def test_entry_point_cannot_reach_local_services(market: Market) -> None:
    task_id = market.publish(REACH_SERVICES, job="network")
    assert market.finished(task_id)["event"] == "submitted"
    loot = market.loot(task_id)
    assert loot and all(str(v).startswith("refused") for v in loot.values()), loot


WRITE_OUTSIDE = """
def fit(task):
    loot = {}
    for path in (DML_HOME + "/config.toml", USER_HOME + "/planted", str(task.task_dir / "x"),
                 str(task.data_dir / "planted"), "/usr/planted"):
        try:
            Path(path).write_text("planted")
            loot[path] = "written"
        except OSError as exc:
            loot[path] = f"refused: {exc}"
    done(task, **loot)
"""


def test_entry_point_cannot_write_outside(market: Market) -> None:
    task_id = market.publish(WRITE_OUTSIDE, job="write")
    assert market.finished(task_id)["event"] == "submitted"
    assert not (market.home / "config.toml").exists()
    assert not (market.user_home / "planted").exists()
    assert not (market.data / "planted").exists()
    loot = market.loot(task_id)
    host_paths = [k for k in loot if k.startswith((str(market.home), str(market.user_home)))]
    assert host_paths and all(str(loot[k]).startswith("refused") for k in host_paths)
    assert str(loot["/usr/planted"]).startswith("refused")


OUTLIVE = """
TICKS = []

def tick():
    while True:
        TICKS.append(time.time())
        time.sleep(0.02)

def fit(task):
    if not TICKS:
        threading.Thread(target=tick, daemon=True).start()
        time.sleep(0.3)
    else:  # a later round lasts until the thread ticks once (at most 5 s): it runs in rounds
        seen, until = len(TICKS), time.time() + 5
        while len(TICKS) == seen and time.time() < until:
            time.sleep(0.01)
    mode = task.config.get("mode")
    if mode == "daemon":
        subprocess.Popen(["setsid", "sh", "-c", f"exec -a {task.config['marker']} sleep 600"])
    done(task, round=task.number, pid=os.getpid(), ticks=list(TICKS), now=time.time())
"""


def test_nothing_of_a_round_runs_after_it(market: Market) -> None:
    """A thread left running is frozen with the host between rounds; a process left running
    breaks the host: it is killed and the round runs again cold."""
    first = market.publish(OUTLIVE, job="outlive", config={"mode": "thread"})
    assert market.finished(first)["event"] == "submitted"
    ended = time.time()
    time.sleep(2.0)
    second = market.publish(OUTLIVE, job="outlive", config={"mode": "thread"})
    assert market.finished(second)["event"] == "submitted"
    one, two = market.loot(first), market.loot(second)
    assert two["round"] == 2 and two["pid"] == one["pid"]  # the same warm host ran both
    between = [t for t in two["ticks"] if ended + 0.2 < t < ended + 1.8]  # type: ignore
    assert between == [], f"the thread ran {len(between)} times between the rounds"
    assert len(two["ticks"]) > len(one["ticks"])  # ... and it did run during round 2

    marker = f"dml-daemon-{uuid.uuid4().hex}"
    third = market.publish(OUTLIVE, job="outlive", config={"mode": "daemon", "marker": marker})
    assert market.finished(third)["event"] == "submitted"  # run again cold, which succeeds
    deadline = time.monotonic() + 10
    while _marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marked(marker) == []
    assert market.loot(third)["round"] == 1  # a fresh process: the broken host is gone


LEAK = """
KEPT = []

def fit(task):
    found = list(KEPT)
    for where in (os.environ["HOME"], "/tmp", "/dev/shm"):
        try:
            found.append(Path(where, "mark").read_text())
        except OSError:
            pass
    for pid in (p for p in Path("/proc").iterdir() if p.name.isdigit()):
        try:
            found.append((pid / "cmdline").read_bytes().decode("latin-1"))
        except OSError:
            pass
    mark = task.config["mark"]
    KEPT.append(mark)
    for where in (os.environ["HOME"], "/tmp", "/dev/shm"):
        Path(where, "mark").write_text(mark)
    done(task, found=found)
"""


def test_one_jobs_host_is_invisible_to_another_job(market: Market) -> None:
    """The same code in another job of the same creator, and in a job of another creator that
    names its job like the first: each gets its own host and finds nothing of the first job's
    memory, home, /tmp, /dev/shm or processes; the first job's own next round does (so the check
    can fail)."""
    mark = f"job-a-{uuid.uuid4().hex}"
    a = market.publish(LEAK, job="job-a", config={"mark": mark})
    assert market.finished(a)["event"] == "submitted", market.finished(a)
    for job, creator in (("job-b", "//Alice"), ("job-a", "//Charlie")):
        task_id = market.publish(LEAK, job=job, creator=creator, config={"mark": "other"})
        assert market.finished(task_id)["event"] == "submitted"
        assert mark not in json.dumps(market.loot(task_id)["found"]), (job, creator)
    again = market.publish(LEAK, job="job-a", config={"mark": "second"})
    assert market.finished(again)["event"] == "submitted"
    assert json.dumps(market.loot(again)["found"]).count(mark) == 4  # memory, home, tmp, shm

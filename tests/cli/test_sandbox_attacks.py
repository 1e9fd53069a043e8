"""Hostile ``start_task.sh`` scripts, each run through ``decentralml work`` (a CLI subprocess)
against the real devnode and a real local store, each proving that one attack fails.

The scripts are written as a task author would write them, knowing the contributor's paths: the
test bakes the real host paths (``$DECENTRALML_HOME``, ``~/.ssh``, the node's port) into them.
Whatever a script finds it copies into its output, which ``work`` then packs, uploads and
submits; the tests then look for the planted secret in every byte of the store, the work dirs
and the CLI's output. Where a control run with ``--no-sandbox`` is cheap, it shows the same
script does find the secret without the sandbox, so the check itself can fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from decentralml.chain.client import Client
from decentralml.roles.creator import ModelCreator
from decentralml.storage import open_store
from tests.cli.planted import PlantedContributor
from tests.quiet import assert_quiet
from tests.roles.conftest import cli

REWARD = 10**12
EXIT_STORAGE = 6
EXIT_RUNNER = 7


class World(PlantedContributor):
    """One contributor (Bob) with secrets where a contributor keeps them, and a creator."""

    def __init__(self, url: str, tmp: Path) -> None:
        super().__init__(url, tmp, samples="a\nb\nc\n")

    def script(self, body: str) -> str:
        """A hostile script: the paths it targets, then ``body``, then an honest-looking result."""
        return (f"DML_HOME={self.home}\nUSER_HOME={self.user_home}\nPORT={self.port}\n"
                f"OUT=\"$DECENTRALML_OUTPUT_DIR\"\n{body}\n"
                'printf \'{"num_examples": 3, "metrics": {"lines": 3}}\\n\' > "$OUT/result.json"\n')

    def publish(self, script: str, *, network: bool = False) -> int:
        bundle = self.tmp / f"bundle-{uuid.uuid4().hex[:8]}"
        bundle.mkdir()
        (bundle / "start_task.sh").write_text(script)
        alice = Client(self.url, account="//Alice", home=self.tmp / "alice")
        try:
            creator = ModelCreator(alice, open_store(f"local:{self.store}"),
                                   workdir=self.tmp / "creator")
            return creator.publish(bundle, question="count lines", reward=REWARD,
                                   network=network).task_id
        finally:
            alice.close()

    def work(self, task_id: int, *args: str, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
        full = {"HOME": str(self.user_home), "DECENTRALML_KEYRING_PASSWORD": self.secret,
                **(env or {})}
        return cli(["--node", self.url, "--storage", f"local:{self.store}", "--account",
                    "//Bob", "--json", "--yes", "work", str(task_id), "--data", str(self.data),
                    *args], home=self.home, env=full, check=False, timeout=600)

    def leaks(self, done: subprocess.CompletedProcess[str]) -> list[str]:
        """Every place the secret reached outside the contributor's own secret files."""
        needle = self.secret.encode()
        found = [name for name, text in (("stdout", done.stdout), ("stderr", done.stderr))
                 if self.secret in text]
        for root in (self.store, self.home / "work"):
            for path in root.rglob("*") if root.exists() else ():
                if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                    found.append(str(path))
        return found

    def output_dir(self) -> Path:
        outputs = sorted(self.home.glob("work/*/run/output"))
        assert outputs, "the task never ran"
        return outputs[-1]


@pytest.fixture
def world(devnode, tmp_path: Path) -> World:
    return World(devnode.url, tmp_path)


def _report(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert isinstance(report, dict)
    return report


def _marked_processes(marker: str) -> list[str]:
    """Host processes whose command line carries ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(entry.name)
    return found


def _gone(marker: str, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while _marked_processes(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# --------------------------------------------------------------------------------------------
# reading the contributor's secrets


READ_HOME = """
{
  echo "probe: home"
  cat "$USER_HOME/.ssh/id_ed25519" ~/.ssh/* /root/.ssh/* 2>&1
  ls -la "$DML_HOME" "$USER_HOME" 2>&1
  cat "$DML_HOME"/* "$DML_HOME"/xdg/*/* "$DML_HOME"/xdg/*/*/* 2>&1
  grep -rs dml-secret- "$DML_HOME" "$USER_HOME" /root/.ssh /home 2>/dev/null | head -c 100000
  echo "probe: done"
} > "$OUT/loot.txt"
"""


def test_task_cannot_read_home_dml_home_or_ssh_keys(world: World) -> None:
    done = world.work(world.publish(world.script(READ_HOME)))
    report = _report(done)
    assert report["sandbox"] == "bubblewrap" and report["status"] == "PendingValidation"
    loot = (world.output_dir() / "loot.txt").read_text()
    assert "probe: done" in loot  # the script did run its probes
    assert "No such file or directory" in loot  # ... and the paths do not exist for it
    assert world.leaks(done) == []


def test_control_without_the_sandbox_the_same_script_reads_them(world: World) -> None:
    done = world.work(world.publish(world.script(READ_HOME)), "--no-sandbox")
    report = _report(done)
    assert report["sandbox"] == "none"
    assert "--no-sandbox" in done.stderr and "SSH keys" in done.stderr  # the risk, named
    assert world.leaks(done)  # the secret went into the result: the check above can fail


def test_task_cannot_read_the_parents_environment(world: World) -> None:
    body = """
{
  echo "ppid=$PPID"
  cat /proc/$PPID/environ /proc/1/environ 2>&1 | tr '\\0' '\\n'
  for p in /proc/[0-9]*; do
    echo "$p: $(tr '\\0' ' ' < $p/cmdline 2>&1)"
    tr '\\0' '\\n' < $p/environ 2>&1
  done
  env
} > "$OUT/loot.txt"
"""
    done = world.work(world.publish(world.script(body)))
    assert _report(done)["sandbox"] == "bubblewrap"
    loot = (world.output_dir() / "loot.txt").read_text()
    assert "ppid=" in loot
    # its own PID namespace: no process of the host, the CLI included, is there to read
    assert "decentralml.cli.main" not in loot and "pytest" not in loot
    assert "DECENTRALML_KEYRING_PASSWORD" not in loot
    assert world.leaks(done) == []


def test_shared_memory_is_the_tasks_own_and_usable(world: World) -> None:
    """joblib (scikit-learn's parallelism) needs a writable /dev/shm; the task gets a private one,
    so it runs in parallel, says nothing about serial mode, and never sees the host's."""
    marker = Path("/dev/shm") / f"dml-host-{uuid.uuid4().hex}"
    marker.write_text(world.secret)
    try:
        body = f"""
ls -a /dev/shm > "$OUT/shm.txt"
python - > "$OUT/joblib.txt" 2> "$OUT/joblib-stderr.txt" <<'PY'
from joblib import Parallel, delayed
print("sum", sum(Parallel(n_jobs=2, backend="loky")(delayed(abs)(-i) for i in range(4))))
PY
test ! -e /dev/shm/{marker.name}
"""
        done = world.work(world.publish(world.script(body)))
    finally:
        marker.unlink()
    assert _report(done)["status"] == "PendingValidation", done.stderr
    out = world.output_dir()
    assert (out / "joblib.txt").read_text() == "sum 6\n"
    assert marker.name not in (out / "shm.txt").read_text()
    task_stderr = (out / "joblib-stderr.txt").read_text()
    assert_quiet(done.stdout, done.stderr, task_stderr)
    assert task_stderr == ""  # nor "loky is not available ... falling back to threading"
    assert world.leaks(done) == []


def test_task_cannot_plant_config_toml(world: World) -> None:
    body = """
mkdir -p "$DML_HOME" 2>/dev/null
echo 'node_url = "ws://attacker.example:9944"' > "$DML_HOME/config.toml" 2>"$OUT/err.txt"
echo 'node_url = "ws://attacker.example:9944"' > "$HOME/config.toml"
"""
    done = world.work(world.publish(world.script(body)))
    assert _report(done)["status"] == "PendingValidation"
    # (inside, that path can only be created under the task's own private /tmp)
    assert not (world.home / "config.toml").exists()
    # and the next CLI run still talks to the real node
    listed = cli(["--node", world.url, "--json", "task", "list"], home=world.home,
                 env={"HOME": str(world.user_home)})
    assert isinstance(json.loads(listed.stdout), list)


def test_task_cannot_smuggle_host_files_into_its_result(world: World) -> None:
    body = """
cp "$USER_HOME/.ssh/id_ed25519" "$OUT/key" 2>/dev/null
ln "$DML_HOME/accounts.json" "$OUT/hard" 2>/dev/null
cat /proc/$PPID/root$DML_HOME/accounts.json > "$OUT/viaproc" 2>/dev/null
echo smuggled > "$OUT/note"
"""
    done = world.work(world.publish(world.script(body)))
    assert _report(done)["status"] == "PendingValidation"
    assert sorted(p.name for p in world.output_dir().iterdir()) == [
        "note", "result.json", "viaproc"]
    assert (world.output_dir() / "viaproc").read_bytes() == b""
    assert world.leaks(done) == []


def test_a_symlink_out_of_the_output_is_never_uploaded(world: World) -> None:
    body = 'ln -s "$DML_HOME/accounts.json" "$OUT/link"\n'
    done = world.work(world.publish(world.script(body)))
    assert done.returncode == EXIT_STORAGE and "symlink" in done.stderr
    assert "Traceback" not in done.stderr
    assert world.leaks(done) == []


# --------------------------------------------------------------------------------------------
# network


CONNECT = """
python - "$PORT" > "$OUT/net.txt" 2>&1 <<'PY'
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()
    print("connected")
except OSError as exc:
    print("refused:", exc)
PY
"""


def test_task_cannot_reach_the_node(world: World) -> None:
    done = world.work(world.publish(world.script(CONNECT)))
    assert _report(done)["status"] == "PendingValidation"
    assert (world.output_dir() / "net.txt").read_text().startswith("refused:")


def test_allow_network_alone_gives_no_network(world: World) -> None:
    done = world.work(world.publish(world.script(CONNECT)), "--allow-network")
    assert _report(done)["status"] == "PendingValidation"
    assert (world.output_dir() / "net.txt").read_text().startswith("refused:")


def test_a_bundle_declaring_network_is_refused_unless_allowed(world: World) -> None:
    task_id = world.publish(world.script(CONNECT), network=True)
    refused = world.work(task_id)
    assert refused.returncode == EXIT_RUNNER and "--allow-network" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not list(world.home.glob("work/*/run/output"))  # nothing ran
    allowed = world.work(task_id, "--allow-network")
    assert _report(allowed)["status"] == "PendingValidation"
    # the same probe connects when the network is granted: the refusals above are real
    assert (world.output_dir() / "net.txt").read_text().strip() == "connected"


# --------------------------------------------------------------------------------------------
# processes and disk


def test_setsid_and_double_forked_daemons_die_with_the_task(world: World) -> None:
    marker = f"dml-daemon-{uuid.uuid4().hex}"
    body = f"""
setsid bash -c 'exec -a {marker}-setsid sleep 600' < /dev/null > /dev/null 2>&1 &
( ( exec -a {marker}-double sleep 600 < /dev/null > /dev/null 2>&1 & ) & )
nohup bash -c 'trap "" HUP TERM; exec -a {marker}-nohup sleep 600' > /dev/null 2>&1 &
sleep 0.5
echo started > "$OUT/daemons"
"""
    done = world.work(world.publish(world.script(body)))
    assert _report(done)["status"] == "PendingValidation"
    assert (world.output_dir() / "daemons").read_text().strip() == "started"
    assert _gone(marker), _marked_processes(marker)


def test_fork_bomb_is_contained_and_killed(world: World) -> None:
    marker = f"dml-bomb-{uuid.uuid4().hex}"
    body = f"""
python - {marker} > "$OUT/bomb.txt" 2>&1 <<'PY'
import os, time
# {marker}
n = 0
try:
    while n < 100000:
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
        n += 1
except OSError as exc:
    print("forks", n, exc)
PY
bash -c ':(){{ :|:& }};:' 2>/dev/null
"""
    done = world.work(world.publish(world.script(body)), "--timeout", "20",
                      env={"DECENTRALML_MAX_PROCESSES": "64"})
    # Either the task ends (the shell bomb runs in the background) or its timeout ends it;
    # both ways every forked process is killed with it.
    assert done.returncode in (0, EXIT_RUNNER) and "Traceback" not in done.stderr, done.stderr
    text = (world.home.glob("work/*/run/output/bomb.txt").__next__()).read_text()
    assert text.startswith("forks ") and int(text.split()[1]) <= 64, text
    assert _gone(marker), _marked_processes(marker)


@pytest.mark.parametrize("how", ["one-big-file", "many-files", "tmp"])
def test_disk_fill_is_stopped_and_nothing_is_uploaded(world: World, how: str) -> None:
    fill = {"one-big-file": 'head -c 200000000 /dev/zero > "$OUT/big"',
            "many-files": 'for i in $(seq 1 200); do head -c 1048576 /dev/zero > "$OUT/f$i"; done',
            "tmp": 'for i in $(seq 1 200); do head -c 1048576 /dev/zero > "/tmp/f$i"; done'}[how]
    store_before = sum(p.stat().st_size for p in world.store.rglob("*") if p.is_file()) \
        if world.store.exists() else 0
    task_id = world.publish(world.script(fill))
    store_published = sum(p.stat().st_size for p in world.store.rglob("*") if p.is_file())
    done = world.work(task_id, env={"DECENTRALML_MAX_OUTPUT_BYTES": str(8 * 1024**2)})
    assert done.returncode == EXIT_RUNNER, done.stderr
    assert "8388608" in done.stderr and "Traceback" not in done.stderr
    run_dir = next(world.home.glob("work/*/run"))
    assert list((run_dir / "output").iterdir()) == []  # deleted: nothing over the limit stays
    assert sum(p.stat().st_size for p in world.store.rglob("*") if p.is_file()) \
        == store_published > store_before  # nothing was uploaded
    shown = json.loads(cli(["--node", world.url, "--json", "results", str(task_id)],
                           home=world.tmp / "alice", env={"DECENTRALML_ACCOUNT": "//Alice"}
                           ).stdout)
    assert [r["status"] for r in shown] == ["Assigned"]  # nothing was submitted


# --------------------------------------------------------------------------------------------
# where bubblewrap is missing


def _path_without_bwrap(tmp: Path) -> str:
    """A PATH with the tools the CLI and the tasks use, but no bwrap."""
    bin_dir = tmp / "nobwrap-bin"
    bin_dir.mkdir()
    for tool in ("bash", "sh", "wc", "cat", "printf", "setpriv"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_refused_without_bubblewrap_unless_no_sandbox(world: World) -> None:
    task_id = world.publish(world.script('echo ran > "$OUT/ran"'))
    env = {"PATH": _path_without_bwrap(world.tmp)}
    refused = world.work(task_id, env=env)
    assert refused.returncode == EXIT_RUNNER
    assert "bubblewrap" in refused.stderr and "--no-sandbox" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (world.home / "work").exists()  # refused before accepting or running anything
    alice = Client(world.url, account="//Alice", home=world.tmp / "alice")
    assert alice.task_submissions(task_id) == []
    alice.close()
    ran = world.work(task_id, "--no-sandbox", env=env)
    report = _report(ran)
    assert report["sandbox"] == "none" and report["status"] == "PendingValidation"
    assert "without the sandbox" in ran.stderr and "home" in ran.stderr
    assert (world.output_dir() / "ran").is_file()


def test_the_runner_is_root_and_the_task_is_not(world: World) -> None:
    if os.geteuid() != 0:
        pytest.skip("checks the root path of the sandbox (the task drops to uid 65534)")
    body = ('id -u > "$OUT/uid"; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status > "$OUT/caps"'
            '\nulimit -u > "$OUT/nproc"\n')
    done = world.work(world.publish(world.script(body)))
    assert _report(done)["sandbox"] == "bubblewrap"
    out = world.output_dir()
    assert (out / "uid").read_text().strip() == "65534"
    assert (out / "caps").read_text().split() == ["CapEff:", "0000000000000000",
                                                  "NoNewPrivs:", "1"]
    assert int((out / "nproc").read_text()) > 0
    # what the task wrote is the runner's again before it is packed
    assert all(p.stat().st_uid == 0 for p in out.rglob("*"))


# --------------------------------------------------------------------------------------------
# hostile DAGs as a task's assets


@pytest.mark.parametrize("shape", ["deep-tree", "file-bomb"])
def test_hostile_asset_dags_are_clean_errors_in_work(world: World, shape: str) -> None:
    from decentralml.storage.local import LocalStore
    from decentralml.storage.unixfs.cid import parse_cid
    from decentralml.storage.unixfs.importer import Entry, encode_directory

    store = LocalStore(world.store, progress=False)
    leaf_cid = store.put_bytes(b"x" * 1024 * 1024)
    leaf = Entry(parse_cid(leaf_cid), 1024 * 1024, 1024 * 1024)
    if shape == "deep-tree":
        root = encode_directory({"start_task.sh": leaf}, store._write_node)
        for _ in range(3000):  # deeper than Python's recursion limit
            root = encode_directory({"d": root}, store._write_node)
        expected = "nested more than 256 levels"
    else:  # 1 MiB stored, named 20 000 times: 20 GB, over the 16 GiB bundle default
        root = encode_directory({f"f{i:05d}": leaf for i in range(5000)}, store._write_node)
        root = encode_directory({f"d{i}": root for i in range(4)}, store._write_node)
        expected = "expands to more than"
    alice = Client(world.url, account="//Alice", home=world.tmp / "alice")
    task_id = alice.create_task("ModelContributor", "hostile assets", REWARD, 1,
                                root.cid_str, assets_storage="Local").task_id
    alice.close()
    done = world.work(task_id)
    assert done.returncode == EXIT_STORAGE, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert not list(world.home.glob("work/*/bundle"))  # nothing of it was kept

"""Peer jobs end to end through the CLI, on every chain under test (``chain_id``: the devnode
with a block every 0.3 s, the runtime under Chopsticks with a test-side block ticker, so round
deadlines pass without transactions).

A job of four peers over three rounds (0, 1, 2): Eve leaves after round 0, Ferdie joins in round
2, and Alice (the creator, who has no special power), with the client directly, posts an update
in round 0 and vanishes before the vote, then in round 1 posts an update and a wrong aggregate
CID. Every honest participant posts the same aggregate each
round, that aggregate is the float64 FedAvg of the round's updates in address order (recomputed
here from the store), the newcomer starts from the agreed model of round 1, and Alice is the
minority of round 1 and silent in round 0 in ``peer status --json``: neither held anyone up.

The model is a softmax layer over 8x8 digits: the TensorFlow cost is mostly imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decentralml.chain.client import Client
from decentralml.chain.types import TaskType
from decentralml.devnode import DevNode
from tests.fixtures.chains import runtime_node_at
from tests.quiet import assert_quiet
from tests.roles.conftest import cli

UNIT = 10**12
BUNDLE = Path(__file__).resolve().parents[2] / "examples" / "federated_mnist" / "bundle"
BLOCK_TIME = 0.3
#: Blocks per phase: the update phase must hold four sandboxed trainings at once on two cores
#: (TensorFlow's import is most of it); the aggregate phase four fetch-average-upload passes.
UPDATE_BLOCKS = 200
AGGREGATE_BLOCKS = 40


def _ticker(url: str, stop: threading.Event) -> None:
    """A block every BLOCK_TIME seconds on a chain that seals only on demand (Chopsticks)."""
    from websockets.sync.client import connect

    with connect(url, max_size=None) as ws:
        n = 0
        while not stop.wait(BLOCK_TIME):
            n += 1
            ws.send(json.dumps({"jsonrpc": "2.0", "id": n, "method": "dev_newBlock",
                                "params": []}))
            ws.recv(timeout=60)


@pytest.fixture
def ticking_chain(chain_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh chain of the kind under test whose blocks come by time, not by transactions."""
    if chain_id == "devnode":
        with DevNode(block_time=BLOCK_TIME) as node:
            yield node.url
    elif chain_id == "runtime":
        with runtime_node_at(tmp_path_factory.mktemp("chopsticks")) as node:
            stop = threading.Event()
            thread = threading.Thread(target=_ticker, args=(node.url, stop), daemon=True)
            thread.start()
            try:
                yield node.url
            finally:
                stop.set()
                thread.join(timeout=30)
    else:
        pytest.skip(f"peer jobs run on the devnode and the runtime here, not {chain_id}")


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "DECENTRALML_HOME": str(home),
            "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
            "XDG_DATA_HOME": str(home / "xdg")}


def _spawn(args: list[str], home: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "decentralml.cli.main", *args],
                            env=_env(home), stdout=open(out, "wb"),
                            stderr=open(out.with_suffix(".err"), "wb"), start_new_session=True)


def _finish(proc: subprocess.Popen[bytes], out: Path, timeout: float) -> dict[str, Any]:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    err = out.with_suffix(".err").read_text()
    assert proc.returncode == 0, f"{out.name} exited {proc.returncode}:\n{out.read_text()}\n{err}"
    return json.loads(out.read_text())


def _tiny_model(path: Path) -> None:
    import keras

    from decentralml.fl import save_model

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    save_model(model, path)


def _round_start(job: dict[str, Any], r: int) -> int:
    return int(job["start_block"]) + r * (int(job["update_blocks"]) + int(job["aggregate_blocks"]))


@pytest.mark.tf
@pytest.mark.slow
def test_four_peers_three_rounds_leave_join_and_a_liar(ticking_chain: str, tmp_path: Path,
                                                       digits: Any) -> None:
    from decentralml.fl import load_model, partition_iid, save_update
    from decentralml.fl.exchange import WeightSpec, load_update
    from decentralml.storage import open_store
    from decentralml.storage.bundle import fetch_bundle, pack_bundle

    url = ticking_chain
    spec = f"local:{tmp_path / 'store'}"
    _tiny_model(tmp_path / "model.keras")
    peers = ("Bob", "Charlie", "Dave", "Eve", "Ferdie")
    (x, y), _test = digits
    data = {}
    for name, (xs, ys) in zip(peers, partition_iid(x, y, len(peers), seed=0), strict=True):
        d = tmp_path / f"data-{name}"
        d.mkdir()
        np.savez(d / "data.npz", x=xs[:150], y=ys[:150])
        data[name] = d

    def base(account: str) -> list[str]:
        return ["--node", url, "--storage", spec, "--account", account, "--json"]

    alice_home = tmp_path / "home-Alice"
    created = json.loads(cli([*base("//Alice"), "peer", "create", "--bundle", str(BUNDLE),
                              "--model", str(tmp_path / "model.keras"), "--rounds", "3",
                              "--update-blocks", str(UPDATE_BLOCKS), "--aggregate-blocks",
                              str(AGGREGATE_BLOCKS), "--max-peers", "6"],
                             home=alice_home).stdout)
    job_id = created["job_id"]
    started = time.monotonic()

    def run(name: str, rounds: int) -> tuple[subprocess.Popen[bytes], Path]:
        out = tmp_path / f"run-{name}.json"
        return _spawn([*base(f"//{name}"), "peer", "run", str(job_id), "--data",
                       str(data[name]), "--rounds", str(rounds)],
                      tmp_path / f"home-{name}", out), out

    runs = {name: run(name, 3) for name in ("Bob", "Charlie", "Dave")}
    runs["Eve"] = run("Eve", 1)
    round_seconds = (UPDATE_BLOCKS + AGGREGATE_BLOCKS) * BLOCK_TIME
    alice = Client(url, account="//Alice", home=alice_home)
    store = open_store(spec)
    try:
        # Alice, with the client directly: in round 0 she posts a real update (the initial model,
        # as a free rider would) and vanishes before the vote; in round 1 she posts it again and
        # then lies about the aggregate.
        alice.join_peer_job(job_id)
        model = load_model(tmp_path / "model.keras")
        save_update(model, tmp_path / "alice-update", num_examples=150)
        alice_update = pack_bundle(tmp_path / "alice-update", store,
                                   task_type=TaskType.ModelContributor, entrypoint=None,
                                   kind="result").cid
        alice.post_update(job_id, 0, alice_update)

        eve = _finish(*runs.pop("Eve"), timeout=round_seconds * 6)
        cli([*base("//Eve"), "peer", "leave", str(job_id)], home=tmp_path / "home-Eve")

        alice.wait_for_block(_round_start(created, 1) + 1, timeout=round_seconds * 4)
        alice.post_update(job_id, 1, alice_update)
        alice.wait_for_block(_round_start(created, 1) + UPDATE_BLOCKS + 1,
                             timeout=round_seconds * 4)
        alice.post_aggregate(job_id, 1, alice_update)  # not the average of the round
        alice.leave_peer_job(job_id)

        # Round 2: Ferdie joins as a newcomer.
        alice.wait_for_block(_round_start(created, 2), timeout=round_seconds * 4)
        ferdie_proc, ferdie_out = run("Ferdie", 1)
        ferdie = _finish(ferdie_proc, ferdie_out, timeout=round_seconds * 4)
        reports = {name: _finish(proc, out, timeout=round_seconds * 4)
                   for name, (proc, out) in runs.items()}
    finally:
        alice.close()
        for proc, _out in runs.values():
            if proc.poll() is None:
                proc.kill()
    elapsed = time.monotonic() - started

    status = json.loads(cli([*base("//Alice"), "peer", "status", str(job_id)],
                            home=alice_home).stdout)
    addr = {name: Client(url).resolve_address(f"//{name}") for name in (*peers, "Alice")}
    history = {h["round"]: h for h in status["history"]}
    assert status["current_round"] is None and status["phase"] == "ended"
    assert sorted(history) == [0, 1, 2]
    expected = {0: {"Bob", "Charlie", "Dave", "Eve", "Alice"},
                1: {"Bob", "Charlie", "Dave", "Alice"}, 2: {"Bob", "Charlie", "Dave", "Ferdie"}}
    for r, names in expected.items():
        h = history[r]
        assert set(h["updates"]) == {addr[n] for n in names}, (r, h)
        honest = [addr[n] for n in names if n != "Alice"]
        assert {h["aggregates"][a] for a in honest} == {h["agreed_cid"]}, (r, h)
        assert h["agreed_cid"] is not None
        assert h["minority"] == ([addr["Alice"]] if r == 1 else []), (r, h)
        assert h["silent"] == ([addr["Alice"]] if r == 0 else []), (r, h)

    # every peer's own report says the same
    for name, report in {**reports, "Eve": eve, "Ferdie": ferdie}.items():
        for rr in report["rounds"]:
            h = history[rr["round"]]
            assert rr["outcome"] == "agreed" and rr["agree"] is True, (name, rr)
            assert rr["my_cid"] == rr["agreed_cid"] == h["agreed_cid"], (name, rr)
            assert rr["minority"] == h["minority"] and rr["silent"] == h["silent"]
    assert [rr["round"] for rr in eve["rounds"]] == [0]
    assert [rr["round"] for rr in ferdie["rounds"]] == [2]
    # the newcomer started from the last agreed model, like everyone else that round
    assert ferdie["rounds"][0]["started_from"] == history[1]["agreed_cid"]
    assert reports["Bob"]["rounds"][2]["started_from"] == history[1]["agreed_cid"]
    assert reports["Bob"]["rounds"][1]["started_from"] == history[0]["agreed_cid"]
    assert reports["Bob"]["rounds"][0]["started_from"] is None

    # the agreed model is the float64 FedAvg of the round's updates in address order,
    # recomputed here from the store (each update verified against its CID)
    like = WeightSpec.of(model)
    for r in (0, 1):
        h = history[r]
        ups = [load_update(fetch_bundle(store, h["updates"][a],
                                        tmp_path / f"check-{r}-{i}").path, like=like)
               for i, a in enumerate(sorted(h["updates"]))]
        total = sum(u.num_examples for u in ups)
        acc = [np.zeros(w.shape, np.float64) for w in ups[0].weights]
        for u in ups:
            for a, w in zip(acc, u.weights, strict=True):
                a += (u.num_examples / total) * np.asarray(w, np.float64)
        agreed = load_update(fetch_bundle(store, h["agreed_cid"], tmp_path / f"agreed-{r}").path,
                             like=like)
        assert agreed.num_examples == total
        for a, w in zip(acc, agreed.weights, strict=True):
            np.testing.assert_array_equal(a.astype(np.float32), np.asarray(w))
    print(f"\npeer job on {url}: three rounds in {elapsed:.1f} s")


def test_peer_commands_refuse_bad_input_before_sending(devnode: DevNode, tmp_path: Path) -> None:
    """Out-of-bounds jobs are refused naming the field, before anything is packed or sent;
    unknown jobs and non-members get the chain's typed errors, as JSON with --json."""
    home = tmp_path / "home"
    base = ["--node", devnode.url, "--storage", f"local:{tmp_path / 'store'}", "--json"]
    before = Client(devnode.url).block_number()
    bad = cli([*base, "--account", "//Alice", "peer", "create", "--bundle", str(BUNDLE),
               "--rounds", "0", "--update-blocks", "5", "--aggregate-blocks", "5"],
              home=home, check=False)
    assert bad.returncode == 4
    error = json.loads(bad.stdout)["error"]
    assert error["type"] == "InvalidInput" and "rounds" in error["message"]
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())
    too_many = cli([*base, "--account", "//Alice", "peer", "create", "--bundle", str(BUNDLE),
                    "--update-blocks", "5", "--aggregate-blocks", "5", "--max-peers", "65"],
                   home=home, check=False)
    assert too_many.returncode == 4 and "max_peers" in json.loads(too_many.stdout)["error"][
        "message"]
    no_model = cli([*base, "--account", "//Alice", "peer", "create", "--bundle", str(BUNDLE),
                    "--update-blocks", "5", "--aggregate-blocks", "5"], home=home, check=False)
    assert no_model.returncode == 4 and "model" in json.loads(no_model.stdout)["error"]["message"]
    assert Client(devnode.url).block_number() == before  # nothing was sent

    missing = cli([*base, "--account", "//Bob", "peer", "join", "4000000"], home=home,
                  check=False)
    assert missing.returncode == 5
    assert json.loads(missing.stdout)["error"]["type"] == "PeerJobNotFound"
    status = cli([*base, "peer", "status", "4000000"], home=home, check=False)
    assert status.returncode == 5
    assert json.loads(status.stdout)["error"]["type"] == "PeerJobNotFound"
    assert_quiet(bad.stderr, missing.stderr)


def test_a_peer_that_comes_after_the_update_phase_waits_for_the_next_round(
        fresh_devnode: DevNode, tmp_path: Path) -> None:
    """Joined during the last round's aggregate phase: counted from the next round, so nothing
    to do (no training, no fetch); after the job's end, `peer run` refuses with exit 4."""
    from tests.dashboard.test_peer_jobs import _new_blocks

    url = fresh_devnode.url
    client = Client(url)
    job = client.with_signer("//Alice").create_peer_job(
        assets_cid="bafkqaaa", rounds=1, update_blocks=3, aggregate_blocks=50, max_peers=2)
    start = client.peer_job(job.job_id).start_block
    _new_blocks(url, start + 3 - client.block_number())
    (tmp_path / "data").mkdir()
    base = ["--node", url, "--storage", f"local:{tmp_path / 'store'}", "--account", "//Bob",
            "--json", "peer", "run", str(job.job_id), "--data", str(tmp_path / "data")]
    done = cli(base, home=tmp_path / "bob")
    report = json.loads(done.stdout)
    assert report["rounds"] == [] and report["joined"] is True
    assert report["stopped_because"] == "no round left to take part in"
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["joined", "round-skipped"]
    assert events[1]["round"] == 0
    assert client.peers(job.job_id) == {report["address"]: 0}

    _new_blocks(url, start + 53 - client.block_number())
    ended = cli(base, home=tmp_path / "bob", check=False)
    assert ended.returncode == 4
    assert "has ended" in json.loads(ended.stdout)["error"]["message"]
    client.close()

"""Every CLI command through a subprocess with ``--json``, against a real devnode and store."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.roles.conftest import TINY_BUNDLE, cli


@pytest.fixture
def env(fresh_devnode, tmp_path: Path) -> dict[str, object]:
    return {"url": fresh_devnode.url, "store": f"local:{tmp_path / 'store'}", "tmp": tmp_path}


def run(env: dict[str, object], account: str, *args: str, check: bool = True,
        **kw: object) -> subprocess.CompletedProcess[str]:
    tmp = env["tmp"]
    assert isinstance(tmp, Path)
    return cli(["--node", str(env["url"]), "--storage", str(env["store"]), "--account", account,
                "--json", "--yes", *args], home=tmp / account.strip("/"), check=check, **kw)


def as_json(done: subprocess.CompletedProcess[str]) -> object:
    return json.loads(done.stdout)


def test_task_lifecycle_through_the_cli(env: dict[str, object]) -> None:
    tmp = env["tmp"]
    assert isinstance(tmp, Path)
    created = as_json(run(env, "//Alice", "task", "create", "--bundle", str(TINY_BUNDLE),
                          "--question", "count lines", "--reward", "2.5", "--slots", "2",
                          "--validation", "manual"))
    assert isinstance(created, dict)
    task_id = created["task_id"]
    assert created["escrow"] == 5 * 10**12

    listed = as_json(run(env, "//Bob", "task", "list", "--with-slots"))
    assert [t["task_id"] for t in listed] == [task_id]  # type: ignore[union-attr]

    data = tmp / "data"
    data.mkdir()
    (data / "samples.txt").write_text("a\nb\n")
    accepted = as_json(run(env, "//Bob", "accept", str(task_id)))
    assert isinstance(accepted, dict) and accepted["task_id"] == task_id
    ran = as_json(run(env, "//Bob", "run", str(task_id), "--data", str(data)))
    assert isinstance(ran, dict) and ran["num_examples"] == 2 and ran["status"] == "Assigned"
    submitted = as_json(run(env, "//Bob", "submit", str(task_id), "--data", str(data)))
    assert isinstance(submitted, dict) and submitted["status"] == "PendingValidation"

    (data / "samples.txt").write_text("a\n")
    worked = as_json(run(env, "//Charlie", "work", "--data", str(data)))  # picks the task
    assert isinstance(worked, dict) and worked["task_id"] == task_id

    results = as_json(run(env, "//Alice", "results", str(task_id)))
    assert sorted(r["status"] for r in results) == ["PendingValidation"] * 2  # type: ignore

    report = as_json(run(env, "//Alice", "validate", str(task_id), "--policy", "auto"))
    assert isinstance(report, dict) and len(report["accepted"]) == 2

    shown = as_json(run(env, "//Alice", "task", "show", str(task_id)))
    assert isinstance(shown, dict)
    assert shown["escrow"] == 0 and shown["task"]["accepted_results"] == 2

    closed = as_json(run(env, "//Alice", "task", "close", str(task_id)))
    assert isinstance(closed, dict) and closed["refund"] == 0

    bal = as_json(run(env, "//Bob", "account", "balance"))
    assert isinstance(bal, dict) and bal["free"] > 10**18  # endowment + reward - fees


def test_errors_are_one_line_with_meaningful_exit_codes(env: dict[str, object]) -> None:
    missing = run(env, "//Bob", "accept", "999", check=False)
    assert missing.returncode == 5  # chain error
    assert "TaskNotFound" in missing.stderr and "Traceback" not in missing.stderr
    bad = run(env, "//Alice", "task", "create", "--bundle", str(TINY_BUNDLE), "--question",
              "x" * 3000, "--reward", "1", check=False)
    assert bad.returncode == 4 and "question" in bad.stderr
    tmp = env["tmp"]
    assert isinstance(tmp, Path)
    no_node = cli(["--json", "task", "list"], home=tmp / "nobody", check=False,
                  env={"DECENTRALML_NODE_URL": ""})
    assert no_node.returncode == 3 and "DECENTRALML_NODE_URL" in no_node.stderr
    bad_policy = run(env, "//Alice", "validate", "0", "--policy", "min-accuracy=2", check=False)
    assert bad_policy.returncode == 4 and "policy" in bad_policy.stderr
    manual = run(env, "//Alice", "validate", "0", "--policy", "manual", check=False)
    assert manual.returncode == 2 and "terminal" in manual.stderr


def test_accounts_round_trip(tmp_path: Path) -> None:
    home = tmp_path / "acct"
    keystore = {"DECENTRALML_KEYRING_PASSWORD": "keystore-pw"}
    created = json.loads(cli(["--json", "account", "new", "carol"], home=home,
                             env=keystore).stdout)
    assert created["address"].startswith("5")
    assert "mnemonic" not in json.dumps(created)
    listed = json.loads(cli(["--json", "account", "list"], home=home).stdout)
    assert [a["name"] for a in listed] == ["carol"]
    out = tmp_path / "carol.json"
    cli(["--json", "account", "export", "carol", "--out", str(out)], home=home,
        env={"DECENTRALML_JSON_PASSWORD": "pw-123", **keystore})
    assert json.loads(out.read_text())["encoding"]["content"] == ["pkcs8", "sr25519"]
    other = tmp_path / "other"
    imported = json.loads(cli(["--json", "account", "import", "carol2", "--json-file", str(out)],
                              home=other, env={"DECENTRALML_JSON_PASSWORD": "pw-123",
                                                **keystore}).stdout)
    assert imported["address"] == created["address"]
    wrong = cli(["--json", "account", "import", "c3", "--json-file", str(out)], home=other,
                env={"DECENTRALML_JSON_PASSWORD": "wrong", **keystore}, check=False)
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_devnode_command_serves_a_chain(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "decentralml.cli.main", "devnode", "--port",
                             str(port), "--tmp"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "devnode did not start"
                time.sleep(0.1)
        bal = json.loads(cli(["--node", f"ws://127.0.0.1:{port}", "--json", "account", "balance",
                              "//Alice"], home=tmp_path).stdout)
        assert bal["free"] == 10**18
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.tf
@pytest.mark.slow
def test_validate_min_accuracy_then_federate(fresh_devnode, tmp_path: Path) -> None:
    pytest.importorskip("keras")
    from decentralml.chain.client import Client
    from decentralml.chain.types import TaskType, ValidationStrategy
    from decentralml.fl import make_digits_cnn, save_model, save_update
    from decentralml.roles.creator import ModelCreator
    from decentralml.storage import open_store
    from decentralml.storage.bundle import pack_bundle

    spec = f"local:{tmp_path / 'store'}"
    store = open_store(spec)
    model = make_digits_cnn((8, 8, 1), 10, seed=0)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "start_task.sh").write_text("true\n")
    save_model(model, bundle / "model.keras")
    alice = Client(fresh_devnode.url, account="//Alice", home=tmp_path / "alice")
    task = ModelCreator(alice, store, workdir=tmp_path / "c").publish(
        bundle, question="q", reward=10**12, max_assignments=1,
        validation_strategy=ValidationStrategy.CustomAccept)
    bob = Client(fresh_devnode.url, account="//Bob", home=tmp_path / "bob")
    sub = bob.accept_task(task.task_id)
    save_update(model, tmp_path / "out", num_examples=10, metrics={})
    cid = pack_bundle(tmp_path / "out", store, task_type=TaskType.ModelContributor,
                      entrypoint=None).cid
    bob.send_task_result(sub.submission_id, {"num_examples": 10}, result_cid=cid,
                         result_storage=store.storage_type)
    import numpy as np

    from decentralml.fl import load_mnist

    _train, (xt, yt), _source = load_mnist(None)
    holdout = tmp_path / "holdout.npz"
    np.savez(holdout, x=xt[:100], y=yt[:100])
    base = ["--node", fresh_devnode.url, "--storage", spec, "--account", "//Alice", "--json"]
    strict = cli([*base, "validate", str(task.task_id), "--policy", "min-accuracy=0.99",
                  "--holdout", str(holdout), "--fail-on-reject"], home=tmp_path / "alice-cli",
                 check=False)
    assert strict.returncode == 8  # an untrained model scores far below 0.99: rejected
    report = json.loads(strict.stdout)
    assert report["rejected"] == [sub.submission_id] and report["paid"] == 0
    assert bob.submission(sub.submission_id).status.value == "Rejected"

    # the rejected slot reopens; Bob tries again and a lenient reviewer accepts
    again = bob.accept_task(task.task_id)
    bob.send_task_result(again.submission_id, {"num_examples": 10}, result_cid=cid,
                         result_storage=store.storage_type)
    lenient = json.loads(cli([*base, "validate", str(task.task_id), "--policy",
                              "min-accuracy=0.0", "--holdout", str(holdout)],
                             home=tmp_path / "alice-cli").stdout)
    assert lenient["accepted"] == [again.submission_id] and lenient["paid"] == 10**12

    out = tmp_path / "federated.keras"
    done = cli([*base, "federate", str(task.task_id), "--out", str(out)],
               home=tmp_path / "alice-cli")
    assert json.loads(done.stdout)["updates"] == 1
    assert out.is_file()
    bob.close()
    alice.close()


def test_task_from_a_template_takes_its_type_and_requirements(env: dict[str, object]) -> None:
    tmp = env["tmp"]
    assert isinstance(tmp, Path)
    created = as_json(run(env, "//Alice", "task", "create", "--template", "data_annotator",
                          "--bundle-out", str(tmp / "my_annotation_task"), "--question",
                          "label these", "--reward", "1"))
    assert isinstance(created, dict)
    assert (tmp / "my_annotation_task" / "annotate.py").is_file()  # kept for editing
    shown = as_json(run(env, "//Bob", "task", "show", str(created["task_id"])))
    assert isinstance(shown, dict) and shown["task"]["task_type"] == "DataAnnotator"
    unknown = run(env, "//Alice", "task", "create", "--template", "nope", "--question", "q",
                  "--reward", "1", check=False)
    assert unknown.returncode == 4 and "model_contributor" in unknown.stderr

"""Contributors against a real devnode and a real local store: work, resume after a kill, and
never submit twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from decentralml.chain.client import Client
from decentralml.chain.types import SubmissionStatus, TaskType, ValidationStrategy
from decentralml.roles.contributor import ModelContributor
from decentralml.roles.creator import ModelCreator
from decentralml.roles.journal import Stage
from decentralml.storage import open_store
from tests.roles.conftest import cli

REWARD = 5 * 10**12


def _publish(url: str, store_spec: str, bundle: Path, tmp: Path, slots: int = 1) -> int:
    alice = Client(url, account="//Alice", home=tmp / "alice")
    try:
        creator = ModelCreator(alice, open_store(store_spec), workdir=tmp / "creator")
        return creator.publish(bundle, question="count lines", reward=REWARD,
                               max_assignments=slots,
                               validation_strategy=ValidationStrategy.ManualAccept).task_id
    finally:
        alice.close()


def _data(tmp: Path, lines: int, name: str = "data") -> Path:
    d = tmp / name
    d.mkdir()
    (d / "samples.txt").write_text("".join(f"sample {i}\n" for i in range(lines)))
    return d


def test_work_runs_every_stage_once(fresh_devnode, tiny_bundle: Path, tmp_path: Path) -> None:
    spec = f"local:{tmp_path / 'store'}"
    task_id = _publish(fresh_devnode.url, spec, tiny_bundle, tmp_path)
    bob = Client(fresh_devnode.url, account="//Bob", home=tmp_path / "bob")
    worker = ModelContributor(bob, open_store(spec), home=tmp_path / "bob")
    assert [t.task_id for t in worker.browse()] == [task_id]
    report = worker.work(task_id, _data(tmp_path, 7))
    assert report.status is SubmissionStatus.PendingValidation
    assert report.num_examples == 7 and report.metrics == {"lines": 7}
    assert report.stages_run == ["fetched", "ran", "uploaded", "submitted"]
    again = worker.work(task_id, tmp_path / "data")
    assert again.stages_run == [] and again.submission_id == report.submission_id
    sub = bob.submission(report.submission_id)
    assert sub.result_json() == {"metrics": {"lines": 7}, "num_examples": 7}
    assert sub.result_cid == report.result_cid
    assert worker.browse() == []  # the only slot is held by Bob now
    bob.close()


def test_wrong_role_is_refused_before_accepting(fresh_devnode, tiny_bundle: Path,
                                                tmp_path: Path) -> None:
    from decentralml.errors import InvalidInput
    from decentralml.roles.contributor import DataAnnotator

    spec = f"local:{tmp_path / 'store'}"
    task_id = _publish(fresh_devnode.url, spec, tiny_bundle, tmp_path)
    bob = Client(fresh_devnode.url, account="//Bob", home=tmp_path / "bob")
    annotator = DataAnnotator(bob, open_store(spec), home=tmp_path / "bob")
    with pytest.raises(InvalidInput, match="ModelContributor"):
        annotator.work(task_id, _data(tmp_path, 1))
    assert bob.worker_submissions() == []
    bob.close()


def test_killed_contributor_resumes_and_submits_exactly_once(
        fresh_devnode, tiny_bundle: Path, tmp_path: Path) -> None:
    spec = f"local:{tmp_path / 'store'}"
    task_id = _publish(fresh_devnode.url, spec, tiny_bundle, tmp_path)
    data = _data(tmp_path, 3)
    (data / "slow").touch()
    home = tmp_path / "bob"
    env = {**os.environ, "DECENTRALML_HOME": str(home)}
    args = [sys.executable, "-m", "decentralml.cli.main", "--node", fresh_devnode.url,
            "--storage", spec, "--account", "//Bob", "--json", "work", str(task_id),
            "--data", str(data)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(home.glob("work/*/run/output/running")):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the bundle never started"
        time.sleep(0.05)
    # Kill the contributor, as a crash or `kill -9` would; the sandboxed task dies with it
    # (bwrap --die-with-parent), which the resumed run below relies on: it starts afresh.
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (data / "slow").unlink()

    done = cli(["--node", fresh_devnode.url, "--storage", spec, "--account", "//Bob", "--json",
                "work", str(task_id), "--data", str(data)], home=home)
    report = json.loads(done.stdout)
    assert report["resumed_from"] == int(Stage.FETCHED)
    assert report["stages_run"] == ["ran", "uploaded", "submitted"]
    assert report["status"] == "PendingValidation"

    alice = Client(fresh_devnode.url, account="//Alice", home=tmp_path / "alice")
    subs = alice.task_submissions(task_id)
    assert [(s.worker, s.status) for s in subs] == [
        (alice.resolve_address("//Bob"), SubmissionStatus.PendingValidation)]
    alice.close()


def test_annotators_results_merge_by_majority(fresh_devnode, tmp_path: Path) -> None:
    """Three annotators label the same samples; the creator merges by majority vote."""
    from decentralml.roles.annotation import merge_annotations
    from decentralml.roles.contributor import DataAnnotator

    bundle = tmp_path / "annotate"
    bundle.mkdir()
    (bundle / "start_task.sh").write_text(
        'set -eu\ncp "$DECENTRALML_DATA_DIR/labels.json" "$DECENTRALML_OUTPUT_DIR/result.json"\n')
    spec = f"local:{tmp_path / 'store'}"
    alice = Client(fresh_devnode.url, account="//Alice", home=tmp_path / "alice")
    creator = ModelCreator(alice, open_store(spec), workdir=tmp_path / "creator")
    task = creator.publish(bundle, question="label the samples", reward=REWARD,
                           task_type=TaskType.DataAnnotator, max_assignments=3,
                           validation_strategy=ValidationStrategy.AutoAccept)
    votes = {"//Bob": {"a": "cat", "b": "dog"}, "//Charlie": {"a": "cat", "b": "cat"},
             "//Dave": {"a": "cat", "b": "dog"}}
    for uri, labels in votes.items():
        d = tmp_path / f"data-{uri[2:]}"
        d.mkdir()
        (d / "labels.json").write_text(json.dumps({"num_examples": 2, "annotations": labels}))
        client = Client(fresh_devnode.url, account=uri, home=tmp_path / uri[2:])
        report = DataAnnotator(client, open_store(spec), home=tmp_path / uri[2:]).work(
            task.task_id, d)
        assert report.status is SubmissionStatus.Accepted  # AutoAccept pays on submission
        client.close()
    results = creator.annotation_results(task.task_id)
    merged = merge_annotations(results)
    assert merged.as_dict() == {"a": "cat", "b": "dog"}
    assert merged.labels["b"].agreement == pytest.approx(2 / 3)
    alice.close()

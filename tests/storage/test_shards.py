"""Data shards a task ships (compute rental): packing, the manifest's list, fetching one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from decentralml.chain.types import TaskType
from decentralml.errors import BundleError, InvalidInput
from decentralml.storage.bundle import Manifest, build_manifest, fetch_bundle, pack_bundle
from decentralml.storage.local import LocalStore
from decentralml.storage.shards import fetch_shard, pack_shards, shard_cid, shard_dirs

MC = TaskType.ModelContributor


def _shards(root: Path, n: int) -> Path:
    for i in range(n):
        d = root / f"shard-{i}"
        d.mkdir(parents=True)
        (d / "data.txt").write_text(f"rows of shard {i}\n")
    return root


def _task_dir(root: Path) -> Path:
    root.mkdir()
    (root / "start_task.sh").write_text("#!/bin/bash\necho hi\n")
    return root


def test_each_shard_is_a_data_bundle_listed_in_order_and_fetched_alone(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store", progress=False)
    packed = pack_shards(_shards(tmp_path / "shards", 3), store, task_type=MC)
    assert len(packed) == 3 and len(set(packed.cids)) == 3
    # the same data packs to the same CIDs: a job's rounds store their shards once
    assert pack_shards(tmp_path / "shards", store, task_type=MC).cids == packed.cids
    task = pack_bundle(_task_dir(tmp_path / "task"), store, task_type=MC, shards=packed.cids)
    assert task.manifest.shards == packed.cids
    fetched = fetch_bundle(store, task.cid, tmp_path / "fetched")
    assert fetched.manifest.shards == packed.cids

    shard = fetch_shard(store, fetched.manifest, 1, tmp_path / "mine")
    assert shard.manifest.kind == "data" and shard.manifest.entrypoint is None
    assert (shard.path / "data.txt").read_text() == "rows of shard 1\n"
    # the task bundle holds none of the shards' files: each contributor downloads only its own
    assert not list(fetched.path.rglob("data.txt"))


def test_a_task_without_shards_keeps_its_manifest_and_cid(tmp_path: Path) -> None:
    manifest = build_manifest(_task_dir(tmp_path / "task"), task_type=MC)
    assert "shards" not in json.loads(manifest.to_json())
    with pytest.raises(BundleError, match="ships no data shards"):
        shard_cid(manifest, 0)


def test_an_assigned_shard_the_manifest_does_not_list_is_refused(tmp_path: Path) -> None:
    manifest = build_manifest(_task_dir(tmp_path / "task"), task_type=MC, shards=("bafyA",))
    with pytest.raises(BundleError, match="assigned shard 1, but the task's manifest lists 1"):
        shard_cid(manifest, 1)


def test_a_shard_that_is_not_data_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store", progress=False)
    runnable = pack_bundle(_task_dir(tmp_path / "task"), store, task_type=MC)
    manifest = build_manifest(tmp_path / "task", task_type=MC, shards=(runnable.cid,))
    with pytest.raises(BundleError, match="is a task bundle, not data"):
        fetch_shard(store, manifest, 0, tmp_path / "mine")


@pytest.mark.parametrize("cid", ["", "x" * 257, "bafy/../../etc", "bafy\n"])
def test_manifest_refuses_what_is_not_a_cid(tmp_path: Path, cid: str) -> None:
    with pytest.raises(BundleError, match="shard CID"):
        build_manifest(_task_dir(tmp_path / "task"), task_type=MC, shards=(cid,))


def test_only_task_bundles_ship_shards() -> None:
    with pytest.raises(ValueError, match="a result bundle ships no shards"):
        Manifest(kind="result", task_type=MC, entrypoint=None, files=(), shards=("bafyA",))


def test_shard_directories_are_checked_before_anything_is_packed(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"shards.*is not a directory"):
        shard_dirs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="holds no shard directories"):
        shard_dirs(tmp_path / "empty")
    root = _shards(tmp_path / "linked", 1)
    (root / "shard-1").symlink_to(root / "shard-0")
    with pytest.raises(InvalidInput, match="shard-1 is a symlink"):
        shard_dirs(root)
    root = _shards(tmp_path / "hollow", 1)
    (root / "shard-9").mkdir()
    with pytest.raises(InvalidInput, match="shard shard-9 is empty"):
        shard_dirs(root)
    # files (example digits' model and holdout), hidden entries and caches are not shards;
    # order is by name
    root = _shards(tmp_path / "ok", 2)
    (root / ".DS_Store").write_text("")
    (root / "model.keras").write_text("")
    (root / ".cache").mkdir()
    assert [p.name for p in shard_dirs(root)] == ["shard-0", "shard-1"]

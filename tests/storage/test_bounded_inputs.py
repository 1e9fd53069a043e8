"""Hostile DAGs and manifests: refused while they stream, by size, entry count, depth and time.

The DAGs are built block by block with the real UnixFS encoder and written into a real local
store, the way a hostile creator would publish them: a CID proves what the content is, not how
much it expands to, and deduplication lets a few stored blocks name gigabytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from decentralml.errors import BundleError, FetchLimitExceeded, StorageError
from decentralml.storage.base import FetchLimits
from decentralml.storage.bundle import MANIFEST_NAME, Manifest, fetch_bundle
from decentralml.storage.local import LocalStore
from decentralml.storage.unixfs.cid import DAG_PB, RAW, cid_to_str, make_cid, parse_cid
from decentralml.storage.unixfs.dagpb import Link, UnixFSType, encode_pbnode, encode_unixfs
from decentralml.storage.unixfs.importer import Entry, encode_directory

MIB = 1024**2


def _file(store: LocalStore, size: int) -> Entry:
    cid = store.put_bytes(bytes(size))
    root = parse_cid(cid)
    return Entry(root, size, size)


def _dir(store: LocalStore, entries: dict[str, Entry]) -> Entry:
    return encode_directory(entries, store._write_node)


def _nothing_left(where: Path) -> bool:
    return not where.exists() and not [p for p in where.parent.iterdir()
                                       if p.name.startswith(f".{where.name}")]


def test_file_bomb_is_refused_by_total_bytes_before_it_is_written(local_store: LocalStore,
                                                                  tmp_path: Path) -> None:
    one = _file(local_store, MIB)
    bomb = _dir(local_store, {f"copy{i:04d}": one for i in range(1000)})  # 1 MiB stored, 1 GB
    dest = tmp_path / "out" / "bomb"
    with pytest.raises(FetchLimitExceeded, match="more than 8388608 bytes") as err:
        local_store.get(bomb.cid_str, dest, limits=FetchLimits(max_bytes=8 * MIB))
    assert "copy0008" in str(err.value)  # the 9th copy was refused by its declared size
    assert _nothing_left(dest)


def test_bundle_fetch_refuses_a_file_bomb_as_a_bundle_error(local_store: LocalStore,
                                                            tmp_path: Path) -> None:
    one = _file(local_store, MIB)
    bomb = _dir(local_store, {f"copy{i:04d}": one for i in range(1000)})
    dest = tmp_path / "bundle"
    with pytest.raises(BundleError, match="max_bytes"):
        fetch_bundle(local_store, bomb.cid_str, dest, max_total_size=4 * MIB)
    assert _nothing_left(dest)


def test_one_huge_file_is_refused_by_its_declared_size(local_store: LocalStore,
                                                       tmp_path: Path) -> None:
    big = _file(local_store, 3 * MIB)
    tree = _dir(local_store, {"big.bin": big})
    with pytest.raises(FetchLimitExceeded, match="max_file_bytes=1048576"):
        local_store.get(tree.cid_str, tmp_path / "x",
                        limits=FetchLimits(max_file_bytes=MIB))


def test_directory_bomb_is_refused_by_entry_count(local_store: LocalStore,
                                                  tmp_path: Path) -> None:
    level = _dir(local_store, {"leaf": _file(local_store, 1)})
    for _ in range(40):  # 41 blocks naming 2**40 entries
        level = _dir(local_store, {"a": level, "b": level})
    dest = tmp_path / "dirbomb"
    with pytest.raises(FetchLimitExceeded, match="more than 5000 files and directories"):
        local_store.get(level.cid_str, dest, limits=FetchLimits(max_entries=5000))
    assert _nothing_left(dest)


def test_deep_directory_tree_is_a_bundle_error_never_recursion(local_store: LocalStore,
                                                               tmp_path: Path) -> None:
    level = _dir(local_store, {"leaf": _file(local_store, 1)})
    for _ in range(3000):  # deeper than Python's recursion limit
        level = _dir(local_store, {"d": level})
    with pytest.raises(BundleError, match="nested more than 256 levels"):
        fetch_bundle(local_store, level.cid_str, tmp_path / "deep")
    with pytest.raises(FetchLimitExceeded, match="nested more than 256 levels"):
        local_store.get(level.cid_str, tmp_path / "deep2")  # the generic default


def test_deeply_nested_file_nodes_are_refused(local_store: LocalStore, tmp_path: Path) -> None:
    data = b"x" * 100
    leaf = make_cid(RAW, data)
    local_store._ensure_dirs()
    child, size = leaf, len(data)
    for _ in range(200):
        block = encode_pbnode([Link(child, "", size)],
                              encode_unixfs(UnixFSType.FILE, filesize=size, blocksizes=[size]))
        child = make_cid(DAG_PB, block)
        local_store._write_node(child, block)
    local_store.data_path(child).parent.mkdir(parents=True, exist_ok=True)
    local_store.data_path(child).write_bytes(data)
    with pytest.raises(StorageError, match="nested more than 64 levels"):
        local_store.get(cid_to_str(child), tmp_path / "f")


def test_every_fetch_has_a_time_limit(local_store: LocalStore, tmp_path: Path) -> None:
    tree = _dir(local_store, {"a": _file(local_store, 10)})
    with pytest.raises(FetchLimitExceeded, match="longer than 1e-09 s"):
        local_store.get(tree.cid_str, tmp_path / "slow", limits=FetchLimits(timeout=1e-9))
    assert _nothing_left(tmp_path / "slow")


def test_deep_manifest_is_a_bundle_error_never_recursion(local_store: LocalStore,
                                                         tmp_path: Path) -> None:
    deep = '{"metadata": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}"
    with pytest.raises(BundleError, match="nested too deeply"):
        Manifest.from_json(deep)
    bundle = tmp_path / "src"
    bundle.mkdir()
    (bundle / MANIFEST_NAME).write_text(deep)
    cid = local_store.put(bundle)
    with pytest.raises(BundleError, match="nested too deeply"):
        fetch_bundle(local_store, cid, tmp_path / "fetched")
    assert _nothing_left(tmp_path / "fetched")


def test_manifest_network_flag_round_trips_and_is_absent_when_false() -> None:
    base = {"task_type": "ModelContributor", "entrypoint": "start_task.sh",
            "files": [{"path": "start_task.sh", "sha256": "0" * 64, "size": 1}]}
    plain = Manifest.model_validate(base)
    assert "network" not in json.loads(plain.to_json())  # old bundles keep their CIDs
    wired = Manifest.model_validate({**base, "network": True})
    assert json.loads(wired.to_json())["network"] is True
    assert Manifest.from_json(wired.to_json()).network


def test_remove_tree_deletes_trees_deeper_than_the_stack_and_path_max(tmp_path: Path) -> None:
    from decentralml.storage._fs import remove_tree

    top = tmp_path / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(3000):  # 6000-byte paths, 3000 levels: rmtree and PATH_MAX both give up
        os.mkdir("d", dir_fd=fd)
        with open(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "w") as fh:
            fh.write("x")
        down = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = down
    os.close(fd)
    remove_tree(top)
    assert not top.exists()

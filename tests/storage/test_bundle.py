"""Task bundles: the manifest's rules, pack/fetch round trips, and tampering refused before use.

The tamper tests go through real stores (``LocalStore``, and ``IPFSStore`` under the ``ipfs``
marker). The in-test :class:`TreeStore` is only used for the pure manifest/pack unit tests, where
what matters is what pack hands to a store, not how the store keeps it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from decentralml.chain.types import StorageType, TaskType
from decentralml.errors import BundleError, DecentralMLError, IntegrityError, InvalidInput
from decentralml.storage.bundle import (
    MANIFEST_NAME,
    Bundle,
    FileEntry,
    Manifest,
    build_manifest,
    fetch_bundle,
    load_bundle,
    pack_bundle,
    verify_bundle,
)

SHA0 = "0" * 64


# --------------------------------------------------------------------------------------------
# helpers


class TreeStore:
    """A minimal fake store for manifest unit tests: CID = sha256 over the tree's paths+bytes."""

    storage_type = StorageType.Local

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.puts: list[Path] = []

    def _digest(self, path: Path) -> str:
        h = hashlib.sha256()
        for p in sorted(path.rglob("*")):
            h.update(str(p.relative_to(path)).encode() + b"\0")
            if p.is_file():
                h.update(p.read_bytes())
        return "fake" + h.hexdigest()

    def put(self, path: Path) -> str:
        self.puts.append(path)
        cid = self._digest(path)
        target = self.root / cid
        if not target.exists():
            shutil.copytree(path, target, symlinks=True)
        return cid

    def put_bytes(self, data: bytes) -> str:
        raise NotImplementedError

    def get(self, cid: str, dest: Path, *, limits: Any = None) -> Path:
        shutil.copytree(self.root / cid, dest, symlinks=True)
        return dest

    def open(self, cid: str) -> Iterator[bytes]:
        raise NotImplementedError

    def pin(self, cid: str) -> None:
        pass

    def exists(self, cid: str) -> bool:
        return (self.root / cid).exists()


def make_task(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "start_task.sh").write_text("#!/usr/bin/env bash\necho hello\n")
    (root / "train.py").write_text("print('train')\n")
    (root / "lib").mkdir()
    (root / "lib" / "loader.py").write_text("def load():\n    return 1\n")
    (root / "model.bin").write_bytes(os.urandom(300_000))  # > one 256 KiB chunk
    return root


def _entry(path: str, data: bytes = b"", executable: bool = False) -> dict[str, Any]:
    return {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "executable": executable}


def _manifest(files: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"format_version": 1, "kind": "task", "task_type": "ModelContributor",
            "entrypoint": "start_task.sh", "files": files, **extra}


@pytest.fixture
def tree_store(tmp_path: Path) -> TreeStore:
    return TreeStore(tmp_path / "fake-store")


@pytest.fixture(params=["local", pytest.param("ipfs", marks=pytest.mark.ipfs)])
def store(request: pytest.FixtureRequest) -> Any:
    """A real store: LocalStore always, IPFSStore when the daemon is available."""
    name = f"{request.param}_store"
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        pytest.skip(f"fixture {name} not available yet")


# --------------------------------------------------------------------------------------------
# manifest rules


@pytest.mark.parametrize("path", [
    "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "", ".", "a\\b", "a\nb", "x/",
    "decentralml.json", "e\u0301.txt",  # not NFC
])
def test_manifest_refuses_unsafe_paths(path: str) -> None:
    with pytest.raises(BundleError):
        Manifest.from_json(json.dumps(_manifest([_entry("start_task.sh"), _entry(path)])))


def test_manifest_refuses_duplicates_case_folded_and_file_dir_clash() -> None:
    for files in ([_entry("start_task.sh"), _entry("A.txt"), _entry("a.txt")],
                  [_entry("start_task.sh"), _entry("a"), _entry("a/b")]):
        with pytest.raises(BundleError):
            Manifest.from_json(json.dumps(_manifest(files)))


def test_manifest_rules() -> None:
    ok = _manifest([_entry("start_task.sh")], requirements=["numpy>=1.26"],
                   outputs=["update.npz"], metadata={"a": [1, 2]})
    assert Manifest.from_json(json.dumps(ok)).requirements == ("numpy>=1.26",)
    bad: list[dict[str, Any]] = [
        {**ok, "format_version": 2},
        {**ok, "unknown": 1},
        {**ok, "entrypoint": "missing.sh"},
        {**ok, "entrypoint": None},
        {**ok, "requirements": ["not a requirement !!"]},
        {**ok, "outputs": ["../escape"]},
        {**ok, "task_type": "Nope"},
        {**ok, "files": [{**_entry("start_task.sh"), "sha256": "xyz"}]},
        {**ok, "files": [{**_entry("start_task.sh"), "size": -1}]},
        {**ok, "kind": "result"},  # a result has no entrypoint
    ]
    for item in bad:
        with pytest.raises(BundleError):
            Manifest.from_json(json.dumps(item))
    with pytest.raises(BundleError, match="format_version"):
        Manifest.from_json(json.dumps({**ok, "format_version": 7}))
    with pytest.raises(BundleError):
        Manifest.from_json(b"{not json")


def test_manifest_serialisation_is_canonical() -> None:
    m1 = Manifest(task_type=TaskType.DataAnnotator, files=(
        FileEntry(path="start_task.sh", sha256=SHA0, size=0),
        FileEntry(path="b", sha256=SHA0, size=1)))
    m2 = Manifest(task_type=TaskType.DataAnnotator, files=(
        FileEntry(path="b", sha256=SHA0, size=1),
        FileEntry(path="start_task.sh", sha256=SHA0, size=0)))
    assert m1.to_json() == m2.to_json()
    assert Manifest.from_json(m1.to_json()) == m1
    assert m1.total_size == 1


# --------------------------------------------------------------------------------------------
# pack


def test_pack_writes_manifest_without_touching_the_source(tmp_path: Path,
                                                           tree_store: TreeStore) -> None:
    src = make_task(tmp_path / "task")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "x.pyc").write_bytes(b"cache")
    before = sorted(p.name for p in src.rglob("*"))
    packed = pack_bundle(src, tree_store, task_type=TaskType.ModelContributor,
                         requirements=["numpy"], outputs=["update.npz"], metadata={"v": 1})
    assert sorted(p.name for p in src.rglob("*")) == before  # no decentralml.json written there
    m = packed.manifest
    assert [e.path for e in m.files] == ["lib/loader.py", "model.bin", "start_task.sh",
                                         "train.py"]
    assert m.entry("start_task.sh").executable and not m.entry("train.py").executable
    assert m.entry("model.bin").sha256 == hashlib.sha256((src / "model.bin").read_bytes()
                                                         ).hexdigest()
    stored = tree_store.root / packed.cid
    assert Manifest.from_json((stored / MANIFEST_NAME).read_bytes()) == m
    assert not tree_store.puts[0].exists()  # staging removed
    # deterministic: same tree, same CID
    assert pack_bundle(src, tree_store, task_type=TaskType.ModelContributor,
                       requirements=["numpy"], outputs=["update.npz"],
                       metadata={"v": 1}).cid == packed.cid
    assert build_manifest(src, task_type=TaskType.ModelContributor, requirements=["numpy"],
                          outputs=["update.npz"], metadata={"v": 1}) == m


def test_pack_refuses_unsafe_trees(tmp_path: Path, tree_store: TreeStore) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    src = make_task(tmp_path / "a")
    (src / "leak").symlink_to(outside)
    with pytest.raises(BundleError, match="outside"):
        pack_bundle(src, tree_store, task_type=TaskType.ModelContributor)

    src = make_task(tmp_path / "b")
    os.mkfifo(src / "fifo")
    with pytest.raises(BundleError, match="regular"):
        pack_bundle(src, tree_store, task_type=TaskType.ModelContributor)

    src = make_task(tmp_path / "c")
    with pytest.raises(BundleError, match="limit"):
        pack_bundle(src, tree_store, task_type=TaskType.ModelContributor, max_file_size=1000)

    src = make_task(tmp_path / "d")
    (src / "start_task.sh").unlink()
    with pytest.raises(BundleError, match="entrypoint"):
        pack_bundle(src, tree_store, task_type=TaskType.ModelContributor)

    with pytest.raises(InvalidInput):
        pack_bundle(tmp_path / "nope", tree_store, task_type=TaskType.ModelContributor)
    assert tree_store.puts == []


def test_pack_dereferences_symlinks_inside(tmp_path: Path, tree_store: TreeStore) -> None:
    src = make_task(tmp_path / "a")
    (src / "alias.py").symlink_to(src / "train.py")
    packed = pack_bundle(src, tree_store, task_type=TaskType.ModelContributor)
    stored = tree_store.root / packed.cid / "alias.py"
    assert not stored.is_symlink() and stored.read_text() == "print('train')\n"


def test_result_bundle_kind_inferred(tmp_path: Path, tree_store: TreeStore) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.json").write_text('{"num_examples": 3}')
    packed = pack_bundle(out, tree_store, task_type=TaskType.DataAnnotator, entrypoint=None,
                         num_examples=3, metrics={"acc": 0.5})
    assert packed.manifest.kind == "result" and packed.manifest.num_examples == 3


# --------------------------------------------------------------------------------------------
# verify on disk (no store involved)


def _verified_tree(tmp_path: Path, tree_store: TreeStore) -> Path:
    packed = pack_bundle(make_task(tmp_path / "src"), tree_store,
                         task_type=TaskType.ModelContributor)
    tree = tmp_path / "tree"
    shutil.copytree(tree_store.root / packed.cid, tree)
    verify_bundle(tree)
    return tree


def test_verify_refuses_symlinks_devices_extra_and_missing(tmp_path: Path,
                                                           tree_store: TreeStore) -> None:
    tree = _verified_tree(tmp_path, tree_store)
    (tree / "lib" / "evil").symlink_to("../../../etc/passwd")
    with pytest.raises(BundleError, match="symlink pointing outside"):
        verify_bundle(tree)
    (tree / "lib" / "evil").unlink()
    (tree / "lib" / "alias").symlink_to("loader.py")
    with pytest.raises(BundleError, match="symlink pointing inside"):
        verify_bundle(tree)
    (tree / "lib" / "alias").unlink()
    os.mkfifo(tree / "fifo")
    with pytest.raises(BundleError, match="FIFO"):
        verify_bundle(tree)
    (tree / "fifo").unlink()
    (tree / "extra.py").write_text("import os")
    with pytest.raises(BundleError, match="not in the manifest"):
        verify_bundle(tree)
    (tree / "extra.py").unlink()
    (tree / "emptydir").mkdir()
    with pytest.raises(BundleError, match="directory not in the manifest"):
        verify_bundle(tree)
    (tree / "emptydir").rmdir()
    (tree / "train.py").unlink()
    with pytest.raises(BundleError, match="missing"):
        verify_bundle(tree)


def test_verify_refuses_changed_bytes_and_limits(tmp_path: Path, tree_store: TreeStore) -> None:
    tree = _verified_tree(tmp_path, tree_store)
    with pytest.raises(BundleError, match="limit"):
        verify_bundle(tree, max_file_size=1000)
    with pytest.raises(BundleError, match="limit"):
        verify_bundle(tree, max_total_size=1000)
    data = bytearray((tree / "model.bin").read_bytes())
    data[-1] ^= 1
    (tree / "model.bin").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        verify_bundle(tree)
    (tree / "model.bin").write_bytes(bytes(data) + b"x")
    with pytest.raises(IntegrityError, match="bytes"):
        verify_bundle(tree)
    (tree / MANIFEST_NAME).unlink()
    with pytest.raises(BundleError, match=MANIFEST_NAME):
        verify_bundle(tree)


# --------------------------------------------------------------------------------------------
# fetch through real stores: tampering refused, nothing left at dest


def _restore_tree(store: Any, tmp_path: Path, cid: str, name: str) -> Path:
    """The stored tree, copied back out of the store so a test can tamper with it."""
    return Path(store.get(cid, tmp_path / name))


def _republish(store: Any, tree: Path) -> str:
    return str(store.put(tree))


def _assert_refused(store: Any, cid: str, dest: Path, exc: type[Exception] = DecentralMLError,
                    match: str | None = None) -> None:
    with pytest.raises(exc, match=match):
        fetch_bundle(store, cid, dest)
    assert not dest.exists()
    assert [p for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.")] == []


def test_fetch_round_trip(store: Any, tmp_path: Path) -> None:
    src = make_task(tmp_path / "src")
    packed = pack_bundle(src, store, task_type=TaskType.ModelContributor,
                         requirements=["numpy>=1"], metadata={"name": "t"})
    bundle = fetch_bundle(store, packed.cid, tmp_path / "dl" / "bundle")
    assert isinstance(bundle, Bundle)
    assert bundle.cid == packed.cid and bundle.manifest == packed.manifest
    assert (bundle.path / "model.bin").read_bytes() == (src / "model.bin").read_bytes()
    assert bundle.entrypoint == bundle.path / "start_task.sh"
    assert os.access(bundle.entrypoint, os.X_OK) and not os.access(bundle.path / "train.py",
                                                                     os.X_OK)
    assert load_bundle(bundle.path).manifest == packed.manifest
    with pytest.raises(InvalidInput):  # dest is not empty any more
        fetch_bundle(store, packed.cid, bundle.path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert fetch_bundle(store, packed.cid, empty).path == empty


def test_fetch_refuses_swapped_manifest_entries(store: Any, tmp_path: Path) -> None:
    packed = pack_bundle(make_task(tmp_path / "src"), store, task_type=TaskType.ModelContributor)
    tree = _restore_tree(store, tmp_path, packed.cid, "t")
    raw = json.loads((tree / MANIFEST_NAME).read_text())
    by_path = {f["path"]: f for f in raw["files"]}
    by_path["train.py"]["sha256"], by_path["lib/loader.py"]["sha256"] = (
        by_path["lib/loader.py"]["sha256"], by_path["train.py"]["sha256"])
    (tree / MANIFEST_NAME).chmod(0o644)
    (tree / MANIFEST_NAME).write_text(json.dumps(raw))
    _assert_refused(store, _republish(store, tree), tmp_path / "dest", IntegrityError)


def test_fetch_refuses_edited_file_with_old_manifest(store: Any, tmp_path: Path) -> None:
    packed = pack_bundle(make_task(tmp_path / "src"), store, task_type=TaskType.ModelContributor)
    tree = _restore_tree(store, tmp_path, packed.cid, "t")
    (tree / "train.py").chmod(0o644)
    (tree / "train.py").write_text("import os; os.system('rm -rf ~')\n")
    _assert_refused(store, _republish(store, tree), tmp_path / "dest", IntegrityError)


def test_fetch_refuses_added_file(store: Any, tmp_path: Path) -> None:
    packed = pack_bundle(make_task(tmp_path / "src"), store, task_type=TaskType.ModelContributor)
    tree = _restore_tree(store, tmp_path, packed.cid, "t")
    (tree / "lib").chmod(0o755)
    (tree / "lib" / "sitecustomize.py").write_text("print('pwned')\n")
    _assert_refused(store, _republish(store, tree), tmp_path / "dest", BundleError,
                    "not in the manifest")


def test_fetch_refuses_dotdot_manifest_entry(store: Any, tmp_path: Path) -> None:
    tree = make_task(tmp_path / "t")
    files = [_entry(str(p.relative_to(tree)), p.read_bytes())
             for p in sorted(tree.rglob("*")) if p.is_file()]
    files.append(_entry("../outside.sh", b"echo pwned\n"))
    (tree / MANIFEST_NAME).write_text(json.dumps(_manifest(files)))
    _assert_refused(store, _republish(store, tree), tmp_path / "dest", BundleError, r"'\.\.'")
    assert not (tmp_path / "outside.sh").exists()


def test_fetch_refuses_symlink_entry(store: Any, tmp_path: Path) -> None:
    tree = make_task(tmp_path / "t")
    files = [_entry(str(p.relative_to(tree)), p.read_bytes())
             for p in sorted(tree.rglob("*")) if p.is_file()]
    secret = b"root:x:0:0"
    files.append(_entry("passwd", secret))
    (tree / MANIFEST_NAME).write_text(json.dumps(_manifest(files)))
    (tree / "passwd").symlink_to("/etc/passwd")
    try:
        cid = _republish(store, tree)
    except DecentralMLError:
        return  # the store itself refuses to hold a symlink: refused even earlier
    _assert_refused(store, cid, tmp_path / "dest", DecentralMLError)


def test_fetch_refuses_oversized(store: Any, tmp_path: Path) -> None:
    packed = pack_bundle(make_task(tmp_path / "src"), store, task_type=TaskType.ModelContributor)
    with pytest.raises(BundleError, match="limit"):
        fetch_bundle(store, packed.cid, tmp_path / "a", max_file_size=100_000)
    with pytest.raises(BundleError, match="limit"):
        fetch_bundle(store, packed.cid, tmp_path / "b", max_total_size=100_000)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_fetch_refuses_a_plain_file_or_no_manifest(store: Any, tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"just a file")
    _assert_refused(store, _republish(store, blob), tmp_path / "d1", DecentralMLError)
    bare = make_task(tmp_path / "bare")
    _assert_refused(store, _republish(store, bare), tmp_path / "d2", BundleError, MANIFEST_NAME)


# --------------------------------------------------------------------------------------------
# bytes flipped inside the local store (file data and directory nodes)


def _flip(path: Path, offset: int) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("target", ["entrypoint", "manifest", "big-file", "root"])
def test_fetch_refuses_a_flipped_byte_in_the_store(local_store: Any, tmp_path: Path,
                                                   target: str) -> None:
    src = make_task(tmp_path / "src")
    packed = pack_bundle(src, local_store, task_type=TaskType.ModelContributor)
    if target == "root":
        stored = local_store.block_path(packed.cid)  # the directory's dag-pb node
    else:
        # a file's bytes are kept whole under its root CID: the same CID a put of it gives
        copy = tmp_path / "copy"
        if target == "manifest":
            copy.write_bytes(packed.manifest.to_json())
        else:
            copy.write_bytes((src / {"entrypoint": "start_task.sh",
                                     "big-file": "model.bin"}[target]).read_bytes())
        stored = local_store.data_path(local_store.put(copy))
    assert stored.is_file()
    _flip(stored, 17)
    _assert_refused(local_store, packed.cid, tmp_path / "dest", IntegrityError)


class _PlantingStore:
    """A real store whose ``get`` also plants an entry, as a buggy or hostile backend could."""

    def __init__(self, inner: Any, plant: Any) -> None:
        self.inner, self.plant = inner, plant
        self.storage_type = inner.storage_type

    def get(self, cid: str, dest: Path, *, limits: Any = None) -> Path:
        out = Path(self.inner.get(cid, dest, limits=limits))
        self.plant(out)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("plant", ["symlink-out", "symlink-in", "fifo", "extra-dir"])
def test_fetch_refuses_entries_a_backend_plants(local_store: Any, tmp_path: Path,
                                                plant: str) -> None:
    tree = make_task(tmp_path / "t")
    files = [_entry(str(p.relative_to(tree)), p.read_bytes())
             for p in sorted(tree.rglob("*")) if p.is_file()]
    files.append(_entry("passwd", b"root:x:0:0"))  # listed, so only its type gives it away
    (tree / "passwd").write_bytes(b"root:x:0:0")
    (tree / MANIFEST_NAME).write_text(json.dumps(_manifest(files)))
    cid = local_store.put(tree)

    def do(root: Path) -> None:
        (root / "passwd").chmod(0o644)
        if plant == "symlink-out":
            (root / "passwd").unlink()
            (root / "passwd").symlink_to("/etc/passwd")
        elif plant == "symlink-in":
            (root / "passwd").unlink()
            (root / "passwd").symlink_to("train.py")
        elif plant == "fifo":
            (root / "passwd").unlink()
            os.mkfifo(root / "passwd")
        else:
            (root / "lib").chmod(0o755)
            (root / "lib" / "hidden").mkdir()

    _assert_refused(_PlantingStore(local_store, do), cid, tmp_path / "dest", BundleError)

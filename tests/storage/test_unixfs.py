"""The UnixFS/dag-pb builder and verifier: CIDs identical to Kubo's, tampering refused."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from multiformats import CID, multihash

from decentralml.errors import IntegrityError, InvalidInput, StorageError
from decentralml.storage.unixfs.cid import (
    DAG_PB,
    RAW,
    cid_to_str,
    make_cid,
    parse_cid,
    verify_block,
)
from decentralml.storage.unixfs.dagpb import (
    Link,
    UnixFSType,
    decode_pbnode,
    decode_unixfs,
    encode_pbnode,
    encode_unixfs,
)
from decentralml.storage.unixfs.importer import (
    CHUNK_SIZE,
    MAX_LINKS,
    Entry,
    FileBuilder,
    build_file,
    build_tree,
    encode_directory,
    scan_tree,
)
from decentralml.storage.unixfs.reader import iter_file_from_blocks, walk_tree

EMPTY_FILE_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-per-chunk bytes (so no two leaves share a CID by accident)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def build(data: bytes, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS
          ) -> tuple[Entry, dict[bytes, bytes]]:
    blocks: dict[bytes, bytes] = {}
    entry = build_file(io.BytesIO(data), blocks.__setitem__, None, chunk_size, max_links)
    return entry, blocks


# -- CIDs --------------------------------------------------------------------------------------

@pytest.mark.parametrize("codec,name", [(RAW, "raw"), (DAG_PB, "dag-pb")])
def test_fast_cid_matches_multiformats(codec: int, name: str) -> None:
    data = b"some block"
    expected = CID("base32", 1, name, multihash.digest(data, "sha2-256"))
    ours = make_cid(codec, data)
    assert ours == bytes(expected)
    assert cid_to_str(ours) == str(expected)
    assert parse_cid(str(expected)) == ours


def test_parse_cid_accepts_other_bases_and_v0() -> None:
    cid = CID("base32", 1, "raw", multihash.digest(b"x", "sha2-256"))
    assert parse_cid(cid.encode("base58btc")) == bytes(cid)
    v0 = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"
    assert cid_to_str(parse_cid(v0)) == v0


@pytest.mark.parametrize("text", ["", "hello", "bafy", "Qm123"])
def test_parse_cid_rejects_garbage(text: str) -> None:
    with pytest.raises(InvalidInput, match="cid"):
        parse_cid(text)


def test_parse_cid_rejects_non_unixfs_codecs() -> None:
    cbor = CID("base32", 1, "dag-cbor", multihash.digest(b"x", "sha2-256"))
    with pytest.raises(InvalidInput, match="dag-cbor"):
        parse_cid(str(cbor))


def test_verify_block_other_hash_functions() -> None:
    data = b"payload"
    for hashfun in ("sha2-512", "blake2b-256", "identity"):
        cid = bytes(CID("base32", 1, "raw", multihash.digest(data, hashfun)))
        assert verify_block(cid, data) == data
        with pytest.raises(IntegrityError):
            verify_block(cid, data + b"!")


# -- protobuf ----------------------------------------------------------------------------------

def test_pbnode_round_trip() -> None:
    links = [Link(make_cid(RAW, b"a"), "", 1), Link(make_cid(RAW, b"b"), "name é", 300)]
    data = encode_unixfs(UnixFSType.FILE, filesize=2, blocksizes=[1, 1])
    node = decode_pbnode(encode_pbnode(links, data))
    assert node.links == links
    fs = decode_unixfs(node.data)
    assert (fs.type, fs.filesize, fs.blocksizes, fs.data) == (UnixFSType.FILE, 2, [1, 1], None)


def test_pbnode_wire_format_matches_go_merkledag() -> None:
    # Links before Data; the empty name is written (12 00); blocksizes are not packed.
    cid = make_cid(RAW, b"")
    block = encode_pbnode([Link(cid, "", 5)], encode_unixfs(UnixFSType.FILE, 5, [5]))
    assert block == (b"\x12\x2a\x0a\x24" + cid + b"\x12\x00\x18\x05"
                     + b"\x0a\x06\x08\x02\x18\x05\x20\x05")


@pytest.mark.parametrize("garbage", [b"\x12\xff", b"\x12\x05\x0a", b"\x0a\x02\x08", b"\xff" * 11])
def test_malformed_nodes_raise_integrity_error(garbage: bytes) -> None:
    with pytest.raises(IntegrityError):
        node = decode_pbnode(garbage)
        decode_unixfs(node.data)


# -- file DAGs ---------------------------------------------------------------------------------

def test_empty_file_is_the_empty_raw_block() -> None:
    entry, blocks = build(b"")
    assert entry.cid_str == EMPTY_FILE_CID
    assert blocks == {entry.cid: b""}


def test_single_chunk_file_is_a_raw_block() -> None:
    data = pattern(CHUNK_SIZE)
    entry, blocks = build(data)
    assert entry.cid == make_cid(RAW, data)
    assert list(blocks) == [entry.cid]


@pytest.mark.parametrize("chunks,max_links,depth", [
    (2, 3, 1), (3, 3, 1), (4, 3, 2), (9, 3, 2), (10, 3, 3), (27, 3, 3), (28, 3, 4), (100, 4, 4),
])
def test_balanced_layout_depth_and_fill(chunks: int, max_links: int, depth: int) -> None:
    data = pattern(chunks * 16 - 3)  # last chunk short
    entry, blocks = build(data, chunk_size=16, max_links=max_links)
    assert entry.filesize == len(data)

    def shape(cid: bytes, level: int) -> int:
        if cid[1] == RAW:
            return level
        node = decode_pbnode(blocks[cid])
        assert 1 <= len(node.links) <= max_links
        depths = {shape(link.cid, level + 1) for link in node.links}
        assert len(depths) == 1, "every leaf at the same depth"
        # left to right: every child but the last is full
        return depths.pop()

    assert shape(entry.cid, 0) == depth
    assert b"".join(iter_file_from_blocks(entry.cid, blocks.__getitem__)) == data
    root = decode_pbnode(blocks[entry.cid])
    assert sum(link.tsize for link in root.links) + len(blocks[entry.cid]) == entry.tsize


def test_builder_memory_is_bounded_by_depth() -> None:
    builder = FileBuilder(None, max_links=4)
    for i in range(1000):
        builder.add_chunk(i.to_bytes(4, "big"))
    pending = sum(len(level) for level in builder._levels)
    assert pending <= 4 * len(builder._levels)
    builder.finish()


def test_tampered_leaf_is_refused_before_it_is_yielded() -> None:
    data = pattern(5 * 16)
    entry, blocks = build(data, chunk_size=16, max_links=3)
    leaves = [cid for cid in blocks if cid[1] == RAW]
    victim = leaves[2]
    blocks[victim] = bytes([blocks[victim][0] ^ 1]) + blocks[victim][1:]
    got = []
    with pytest.raises(IntegrityError):
        for chunk in iter_file_from_blocks(entry.cid, blocks.__getitem__):
            got.append(chunk)
    assert b"".join(got) == data[:32]


def test_tampered_internal_node_is_refused() -> None:
    entry, blocks = build(pattern(5 * 16), chunk_size=16, max_links=3)
    node = blocks[entry.cid]
    blocks[entry.cid] = node[:-1] + bytes([node[-1] ^ 1])
    with pytest.raises(IntegrityError):
        list(iter_file_from_blocks(entry.cid, blocks.__getitem__))


def test_lying_blocksizes_are_refused() -> None:
    # A self-consistent node (its CID matches) whose sizes disagree with its children.
    leaf = make_cid(RAW, b"abc")
    block = encode_pbnode([Link(leaf, "", 3)], encode_unixfs(UnixFSType.FILE, 4, [4]))
    root = make_cid(DAG_PB, block)
    blocks = {root: block, leaf: b"abc"}
    with pytest.raises(IntegrityError):
        list(iter_file_from_blocks(root, blocks.__getitem__))


# -- directories -------------------------------------------------------------------------------

def test_directory_links_are_sorted_bytewise() -> None:
    file_entry, _ = build(b"x")
    entry = encode_directory({"b": file_entry, "a": file_entry, "B": file_entry, "é": file_entry})
    blocks: dict[bytes, bytes] = {}
    encode_directory({"b": file_entry, "a": file_entry, "B": file_entry, "é": file_entry},
                     blocks.__setitem__)
    node = decode_pbnode(blocks[entry.cid])
    assert [link.name for link in node.links] == ["B", "a", "b", "é"]
    assert decode_unixfs(node.data).type == UnixFSType.DIRECTORY


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "a\x00", "..\\x"])
def test_unsafe_names_in_a_directory_node_are_refused(name: str) -> None:
    file_entry, blocks = build(b"x")
    block = encode_pbnode([Link(file_entry.cid, name, 1)], encode_unixfs(UnixFSType.DIRECTORY))
    root = make_cid(DAG_PB, block)
    blocks[root] = block
    with pytest.raises(IntegrityError, match="unsafe"):
        list(walk_tree(root, blocks.__getitem__))


def test_huge_directories_are_refused_rather_than_sharded() -> None:
    file_entry, _ = build(b"x")
    entries = {f"{i:0200d}": file_entry for i in range(1200)}
    with pytest.raises(StorageError, match="HAMT"):
        encode_directory(entries)


def test_scan_tree_is_preorder_and_refuses_symlinks(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z").write_bytes(b"z")
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "c").mkdir()
    order = [str(item.relpath) for item in scan_tree(tmp_path)]
    assert order == [".", "a", "b", "b/z", "c"]
    (tmp_path / "link").symlink_to(tmp_path / "a")
    with pytest.raises(InvalidInput, match="symlink"):
        scan_tree(tmp_path)


# -- against the real daemon -------------------------------------------------------------------

def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.ipfs
@pytest.mark.parametrize("size", [0, 1, 1000, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1,
                                  3 * CHUNK_SIZE + 17])
def test_file_cids_equal_kubo(size: int, tmp_path: Path, ipfs_cli: Callable[..., str]) -> None:
    path = write(tmp_path / "f", pattern(size, seed=size))
    entry, _ = build(path.read_bytes())
    assert entry.cid_str == ipfs_cli("add", "--cid-version=1", "-Q", "-n", str(path))


@pytest.mark.ipfs
def test_two_level_dag_equals_kubo(tmp_path: Path, ipfs_cli: Callable[..., str]) -> None:
    # 175 chunks: one more than a node holds, so the root has two levels below it.
    path = tmp_path / "big"
    with open(path, "wb") as out:
        for i in range(MAX_LINKS + 1):
            out.write(pattern(CHUNK_SIZE, seed=i) if i < MAX_LINKS else b"tail")
    with open(path, "rb") as stream:
        entry = build_file(stream)
    assert entry.cid_str == ipfs_cli("add", "--cid-version=1", "-Q", "-n", str(path))


@pytest.mark.ipfs
@pytest.mark.parametrize("chunks", [4, 9, 10, 28, 81, 82, 250])
def test_deep_dags_equal_kubo(chunks: int, tmp_path: Path, ipfs_cli: Callable[..., str]) -> None:
    # Small chunks and 3 links per node give 2..6 levels from a few hundred KiB.
    data = pattern(chunks * 1024 - 100, seed=chunks)
    path = write(tmp_path / "f", data)
    entry, _ = build(data, chunk_size=1024, max_links=3)
    assert entry.cid_str == ipfs_cli("add", "--cid-version=1", "-Q", "-n", "--chunker=size-1024",
                                     "--max-file-links=3", str(path))


@pytest.mark.ipfs
def test_directory_cids_equal_kubo(tmp_path: Path, ipfs_cli: Callable[..., str]) -> None:
    root = tmp_path / "tree"
    write(root / "a.txt", b"hello")
    write(root / "empty", b"")
    write(root / ".hidden", b"dot")
    write(root / "sub" / "deeper" / "big.bin", pattern(CHUNK_SIZE * 2 + 5))
    write(root / "sub" / "name with spaces+plus%20é", b"odd")
    (root / "empty-dir").mkdir()
    entry = build_tree(scan_tree(root))
    assert entry.cid_str == ipfs_cli("add", "-r", "-H", "--cid-version=1", "-Q", "-n", str(root))


def test_os_urandom_round_trip_many_sizes() -> None:
    for size in (0, 1, 15, 16, 17, 47, 48, 49, 1000):
        data = os.urandom(size)
        entry, blocks = build(data, chunk_size=16, max_links=3)
        assert b"".join(iter_file_from_blocks(entry.cid, blocks.__getitem__)) == data

"""Reading a UnixFS DAG: every node fetched is verified against its CID and decoded, and its
links are followed with bounds (nesting depth, sizes that must add up), so a hostile DAG can
neither feed wrong bytes nor exhaust the stack. Raw leaves may be read elsewhere (a stream) and
checked with :func:`check_leaf`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from decentralml.errors import FetchLimitExceeded, IntegrityError, StorageError
from decentralml.storage.unixfs.cid import DAG_PB, RAW, cid_codec, cid_to_str, verify_block
from decentralml.storage.unixfs.dagpb import (
    PBNode,
    UnixFSData,
    UnixFSType,
    decode_pbnode,
    decode_unixfs,
    validate_name,
)

#: Deepest nesting of file nodes (or of HAMT shards) followed. Kubo's balanced layout needs 4
#: levels for 100 TB; a hostile DAG could otherwise nest until Python's stack overflows.
MAX_NODE_DEPTH = 64
#: Deepest directory nesting :func:`walk_tree` follows by default.
MAX_TREE_DEPTH = 1024

#: Fetches a block's bytes by binary CID (unverified; the walker verifies).
BlockGetter = Callable[[bytes], bytes]


@dataclass(frozen=True)
class RawLeaf:
    """A raw leaf whose bytes come from elsewhere (a stream); ``size`` is None only at the root."""

    cid: bytes
    size: int | None


def load_node(cid: bytes, get_block: BlockGetter) -> tuple[PBNode, UnixFSData]:
    """Fetch, verify and decode a dag-pb UnixFS node."""
    if cid_codec(cid) != DAG_PB:
        raise StorageError(f"{cid_to_str(cid)} is not a dag-pb node")
    node = decode_pbnode(verify_block(cid, get_block(cid)))
    return node, decode_unixfs(node.data)


def remember_last(get_block: BlockGetter) -> BlockGetter:
    """Wrap ``get_block`` so that asking twice in a row for the same block fetches it once.

    The walkers look at a node to learn its type and then again to read it; over HTTP that would
    be a second request per directory and per file root.
    """
    last: list[tuple[bytes, bytes]] = []

    def get(cid: bytes) -> bytes:
        if last and last[0][0] == cid:
            return last[0][1]
        data = get_block(cid)
        last[:] = [(cid, data)]
        return data

    return get


def is_directory(cid: bytes, get_block: BlockGetter) -> bool:
    """Whether ``cid`` names a UnixFS directory (basic or sharded)."""
    if cid_codec(cid) == RAW:
        return False
    _node, fs = load_node(cid, get_block)
    if fs.type in (UnixFSType.DIRECTORY, UnixFSType.HAMT_SHARD):
        return True
    if fs.type in (UnixFSType.FILE, UnixFSType.RAW):
        return False
    raise StorageError(f"{cid_to_str(cid)} is a UnixFS {fs.type.name.lower()}, which is not "
                       "supported (only files and directories)")


def iter_file_segments(cid: bytes, get_block: BlockGetter) -> Iterator[RawLeaf | bytes]:
    """The file under ``cid`` in order, as raw leaves to read elsewhere or verified inline bytes.

    Internal nodes are fetched through ``get_block`` and verified, so the leaf CIDs and sizes
    yielded are authenticated by the root CID; a caller then checks each leaf's bytes against
    its CID (see :func:`check_leaf`).
    """
    if cid_codec(cid) == RAW:
        yield RawLeaf(cid, None)
        return
    yield from _file_node(cid, get_block, None)


def _file_node(cid: bytes, get_block: BlockGetter, expected: int | None, depth: int = 0
               ) -> Iterator[RawLeaf | bytes]:
    if depth > MAX_NODE_DEPTH:
        raise StorageError(f"file node {cid_to_str(cid)} is nested more than {MAX_NODE_DEPTH} "
                           "levels deep (a hostile or broken DAG)")
    node, fs = load_node(cid, get_block)
    if fs.type not in (UnixFSType.FILE, UnixFSType.RAW):
        raise StorageError(f"{cid_to_str(cid)} is a UnixFS {fs.type.name.lower()}, not a file")
    inline = fs.data or b""
    if len(fs.blocksizes) != len(node.links):
        raise IntegrityError(f"file node {cid_to_str(cid)}: {len(node.links)} links but "
                             f"{len(fs.blocksizes)} block sizes")
    total = len(inline) + sum(fs.blocksizes)
    if fs.filesize is not None and fs.filesize != total:
        raise IntegrityError(f"file node {cid_to_str(cid)}: filesize {fs.filesize} != {total}")
    if expected is not None and total != expected:
        raise IntegrityError(f"file node {cid_to_str(cid)} holds {total} bytes, "
                             f"its parent says {expected}")
    if inline:
        yield inline
    for link, size in zip(node.links, fs.blocksizes, strict=True):
        if cid_codec(link.cid) == RAW:
            yield RawLeaf(link.cid, size)
        else:
            yield from _file_node(link.cid, get_block, size, depth + 1)


def check_leaf(leaf: RawLeaf, data: bytes) -> bytes:
    """Verify a raw leaf's bytes (size and hash); return them."""
    if leaf.size is not None and len(data) != leaf.size:
        raise IntegrityError(f"block {cid_to_str(leaf.cid)}: {len(data)} bytes, "
                             f"expected {leaf.size}")
    return verify_block(leaf.cid, data)


def iter_file_from_blocks(cid: bytes, get_block: BlockGetter) -> Iterator[bytes]:
    """The verified bytes of the file under ``cid``, every block fetched through ``get_block``."""
    for segment in iter_file_segments(cid, get_block):
        if isinstance(segment, RawLeaf):
            yield check_leaf(segment, get_block(segment.cid))
        else:
            yield segment


def iter_directory(cid: bytes, get_block: BlockGetter) -> Iterator[tuple[str, bytes]]:
    """(name, child CID) of a verified directory, basic or HAMT-sharded (read-only support)."""
    node, fs = load_node(cid, get_block)
    if fs.type == UnixFSType.DIRECTORY:
        for link in node.links:
            yield validate_name(link.name), link.cid
    elif fs.type == UnixFSType.HAMT_SHARD:
        yield from _iter_shard(node, fs, get_block)
    else:
        raise StorageError(f"{cid_to_str(cid)} is not a directory")


def _iter_shard(node: PBNode, fs: UnixFSData, get_block: BlockGetter, depth: int = 0
                ) -> Iterator[tuple[str, bytes]]:
    # Each link name is the bucket index in upper-case hex, padded to the width of fanout-1,
    # followed by the entry name; a bare index is a sub-shard.
    if depth > MAX_NODE_DEPTH:
        raise StorageError(f"HAMT shards nested more than {MAX_NODE_DEPTH} levels deep")
    width = len(f"{(fs.fanout or 256) - 1:X}")
    for link in node.links:
        if len(link.name) == width:
            sub, sub_fs = load_node(link.cid, get_block)
            if sub_fs.type != UnixFSType.HAMT_SHARD:
                raise IntegrityError("HAMT sub-shard link does not point to a shard")
            yield from _iter_shard(sub, sub_fs, get_block, depth + 1)
        elif len(link.name) > width:
            yield validate_name(link.name[width:]), link.cid
        else:
            raise IntegrityError(f"malformed HAMT link name {link.name!r}")


def walk_tree(cid: bytes, get_block: BlockGetter, prefix: PurePosixPath | None = None,
              max_depth: int = MAX_TREE_DEPTH) -> Iterator[tuple[PurePosixPath, bytes, bool]]:
    """Depth-first (relative path, CID, is_directory) of everything under ``cid``, root first.

    Names are validated on the way (one component each), so joining them under a destination
    can never leave it. The walk is iterative (any depth is safe for the stack) and refuses,
    with :class:`StorageError`, a tree nested deeper than ``max_depth`` directories.
    """
    pending: list[tuple[PurePosixPath, bytes, int]] = [
        (prefix if prefix is not None else PurePosixPath(), cid, 0)]
    while pending:
        path, current, depth = pending.pop()
        directory = is_directory(current, get_block)
        yield path, current, directory
        if directory:
            if depth >= max_depth:
                raise FetchLimitExceeded(f"{cid_to_str(cid)}: directories nested more than "
                                   f"{max_depth} levels deep (at {str(path)[:80]}...)")
            children = list(iter_directory(current, get_block))
            pending.extend((path / name, child, depth + 1) for name, child in reversed(children))

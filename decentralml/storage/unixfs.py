"""UnixFS over dag-pb: the exact DAG ``ipfs add --cid-version=1`` builds, and its verifier.

Why we build the DAG ourselves: a CID names a DAG, not bytes, so "the same CID for the same
content" across the local store and IPFS means reproducing Kubo's importer bit for bit:

* the file is cut into 256 KiB chunks (``size-262144``); each chunk is a **raw** block
  (CIDv1, codec ``raw``, sha2-256), and a file of at most one chunk *is* that raw block;
* chunks are grouped into a **balanced** tree of dag-pb nodes with at most 174 links each
  (Kubo's ``balanced`` layout: every leaf at the same depth, filled left to right);
* an internal node is a dag-pb ``PBNode`` whose ``Data`` is a UnixFS ``Data`` message
  ``{Type: File, filesize, blocksizes[]}`` and whose links have an empty name and ``Tsize`` =
  encoded size of the whole child subtree;
* a directory is a dag-pb node with ``Data = {Type: Directory}`` and one named link per entry,
  sorted by name (byte order).

``multiformats`` (a maintained library) gives us CID parsing/formatting and multihash for every
hash function, and the tests check our fast paths against it. No maintained Python library
encodes dag-pb/UnixFS (``py-ipld-dag-pb`` and ``py-unixfs-exporter`` are long abandoned), and
the two protobuf messages are tiny and frozen by the specs
(https://ipld.io/specs/codecs/dag-pb/spec/ and https://github.com/ipfs/specs/blob/main/UNIXFS.md),
so they are encoded and decoded by hand here rather than through generated protobuf code.

Every read goes through :func:`verify_block` (or hashes raw leaves while streaming), so a byte
that differs from what the CID names is caught before it is handed to a caller.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from multiformats import CID, multihash

from decentralml.errors import FetchLimitExceeded, IntegrityError, InvalidInput, StorageError

#: Kubo's default chunker (``size-262144``).
CHUNK_SIZE = 262_144
#: Kubo's default maximum number of links of a file node (``Import.UnixFSFileMaxLinks``).
MAX_LINKS = 174
#: Kubo switches a directory to a HAMT shard once its estimated size reaches this
#: (``Import.UnixFSHAMTDirectorySizeThreshold``). We do not write shards: see
#: :func:`encode_directory`.
HAMT_THRESHOLD = 262_144
#: Blocks larger than this cannot travel over Bitswap; we refuse to buffer larger raw blocks.
MAX_BLOCK_SIZE = 2 * 1024 * 1024
#: Deepest nesting of file nodes (or of HAMT shards) followed. Kubo's balanced layout needs 4
#: levels for 100 TB; a hostile DAG could otherwise nest until Python's stack overflows.
MAX_NODE_DEPTH = 64
#: Deepest directory nesting :func:`walk_tree` follows by default.
MAX_TREE_DEPTH = 1024

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
IDENTITY = 0x00


class UnixFSType(IntEnum):
    """``Data.DataType`` of the UnixFS protobuf."""

    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


# --------------------------------------------------------------------------------------------
# CIDs: binary form on the hot path, multiformats at the edges.
# --------------------------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_RAW_PREFIX = b"\x01" + _varint(RAW) + b"\x12\x20"
_PB_PREFIX = b"\x01" + _varint(DAG_PB) + b"\x12\x20"


def make_cid(codec: int, data: bytes) -> bytes:
    """The binary CIDv1 (sha2-256) of ``data`` under ``codec``.

    Built by hand because constructing a ``multiformats.CID`` costs ~250 µs, i.e. a second per
    GB of 256 KiB leaves; ``tests/storage/test_unixfs.py`` checks this against multiformats.
    """
    prefix = _RAW_PREFIX if codec == RAW else _PB_PREFIX if codec == DAG_PB else None
    if prefix is None:
        raise ValueError(f"unsupported codec 0x{codec:x}")
    return prefix + hashlib.sha256(data).digest()


def cid_to_str(cid: bytes) -> str:
    """Multibase base32 text of a binary CID (``b...``); CIDv0 stays base58 (``Qm...``)."""
    if cid[:2] == b"\x12\x20":
        return str(CID.decode(cid))
    return "b" + base64.b32encode(cid).decode("ascii").lower().rstrip("=")


def parse_cid(text: str | bytes) -> bytes:
    """A CID (text in any multibase, or binary) to its binary CIDv1-or-v0 form.

    Raises :class:`InvalidInput` for anything that is not a CID, so a typo reports itself
    before any I/O.
    """
    try:
        cid = CID.decode(text.strip() if isinstance(text, str) else text)
    except Exception as exc:  # multiformats raises a variety of ValueError/KeyError subclasses
        raise InvalidInput("cid", f"not a valid CID: {text!r} ({exc})") from None
    if cid.codec.code not in (RAW, DAG_PB):
        raise InvalidInput("cid", f"{text!r} has codec {cid.codec.name}; "
                                  "only UnixFS content (raw, dag-pb) is supported")
    return bytes(cid)


def cid_codec(cid: bytes) -> int:
    """The codec of a binary CID (CIDv0 is always dag-pb)."""
    if cid[:2] == b"\x12\x20":
        return DAG_PB
    return CID.decode(cid).codec.code if cid[1] & 0x80 else cid[1]


def cid_digest_check(cid: bytes) -> Callable[[bytes], bool]:
    """A function telling whether a block's bytes match ``cid``'s multihash."""
    if cid[:2] == b"\x12\x20":  # CIDv0: bare sha2-256 multihash
        digest = cid[2:]
        return lambda data: hashlib.sha256(data).digest() == digest
    if len(cid) == 36 and cid[0] == 1 and cid[2:4] == b"\x12\x20":  # v1, 1-byte codec, sha2-256
        digest = cid[4:]
        return lambda data: hashlib.sha256(data).digest() == digest
    mh = bytes(CID.decode(cid).digest)
    code = multihash.unwrap_raw(mh)[0]
    if code == IDENTITY:
        inline = bytes(multihash.unwrap(mh))
        return lambda data: bytes(data) == inline
    return lambda data: multihash.digest(bytes(data), code) == mh


def verify_block(cid: bytes, data: bytes) -> bytes:
    """Return ``data`` if it hashes to ``cid``, else raise :class:`IntegrityError`."""
    if not cid_digest_check(cid)(data):
        raise IntegrityError(f"block {cid_to_str(cid)} does not match its CID "
                             "(tampered with or corrupt)")
    return data


# --------------------------------------------------------------------------------------------
# Protobuf, by hand: PBNode / PBLink (dag-pb) and Data (UnixFS).
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    """A dag-pb link: child CID (binary), name, cumulative size of the child's subtree."""

    cid: bytes
    name: str
    tsize: int


@dataclass(frozen=True)
class PBNode:
    """A decoded dag-pb node."""

    links: list[Link]
    data: bytes | None


@dataclass
class UnixFSData:
    """A decoded UnixFS ``Data`` message (fields we do not use are skipped)."""

    type: UnixFSType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = field(default_factory=list)
    hash_type: int | None = None
    fanout: int | None = None


def _field(num: int, wire: int) -> bytes:
    return _varint(num << 3 | wire)


def _bytes_field(num: int, value: bytes) -> bytes:
    return _field(num, 2) + _varint(len(value)) + value


def encode_pbnode(links: list[Link], data: bytes | None) -> bytes:
    """Canonical dag-pb: links first (in the given order), then data; every link carries its
    Hash, Name (even empty, as go-merkledag writes it) and Tsize."""
    out = bytearray()
    for link in links:
        body = (_bytes_field(1, link.cid) + _bytes_field(2, link.name.encode("utf-8"))
                + _field(3, 0) + _varint(link.tsize))
        out += _bytes_field(2, body)
    if data is not None:
        out += _bytes_field(1, data)
    return bytes(out)


def encode_unixfs(kind: UnixFSType, filesize: int | None = None,
                  blocksizes: list[int] | None = None, data: bytes | None = None) -> bytes:
    """A UnixFS ``Data`` message, fields in number order like the Go encoder."""
    out = bytearray(_field(1, 0) + _varint(int(kind)))
    if data is not None:
        out += _bytes_field(2, data)
    if filesize is not None:
        out += _field(3, 0) + _varint(filesize)
    for size in blocksizes or ():
        out += _field(4, 0) + _varint(size)
    return bytes(out)


class _Reader:
    """Minimal protobuf wire reader that raises :class:`IntegrityError` on malformed input."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.buf)

    def varint(self) -> int:
        result = shift = 0
        while True:
            if self.pos >= len(self.buf) or shift > 63:
                raise IntegrityError("malformed dag-pb/UnixFS node (bad varint)")
            byte = self.buf[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def key(self) -> tuple[int, int]:
        key = self.varint()
        return key >> 3, key & 7

    def length_delimited(self) -> bytes:
        n = self.varint()
        end = self.pos + n
        if end > len(self.buf):
            raise IntegrityError("malformed dag-pb/UnixFS node (truncated field)")
        value = self.buf[self.pos:end]
        self.pos = end
        return value

    def skip(self, wire: int) -> None:
        if wire == 0:
            self.varint()
        elif wire == 2:
            self.length_delimited()
        elif wire == 1:
            self.pos += 8
        elif wire == 5:
            self.pos += 4
        else:
            raise IntegrityError(f"malformed dag-pb/UnixFS node (wire type {wire})")
        if self.pos > len(self.buf):
            raise IntegrityError("malformed dag-pb/UnixFS node (truncated)")


def decode_pbnode(block: bytes) -> PBNode:
    """Decode a dag-pb block (after it was verified against its CID)."""
    reader = _Reader(block)
    links: list[Link] = []
    data: bytes | None = None
    while not reader.done():
        num, wire = reader.key()
        if num == 2 and wire == 2:
            sub = _Reader(reader.length_delimited())
            cid: bytes | None = None
            name = ""
            tsize = 0
            while not sub.done():
                lnum, lwire = sub.key()
                if lnum == 1 and lwire == 2:
                    cid = sub.length_delimited()
                elif lnum == 2 and lwire == 2:
                    try:
                        name = sub.length_delimited().decode("utf-8")
                    except UnicodeDecodeError:
                        raise IntegrityError("malformed dag-pb link name (not UTF-8)") from None
                elif lnum == 3 and lwire == 0:
                    tsize = sub.varint()
                else:
                    sub.skip(lwire)
            if cid is None:
                raise IntegrityError("malformed dag-pb link (no hash)")
            links.append(Link(cid, name, tsize))
        elif num == 1 and wire == 2:
            data = reader.length_delimited()
        else:
            reader.skip(wire)
    return PBNode(links, data)


def decode_unixfs(data: bytes | None) -> UnixFSData:
    """Decode the UnixFS ``Data`` message carried in a dag-pb node."""
    if data is None:
        raise IntegrityError("dag-pb node carries no UnixFS data")
    reader = _Reader(data)
    kind: int | None = None
    out = UnixFSData(UnixFSType.RAW)
    while not reader.done():
        num, wire = reader.key()
        if num == 1 and wire == 0:
            kind = reader.varint()
        elif num == 2 and wire == 2:
            out.data = reader.length_delimited()
        elif num == 3 and wire == 0:
            out.filesize = reader.varint()
        elif num == 4 and wire == 0:
            out.blocksizes.append(reader.varint())
        elif num == 4 and wire == 2:  # tolerate a packed encoding
            packed = _Reader(reader.length_delimited())
            while not packed.done():
                out.blocksizes.append(packed.varint())
        elif num == 5 and wire == 0:
            out.hash_type = reader.varint()
        elif num == 6 and wire == 0:
            out.fanout = reader.varint()
        else:
            reader.skip(wire)
    if kind is None or kind not in UnixFSType._value2member_map_:
        raise IntegrityError(f"unknown UnixFS node type {kind}")
    out.type = UnixFSType(kind)
    return out


# --------------------------------------------------------------------------------------------
# Building: files (balanced DAG) and directories.
# --------------------------------------------------------------------------------------------

#: Receives every block as it is built, children before parents: (binary CID, bytes).
BlockSink = Callable[[bytes, bytes], None]


@dataclass(frozen=True)
class Entry:
    """A built DAG: root CID (binary), file bytes under it, cumulative encoded size (Tsize)."""

    cid: bytes
    filesize: int
    tsize: int

    @property
    def cid_str(self) -> str:
        return cid_to_str(self.cid)


class FileBuilder:
    """Incremental balanced-DAG builder: :meth:`add_chunk` each chunk in order, then :meth:`finish`.

    Equivalent to Kubo's balanced layout: leaves are grouped ``max_links`` at a time into
    level-1 nodes, those into level-2 nodes, and so on until one root remains; a group is only
    sealed when the next entry arrives, so memory is O(depth x max_links) whatever the file size.
    Blocks are handed to ``sink`` children-first, so a store that writes them in order never has
    a root whose descendants are missing.
    """

    def __init__(self, sink: BlockSink | None = None, max_links: int = MAX_LINKS) -> None:
        if max_links < 2:
            raise ValueError("max_links must be >= 2")
        self._sink = sink
        self._max_links = max_links
        self._levels: list[list[Entry]] = []
        self._finished = False

    def add_chunk(self, chunk: bytes) -> None:
        """Add the next chunk (all but the last must be exactly the chunk size)."""
        cid = make_cid(RAW, chunk)
        if self._sink is not None:
            self._sink(cid, chunk)
        self.add_leaf(cid, len(chunk))

    def add_leaf(self, cid: bytes, size: int) -> None:
        """Add the next raw leaf by its (already computed) CID; the sink does not see it."""
        self._push(0, Entry(cid, size, size))

    def _push(self, level: int, entry: Entry) -> None:
        if level == len(self._levels):
            self._levels.append([])
        group = self._levels[level]
        if len(group) == self._max_links:
            self._push(level + 1, self._seal(group))
            group.clear()
        group.append(entry)

    def _seal(self, group: list[Entry]) -> Entry:
        filesize = sum(e.filesize for e in group)
        data = encode_unixfs(UnixFSType.FILE, filesize=filesize,
                             blocksizes=[e.filesize for e in group])
        block = encode_pbnode([Link(e.cid, "", e.tsize) for e in group], data)
        cid = make_cid(DAG_PB, block)
        if self._sink is not None:
            self._sink(cid, block)
        return Entry(cid, filesize, len(block) + sum(e.tsize for e in group))

    def finish(self) -> Entry:
        """Seal every pending group; return the root. An empty file is one empty raw leaf."""
        if self._finished:
            raise RuntimeError("FileBuilder.finish() called twice")
        self._finished = True
        if not self._levels:
            self.add_chunk(b"")
        level = 0
        while True:
            group = self._levels[level]
            if level == len(self._levels) - 1 and len(group) == 1:
                return group[0]
            # Through _push, so a parent level that is already full is sealed in turn.
            self._push(level + 1, self._seal(group))
            level += 1


def validate_name(name: str) -> str:
    """A directory entry name must be one path component; anything else could escape ``dest``."""
    if name in ("", ".", "..") or "/" in name or "\x00" in name or "\\" in name:
        raise IntegrityError(f"unsafe directory entry name {name!r}")
    return name


def encode_directory(entries: dict[str, Entry], sink: BlockSink | None = None) -> Entry:
    """A basic UnixFS directory over ``entries`` (name -> built child), links sorted by name.

    Kubo turns a directory into a HAMT shard once the sum over its links of
    ``len(name) + len(cid)`` reaches 256 KiB (thousands of entries); we refuse such directories
    rather than produce a CID that differs from Kubo's.
    """
    links = [Link(entry.cid, validate_name(name), entry.tsize)
             for name, entry in sorted(entries.items(), key=lambda kv: kv[0].encode("utf-8"))]
    estimate = sum(len(link.name.encode("utf-8")) + len(link.cid) for link in links)
    if estimate >= HAMT_THRESHOLD:
        raise StorageError(f"a directory with {len(links)} entries would be a HAMT shard in IPFS, "
                           "which this SDK does not write; split it into subdirectories or "
                           "archive it")
    block = encode_pbnode(links, encode_unixfs(UnixFSType.DIRECTORY))
    cid = make_cid(DAG_PB, block)
    if sink is not None:
        sink(cid, block)
    return Entry(cid, 0, len(block) + sum(link.tsize for link in links))


# --------------------------------------------------------------------------------------------
# Reading: walk a verified DAG.
# --------------------------------------------------------------------------------------------

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
    its CID (see :func:`read_leaf`).
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


# --------------------------------------------------------------------------------------------
# Importing from the filesystem.
# --------------------------------------------------------------------------------------------

def read_chunks(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Fixed-size chunks of ``stream`` (the last one may be short), like Kubo's size splitter.

    Short reads (pipes, sockets) are topped up so chunk boundaries never depend on how the
    bytes happened to arrive.
    """
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            return
        while len(chunk) < chunk_size:
            more = stream.read(chunk_size - len(chunk))
            if not more:
                break
            chunk += more
        yield chunk


def build_file(stream: BinaryIO, sink: BlockSink | None = None, advance: Callable[[int], None]
               | None = None, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> Entry:
    """Import one file's bytes: the root entry, every block handed to ``sink`` on the way."""
    builder = FileBuilder(sink, max_links)
    for chunk in read_chunks(stream, chunk_size):
        builder.add_chunk(chunk)
        if advance is not None:
            advance(len(chunk))
    return builder.finish()


@dataclass(frozen=True)
class TreeItem:
    """One entry of a tree to import: path relative to the root (root itself is ``.``)."""

    relpath: PurePosixPath
    path: Path
    is_dir: bool
    size: int


def scan_tree(root: Path) -> list[TreeItem]:
    """Every file and directory under ``root`` in depth-first pre-order, siblings by name
    (the order a multipart upload to Kubo must follow: a directory, then its contents).

    Symlinks and special files are refused: following a link could import something outside
    the tree, and UnixFS symlinks would be restored as links pointing anywhere.
    """
    def item(path: Path, rel: PurePosixPath) -> TreeItem:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            raise InvalidInput("path", f"{path} is a symlink; only regular files and "
                                       "directories can be stored")
        if stat.S_ISDIR(st.st_mode):
            return TreeItem(rel, path, True, 0)
        if stat.S_ISREG(st.st_mode):
            return TreeItem(rel, path, False, st.st_size)
        raise InvalidInput("path", f"{path} is not a regular file or directory")

    try:
        top = item(root, PurePosixPath("."))
    except FileNotFoundError:
        raise InvalidInput("path", f"{root} does not exist") from None
    items: list[TreeItem] = []
    pending = [top]
    while pending:  # pre-order depth-first: a directory, then everything under it
        current = pending.pop()
        items.append(current)
        if not current.is_dir:
            continue
        children = []
        for name in sorted(os.listdir(current.path),
                           key=lambda n: n.encode("utf-8", "surrogateescape")):
            try:
                validate_name(name)
                name.encode("utf-8")
            except (IntegrityError, UnicodeEncodeError):
                raise InvalidInput("path", f"{current.path / name}: unusable file name") from None
            children.append(item(current.path / name, current.relpath / name))
        pending.extend(reversed(children))
    return items


def build_tree(items: list[TreeItem], sink: BlockSink | None = None,
               advance: Callable[[int], None] | None = None, chunk_size: int = CHUNK_SIZE,
               max_links: int = MAX_LINKS,
               import_file: Callable[[TreeItem], Entry] | None = None) -> Entry:
    """Import what :func:`scan_tree` listed; return the root (a file's or a directory's).

    ``import_file`` replaces the default per-file import (read, chunk, hand blocks to ``sink``),
    for a store that keeps file contents its own way.
    """
    children: dict[PurePosixPath, dict[str, Entry]] = {i.relpath: {} for i in items if i.is_dir}
    root: Entry | None = None

    def place(it: TreeItem, entry: Entry) -> None:
        nonlocal root
        if it is items[0]:
            root = entry
        else:
            children[it.relpath.parent][it.relpath.name] = entry

    for it in items:
        if not it.is_dir:
            try:
                if import_file is not None:
                    place(it, import_file(it))
                    continue
                with open(it.path, "rb") as stream:
                    place(it, build_file(stream, sink, advance, chunk_size, max_links))
            except OSError as exc:
                raise StorageError(f"cannot read {it.path}: {exc}") from exc
    # Directories deepest first, so every child is built before its parent.
    for it in sorted((i for i in items if i.is_dir), key=lambda i: -len(i.relpath.parts)):
        place(it, encode_directory(children[it.relpath], sink))
    assert root is not None
    return root


def relayout(cid: bytes, get_block: BlockGetter, size: int | None = None,
             chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> Entry:
    """Rebuild the DAG under ``cid`` from its leaf CIDs with *our* layout rules.

    The result's CID equals ``cid`` exactly when the DAG (built elsewhere, e.g. by a daemon)
    has the layout :class:`FileBuilder` and :func:`encode_directory` produce: raw leaves of
    ``chunk_size`` bytes (the last may be shorter), balanced with ``max_links`` per node, plain
    sorted directories. Only internal nodes are fetched (a few KiB per 45 MB), so this checks an
    upload's layout without hashing its bytes again. ``size`` is a raw root's size, if known.
    """
    if cid_codec(cid) == RAW:
        if size is None:
            size = len(verify_block(cid, get_block(cid)))
        if size > chunk_size:
            raise StorageError(f"{cid_to_str(cid)}: a raw leaf of {size} bytes, more than the "
                               f"{chunk_size}-byte chunks this layout uses")
        return Entry(cid, size, size)
    node, fs = load_node(cid, get_block)
    if fs.type in (UnixFSType.DIRECTORY, UnixFSType.HAMT_SHARD):
        if fs.type == UnixFSType.HAMT_SHARD:
            raise StorageError(f"{cid_to_str(cid)} is a sharded (HAMT) directory, which this "
                               "SDK does not write")
        return encode_directory({validate_name(link.name): relayout(
            link.cid, get_block, link.tsize, chunk_size, max_links) for link in node.links})
    builder = FileBuilder(None, max_links)
    last = chunk_size
    for segment in iter_file_segments(cid, get_block):
        if not isinstance(segment, RawLeaf) or segment.size is None:
            raise StorageError(f"{cid_to_str(cid)}: leaves are not raw blocks")
        if last != chunk_size:
            raise StorageError(f"{cid_to_str(cid)}: a {last}-byte leaf before the end (not "
                               f"{chunk_size}-byte chunks)")
        builder.add_leaf(segment.cid, segment.size)
        last = segment.size
    if last > chunk_size:
        raise StorageError(f"{cid_to_str(cid)}: a {last}-byte leaf (chunks are {chunk_size})")
    return builder.finish()

"""The dag-pb codec (``PBNode``/``PBLink``) and UnixFS's ``Data`` message, by hand.

No maintained Python library encodes dag-pb/UnixFS (``py-ipld-dag-pb`` and
``py-unixfs-exporter`` are long abandoned), and the two protobuf messages are tiny and frozen by
the specs (https://ipld.io/specs/codecs/dag-pb/spec/ and
https://github.com/ipfs/specs/blob/main/UNIXFS.md), so they are encoded and decoded here rather
than through generated protobuf code. Encoding is canonical (what go-merkledag writes, so CIDs
match Kubo's); decoding is strict and raises :class:`IntegrityError` on malformed input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from decentralml.errors import IntegrityError
from decentralml.storage.unixfs.cid import varint


class UnixFSType(IntEnum):
    """``Data.DataType`` of the UnixFS protobuf."""

    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


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
    return varint(num << 3 | wire)


def _bytes_field(num: int, value: bytes) -> bytes:
    return _field(num, 2) + varint(len(value)) + value


def encode_pbnode(links: list[Link], data: bytes | None) -> bytes:
    """Canonical dag-pb: links first (in the given order), then data; every link carries its
    Hash, Name (even empty, as go-merkledag writes it) and Tsize."""
    out = bytearray()
    for link in links:
        body = (_bytes_field(1, link.cid) + _bytes_field(2, link.name.encode("utf-8"))
                + _field(3, 0) + varint(link.tsize))
        out += _bytes_field(2, body)
    if data is not None:
        out += _bytes_field(1, data)
    return bytes(out)


def encode_unixfs(kind: UnixFSType, filesize: int | None = None,
                  blocksizes: list[int] | None = None, data: bytes | None = None) -> bytes:
    """A UnixFS ``Data`` message, fields in number order like the Go encoder."""
    out = bytearray(_field(1, 0) + varint(int(kind)))
    if data is not None:
        out += _bytes_field(2, data)
    if filesize is not None:
        out += _field(3, 0) + varint(filesize)
    for size in blocksizes or ():
        out += _field(4, 0) + varint(size)
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


def validate_name(name: str) -> str:
    """A directory entry name must be one path component; anything else could escape ``dest``."""
    if name in ("", ".", "..") or "/" in name or "\x00" in name or "\\" in name:
        raise IntegrityError(f"unsafe directory entry name {name!r}")
    return name

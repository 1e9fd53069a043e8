"""CIDs and the blocks they name: binary CIDv1 on the hot path, ``multiformats`` at the edges.

A CID is built by hand for the two codecs UnixFS uses (raw leaves and dag-pb nodes, sha2-256),
because constructing a ``multiformats.CID`` per 256 KiB leaf would cost a second per GB;
``tests/storage/test_unixfs.py`` checks the fast paths against multiformats. Every block read
anywhere goes through :func:`verify_block` (or :func:`cid_digest_check` while streaming), so a
byte that differs from what its CID names is caught before a caller sees it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from multiformats import CID, multihash

from decentralml.errors import IntegrityError, InvalidInput

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
IDENTITY = 0x00
#: Blocks larger than this cannot travel over Bitswap; we refuse to buffer larger raw blocks.
MAX_BLOCK_SIZE = 2 * 1024 * 1024


def varint(n: int) -> bytes:
    """An unsigned LEB128 varint (multiformats and protobuf both use them)."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_RAW_PREFIX = b"\x01" + varint(RAW) + b"\x12\x20"
_PB_PREFIX = b"\x01" + varint(DAG_PB) + b"\x12\x20"


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

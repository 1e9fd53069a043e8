"""A small, fast SCALE codec whose types also describe themselves as scale-info (MetadataV14) types.

Why not decode with scalecodec on the node? scalecodec is the *client's* codec: building objects
from a type registry per value is far too slow to keep the node under the client's CPU cost per
extrinsic. Here every type is a plain Python object with ``encode``/``decode`` methods, and the
very same objects emit their scale-info definition into a :class:`TypeRegistry`, so the metadata
the client decodes with cannot drift from what the node actually encodes.

Value conventions (what ``decode`` returns and ``encode`` accepts):

* integers and compacts: ``int``; ``bool``: ``bool``; ``str``: ``str``
* ``Vec<u8>`` and ``[u8; N]``: ``bytes``; other sequences: ``list``; tuples: ``tuple``
* composites: ``dict`` by field name (a single unnamed field: the inner value itself)
* ``Option<T>``: ``None`` or the value
* variants: the variant name (``str``) when it has no fields, else ``(name, payload)`` where the
  payload follows the composite rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the type (short, trailing bytes, bad variant...)."""


class DecodeLimitExceeded(DecodeError):
    """A recursive type nests deeper, or repeats more often, than the decoder allows.

    Raised while decoding, as soon as the limit is crossed, so hostile input costs at most the
    limit's worth of work (and never a ``RecursionError``).
    """


class TypeRegistry:
    """Assigns scale-info ids to codecs, in first-use order, and collects their definitions.

    Named types (structs, enums) are keyed by identity; anonymous ones (primitives, compacts,
    sequences...) structurally, so ``Vec<u8>`` used in ten places is one registry entry, like
    scale-info does. Ids are reserved before a definition is built, which makes recursive types
    (``RuntimeCall`` inside ``Utility.batch``) work.
    """

    def __init__(self) -> None:
        self._ids: dict[object, int] = {}
        self._types: list[dict[str, Any] | None] = []

    def id_of(self, codec: Codec) -> int:
        while isinstance(codec, Lazy):
            codec = codec.target
        key = codec.registry_key()
        found = self._ids.get(key)
        if found is not None:
            return found
        idx = len(self._types)
        self._ids[key] = idx
        self._types.append(None)
        self._types[idx] = codec.type_info(self)
        return idx

    def portable(self) -> list[dict[str, Any]]:
        """The ``PortableRegistry.types`` list, as scalecodec's encoder expects it."""
        out = []
        for idx, info in enumerate(self._types):
            assert info is not None, f"type {idx} was never defined"
            out.append({"id": idx, "type": info})
        return out


class Codec:
    """Base of every SCALE type: encode, decode and describe."""

    def encode(self, value: Any) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes, pos: int) -> tuple[Any, int]:
        raise NotImplementedError

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        raise NotImplementedError

    def registry_key(self) -> object:
        return self

    def decode_all(self, data: bytes) -> Any:
        """Decode ``data`` completely; trailing bytes are an error, as in ``Decode::decode_all``."""
        try:
            value, end = self.decode(data, 0)
        except (IndexError, ValueError, UnicodeDecodeError, KeyError) as exc:
            if isinstance(exc, DecodeError):
                raise
            raise DecodeError(f"cannot decode: {exc}") from None
        if end != len(data):
            raise DecodeError(f"{len(data) - end} trailing bytes")
        return value


def _need(data: bytes, pos: int, n: int) -> None:
    if pos + n > len(data):
        raise DecodeError("not enough data")


class UInt(Codec):
    """Fixed-width little-endian unsigned integer."""

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.size = bits // 8
        self.max = (1 << bits) - 1

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, int) or not 0 <= value <= self.max:
            raise ValueError(f"{value!r} is not a u{self.bits}")
        return int(value).to_bytes(self.size, "little")

    def decode(self, data: bytes, pos: int) -> tuple[int, int]:
        end = pos + self.size
        _need(data, pos, self.size)
        return int.from_bytes(data[pos:end], "little"), end

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        return {"def": {"primitive": f"u{self.bits}"}}

    def registry_key(self) -> object:
        return ("prim", f"u{self.bits}")


class Bool(Codec):
    def encode(self, value: Any) -> bytes:
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not a bool")
        return b"\x01" if value else b"\x00"

    def decode(self, data: bytes, pos: int) -> tuple[bool, int]:
        _need(data, pos, 1)
        b = data[pos]
        if b > 1:
            raise DecodeError("invalid bool")
        return b == 1, pos + 1

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        return {"def": {"primitive": "bool"}}

    def registry_key(self) -> object:
        return ("prim", "bool")


def encode_compact(value: int) -> bytes:
    """SCALE compact integer encoding."""
    if value < 0:
        raise ValueError("compact of a negative number")
    if value < 1 << 6:
        return bytes([value << 2])
    if value < 1 << 14:
        return ((value << 2) | 1).to_bytes(2, "little")
    if value < 1 << 30:
        return ((value << 2) | 2).to_bytes(4, "little")
    raw = value.to_bytes((value.bit_length() + 7) // 8, "little")
    if len(raw) > 67:
        raise ValueError("compact too large")
    return bytes([((len(raw) - 4) << 2) | 3]) + raw


def decode_compact(data: bytes, pos: int) -> tuple[int, int]:
    _need(data, pos, 1)
    mode = data[pos] & 3
    if mode == 0:
        return data[pos] >> 2, pos + 1
    if mode == 1:
        _need(data, pos, 2)
        return int.from_bytes(data[pos:pos + 2], "little") >> 2, pos + 2
    if mode == 2:
        _need(data, pos, 4)
        return int.from_bytes(data[pos:pos + 4], "little") >> 2, pos + 4
    n = (data[pos] >> 2) + 4
    _need(data, pos + 1, n)
    return int.from_bytes(data[pos + 1:pos + 1 + n], "little"), pos + 1 + n


class Compact(Codec):
    def __init__(self, inner: UInt) -> None:
        self.inner = inner

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, int) or not 0 <= value <= self.inner.max:
            raise ValueError(f"{value!r} is not a Compact<u{self.inner.bits}>")
        return encode_compact(value)

    def decode(self, data: bytes, pos: int) -> tuple[int, int]:
        value, end = decode_compact(data, pos)
        if value > self.inner.max:
            raise DecodeError("compact out of range")
        return value, end

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        return {"def": {"compact": {"type": reg.id_of(self.inner)}}}

    def registry_key(self) -> object:
        return ("compact", self.inner.registry_key())


class CompactUnit(Codec):
    """``Compact<()>``: zero bytes on the wire (parity-scale-codec encodes nothing for it).

    Polkadot-style runtimes use it as ``MultiAddress``'s account index type when they have no
    indices pallet, which makes the ``Index`` variant a bare tag.
    """

    def encode(self, value: Any) -> bytes:
        if value not in (None, (), []):
            raise ValueError(f"{value!r} is not a Compact<()>")
        return b""

    def decode(self, data: bytes, pos: int) -> tuple[None, int]:
        return None, pos

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        return {"def": {"compact": {"type": reg.id_of(Tuple())}}}

    def registry_key(self) -> object:
        return ("compact", Tuple().registry_key())


class Bytes(Codec):
    """``Vec<u8>``."""

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, bytes | bytearray):
            raise ValueError(f"{type(value).__name__} is not bytes")
        return encode_compact(len(value)) + bytes(value)

    def decode(self, data: bytes, pos: int) -> tuple[bytes, int]:
        n, pos = decode_compact(data, pos)
        _need(data, pos, n)
        return bytes(data[pos:pos + n]), pos + n

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        return {"def": {"sequence": {"type": reg.id_of(U8)}}}

    def registry_key(self) -> object:
        return ("seq", U8.registry_key())


class Str(Codec):
    def encode(self, value: Any) -> bytes:
        raw = str(value).encode("utf-8")
        return encode_compact(len(raw)) + raw

    def decode(self, data: bytes, pos: int) -> tuple[str, int]:
        raw, end = BYTES.decode(data, pos)
        return raw.decode("utf-8"), end

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        return {"def": {"primitive": "str"}}

    def registry_key(self) -> object:
        return ("prim", "str")


class ByteArray(Codec):
    """``[u8; N]``."""

    def __init__(self, length: int) -> None:
        self.length = length

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, bytes | bytearray) or len(value) != self.length:
            raise ValueError(f"expected {self.length} bytes")
        return bytes(value)

    def decode(self, data: bytes, pos: int) -> tuple[bytes, int]:
        _need(data, pos, self.length)
        return bytes(data[pos:pos + self.length]), pos + self.length

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        return {"def": {"array": {"len": self.length, "type": reg.id_of(U8)}}}

    def registry_key(self) -> object:
        return ("array", self.length, U8.registry_key())


class Vec(Codec):
    def __init__(self, inner: Codec) -> None:
        self.inner = inner

    def encode(self, value: Any) -> bytes:
        enc = self.inner.encode
        return encode_compact(len(value)) + b"".join(enc(v) for v in value)

    def decode(self, data: bytes, pos: int) -> tuple[list[Any], int]:
        n, pos = decode_compact(data, pos)
        if n > len(data) - pos:  # every element takes at least one byte here
            raise DecodeError("sequence longer than the data")
        if isinstance(self.inner, Lazy):  # a bounded recursive type: count before decoding
            self.inner.reserve(n)
        out = []
        dec = self.inner.decode
        for _ in range(n):
            v, pos = dec(data, pos)
            out.append(v)
        return out, pos

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        return {"def": {"sequence": {"type": reg.id_of(self.inner)}}}

    def registry_key(self) -> object:
        return ("seq", self.inner.registry_key())


class Tuple(Codec):
    def __init__(self, *items: Codec) -> None:
        self.items = items

    def encode(self, value: Any) -> bytes:
        return b"".join(c.encode(v) for c, v in zip(self.items, value, strict=True))

    def decode(self, data: bytes, pos: int) -> tuple[tuple[Any, ...], int]:
        out = []
        for c in self.items:
            v, pos = c.decode(data, pos)
            out.append(v)
        return tuple(out), pos

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        return {"def": {"tuple": [reg.id_of(c) for c in self.items]}}

    def registry_key(self) -> object:
        return ("tuple", *(c.registry_key() for c in self.items))


@dataclass(frozen=True)
class Field:
    """A named (or unnamed, ``name=None``) field with the Rust type name shown in metadata."""

    name: str | None
    codec: Codec
    type_name: str
    docs: tuple[str, ...] = ()

    def info(self, reg: TypeRegistry) -> dict[str, Any]:
        return {"name": self.name, "type": reg.id_of(self.codec), "typeName": self.type_name,
                "docs": list(self.docs)}


def _encode_fields(fields: Sequence[Field], value: Any) -> bytes:
    if not fields:
        return b""
    if len(fields) == 1 and fields[0].name is None:
        return fields[0].codec.encode(value)
    if fields[0].name is None:
        return b"".join(f.codec.encode(v) for f, v in zip(fields, value, strict=True))
    return b"".join(f.codec.encode(value[f.name]) for f in fields)


def _decode_fields(fields: Sequence[Field], data: bytes, pos: int) -> tuple[Any, int]:
    if not fields:
        return None, pos
    if len(fields) == 1 and fields[0].name is None:
        return fields[0].codec.decode(data, pos)
    if fields[0].name is None:
        items = []
        for f in fields:
            v, pos = f.codec.decode(data, pos)
            items.append(v)
        return tuple(items), pos
    out: dict[str, Any] = {}
    for f in fields:
        out[f.name], pos = f.codec.decode(data, pos)  # type: ignore[index]
    return out, pos


class Struct(Codec):
    """A named composite type (Rust struct) with a scale-info path."""

    def __init__(self, path: str, fields: Sequence[Field], docs: Sequence[str] = (),
                 params: Sequence[tuple[str, Codec | None]] = ()) -> None:
        self.path = tuple(path.split("::"))
        self.fields = tuple(fields)
        self.docs = tuple(docs)
        self.params = tuple(params)

    def encode(self, value: Any) -> bytes:
        return _encode_fields(self.fields, value)

    def decode(self, data: bytes, pos: int) -> tuple[Any, int]:
        return _decode_fields(self.fields, data, pos)

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        return {"path": list(self.path), "params": _params(reg, self.params),
                "def": {"composite": {"fields": [f.info(reg) for f in self.fields]}},
                "docs": list(self.docs)}


def _params(reg: TypeRegistry, params: Sequence[tuple[str, Codec | None]]) -> list[dict[str, Any]]:
    return [{"name": n, "type": None if c is None else reg.id_of(c)} for n, c in params]


@dataclass(frozen=True)
class Variant:
    name: str
    index: int
    fields: tuple[Field, ...] = ()
    docs: tuple[str, ...] = ()


class Enum(Codec):
    """A Rust enum (scale-info variant type)."""

    def __init__(self, path: str, variants: Sequence[Variant], docs: Sequence[str] = (),
                 params: Sequence[tuple[str, Codec | None]] = ()) -> None:
        self.path = tuple(path.split("::")) if path else ()
        self.variants = tuple(variants)
        self.docs = tuple(docs)
        self.params = tuple(params)
        self.by_name = {v.name: v for v in self.variants}
        self.by_index = {v.index: v for v in self.variants}

    def encode(self, value: Any) -> bytes:
        if isinstance(value, str):
            name, payload = value, None
        else:
            name, payload = value
        variant = self.by_name.get(name)
        if variant is None:
            raise ValueError(f"{name!r} is not a variant of {'::'.join(self.path)}")
        return bytes([variant.index]) + _encode_fields(variant.fields, payload)

    def decode(self, data: bytes, pos: int) -> tuple[Any, int]:
        _need(data, pos, 1)
        variant = self.by_index.get(data[pos])
        if variant is None:
            raise DecodeError(f"no variant {data[pos]} in {'::'.join(self.path)}")
        if not variant.fields:
            return variant.name, pos + 1
        payload, end = _decode_fields(variant.fields, data, pos + 1)
        return (variant.name, payload), end

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        return {"path": list(self.path), "params": _params(reg, self.params),
                "def": {"variant": {"variants": [
                    {"name": v.name, "fields": [f.info(reg) for f in v.fields],
                     "index": v.index, "docs": list(v.docs)} for v in self.variants]}},
                "docs": list(self.docs)}


def simple_enum(path: str, names: Sequence[str], docs: Sequence[str] = ()) -> Enum:
    """A fieldless enum numbered 0.. in the given order (how every protocol enum encodes)."""
    return Enum(path, [Variant(n, i) for i, n in enumerate(names)], docs)


class Option(Codec):
    """``Option<T>``; scalecodec finds its element type through the ``T`` type parameter."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        return b"\x01" + self.inner.encode(value)

    def decode(self, data: bytes, pos: int) -> tuple[Any, int]:
        _need(data, pos, 1)
        tag = data[pos]
        if tag == 0:
            return None, pos + 1
        if tag == 1:
            return self.inner.decode(data, pos + 1)
        raise DecodeError("invalid Option tag")

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        inner = reg.id_of(self.inner)
        return {"path": ["Option"], "params": [{"name": "T", "type": inner}],
                "def": {"variant": {"variants": [
                    {"name": "None", "fields": [], "index": 0, "docs": []},
                    {"name": "Some", "fields": [{"name": None, "type": inner, "typeName": "T",
                                                 "docs": []}], "index": 1, "docs": []}]}},
                "docs": []}

    def registry_key(self) -> object:
        return ("option", self.inner.registry_key())


class Result(Codec):
    """``Result<T, E>``: ``("Ok", value)`` or ``("Err", error)``."""

    def __init__(self, ok: Codec, err: Codec) -> None:
        self.ok = ok
        self.err = err

    def encode(self, value: Any) -> bytes:
        tag, payload = value
        if tag == "Ok":
            return b"\x00" + self.ok.encode(payload)
        return b"\x01" + self.err.encode(payload)

    def decode(self, data: bytes, pos: int) -> tuple[Any, int]:
        _need(data, pos, 1)
        if data[pos] == 0:
            v, end = self.ok.decode(data, pos + 1)
            return ("Ok", v), end
        if data[pos] == 1:
            v, end = self.err.decode(data, pos + 1)
            return ("Err", v), end
        raise DecodeError("invalid Result tag")

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        ok, err = reg.id_of(self.ok), reg.id_of(self.err)
        return {"path": ["Result"],
                "params": [{"name": "T", "type": ok}, {"name": "E", "type": err}],
                "def": {"variant": {"variants": [
                    {"name": "Ok", "fields": [{"name": None, "type": ok, "typeName": "T",
                                               "docs": []}], "index": 0, "docs": []},
                    {"name": "Err", "fields": [{"name": None, "type": err, "typeName": "E",
                                                "docs": []}], "index": 1, "docs": []}]}},
                "docs": []}

    def registry_key(self) -> object:
        return ("result", self.ok.registry_key(), self.err.registry_key())


class Lazy(Codec):
    """A reference resolved on first use, for recursive types (``Box<RuntimeCall>``).

    Every recursive decode passes through here, which makes it the place to bound them: inside
    :meth:`limited` a decode deeper than ``max_depth`` nested values of this type, or of more than
    ``max_count`` of them in total, raises :class:`DecodeLimitExceeded` (Substrate decodes
    extrinsics with ``decode_with_depth_limit`` for the same reason). Not thread-safe: a codec
    belongs to one runtime, used from one thread.
    """

    def __init__(self, resolve: Callable[[], Codec]) -> None:
        self._resolve = resolve
        self._target: Codec | None = None
        self._depth = 0
        self._max_depth: int | None = None
        self._left = 0
        self._max_count = 0

    @property
    def target(self) -> Codec:
        if self._target is None:
            self._target = self._resolve()
        return self._target

    @contextmanager
    def limited(self, max_depth: int, max_count: int) -> Iterator[None]:
        """Decode with at most ``max_depth`` nested levels and ``max_count`` values of this type."""
        saved = (self._max_depth, self._left, self._max_count, self._depth)
        self._max_depth, self._left, self._max_count, self._depth = (
            max_depth, max_count, max_count, 0)
        try:
            yield
        finally:
            self._max_depth, self._left, self._max_count, self._depth = saved

    def encode(self, value: Any) -> bytes:
        return self.target.encode(value)

    def reserve(self, count: int) -> None:
        """A sequence of ``count`` values is next: refuse it at once if they cannot all fit."""
        if self._max_depth is not None and count > self._left:
            raise DecodeLimitExceeded(f"more than {self._max_count} values")

    def decode(self, data: bytes, pos: int) -> tuple[Any, int]:
        if self._max_depth is None:
            return self.target.decode(data, pos)
        if self._depth >= self._max_depth:
            raise DecodeLimitExceeded(f"nested deeper than {self._max_depth} levels")
        self._left -= 1
        if self._left < 0:
            raise DecodeLimitExceeded(f"more than {self._max_count} values")
        self._depth += 1
        try:
            return self.target.decode(data, pos)
        finally:
            self._depth -= 1

    def type_info(self, reg: TypeRegistry) -> dict[str, Any]:
        raise AssertionError("a Lazy codec is registered through its target")

    def registry_key(self) -> object:
        return self.target.registry_key()


U8 = UInt(8)
U16 = UInt(16)
U32 = UInt(32)
U64 = UInt(64)
U128 = UInt(128)
BOOL = Bool()
STR = Str()
BYTES = Bytes()
UNIT = Tuple()
COMPACT_U32 = Compact(U32)
COMPACT_U64 = Compact(U64)
COMPACT_U128 = Compact(U128)
H256 = Struct("primitive_types::H256", [Field(None, ByteArray(32), "[u8; 32]")])

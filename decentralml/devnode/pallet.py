"""Declarative pallets: calls, events, errors, storage and constants in one class.

A pallet is a subclass of :class:`Pallet` whose class attributes declare everything the metadata
shows (``EVENTS``, ``ERRORS``, ``CONSTANTS``, :class:`Storage` items, ``@call`` methods). The
runtime builds the SCALE codecs and the MetadataV14 entry from those declarations, so the pallet
code and what clients see cannot disagree. Call methods receive the decoded arguments by name and
raise :class:`DispatchFailure` to fail; the runtime wraps them in a storage transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from decentralml.devnode.hashing import HASHERS, twox_128
from decentralml.devnode.primitives import Weight
from decentralml.devnode.scale import Codec, Enum, Field, Variant, Vec

if TYPE_CHECKING:
    from decentralml.devnode.runtime import Runtime
    from decentralml.devnode.state import Overlay


class DispatchFailure(Exception):
    """A dispatch failed with a ``sp_runtime::DispatchError`` value (state is rolled back)."""

    def __init__(self, error: Any, reason: str = "") -> None:
        self.error = error
        super().__init__(reason or repr(error))


def bad_origin() -> DispatchFailure:
    return DispatchFailure("BadOrigin", "bad origin")


@dataclass(frozen=True)
class Origin:
    """Who dispatches a call: a signed account, Root (via Sudo) or nobody (inherents)."""

    kind: Literal["signed", "root", "none"]
    who: bytes | None = None

    def ensure_signed(self) -> bytes:
        if self.kind != "signed" or self.who is None:
            raise bad_origin()
        return self.who

    def ensure_root(self) -> None:
        if self.kind != "root":
            raise bad_origin()

    def ensure_none(self) -> None:
        if self.kind != "none":
            raise bad_origin()


ROOT = Origin("root")
NONE = Origin("none")


@dataclass(frozen=True)
class PostInfo:
    """What a call reports after running (FRAME's ``PostDispatchInfo``)."""

    actual_weight: Weight | None = None
    pays_fee: bool = True


WeightFn = Callable[["Runtime", dict[str, Any]], Weight]


@dataclass(frozen=True)
class CallDef:
    name: str
    index: int
    fields: tuple[Field, ...]
    docs: tuple[str, ...]
    weight: Weight | WeightFn
    dispatch_class: str = "Normal"
    pays_fee: bool = True


DEFAULT_WEIGHT = Weight(10_000_000, 0)


def call(index: int, *fields: Field, weight: Weight | WeightFn = DEFAULT_WEIGHT,
         dispatch_class: str = "Normal", pays_fee: bool = True
         ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a dispatchable: its call index, its arguments (in SCALE order) and its weight.

    The method's docstring becomes the call's documentation in the metadata.
    """

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        docs = tuple(line.strip() for line in (fn.__doc__ or "").strip().splitlines())
        fn._call_def = CallDef(fn.__name__, index, fields, docs, weight,  # type: ignore[attr-defined]
                               dispatch_class, pays_fee)
        return fn

    return wrap


@dataclass(frozen=True)
class EventDef:
    name: str
    fields: tuple[Field, ...] = ()
    docs: str = ""


@dataclass(frozen=True)
class ErrorDef:
    name: str
    docs: str = ""


@dataclass(frozen=True)
class ConstantDef:
    name: str
    codec: Codec
    value: Any
    docs: str = ""


_NO_DEFAULT = object()


class Storage:
    """A storage item: plain value (no keys), map (one key) or double map (two keys).

    ``default`` is the ``ValueQuery`` default returned for an absent entry; leave it out for an
    ``OptionQuery`` item (absent reads as ``None``). The storage key is
    ``twox128(pallet) ++ twox128(item) ++ hasher(key)...`` as in FRAME.
    """

    def __init__(self, value: Codec, *keys: tuple[str, Codec], default: Any = _NO_DEFAULT,
                 docs: str = "") -> None:
        self.value = value
        self.keys = keys
        self.default = default
        self.docs = docs
        self.name = ""
        self.prefix = b""
        self._hashers = tuple(HASHERS[h][0] for h, _ in keys)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.prefix = twox_128(getattr(owner, "NAME", owner.__name__).encode()) \
            + twox_128(name.encode())

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT

    def default_bytes(self) -> bytes:
        return self.value.encode(self.default) if self.has_default else b"\x00"

    def key(self, *keys: Any) -> bytes:
        out = self.prefix
        for hasher, (_, codec), k in zip(self._hashers, self.keys, keys, strict=False):
            out += hasher(codec.encode(k))
        return out

    def get(self, state: Overlay, *keys: Any) -> Any:
        raw = state.get(self.key(*keys))
        if raw is None:
            if self.default is _NO_DEFAULT:
                return None
            if isinstance(self.default, dict | list):  # never hand out the shared default
                return self.value.decode_all(self.default_bytes())
            return self.default
        return self.value.decode_all(raw)

    def contains(self, state: Overlay, *keys: Any) -> bool:
        return state.get(self.key(*keys)) is not None

    def set(self, state: Overlay, *keys_and_value: Any) -> None:
        *keys, value = keys_and_value
        state.set(self.key(*keys), self.value.encode(value))

    def remove(self, state: Overlay, *keys: Any) -> None:
        state.delete(self.key(*keys))

    def iter_prefix(self, state: Overlay, *keys: Any) -> Iterator[tuple[list[Any], Any]]:
        """Entries under the given leading keys, with every key decoded (concat hashers only)."""
        prefix = self.key(*keys)
        for raw_key, raw_value in state.iter_prefix(prefix):
            decoded: list[Any] = []
            pos = len(self.prefix)
            for hasher_name, codec in self.keys:
                skip = HASHERS[hasher_name][1]
                assert skip is not None, "only concat hashers can be iterated"
                k, pos = codec.decode(raw_key, pos + skip)
                decoded.append(k)
            yield decoded, self.value.decode_all(raw_value)


class Outer(Codec):
    """Placeholder for a runtime-wide type (``RuntimeCall``, ``EventRecord``) in a declaration.

    Pallets are declared before any runtime exists; the runtime substitutes its own codec for
    these when it builds the pallet's call enum and the metadata.
    """

    def __init__(self, what: str) -> None:
        self.what = what


RUNTIME_CALL = Outer("RuntimeCall")
EVENT_RECORD = Outer("EventRecord")


def resolve_outer(codec: Codec, outer: dict[str, Codec]) -> Codec:
    """``codec`` with :class:`Outer` placeholders (also inside ``Vec``) replaced from ``outer``."""
    if isinstance(codec, Outer):
        return outer[codec.what]
    if isinstance(codec, Vec) and isinstance(codec.inner, Outer):
        return Vec(outer[codec.inner.what])
    return codec


class Pallet:
    """Base of every pallet. Subclasses set ``NAME``, ``INDEX``, ``MODULE`` and declarations."""

    NAME: ClassVar[str]
    INDEX: ClassVar[int]
    #: Rust crate of the pallet, for metadata paths (``<MODULE>::pallet::Call``).
    MODULE: ClassVar[str]
    EVENTS: ClassVar[tuple[EventDef, ...]] = ()
    ERRORS: ClassVar[tuple[ErrorDef, ...]] = ()
    CONSTANTS: ClassVar[tuple[ConstantDef, ...]] = ()
    CALLS: ClassVar[tuple[CallDef, ...]] = ()
    STORAGE: ClassVar[tuple[Storage, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        calls = [v._call_def for v in vars(cls).values() if hasattr(v, "_call_def")]
        cls.CALLS = tuple(sorted(calls, key=lambda c: c.index))
        cls.STORAGE = tuple(v for v in vars(cls).values() if isinstance(v, Storage))
        cls._error_index = {e.name: i for i, e in enumerate(cls.ERRORS)}
        cls._event_index = {e.name: i for i, e in enumerate(cls.EVENTS)}

    _error_index: ClassVar[dict[str, int]]
    _event_index: ClassVar[dict[str, int]]

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        outer = runtime.outer_codecs
        self.call_codec: Enum | None = None
        if self.CALLS:
            self.call_codec = Enum(f"{self.MODULE}::pallet::Call", [
                Variant(c.name, c.index, tuple(
                    Field(f.name, resolve_outer(f.codec, outer), f.type_name) for f in c.fields),
                    c.docs)
                for c in self.CALLS], ["Contains a variant per dispatchable extrinsic."],
                params=[("T", None)])
        self.calls_by_name = {c.name: c for c in self.CALLS}
        self.event_codec: Enum | None = None
        if self.EVENTS:
            self.event_codec = Enum(f"{self.MODULE}::pallet::Event", [
                Variant(e.name, i, e.fields, (e.docs,) if e.docs else ())
                for i, e in enumerate(self.EVENTS)], ["The `Event` enum of this pallet"],
                params=[("T", None)])
        self.error_codec: Enum | None = None
        if self.ERRORS:
            self.error_codec = Enum(f"{self.MODULE}::pallet::Error", [
                Variant(e.name, i, (), (e.docs,) if e.docs else ())
                for i, e in enumerate(self.ERRORS)], ["The `Error` enum of this pallet."],
                params=[("T", None)])

    @property
    def state(self) -> Overlay:
        return self.rt.state

    def error(self, name: str) -> DispatchFailure:
        """The ``Module`` dispatch error ``name`` of this pallet, ready to raise."""
        idx = self._error_index[name]
        return DispatchFailure(("Module", {"index": self.INDEX, "error": bytes([idx, 0, 0, 0])}),
                               f"{self.NAME}.{name}")

    def deposit_event(self, name: str, **fields: Any) -> None:
        """Emit event ``name`` (named fields, in declaration order) into the current block."""
        assert self.event_codec is not None
        encoded = self.event_codec.encode((name, fields) if fields else name)
        self.rt.deposit_event(bytes([self.INDEX]) + encoded)

    def dispatch(self, origin: Origin, name: str, args: dict[str, Any]) -> PostInfo | None:
        result: PostInfo | None = getattr(self, name)(origin, **args)
        return result

    def weight_of(self, name: str, args: dict[str, Any]) -> Weight:
        w = self.calls_by_name[name].weight
        return w(self.rt, args) if callable(w) else w

    def constants(self) -> tuple[ConstantDef, ...]:
        """The constants shown in metadata (override when they depend on the runtime)."""
        return self.CONSTANTS

    def genesis(self) -> None:
        """Write this pallet's genesis state (override)."""

    def on_initialize(self, number: int) -> None:
        """Called at the start of every block (override)."""

    def on_finalize(self, number: int) -> None:
        """Called at the end of every block (override)."""

"""The runtime's key-value state: the committed head, and transactional layers on top of it.

FRAME runs every dispatchable in a storage layer that is committed on ``Ok`` and discarded on
``Err``; :class:`Overlay` gives the runtime the same semantics with nested dict layers, so a failed
call leaves no trace while the fee and nonce changes made around it stay.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from typing import Protocol


class StateReader(Protocol):
    """Read access to one state (the head, or the state after a past block)."""

    def get(self, key: bytes) -> bytes | None: ...

    def iter_prefix(self, prefix: bytes, after: bytes | None = None
                    ) -> Iterator[tuple[bytes, bytes]]: ...


class HeadState:
    """The state after the best block: a dict for point reads plus a sorted key index for scans."""

    def __init__(self, items: Mapping[bytes, bytes] | None = None) -> None:
        self._values: dict[bytes, bytes] = dict(items or {})
        self._keys: list[bytes] = sorted(self._values)

    def get(self, key: bytes) -> bytes | None:
        return self._values.get(key)

    def __len__(self) -> int:
        return len(self._values)

    def iter_prefix(self, prefix: bytes, after: bytes | None = None
                    ) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, in key order, strictly after ``after``."""
        keys = self._keys
        start = prefix if after is None or after < prefix else after
        i = bisect.bisect_right(keys, start) if after is not None and after >= prefix \
            else bisect.bisect_left(keys, start)
        while i < len(keys):
            k = keys[i]
            if not k.startswith(prefix):
                break
            yield k, self._values[k]
            i += 1

    def apply(self, changes: Mapping[bytes, bytes | None]) -> None:
        for k, v in changes.items():
            if v is None:
                if k in self._values:
                    del self._values[k]
                    i = bisect.bisect_left(self._keys, k)
                    del self._keys[i]
            else:
                if k not in self._values:
                    bisect.insort(self._keys, k)
                self._values[k] = v


class Overlay:
    """Nested write layers over a :class:`HeadState`; reads see the innermost write first."""

    def __init__(self, base: StateReader) -> None:
        self.base = base
        self.layers: list[dict[bytes, bytes | None]] = [{}]

    def get(self, key: bytes) -> bytes | None:
        for layer in reversed(self.layers):
            if key in layer:
                return layer[key]
        return self.base.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self.layers[-1][key] = value

    def delete(self, key: bytes) -> None:
        self.layers[-1][key] = None

    def start(self) -> None:
        """Open a transactional layer (``with_transaction`` in FRAME)."""
        self.layers.append({})

    def commit(self) -> None:
        top = self.layers.pop()
        self.layers[-1].update(top)

    def rollback(self) -> None:
        self.layers.pop()

    @property
    def depth(self) -> int:
        return len(self.layers)

    def changes(self) -> dict[bytes, bytes | None]:
        """Everything written so far (only valid with no transaction open)."""
        assert len(self.layers) == 1, "a transaction is still open"
        return self.layers[0]

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Merged, key-ordered view of base and layers under ``prefix`` (deleted keys skipped)."""
        pending: dict[bytes, bytes | None] = {}
        for layer in self.layers:
            for k, v in layer.items():
                if k.startswith(prefix):
                    pending[k] = v
        merged: dict[bytes, bytes | None] = dict(self.base.iter_prefix(prefix))
        merged.update(pending)
        for k in sorted(merged):
            v = merged[k]
            if v is not None:
                yield k, v

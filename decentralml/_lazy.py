"""PEP 562 lazy re-exports, shared by the package roots that re-export (``decentralml``,
``decentralml.fl``): importing them does no work, and TensorFlow is never pulled in by a name
that does not need it."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], subpackages: Sequence[str] = ()
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps a public name to the
    module defining it; ``subpackages`` are importable as attributes."""
    namespace = importlib.import_module(package).__dict__
    public = sorted([*exports, *subpackages])

    def __getattr__(name: str) -> Any:
        if name in subpackages:
            return importlib.import_module(f"{package}.{name}")
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # resolve once; later lookups are plain attribute hits
        return value

    def __dir__() -> list[str]:
        return public

    return __getattr__, __dir__

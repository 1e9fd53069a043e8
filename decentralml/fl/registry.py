"""Strategies by name, for the CLI (``federate --strategy fedadam``), persisted jobs and configs.

Cheap to import (no numpy, no strategy module) so the CLI can list the names in its help.

A job stores its strategy as a name plus parameters (and :meth:`~decentralml.fl.base.Aggregator.
get_state` arrays); :func:`strategy_from_name` turns them back into the same strategy. Names are
case-insensitive and ``_`` is read as ``-`` (``trimmed_mean`` is ``trimmed-mean``). Parameters are
checked against the strategy's constructor before it is called, so a typo is an
:class:`~decentralml.errors.InvalidInput` naming the accepted parameters, not a ``TypeError``.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from decentralml.errors import InvalidInput

if TYPE_CHECKING:
    from decentralml.fl.base import Strategy

#: name -> (module, class): imported on demand, so listing names imports no strategy. Each key is
#: also the class's ``name`` attribute (tests/fl/test_registry.py checks the round trip).
STRATEGIES: dict[str, tuple[str, str]] = {
    "fedavg": ("decentralml.fl.fedavg", "FedAvg"),
    "fedavgm": ("decentralml.fl.fedavgm", "FedAvgM"),
    "fedadam": ("decentralml.fl.fedadam", "FedAdam"),
    "fedyogi": ("decentralml.fl.fedyogi", "FedYogi"),
    "fedadagrad": ("decentralml.fl.fedadagrad", "FedAdagrad"),
    "median": ("decentralml.fl.median", "Median"),
    "trimmed-mean": ("decentralml.fl.trimmed_mean", "TrimmedMean"),
    "krum": ("decentralml.fl.krum", "Krum"),
    "multi-krum": ("decentralml.fl.krum", "MultiKrum"),
    "dp-fedavg": ("decentralml.fl.dp_fedavg", "DPFedAvg"),
}


def strategy_names() -> list[str]:
    """Every name :func:`strategy_from_name` knows, in a stable order."""
    return list(STRATEGIES)


def canonical_name(name: str) -> str:
    """``name`` as the registry spells it; :class:`InvalidInput` naming the known ones if none."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in STRATEGIES:
        raise InvalidInput("strategy", f"unknown strategy {name!r}",
                           f"one of {', '.join(STRATEGIES)}")
    return key


def parse_strategy_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"fedadam:eta=0.01,tau=1e-3"`` -> ``("fedadam", {"eta": 0.01, "tau": 0.001})``.

    The command-line form of a strategy: a name, then optional ``key=value`` parameters, each
    value read as an int, a float, ``true``/``false``/``none``, or else kept as a string.
    """
    name, _, rest = str(spec).partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise InvalidInput("strategy", f"{item!r} in {spec!r} is not key=value",
                               "NAME[:key=value,...]")
        params[key.strip()] = _value(raw.strip())
    return canonical_name(name), params


def _value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def strategy_from_spec(spec: str) -> Strategy:
    """The strategy a :func:`parse_strategy_spec` string describes."""
    name, params = parse_strategy_spec(spec)
    return strategy_from_name(name, **params)


def _strategy_class(name: str) -> type[Strategy]:
    module, attr = STRATEGIES[name]
    cls: type[Strategy] = getattr(importlib.import_module(module), attr)
    return cls


def strategy_name(strategy: Strategy) -> str | None:
    """The name :func:`strategy_from_name` rebuilds ``strategy``'s class from, or None.

    None for a class the registry does not build (a user's own strategy, or a subclass of a
    registered one: the name would rebuild its parent, not it), hence the check on the class
    object itself rather than on ``isinstance``, which a subclass also passes.
    """
    name = getattr(type(strategy), "name", None)
    if not isinstance(name, str) or name not in STRATEGIES:
        return None
    return name if type(strategy) is _strategy_class(name) else None


def strategy_from_name(name: str, **params: Any) -> Strategy:
    """A new strategy ``name`` built with ``params`` (its constructor's keyword arguments)."""
    cls = _strategy_class(canonical_name(name))
    signature = inspect.signature(cls)
    accepted = [p.name for p in signature.parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in params:
        if key not in accepted:
            raise InvalidInput(f"strategy {name!r}", f"has no parameter {key!r}",
                               f"one of {accepted}" if accepted else "no parameters")
    missing = [p.name for p in signature.parameters.values()
               if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               and p.name not in params]
    if missing:
        raise InvalidInput(f"strategy {name!r}", f"needs {', '.join(missing)}",
                           "pass them as parameters")
    strategy: Strategy = cls(**params)
    return strategy

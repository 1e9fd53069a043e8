"""The creator's side of a federated round: gather accepted results, load them, aggregate.

:func:`load_contributor_models` turns a task's accepted submissions (or bare result CIDs) into
checked :class:`~decentralml.fl.base.Update` objects: each result bundle is fetched and verified
by the storage layer (``fetch_bundle``), then read with :func:`~decentralml.fl.exchange.load_update`
against the published model. One bad contributor must not stop a round, so anything that fails -
missing CID, failed download or integrity check, wrong shapes, NaN, duplicate content - is
recorded in ``.rejected`` with a reason and the others go ahead.

:func:`federated_contributors_model` then aggregates (FedAvg unless told otherwise) and returns a
model carrying the federated weights.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from decentralml.errors import IntegrityError, InvalidInput, ModelError, StorageError
from decentralml.fl.base import Aggregator, Update

log = logging.getLogger(__name__)

#: CIDs become directory names under ``workdir``; they are chain data, so only safe characters.
_CID_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")


@dataclass(frozen=True)
class Rejection:
    """A contribution left out of the round, and why."""

    source: str
    reason: str
    submission_id: int | None = None
    #: True when the content could not be fetched (storage unreachable): not the contributor's
    #: fault, worth retrying before rejecting. False for bad or unverifiable content.
    retryable: bool = False


class LoadedUpdates(list[Update]):
    """The updates that loaded and checked out (a plain list), plus ``rejected``."""

    def __init__(self, updates: Iterable[Update] = (),
                 rejected: Iterable[Rejection] = ()) -> None:
        super().__init__(updates)
        self.rejected: list[Rejection] = list(rejected)


def load_contributor_models(submissions_or_cids: Iterable[Any], store: Any, *, like: Any,
                            workdir: str | os.PathLike[str], lazy: bool = True,
                            on_error: Literal["skip", "raise"] = "skip",
                            fetched: MutableMapping[str, Any] | None = None) -> LoadedUpdates:
    """Fetch, verify and load each contributor's result bundle.

    ``submissions_or_cids`` holds :class:`~decentralml.chain.types.Submission` records (their
    ``result_cid`` is fetched; when the inline result also states ``num_examples`` it must agree
    with the sidecar) or CID strings. Each bundle goes to ``workdir/<cid>`` through
    ``decentralml.storage.bundle.fetch_bundle(store, cid, dest)``. ``like`` is the published model
    (or a :class:`~decentralml.fl.exchange.WeightSpec`). With ``lazy`` (the default) each update
    is fully checked now but its arrays are re-read from disk when aggregated, so memory does not
    grow with the number of contributors. The same CID twice is loaded once. Each update is keyed
    by its submission id (or its CID), so FedAvg sums them in an order every peer reproduces.

    ``on_error="raise"`` re-raises the first failure instead of recording it, for callers that
    judge one submission at a time and must tell an unreachable store (``StorageError``, worth a
    retry) from bad content (``IntegrityError``, ``BundleError``, ``ModelError``).

    ``fetched`` maps CIDs to bundles this caller already fetched and verified (see
    :meth:`~decentralml.roles.creator.ModelCreator.prefetch`); they are loaded from where they
    are instead of being fetched again, and what is fetched here is added to it.
    """
    if on_error not in ("skip", "raise"):
        raise InvalidInput("on_error", f"is {on_error!r}", "'skip' or 'raise'")
    from decentralml.chain.types import Submission
    from decentralml.fl.exchange import load_update
    from decentralml.storage.bundle import fetch_bundle

    root = Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    out = LoadedUpdates()
    seen: dict[str, str] = {}

    def reject(source: str, reason: str, sid: int | None, exc: BaseException | None = None,
               retryable: bool = False) -> None:
        if on_error == "raise":
            if exc is not None:
                raise exc
            raise ModelError(f"{source}: {reason}")
        log.warning("rejected %s: %s", source, reason)
        out.rejected.append(Rejection(source, reason, sid, retryable))

    for item in submissions_or_cids:
        sid: int | None = None
        claimed: int | None = None
        if isinstance(item, Submission):
            sid = item.submission_id
            cid = item.result_cid
            claimed = item.num_examples
            source = f"submission {sid}" + (f" ({cid})" if cid else "")
            if not cid:
                reject(source, "no result CID", sid)
                continue
        elif isinstance(item, str):
            cid = item
            source = cid
        else:
            reject(repr(item)[:80], f"expected a Submission or a CID, got {type(item).__name__}",
                   None)
            continue
        if not _CID_RE.match(cid):
            reject(source, "the result CID is not a plain base32/base58 string", sid)
            continue
        if cid in seen:
            reject(source, f"same content as {seen[cid]}; counted once", sid)
            continue
        seen[cid] = source
        try:
            bundle = fetched.get(cid) if fetched is not None else None
            if bundle is None:
                bundle = fetch_bundle(store, cid, root / cid)
                if fetched is not None:
                    fetched[cid] = bundle
        except Exception as exc:  # third-party storage: any failure rejects this one only
            transient = isinstance(exc, StorageError) and not isinstance(exc, IntegrityError)
            reject(source, f"fetch failed: {type(exc).__name__}: {exc}", sid, exc, transient)
            continue
        try:
            update = load_update(Path(bundle.path), like=like, lazy=lazy, source=source,
                                 key=sid if sid is not None else cid)
        except Exception as exc:  # hostile content must not stop the round
            reject(source, f"{type(exc).__name__}: {exc}", sid, exc)
            continue
        if claimed is not None and claimed != update.num_examples:
            reject(source, f"num_examples is {claimed} on chain but {update.num_examples} in "
                   "the sidecar", sid)
            continue
        out.append(update)
    return out


def resolve_strategy(strategy: Aggregator | str | None) -> Aggregator:
    """``strategy`` itself, the registry's strategy of that name, or :class:`FedAvg` for None."""
    if strategy is None:
        from decentralml.fl.fedavg import FedAvg

        return FedAvg()
    if isinstance(strategy, str):
        from decentralml.fl.registry import strategy_from_name

        return strategy_from_name(strategy)
    if not isinstance(strategy, Aggregator):
        raise InvalidInput("strategy", f"is a {type(strategy).__name__}",
                           "an Aggregator or a strategy name")
    return strategy


def federated_contributors_model(model: Any,
                                 updates: Sequence[Update | str | os.PathLike[str]],
                                 strategy: Aggregator | str | None = None, *,
                                 in_place: bool = False) -> Any:
    """A model with ``strategy``'s next global weights (default :class:`FedAvg`) from ``updates``.

    ``strategy`` is an aggregator or a name for :func:`~decentralml.fl.strategy_from_name`; it
    is driven with :meth:`~decentralml.fl.base.Aggregator.apply` from ``model``'s weights, so
    the server optimizers step from the current global model (and keep their state in the
    strategy object across rounds). ``updates`` are :class:`Update` objects (e.g. from
    :func:`load_contributor_models`) or paths of update files/directories, loaded lazily against
    ``model``. The result is a clone of ``model`` unless ``in_place``, so the previous global
    model stays available for comparison.
    """
    from decentralml.fl.exchange import load_update
    from decentralml.fl.keras import clone_model, get_weights, set_weights

    chosen = resolve_strategy(strategy)
    loaded = [u if isinstance(u, Update) else load_update(u, like=model, lazy=True)
              for u in updates]
    if not loaded:
        raise ModelError("no accepted updates to federate")
    weights = chosen.apply(get_weights(model), loaded)
    if in_place:
        set_weights(model, weights)
        return model
    return clone_model(model, weights)

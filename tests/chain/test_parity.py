"""Parity: the devnode's metadata against the Rust runtime's, so the devnode can no longer drift.

Both metadatas are decoded (MetadataV14, as ``state_getMetadata`` serves them to
substrate-interface) and every type reachable from what is compared is resolved to a canonical
structure: primitives, compacts, sequences, arrays, tuples, and composites/variants with their
type path, field names and variant indices. Type ids are never compared (they depend on
registration order), and neither are Rust type-name strings or generic parameter lists (neither
is part of the encoding nor used by clients to decode). Runtime-wide enums (``RuntimeCall``,
``RuntimeEvent``, ...) are compared by name only: their content is every pallet, and what matters
of each pallet is compared pallet by pallet.

The DecentralML pallet must be identical, docs of calls/events/errors included (the client shows
an error's docs to the user). Of System, Balances, TransactionPayment and Utility only what the
SDK relies on is compared (see ``SDK_SURFACE``); the rest legitimately differs (the devnode
implements a subset of FRAME's calls).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from substrateinterface import SubstrateInterface

from decentralml.chain.runtime_node import RuntimeNode
from decentralml.devnode import DevNode
from tests.fixtures.chains import chains_under_test

Canon = Any

#: Outer (runtime-wide) types: compared by their last path segment, not expanded.
OUTER_TYPES = {"RuntimeCall", "RuntimeEvent", "RuntimeError", "RuntimeHoldReason",
               "RuntimeFreezeReason", "RuntimeOrigin", "OriginCaller", "Runtime"}

#: What of the standard pallets the SDK (decentralml/chain/, and substrate-interface under it)
#: reads, calls or decodes: (calls, events, storage items, constants).
SDK_SURFACE: dict[str, dict[str, tuple[str, ...]]] = {
    # Account: nonces and balances; Events: every receipt; ExtrinsicSuccess/Failed: outcomes
    # (dispatch errors -> pallet error classes); remark: the tests' block ticks and fee estimates;
    # SS58Prefix: addresses; BlockHashCount: substrate-interface's mortal eras.
    "System": {"calls": ("remark",), "events": ("ExtrinsicSuccess", "ExtrinsicFailed"),
               "storage": ("Account", "Events", "Number"),
               "constants": ("SS58Prefix", "BlockHashCount")},
    # transfers (funding, faucet), ExistentialDeposit (= MinReward and dust rules)
    "Balances": {"calls": ("transfer_allow_death", "transfer_keep_alive"),
                 "events": ("Transfer",), "storage": (),
                 "constants": ("ExistentialDeposit",)},
    # every fee the client reports comes from this event
    "TransactionPayment": {"calls": (), "events": ("TransactionFeePaid",), "storage": (),
                           "constants": ()},
    # reviewers validate many results atomically with batch_all
    "Utility": {"calls": ("batch_all",), "events": ("BatchCompleted", "ItemCompleted"),
                "storage": (), "constants": ()},
}


class Metadata:
    """A decoded MetadataV14 with type resolution by structure."""

    def __init__(self, si: SubstrateInterface) -> None:
        si.init_runtime()
        self.si = si
        value = si.metadata.value
        body = value[1] if isinstance(value, list | tuple) else value["metadata"]
        (self.version, inner), = body.items()
        self.types = {t["id"]: t["type"] for t in inner["types"]["types"]}
        self.pallets = {p["name"]: p for p in inner["pallets"]}
        self.extrinsic = inner["extrinsic"]

    # -- types -------------------------------------------------------------------------------

    def canon(self, type_id: int, stack: tuple[int, ...] = ()) -> Canon:
        ty = self.types[type_id]
        path = "::".join(ty.get("path") or [])
        last = (ty.get("path") or [""])[-1]
        if last in OUTER_TYPES:
            return ("outer", last)
        if type_id in stack:
            return ("recursive", path)
        inner = (*stack, type_id)
        (kind, body), = ty["def"].items()
        if kind == "primitive":
            return ("primitive", body)
        if kind == "compact":
            return ("compact", self.canon(body["type"], inner))
        if kind == "sequence":
            return ("sequence", self.canon(body["type"], inner))
        if kind == "array":
            return ("array", body["len"], self.canon(body["type"], inner))
        if kind == "tuple":
            return ("tuple", tuple(self.canon(t, inner) for t in body))
        if kind == "composite":
            return ("composite", path, self.fields(body["fields"], inner))
        if kind == "variant":
            return ("variant", path, tuple(
                (v["index"], v["name"], self.fields(v["fields"], inner))
                for v in sorted(body["variants"], key=lambda v: v["index"])))
        if kind == "bitsequence":
            return ("bitsequence", self.canon(body["bit_store_type"], inner),
                    self.canon(body["bit_order_type"], inner))
        raise AssertionError(f"unknown type kind {kind}")

    def fields(self, fields: list[dict[str, Any]], stack: tuple[int, ...]) -> tuple[Canon, ...]:
        return tuple((f.get("name"), self.canon(f["type"], stack)) for f in fields)

    # -- pallets -----------------------------------------------------------------------------

    def _variants(self, pallet: str, what: str) -> dict[str, dict[str, Any]]:
        ref = self.pallets[pallet].get(what)
        if not ref:
            return {}
        ty = self.types[ref["ty"]]
        return {v["name"]: v for v in ty["def"]["variant"]["variants"]}

    def calls(self, pallet: str) -> dict[str, Canon]:
        return {name: (v["index"], self.fields(v["fields"], ()))
                for name, v in self._variants(pallet, "calls").items()}

    def events(self, pallet: str) -> dict[str, Canon]:
        return {name: (v["index"], self.fields(v["fields"], ()))
                for name, v in self._variants(pallet, "event").items()}

    def errors(self, pallet: str) -> dict[str, Canon]:
        return {name: v["index"] for name, v in self._variants(pallet, "error").items()}

    def docs(self, pallet: str, what: str) -> dict[str, str]:
        return {name: " ".join(line.strip() for line in v.get("docs", [])).strip()
                for name, v in self._variants(pallet, what).items()}

    def storage(self, pallet: str) -> dict[str, Canon]:
        storage = self.pallets[pallet].get("storage") or {"entries": []}
        out = {}
        for entry in storage["entries"]:
            (kind, body), = entry["type"].items()
            if kind == "Plain":
                shape: Canon = ("plain", self.canon(body))
            else:
                shape = ("map", tuple(body["hashers"]), self.canon(body["key"]),
                         self.canon(body["value"]))
            out[entry["name"]] = (entry["modifier"], shape, entry["default"])
        return out

    def constants(self, pallet: str) -> dict[str, Canon]:
        return {c["name"]: (self.canon(c["type"]),
                            self.si.get_constant(pallet, c["name"]).value)
                for c in self.pallets[pallet].get("constants", [])}

    def index(self, pallet: str) -> int:
        return int(self.pallets[pallet]["index"])

    def signed_extensions(self) -> list[Canon]:
        return [(e["identifier"], self.canon(e["ty"]), self.canon(e["additional_signed"]))
                for e in self.extrinsic["signed_extensions"]]


def _metadata(url: str) -> Iterator[Metadata]:
    si = SubstrateInterface(url=url)
    try:
        yield Metadata(si)
    finally:
        si.close()


@pytest.fixture(scope="module")
def both(devnode: DevNode, request: pytest.FixtureRequest) -> Iterator[tuple[Metadata, Metadata]]:
    if "runtime" not in chains_under_test():
        pytest.skip("the runtime is excluded from this run (DECENTRALML_TEST_CHAINS / "
                    "DECENTRALML_NODE_URL); parity needs it")
    runtime: RuntimeNode = request.getfixturevalue("runtime_node")
    dev_gen = _metadata(devnode.url)
    rt_gen = _metadata(runtime.url)
    try:
        yield next(dev_gen), next(rt_gen)
    finally:
        dev_gen.close()
        rt_gen.close()


def _diff(dev: dict[str, Any], rt: dict[str, Any], what: str) -> list[str]:
    problems = [f"{what} {name}: only in the runtime" for name in rt.keys() - dev.keys()]
    problems += [f"{what} {name}: only in the devnode" for name in dev.keys() - rt.keys()]
    problems += [f"{what} {name}:\n  devnode {dev[name]!r}\n  runtime {rt[name]!r}"
                 for name in sorted(dev.keys() & rt.keys()) if dev[name] != rt[name]]
    return problems


def _subset(items: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {n: items.get(n, "<missing>") for n in names}


# -- the DecentralML pallet: identical ---------------------------------------------------------

ASPECTS = ("calls", "events", "errors", "storage", "constants")


@pytest.mark.parametrize("aspect", ASPECTS)
def test_decentralml_pallet_is_identical(both: tuple[Metadata, Metadata], aspect: str) -> None:
    dev, rt = both
    problems = _diff(getattr(dev, aspect)("DecentralML"), getattr(rt, aspect)("DecentralML"),
                     aspect)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("what", ["calls", "event", "error"])
def test_decentralml_docs_are_identical(both: tuple[Metadata, Metadata], what: str) -> None:
    dev, rt = both
    problems = _diff(dev.docs("DecentralML", what), rt.docs("DecentralML", what), f"{what} docs")
    assert not problems, "\n".join(problems)


def test_pallet_indices_agree(both: tuple[Metadata, Metadata]) -> None:
    dev, rt = both
    names = ("System", "Timestamp", "Balances", "TransactionPayment", "Sudo", "Utility",
             "DecentralML")
    assert {n: dev.index(n) for n in names} == {n: rt.index(n) for n in names}


# -- what the SDK relies on in the standard pallets --------------------------------------------


@pytest.mark.parametrize("pallet", list(SDK_SURFACE))
def test_standard_pallets_agree_where_the_sdk_relies_on_them(
        both: tuple[Metadata, Metadata], pallet: str) -> None:
    dev, rt = both
    surface = SDK_SURFACE[pallet]
    problems = []
    for aspect, names in surface.items():
        problems += _diff(_subset(getattr(dev, aspect)(pallet), names),
                          _subset(getattr(rt, aspect)(pallet), names), f"{pallet} {aspect}")
    assert not problems, "\n".join(problems)


def test_dispatch_errors_decode_the_same(both: tuple[Metadata, Metadata]) -> None:
    """``ExtrinsicFailed.dispatch_error`` is how a pallet error reaches the client."""
    dev, rt = both
    d = dev.events("System")["ExtrinsicFailed"]
    r = rt.events("System")["ExtrinsicFailed"]
    assert d == r


def test_signed_extensions_agree(both: tuple[Metadata, Metadata]) -> None:
    """What substrate-interface signs: the same extensions, in the same order, same types."""
    dev, rt = both
    assert dev.signed_extensions() == rt.signed_extensions()
    assert dev.extrinsic["version"] == rt.extrinsic["version"]


def test_canonical_form_ignores_ids_but_not_structure(both: tuple[Metadata, Metadata]) -> None:
    """The comparison itself can fail: a changed field type is a difference."""
    dev, _ = both
    tasks = dev.storage("DecentralML")["Tasks"]
    assert tasks[1][0] == "map" and tasks[1][3][0] == "composite"
    assert dev.canon(next(i for i, t in dev.types.items() if t["def"].get("primitive") == "u32")) \
        != dev.canon(next(i for i, t in dev.types.items() if t["def"].get("primitive") == "u128"))

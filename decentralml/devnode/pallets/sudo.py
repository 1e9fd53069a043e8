"""``pallet_sudo``: one key (//Alice at genesis) may dispatch any call as Root, fee-free."""

from __future__ import annotations

from typing import Any

from decentralml.devnode.pallet import (
    ROOT,
    RUNTIME_CALL,
    ErrorDef,
    EventDef,
    Origin,
    Pallet,
    PostInfo,
    Storage,
    call,
)
from decentralml.devnode.primitives import ACCOUNT_ID, DISPATCH_ERROR, MULTI_ADDRESS, WEIGHT, Weight
from decentralml.devnode.scale import UNIT, Field, Option, Result

DISPATCH_RESULT = Result(UNIT, DISPATCH_ERROR)
_SUDO_OVERHEAD = Weight(10_000_000, 1_500)


def _inner_weight(rt: Any, args: dict[str, Any]) -> Weight:
    w: Weight = rt.call_weight(args["call"]) + _SUDO_OVERHEAD
    return w


class Sudo(Pallet):
    """Root access for the sudo key; a Root call's own failure is reported in ``Sudid``."""

    NAME = "Sudo"
    INDEX = 4
    MODULE = "pallet_sudo"

    EVENTS = (
        EventDef("Sudid", (Field("sudo_result", DISPATCH_RESULT, "DispatchResult"),),
                 "A sudo call just took place."),
        EventDef("KeyChanged", (Field("old", Option(ACCOUNT_ID), "Option<T::AccountId>"),
                                Field("new", ACCOUNT_ID, "T::AccountId")),
                 "The sudo key has been updated."),
        EventDef("KeyRemoved", (), "The key was permanently removed."),
        EventDef("SudoAsDone", (Field("sudo_result", DISPATCH_RESULT, "DispatchResult"),),
                 "A [sudo_as](Pallet::sudo_as) call just took place."),
    )
    ERRORS = (ErrorDef("RequireSudo", "Sender must be the Sudo account."),)

    Key = Storage(ACCOUNT_ID, docs="The `AccountId` of the sudo key.")

    def _ensure_sudo(self, origin: Origin) -> bytes:
        who = origin.ensure_signed()
        if self.Key.get(self.state) != who:
            raise self.error("RequireSudo")
        return who

    @call(0, Field("call", RUNTIME_CALL, "Box<<T as Config>::RuntimeCall>"), weight=_inner_weight)
    def sudo(self, origin: Origin, call: Any) -> PostInfo:
        """Authenticates the sudo key and dispatches a function call with `Root` origin."""
        self._ensure_sudo(origin)
        self.deposit_event("Sudid", sudo_result=self.rt.dispatch_result(call, ROOT))
        return PostInfo(pays_fee=False)

    @call(1, Field("call", RUNTIME_CALL, "Box<<T as Config>::RuntimeCall>"),
          Field("weight", WEIGHT, "Weight"),
          weight=lambda rt, args: Weight(args["weight"]["ref_time"],
                                         args["weight"]["proof_size"]))
    def sudo_unchecked_weight(self, origin: Origin, call: Any, weight: Any) -> PostInfo:
        """As `sudo`, with the weight given by the sudo key."""
        self._ensure_sudo(origin)
        self.deposit_event("Sudid", sudo_result=self.rt.dispatch_result(call, ROOT))
        return PostInfo(pays_fee=False)

    @call(2, Field("new", MULTI_ADDRESS, "AccountIdLookupOf<T>"), weight=Weight(12_000_000, 1_517))
    def set_key(self, origin: Origin, new: Any) -> PostInfo:
        """Authenticates the current sudo key and sets the given AccountId as the new key."""
        old = self._ensure_sudo(origin)
        account = self.rt.lookup(new)
        self.Key.set(self.state, account)
        self.deposit_event("KeyChanged", old=old, new=account)
        return PostInfo(pays_fee=False)

    @call(3, Field("who", MULTI_ADDRESS, "AccountIdLookupOf<T>"),
          Field("call", RUNTIME_CALL, "Box<<T as Config>::RuntimeCall>"), weight=_inner_weight)
    def sudo_as(self, origin: Origin, who: Any, call: Any) -> PostInfo:
        """Dispatches a call with a `Signed` origin of `who`, authenticated by the sudo key."""
        self._ensure_sudo(origin)
        account = self.rt.lookup(who)
        self.deposit_event("SudoAsDone", sudo_result=self.rt.dispatch_result(
            call, Origin("signed", account)))
        return PostInfo(pays_fee=False)

    @call(4, weight=Weight(10_000_000, 1_517))
    def remove_key(self, origin: Origin) -> PostInfo:
        """Permanently removes the sudo key. This cannot be undone."""
        self._ensure_sudo(origin)
        self.Key.remove(self.state)
        self.deposit_event("KeyRemoved")
        return PostInfo(pays_fee=False)

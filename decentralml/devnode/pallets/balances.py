"""``pallet_balances``: free balances, the existential deposit, transfers and issuance.

Balances live in ``System.Account.data`` (``AccountData``), as in current FRAME. An account exists
while its free balance is at least the existential deposit (ED); a transfer that leaves less under
``AllowDeath`` reaps it and burns the dust (``DustLost``). Failures are this pallet's ``Module``
errors with FRAME's names (``InsufficientBalance``, ``ExistentialDeposit``, ``Expendability``)
rather than ``TokenError``s, so substrate-interface's ``receipt.error_message`` can name them.
"""

from __future__ import annotations

from typing import Any

from decentralml.chain.types import U128_MAX
from decentralml.devnode.pallet import (
    ConstantDef,
    DispatchFailure,
    ErrorDef,
    EventDef,
    Origin,
    Pallet,
    Storage,
    call,
)
from decentralml.devnode.primitives import ACCOUNT_ID, MULTI_ADDRESS, Weight
from decentralml.devnode.scale import BOOL, COMPACT_U128, U32, U128, Field, simple_enum

EXISTENTIAL_DEPOSIT = 1_000_000_000

_BALANCE_STATUS = simple_enum("frame_support::traits::tokens::misc::BalanceStatus",
                              ["Free", "Reserved"])


def _f(name: str, type_name: str = "T::Balance") -> Field:
    return Field(name, U128, type_name)


def _who(name: str = "who") -> Field:
    return Field(name, ACCOUNT_ID, "T::AccountId")


# The runtime's weights for these calls, so a transfer costs the same fee on both chains:
# pallet-balances 51.0.2's benchmarked ``SubstrateWeight`` (its src/weights.rs, the version
# Cargo.lock pins) plus the runtime's ``RocksDbWeight`` for the reads and writes each declares
# (25 us a read, 100 us a write). Restated here because the devnode has no Rust to read them from;
# tests/chain/test_fee_parity.py compares the fees with the runtime's, so they cannot drift.
_READ, _WRITE = 25_000_000, 100_000_000
TRANSFER_ALLOW_DEATH = Weight(48_834_000 + _READ + _WRITE, 3_593)
FORCE_TRANSFER = Weight(49_519_000 + 2 * _READ + 2 * _WRITE, 6_196)
TRANSFER_KEEP_ALIVE = Weight(39_051_000 + _READ + _WRITE, 3_593)
TRANSFER_ALL = Weight(48_209_000 + _READ + _WRITE, 3_593)
#: ``force_set_balance`` is charged the larger of its creating and killing benchmarks
FORCE_SET_BALANCE = Weight(max(12_547_000, 19_206_000) + _READ + _WRITE, 3_593)

class Balances(Pallet):
    """Free balances with an existential deposit; fees are withdrawn here and burned."""

    NAME = "Balances"
    INDEX = 2
    MODULE = "pallet_balances"

    CONSTANTS = (
        ConstantDef("ExistentialDeposit", U128, EXISTENTIAL_DEPOSIT,
                    "The minimum amount required to keep an account open."),
        ConstantDef("MaxLocks", U32, 50, "The maximum number of locks per account."),
        ConstantDef("MaxReserves", U32, 50, "The maximum number of named reserves per account."),
        ConstantDef("MaxFreezes", U32, 0, "The maximum number of individual freeze locks."),
    )
    EVENTS = (
        EventDef("Endowed", (_who("account"), _f("free_balance")),
                 "An account was created with some free balance."),
        EventDef("DustLost", (_who("account"), _f("amount")),
                 "An account was removed whose balance was non-zero but below ExistentialDeposit, "
                 "resulting in an outright loss."),
        EventDef("Transfer", (_who("from"), _who("to"), _f("amount")), "Transfer succeeded."),
        EventDef("BalanceSet", (_who(), _f("free")), "A balance was set by root."),
        EventDef("Reserved", (_who(), _f("amount")),
                 "Some balance was reserved (moved from free to reserved)."),
        EventDef("Unreserved", (_who(), _f("amount")),
                 "Some balance was unreserved (moved from reserved to free)."),
        EventDef("ReserveRepatriated", (_who("from"), _who("to"), _f("amount"),
                                        Field("destination_status", _BALANCE_STATUS, "Status")),
                 "Some balance was moved from the reserve of the first account to the second "
                 "account."),
        EventDef("Deposit", (_who(), _f("amount")),
                 "Some amount was deposited (e.g. for transaction fees)."),
        EventDef("Withdraw", (_who(), _f("amount")),
                 "Some amount was withdrawn from the account (e.g. for transaction fees)."),
        EventDef("Slashed", (_who(), _f("amount")),
                 "Some amount was removed from the account (e.g. for misbehavior)."),
        EventDef("Minted", (_who(), _f("amount")), "Some amount was minted into an account."),
        EventDef("Burned", (_who(), _f("amount")), "Some amount was burned from an account."),
    )
    ERRORS = (
        ErrorDef("VestingBalance", "Vesting balance too high to send value."),
        ErrorDef("LiquidityRestrictions", "Account liquidity restrictions prevent withdrawal."),
        ErrorDef("InsufficientBalance", "Balance too low to send value."),
        ErrorDef("ExistentialDeposit", "Value too low to create account due to existential "
                 "deposit."),
        ErrorDef("Expendability", "Transfer/payment would kill account."),
        ErrorDef("ExistingVestingSchedule", "A vesting schedule already exists for this account."),
        ErrorDef("DeadAccount", "Beneficiary account must pre-exist."),
        ErrorDef("TooManyReserves", "Number of named reserves exceed `MaxReserves`."),
        ErrorDef("TooManyHolds", "Number of holds exceed `VariantCountOf<T::RuntimeHoldReason>`."),
        ErrorDef("TooManyFreezes", "Number of freezes exceed `MaxFreezes`."),
        ErrorDef("IssuanceDeactivated", "The issuance cannot be modified since it is already "
                 "deactivated."),
        ErrorDef("DeltaZero", "The delta cannot be zero."),
    )

    TotalIssuance = Storage(U128, default=0, docs="The total units issued in the system.")
    InactiveIssuance = Storage(U128, default=0,
                               docs="The total units of outstanding deactivated balance.")

    # -- balance primitives -----------------------------------------------------------------

    def free(self, who: bytes) -> int:
        return int(self.rt.system.account(who)["data"]["free"])

    def _issuance_add(self, delta: int) -> None:
        total: int = self.TotalIssuance.get(self.state)
        self.TotalIssuance.set(self.state, total + delta)

    def _set_free(self, who: bytes, new_free: int) -> None:
        """Write ``who``'s free balance, creating the account or reaping it (burning dust)."""
        system = self.rt.system
        info = system.account(who)
        existed = info["providers"] > 0
        if new_free < EXISTENTIAL_DEPOSIT:
            dust = new_free
            info["data"]["free"] = 0
            if existed:
                info["providers"] = 0
                system.set_account(who, info)
                if dust:
                    self._issuance_add(-dust)
                    self.deposit_event("DustLost", account=who, amount=dust)
            return
        info["data"]["free"] = new_free
        if not existed:
            info["providers"] = 1
            system.set_account(who, info)
            self.deposit_event("Endowed", account=who, free_balance=new_free)
        else:
            system.set_account(who, info)

    def transfer(self, source: bytes, dest: bytes, value: int, keep_alive: bool) -> None:
        """Move ``value`` from ``source`` to ``dest`` (``Currency::transfer`` semantics)."""
        if value == 0 or source == dest:
            return
        src_free = self.free(source)
        if value > src_free:
            raise self.error("InsufficientBalance")
        remaining = src_free - value
        if keep_alive and remaining < EXISTENTIAL_DEPOSIT:
            raise self.error("Expendability")
        dest_free = self.free(dest)
        if dest_free + value < EXISTENTIAL_DEPOSIT:
            raise self.error("ExistentialDeposit")
        if dest_free + value > U128_MAX:
            raise DispatchFailure(("Arithmetic", "Overflow"))
        self._set_free(source, remaining)
        self._set_free(dest, dest_free + value)
        self.deposit_event("Transfer", **{"from": source, "to": dest, "amount": value})

    def can_withdraw_preserving(self, who: bytes, amount: int) -> bool:
        """Whether ``amount`` can leave ``who`` with the account staying alive (fees)."""
        free = self.free(who)
        return amount <= free and free - amount >= EXISTENTIAL_DEPOSIT

    def withdraw_fee(self, who: bytes, amount: int) -> None:
        """Take a fee (``Preservation::Preserve``); the caller checked it is payable."""
        if amount == 0:
            return
        self._set_free(who, self.free(who) - amount)
        self._issuance_add(-amount)
        self.deposit_event("Withdraw", who=who, amount=amount)

    def deposit(self, who: bytes, amount: int) -> None:
        """Give back part of a fee (the refund of ``Pays::No`` calls)."""
        if amount == 0:
            return
        self._set_free(who, self.free(who) + amount)
        self._issuance_add(amount)
        self.deposit_event("Deposit", who=who, amount=amount)

    def endow(self, who: bytes, amount: int) -> None:
        """Genesis endowment: mint ``amount`` into ``who`` (no events at genesis)."""
        self._set_free(who, self.free(who) + amount)
        self._issuance_add(amount)

    # -- calls ------------------------------------------------------------------------------

    @call(0, Field("dest", MULTI_ADDRESS, "AccountIdLookupOf<T>"),
          Field("value", COMPACT_U128, "T::Balance"), weight=TRANSFER_ALLOW_DEATH)
    def transfer_allow_death(self, origin: Origin, dest: Any, value: int) -> None:
        """Transfer some liquid free balance to another account; the sender may be reaped."""
        who = origin.ensure_signed()
        self.transfer(who, self.rt.lookup(dest), value, keep_alive=False)

    @call(2, Field("source", MULTI_ADDRESS, "AccountIdLookupOf<T>"),
          Field("dest", MULTI_ADDRESS, "AccountIdLookupOf<T>"),
          Field("value", COMPACT_U128, "T::Balance"), weight=FORCE_TRANSFER)
    def force_transfer(self, origin: Origin, source: Any, dest: Any, value: int) -> None:
        """Exactly as `transfer_allow_death`, except the origin must be root."""
        origin.ensure_root()
        self.transfer(self.rt.lookup(source), self.rt.lookup(dest), value, keep_alive=False)

    @call(3, Field("dest", MULTI_ADDRESS, "AccountIdLookupOf<T>"),
          Field("value", COMPACT_U128, "T::Balance"), weight=TRANSFER_KEEP_ALIVE)
    def transfer_keep_alive(self, origin: Origin, dest: Any, value: int) -> None:
        """Same as `transfer_allow_death`, but fails rather than kill the sender's account."""
        who = origin.ensure_signed()
        self.transfer(who, self.rt.lookup(dest), value, keep_alive=True)

    @call(4, Field("dest", MULTI_ADDRESS, "AccountIdLookupOf<T>"),
          Field("keep_alive", BOOL, "bool"), weight=TRANSFER_ALL)
    def transfer_all(self, origin: Origin, dest: Any, keep_alive: bool) -> None:
        """Transfer the entire transferable balance from the caller account."""
        who = origin.ensure_signed()
        free = self.free(who)
        amount = free - EXISTENTIAL_DEPOSIT if keep_alive else free
        self.transfer(who, self.rt.lookup(dest), max(amount, 0), keep_alive=keep_alive)

    @call(8, Field("who", MULTI_ADDRESS, "AccountIdLookupOf<T>"),
          Field("new_free", COMPACT_U128, "T::Balance"), weight=FORCE_SET_BALANCE)
    def force_set_balance(self, origin: Origin, who: Any, new_free: int) -> None:
        """Set the regular balance of a given account (root only)."""
        origin.ensure_root()
        account = self.rt.lookup(who)
        if new_free < EXISTENTIAL_DEPOSIT:
            new_free = 0
        old = self.free(account)
        self._set_free(account, new_free)
        self._issuance_add(new_free - old)
        self.deposit_event("BalanceSet", who=account, free=new_free)

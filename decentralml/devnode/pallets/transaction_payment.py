"""``pallet_transaction_payment``: the fee model and the ``TransactionFeePaid`` event.

Fee of a signed extrinsic of ``len`` encoded bytes (length prefix included) whose call declares
weight ``w``, with ``e`` the weight its transaction extensions declare (:func:`extension_weight`)::

    fee = BASE_FEE + LENGTH_FEE_PER_BYTE * len + (w + e).ref_time * WEIGHT_FEE_PER_REF_TIME + tip

with ``BASE_FEE = WeightToFee(ExtrinsicBaseWeight) = 100_000_000`` planck (0.0001 UNIT),
``LENGTH_FEE_PER_BYTE = 100_000`` planck and ``WEIGHT_FEE_PER_REF_TIME = 1`` (``IdentityFee``);
the fee multiplier is fixed at 1. The whole fee (``partial_fee + tip``) is withdrawn before
dispatch (``Balances.Withdraw``) and burned; calls that report ``Pays::No`` (Sudo by the sudo key)
get the partial fee back (``Balances.Deposit``). ``TransactionFeePaid.actual_fee`` is always
exactly what the sender lost, failed dispatches included.
"""

from __future__ import annotations

from decentralml.devnode.pallet import ConstantDef, EventDef, Pallet, Storage
from decentralml.devnode.primitives import ACCOUNT_ID, Weight
from decentralml.devnode.scale import U8, U128, Field, Struct, simple_enum

EXTRINSIC_BASE_WEIGHT = Weight(100_000_000, 0)
BASE_FEE = 100_000_000
LENGTH_FEE_PER_BYTE = 100_000
WEIGHT_FEE_PER_REF_TIME = 1

FIXED_U128_ONE = 10**18


#: The runtime's DbWeight (RocksDbWeight) as ref_time.
_READ, _WRITE = 25_000_000, 100_000_000


def extension_weight(mortal: bool) -> Weight:
    """What the runtime's transaction extensions add to a signed extrinsic's weight (and so to
    its fee): frame_system's reference extension weights (its ``()`` ``ExtensionsWeightInfo``) and
    ``pallet_transaction_payment``'s ``charge_transaction_payment``, in picoseconds, with their
    database accesses at RocksDbWeight.

    CheckNonZeroSender 570_000, CheckSpecVersion 430_000, CheckTxVersion 455_000, CheckGenesis
    3_577_000 + 1 read, CheckMortality 6_703_000 (mortal) or 6_605_000 (immortal) + 1 read,
    CheckNonce 7_261_000 + 1 read + 1 write, CheckWeight 3_006_000, ChargeTransactionPayment
    35_979_000 + 1 read + 1 write, WeightReclaim 4_747_000 + 1 read + 1 write.
    """
    mortality = 6_703_000 if mortal else 6_605_000
    ref_time = (570_000 + 430_000 + 455_000 + 3_577_000 + mortality + 7_261_000 + 3_006_000
                + 35_979_000 + 4_747_000 + 5 * _READ + 3 * _WRITE)
    proof_size = 3_509 + 3_509 + 3_593 + 3_593 + 1_489
    return Weight(ref_time, proof_size)


def weight_to_fee(weight: Weight) -> int:
    return weight.ref_time * WEIGHT_FEE_PER_REF_TIME


def fee_parts(call_weight: Weight, length: int) -> tuple[int, int, int]:
    """(base_fee, len_fee, adjusted_weight_fee) of a ``call_weight`` call in ``length`` bytes."""
    return BASE_FEE, LENGTH_FEE_PER_BYTE * length, weight_to_fee(call_weight)


def partial_fee(call_weight: Weight, length: int) -> int:
    """The fee without tip, as ``TransactionPaymentApi::query_info`` reports it."""
    return sum(fee_parts(call_weight, length))


class TransactionPayment(Pallet):
    """Fee computation and the fee-paid event; no calls."""

    NAME = "TransactionPayment"
    INDEX = 3
    MODULE = "pallet_transaction_payment"

    CONSTANTS = (ConstantDef(
        "OperationalFeeMultiplier", U8, 5,
        "A fee multiplier for `Operational` extrinsics to compute \"virtual tip\" to boost their "
        "`priority`"),)
    EVENTS = (EventDef("TransactionFeePaid", (
        Field("who", ACCOUNT_ID, "T::AccountId"), Field("actual_fee", U128, "BalanceOf<T>"),
        Field("tip", U128, "BalanceOf<T>")),
        "A transaction fee `actual_fee`, of which `tip` was added to the minimum inclusion fee, "
        "has been paid by `who`."),)

    NextFeeMultiplier = Storage(
        Struct("sp_arithmetic::fixed_point::FixedU128", [Field(None, U128, "u128")]),
        default=FIXED_U128_ONE, docs="The fee multiplier (fixed at 1 on the devnode).")
    StorageVersion = Storage(simple_enum("pallet_transaction_payment::Releases",
                                         ["V1Ancient", "V2"]), default="V2")

    def genesis(self) -> None:
        self.NextFeeMultiplier.set(self.state, FIXED_U128_ONE)
        self.StorageVersion.set(self.state, "V2")

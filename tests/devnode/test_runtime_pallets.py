"""Balances, fees, Sudo, Utility and System through substrate-interface."""

from __future__ import annotations

import pytest
from substrateinterface import Keypair

from tests.devnode.helpers import (
    ALICE,
    BASE_FEE,
    ED,
    LENGTH_FEE_PER_BYTE,
    UNIT,
    Client,
    error_name,
    event,
    events,
)

pytestmark = pytest.mark.timeout(120)


def _new() -> Keypair:
    return Keypair.create_from_mnemonic(Keypair.generate_mnemonic())


# -- balances and fees ------------------------------------------------------------------------


def test_transfer_and_fee_to_the_unit(client: Client) -> None:
    sender, dest = client.fund(10 * UNIT), _new()
    call = client.call("Balances", "transfer_allow_death",
                       {"dest": dest.ss58_address, "value": 3 * UNIT})
    xt = client.si.create_signed_extrinsic(call, sender)
    info = client.si.get_payment_info(call, sender)
    r = client.si.submit_extrinsic(xt, wait_for_inclusion=True)
    assert r.is_success, r.error_message
    paid = event(r, "TransactionPayment", "TransactionFeePaid")
    assert paid == {"who": sender.ss58_address, "actual_fee": r.total_fee_amount, "tip": 0}
    weight = info["weight"]["ref_time"]
    assert r.total_fee_amount == BASE_FEE + LENGTH_FEE_PER_BYTE * len(xt.data) + weight
    assert info["partialFee"] == r.total_fee_amount
    assert event(r, "Balances", "Withdraw") == {"who": sender.ss58_address,
                                                "amount": r.total_fee_amount}
    assert event(r, "Balances", "Transfer") == {"from": sender.ss58_address,
                                                "to": dest.ss58_address, "amount": 3 * UNIT}
    assert ("System", "NewAccount") in events(r) and ("Balances", "Endowed") in events(r)
    assert client.free(sender) == 7 * UNIT - r.total_fee_amount
    assert client.free(dest) == 3 * UNIT
    assert events(r)[-1] == ("System", "ExtrinsicSuccess")
    assert r.weight["ref_time"] == weight + 100_000_000  # plus ExtrinsicBaseWeight


def test_tip_is_part_of_the_fee(client: Client) -> None:
    sender = client.fund(10 * UNIT)
    before = client.free(sender)
    r = client.submit(sender, "System", "remark", {"remark": b"hi"}, tip=12345)
    assert r.is_success
    paid = event(r, "TransactionPayment", "TransactionFeePaid")
    assert paid["tip"] == 12345
    assert client.free(sender) == before - paid["actual_fee"]


def test_fees_are_burned_from_total_issuance(client: Client) -> None:
    sender = client.fund(10 * UNIT)
    issuance = client.total_issuance()
    r = client.submit(sender, "System", "remark", {"remark": b"x"})
    assert client.total_issuance() == issuance - r.total_fee_amount


def test_balance_errors(client: Client) -> None:
    sender = client.fund(5 * UNIT)
    r = client.submit(sender, "Balances", "transfer_allow_death",
                      {"dest": _new().ss58_address, "value": 50 * UNIT})
    assert error_name(r) == "InsufficientBalance"
    assert r.error_message["type"] == "Module"
    r = client.submit(sender, "Balances", "transfer_allow_death",
                      {"dest": _new().ss58_address, "value": ED - 1})
    assert error_name(r) == "ExistentialDeposit"
    # leave ED / 2 after the fee: keep-alive refuses to let the sender die
    fee_probe = client.si.get_payment_info(
        client.call("Balances", "transfer_keep_alive",
                    {"dest": ALICE.ss58_address, "value": 1}), sender)["partialFee"]
    r = client.submit(sender, "Balances", "transfer_keep_alive",
                      {"dest": ALICE.ss58_address,
                       "value": client.free(sender) - fee_probe - ED // 2})
    assert error_name(r) == "Expendability"


def test_transfer_allow_death_reaps_the_sender(client: Client) -> None:
    sender = client.fund(2 * UNIT)
    fee_probe = client.si.get_payment_info(
        client.call("Balances", "transfer_allow_death",
                    {"dest": ALICE.ss58_address, "value": 1}), sender)["partialFee"]
    # leave less than ED after the fee: the account dies and the dust is burned
    before = client.free(sender)
    value = before - fee_probe - ED // 2
    issuance = client.total_issuance()
    r = client.submit(sender, "Balances", "transfer_allow_death",
                      {"dest": ALICE.ss58_address, "value": value})
    assert r.is_success, r.error_message
    dust = before - value - r.total_fee_amount
    assert 0 < dust < ED
    assert event(r, "Balances", "DustLost") == {"account": sender.ss58_address, "amount": dust}
    assert event(r, "System", "KilledAccount") == {"account": sender.ss58_address}
    account = client.si.query("System", "Account", [sender.ss58_address]).value
    assert account["providers"] == 0 and account["nonce"] == 0
    assert client.total_issuance() == issuance - r.total_fee_amount - dust


def test_transfer_all(client: Client) -> None:
    sender, dest = client.fund(3 * UNIT), _new()
    r = client.submit(sender, "Balances", "transfer_all",
                      {"dest": dest.ss58_address, "keep_alive": True})
    assert r.is_success, r.error_message
    assert client.free(sender) == ED


def test_force_set_balance_needs_root(client: Client) -> None:
    who = _new()
    call = client.call("Balances", "force_set_balance",
                       {"who": who.ss58_address, "new_free": 7 * UNIT})
    r = client.submit_call(client.fund(UNIT), call)
    assert r.error_message == {"type": "System", "name": "BadOrigin", "docs": "Bad origin"}
    issuance = client.total_issuance()
    before = client.free(ALICE)
    r = client.submit(ALICE, "Sudo", "sudo", {"call": call})
    assert r.is_success, r.error_message
    assert event(r, "Sudo", "Sudid") == {"sudo_result": {"Ok": ()}}
    assert event(r, "Balances", "BalanceSet") == {"who": who.ss58_address, "free": 7 * UNIT}
    assert r.total_fee_amount == 0  # sudo by the key is fee-free (Pays::No)
    assert client.free(ALICE) == before
    assert client.free(who) == 7 * UNIT
    assert client.total_issuance() == issuance + 7 * UNIT


def test_sudo_errors(client: Client) -> None:
    call = client.call("System", "remark", {"remark": b""})
    r = client.submit(client.fund(UNIT), "Sudo", "sudo", {"call": call})
    assert error_name(r) == "RequireSudo"
    # a failing root call is reported inside Sudid; the sudo extrinsic itself succeeds
    bad = client.call("Balances", "force_transfer", {
        "source": _new().ss58_address, "dest": ALICE.ss58_address, "value": UNIT})
    r = client.submit(ALICE, "Sudo", "sudo", {"call": bad})
    assert r.is_success
    result = event(r, "Sudo", "Sudid")["sudo_result"]
    assert "Err" in result and "Module" in result["Err"]


def test_sudo_as_and_key(client: Client) -> None:
    who = client.fund(5 * UNIT)
    call = client.call("Balances", "transfer_keep_alive",
                       {"dest": ALICE.ss58_address, "value": UNIT})
    r = client.submit(ALICE, "Sudo", "sudo_as", {"who": who.ss58_address, "call": call})
    assert r.is_success and event(r, "Sudo", "SudoAsDone") == {"sudo_result": {"Ok": ()}}
    assert client.free(who) == 4 * UNIT
    assert client.si.query("Sudo", "Key").value == ALICE.ss58_address


# -- utility -------------------------------------------------------------------------------


def test_batch_all_is_atomic(client: Client) -> None:
    sender, a, b = client.fund(10 * UNIT), _new(), _new()
    calls = [client.call("Balances", "transfer_allow_death", {"dest": a.ss58_address,
                                                              "value": UNIT}),
             client.call("Balances", "transfer_allow_death", {"dest": b.ss58_address,
                                                              "value": 100 * UNIT})]
    before = client.free(sender)
    r = client.submit(sender, "Utility", "batch_all", {"calls": calls})
    assert error_name(r) == "InsufficientBalance"
    assert client.free(a) == 0  # the first transfer was reverted too
    assert client.free(sender) == before - r.total_fee_amount
    assert [n for m, n in events(r) if m != "System"] == [
        ("Withdraw"), ("TransactionFeePaid")]


def test_batch_stops_at_first_error_and_keeps_earlier_calls(client: Client) -> None:
    sender, a, b = client.fund(10 * UNIT), _new(), _new()
    calls = [client.call("Balances", "transfer_allow_death", {"dest": a.ss58_address,
                                                              "value": UNIT}),
             client.call("Balances", "transfer_allow_death", {"dest": b.ss58_address,
                                                              "value": 100 * UNIT}),
             client.call("Balances", "transfer_allow_death", {"dest": b.ss58_address,
                                                              "value": UNIT})]
    r = client.submit(sender, "Utility", "batch", {"calls": calls})
    assert r.is_success
    interrupted = event(r, "Utility", "BatchInterrupted")
    assert interrupted["index"] == 1
    assert "Module" in interrupted["error"]
    assert client.free(a) == UNIT and client.free(b) == 0


def test_force_batch_continues(client: Client) -> None:
    sender, a = client.fund(10 * UNIT), _new()
    calls = [client.call("Balances", "transfer_allow_death", {"dest": a.ss58_address,
                                                              "value": 100 * UNIT}),
             client.call("Balances", "transfer_allow_death", {"dest": a.ss58_address,
                                                              "value": UNIT})]
    r = client.submit(sender, "Utility", "force_batch", {"calls": calls})
    assert r.is_success
    assert [n for m, n in events(r) if m == "Utility"] == [
        "ItemFailed", "ItemCompleted", "BatchCompletedWithErrors"]
    assert client.free(a) == UNIT


def test_batch_weight_is_the_sum(client: Client) -> None:
    sender = client.fund(UNIT)
    one = client.call("System", "remark", {"remark": b"a"})
    def weight(call: object) -> int:
        return int(client.si.get_payment_info(call, sender)["weight"]["ref_time"])

    # every figure includes the transaction extensions' weight once per extrinsic: differences
    # against an empty batch leave the calls' own weights
    empty = weight(client.call("Utility", "batch", {"calls": []}))
    w1 = weight(one)
    w3 = weight(client.call("Utility", "batch", {"calls": [one] * 3}))
    assert w3 - empty > 3 * (w1 - empty)


# -- system / timestamp ------------------------------------------------------------------------


def test_remark_with_event(client: Client) -> None:
    from decentralml.devnode.hashing import blake2_256

    sender = client.fund(UNIT)
    r = client.submit(sender, "System", "remark_with_event", {"remark": b"hello"})
    assert event(r, "System", "Remarked") == {"sender": sender.ss58_address,
                                              "hash": "0x" + blake2_256(b"hello").hex()}


def test_every_block_has_a_timestamp_inherent(client: Client) -> None:
    client.new_blocks(1)
    block = client.si.get_block()
    first = block["extrinsics"][0].value
    assert first["call"]["call_module"] == "Timestamp"
    assert first["call"]["call_function"] == "set"
    now = client.si.query("Timestamp", "Now").value
    assert first["call"]["call_args"][0]["value"] == now
    parent_now = client.si.query("Timestamp", "Now", block_hash=block["header"]["parentHash"])
    assert now > parent_now.value


def test_timestamp_set_cannot_be_signed(client: Client) -> None:
    r = client.submit(client.fund(UNIT), "Timestamp", "set", {"now": 1})
    assert r.error_message["name"] == "BadOrigin"


def test_constants(client: Client) -> None:
    si = client.si
    assert si.get_constant("Balances", "ExistentialDeposit").value == ED
    assert si.get_constant("DecentralML", "MinReward").value == ED
    assert si.get_constant("DecentralML", "MaxAssignments").value == 64
    assert si.get_constant("DecentralML", "PalletId").value == "0x" + b"decentml".hex()
    assert si.get_constant("System", "SS58Prefix").value == 42
    assert si.get_constant("System", "Version").value["spec_name"] == "decentralml-devnode"


def test_dev_accounts_are_endowed(fresh_client: Client) -> None:
    for name in ("Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"):
        kp = Keypair.create_from_uri(f"//{name}")
        assert fresh_client.free(kp) == 10**18
    assert fresh_client.total_issuance() == 6 * 10**18
    assert fresh_client.si.rpc_request("system_chainType", [])["result"] == "Development"


@pytest.mark.slow  # substrate-interface encodes and decodes 10,923 calls client-side
def test_batch_limit(client: Client) -> None:
    sender = client.fund(10 * UNIT)
    remark = client.call("System", "remark", {"remark": b""})
    r = client.submit(sender, "Utility", "batch", {"calls": [remark] * 10_923})
    assert error_name(r) == "TooManyCalls"


def test_overweight_extrinsic_is_refused(client: Client) -> None:
    from substrateinterface.exceptions import SubstrateRequestException

    call = client.call("Sudo", "sudo_unchecked_weight", {
        "call": client.call("System", "remark", {"remark": b""}),
        "weight": {"ref_time": 10**13, "proof_size": 0}})
    xt = client.si.create_signed_extrinsic(call, ALICE)
    with pytest.raises(SubstrateRequestException) as info:
        client.si.submit_extrinsic(xt, wait_for_inclusion=True)
    assert info.value.args[0]["data"] == "Transaction would exhaust the block limits"

"""Transaction validity (JSON-RPC 1010, synchronous), eras, key types, nonces and dispatch rules."""

from __future__ import annotations

import pytest
from scalecodec.base import ScaleBytes
from substrateinterface import Keypair, KeypairType
from substrateinterface.exceptions import SubstrateRequestException

from tests.devnode.helpers import ALICE, UNIT, Client

pytestmark = pytest.mark.timeout(120)


def _new(crypto: int = KeypairType.SR25519) -> Keypair:
    if crypto == KeypairType.ED25519:
        import os
        return Keypair.create_from_seed("0x" + os.urandom(32).hex(), crypto_type=crypto)
    return Keypair.create_from_mnemonic(Keypair.generate_mnemonic(), crypto_type=crypto)


def _rejected(client: Client, xt: object) -> dict[str, object]:
    with pytest.raises(SubstrateRequestException) as info:
        client.si.submit_extrinsic(xt, wait_for_inclusion=True)
    err = info.value.args[0]
    assert isinstance(err, dict)
    return err


def _transfer(client: Client, value: int = UNIT) -> object:
    return client.call("Balances", "transfer_keep_alive",
                       {"dest": ALICE.ss58_address, "value": value})


def test_immortal_and_mortal_eras(client: Client) -> None:
    sender = client.fund(10 * UNIT)
    r = client.submit_call(sender, _transfer(client))
    assert r.is_success
    assert r.extrinsic.value["era"] == "00"
    r = client.submit_call(sender, _transfer(client), era={"period": 64})
    assert r.is_success, r.error_message
    assert r.extrinsic.value["era"] != "00"


def test_ed25519_signer(client: Client) -> None:
    ed = client.fund(10 * UNIT, _new(KeypairType.ED25519))
    r = client.submit_call(ed, _transfer(client), era={"period": 16})
    assert r.is_success, r.error_message
    assert client.free(ed) == 9 * UNIT - r.total_fee_amount


def test_bad_signature(client: Client) -> None:
    sender = client.fund(10 * UNIT)
    xt = client.si.create_signed_extrinsic(_transfer(client), sender)
    raw = bytearray(xt.data.data)
    sig_at = raw.index(bytes.fromhex(xt.value["signature"]["Sr25519"][2:]))
    raw[sig_at + 5] ^= 0xFF
    xt.data = ScaleBytes(bytes(raw))
    err = _rejected(client, xt)
    assert err == {"code": 1010, "message": "Invalid Transaction",
                   "data": "Transaction has a bad signature"}


def test_signature_by_another_key(client: Client) -> None:
    sender, other = client.fund(10 * UNIT), _new()
    payload_sig = other.sign(b"not the payload")
    xt = client.si.create_signed_extrinsic(_transfer(client), sender,
                                           signature="0x" + payload_sig.hex())
    assert _rejected(client, xt)["data"] == "Transaction has a bad signature"


def test_stale_and_future_nonce(client: Client) -> None:
    sender = client.fund(10 * UNIT)
    assert client.submit_call(sender, _transfer(client)).is_success
    stale = client.si.create_signed_extrinsic(_transfer(client), sender, nonce=0)
    assert _rejected(client, stale) == {"code": 1010, "message": "Invalid Transaction",
                                        "data": "Transaction is outdated"}
    future = client.si.create_signed_extrinsic(_transfer(client), sender, nonce=5)
    assert _rejected(client, future)["data"] == "Transaction will be valid in the future"
    # nothing was included for the rejected ones
    assert client.si.get_account_nonce(sender.ss58_address) == 1


def test_expired_mortal_era(client: Client) -> None:
    sender = client.fund(10 * UNIT)
    xt = client.si.create_signed_extrinsic(_transfer(client), sender, era={"period": 4})
    client.new_blocks(8)
    err = _rejected(client, xt)
    assert err["code"] == 1010
    assert err["data"] == "Transaction is outdated"


def test_ancient_birth_block(client: Client) -> None:
    sender = client.fund(10 * UNIT)
    head = client.block_number()
    assert head < 4000
    # an era whose birth block (4000) the node does not know: rejected before the signature
    xt = client.si.create_signed_extrinsic(
        _transfer(client), sender, era={"period": 4096, "current": 4000},
        signature="0x" + "00" * 64)
    assert _rejected(client, xt)["data"] == "Transaction has an ancient birth block"


def test_cannot_pay_fee(client: Client) -> None:
    broke = _new()
    xt = client.si.create_signed_extrinsic(_transfer(client), broke)
    assert _rejected(client, xt) == {
        "code": 1010, "message": "Invalid Transaction",
        "data": "Inability to pay some fees (e.g. account balance too low)"}


def test_validity_errors_come_from_author_submit_extrinsic_too(client: Client) -> None:
    xt = client.si.create_signed_extrinsic(_transfer(client), _new())
    with pytest.raises(SubstrateRequestException) as info:
        client.si.submit_extrinsic(xt)
    assert info.value.args[0]["code"] == 1010


def test_submit_without_waiting_then_find_the_receipt(client: Client) -> None:
    sender = client.fund(10 * UNIT)
    xt = client.si.create_signed_extrinsic(_transfer(client), sender)
    receipt = client.si.submit_extrinsic(xt)
    assert receipt.extrinsic_hash == "0x" + xt.extrinsic_hash.hex()
    block = client.si.get_block()
    assert any(e.extrinsic_hash == xt.extrinsic_hash for e in block["extrinsics"][1:])


def test_unsigned_extrinsic_is_refused(client: Client) -> None:
    xt = client.si.create_unsigned_extrinsic(client.call("System", "remark", {"remark": b""}))
    err = _rejected(client, xt)
    assert err["code"] == 1010 and err["data"] == "Transaction call is not expected"


def test_garbage_extrinsics(client: Client) -> None:
    def error(payload: str) -> int:
        with pytest.raises(SubstrateRequestException) as info:
            client.si.rpc_request("author_submitExtrinsic", [payload])
        return int(info.value.args[0]["code"])

    for payload in ("0x", "0x00", "0x1084deadbeef", "0x" + "ff" * 40, "0x2c8400" + "00" * 10):
        assert error(payload) == 1001, payload
    assert error("not hex") == -32602
    assert client.block_number() >= 0  # still serving


def test_account_nonce_runtime_api_and_rpc(client: Client) -> None:
    sender = client.fund(10 * UNIT)
    client.submit_call(sender, _transfer(client))
    assert client.si.get_account_nonce(sender.ss58_address) == 1
    assert client.si.rpc_request("system_accountNextIndex",
                                 [sender.ss58_address])["result"] == 1
    assert client.si.runtime_call("AccountNonceApi", "account_nonce",
                                  [sender.ss58_address]).value == 1


def test_fee_details_and_payment_rpc(client: Client) -> None:
    sender = client.fund(10 * UNIT)
    call = _transfer(client)
    xt = client.si.create_signed_extrinsic(call, sender)
    details = client.si.runtime_call("TransactionPaymentApi", "query_fee_details",
                                     [xt, len(xt.data)]).value
    inc = details["inclusion_fee"]
    info = client.si.get_payment_info(call, sender)
    assert inc["base_fee"] + inc["len_fee"] + inc["adjusted_weight_fee"] == info["partialFee"]
    rpc_info = client.si.rpc_request("payment_queryInfo", [str(xt.data)])["result"]
    assert int(rpc_info["partialFee"]) == info["partialFee"]
    assert rpc_info["class"] == "normal"


def test_failed_dispatch_bumps_nonce_and_pays(client: Client) -> None:
    sender = client.fund(2 * UNIT)
    before = client.free(sender)
    r = client.submit_call(sender, _transfer(client, 50 * UNIT))
    assert r.is_success is False
    assert client.si.get_account_nonce(sender.ss58_address) == 1
    assert client.free(sender) == before - r.total_fee_amount

"""Test helpers: a thin wrapper over unmodified substrate-interface, and dev/fresh accounts."""

from __future__ import annotations

from typing import Any

from substrateinterface import ExtrinsicReceipt, Keypair, SubstrateInterface

UNIT = 10**12
ED = 1_000_000_000
ALICE = Keypair.create_from_uri("//Alice")
BOB = Keypair.create_from_uri("//Bob")
CHARLIE = Keypair.create_from_uri("//Charlie")

# The fee formula documented in decentralml/devnode/pallets/transaction_payment.py.
BASE_FEE = 100_000_000
LENGTH_FEE_PER_BYTE = 100_000


class Client:
    """What every test does with the chain, written with substrate-interface only."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.si = SubstrateInterface(url=url)

    def close(self) -> None:
        self.si.close()

    def call(self, module: str, function: str, params: dict[str, Any] | None = None) -> Any:
        return self.si.compose_call(module, function, params or {})

    def submit(self, kp: Keypair, module: str, function: str,
               params: dict[str, Any] | None = None, **kwargs: Any) -> ExtrinsicReceipt:
        xt = self.si.create_signed_extrinsic(self.call(module, function, params), kp, **kwargs)
        return self.si.submit_extrinsic(xt, wait_for_inclusion=True)

    def submit_call(self, kp: Keypair, call: Any, **kwargs: Any) -> ExtrinsicReceipt:
        xt = self.si.create_signed_extrinsic(call, kp, **kwargs)
        return self.si.submit_extrinsic(xt, wait_for_inclusion=True)

    def free(self, who: str | Keypair) -> int:
        address = who.ss58_address if isinstance(who, Keypair) else who
        return int(self.si.query("System", "Account", [address]).value["data"]["free"])

    def total_issuance(self) -> int:
        return int(self.si.query("Balances", "TotalIssuance").value)

    def block_number(self) -> int:
        return int(self.si.get_block_header()["header"]["number"])

    def new_blocks(self, count: int = 1) -> str:
        return str(self.si.rpc_request("dev_newBlock", [{"count": count}])["result"])

    def fund(self, amount: int = 1_000 * UNIT, kp: Keypair | None = None) -> Keypair:
        """A fresh sr25519 account with ``amount`` from //Alice."""
        kp = kp or Keypair.create_from_mnemonic(Keypair.generate_mnemonic())
        r = self.submit(ALICE, "Balances", "transfer_keep_alive",
                        {"dest": kp.ss58_address, "value": amount})
        assert r.is_success, r.error_message
        return kp

    def create_task(self, kp: Keypair, **overrides: Any) -> ExtrinsicReceipt:
        params: dict[str, Any] = {
            "task_type": "ModelContributor", "question": b"Train on MNIST", "reward": UNIT,
            "max_assignments": 2, "validation_strategy": "ManualAccept",
            "assets_cid": b"bafybeigdyrzt", "assets_storage": "Ipfs",
            "expiration_block": self.block_number() + 1_000,
        }
        params.update(overrides)
        return self.submit(kp, "DecentralML", "create_task", params)


def events(receipt: ExtrinsicReceipt) -> list[tuple[str, str]]:
    return [(e.value["module_id"], e.value["event_id"]) for e in receipt.triggered_events]


def event(receipt: ExtrinsicReceipt, module: str, name: str) -> dict[str, Any]:
    for e in receipt.triggered_events:
        if e.value["module_id"] == module and e.value["event_id"] == name:
            return dict(e.value["attributes"] or {})
    raise AssertionError(f"no {module}.{name} in {events(receipt)}")


def error_name(receipt: ExtrinsicReceipt) -> str | None:
    assert receipt.is_success is False, "expected a failed extrinsic"
    return str(receipt.error_message["name"])


def escrow_address(si: SubstrateInterface, task_id: int) -> str:
    from decentralml.chain.types import escrow_account_id
    return str(si.ss58_encode(escrow_account_id(task_id)))

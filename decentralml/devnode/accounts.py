"""The well-known development accounts (//Alice .. //Ferdie), endowed at genesis.

Derived with substrate-interface's ``Keypair.create_from_uri`` (sr25519 from the standard dev
phrase), so they are the very accounts a client gets from ``Keypair.create_from_uri("//Alice")``.
"""

from __future__ import annotations

from substrateinterface import Keypair

DEV_NAMES = ("Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie")
UNIT = 10**12
#: 1,000,000 UNIT per dev account.
DEV_ENDOWMENT = 1_000_000 * UNIT


def dev_account(name: str) -> bytes:
    """The sr25519 public key (AccountId) of ``//name``."""
    return bytes(Keypair.create_from_uri(f"//{name}").public_key)


def dev_accounts() -> list[tuple[str, bytes]]:
    return [(name, dev_account(name)) for name in DEV_NAMES]

"""Accounts round-trip through a keyring backend in a temp dir and through polkadot.js JSON."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backends import fail
from keyrings.alt.file import PlaintextKeyring
from substrateinterface import Keypair, KeypairType

from decentralml.accounts import (
    SERVICE,
    AccountNotFound,
    Accounts,
    KeyringUnavailable,
    dev_keypair,
)
from decentralml.errors import ConfigurationError, InvalidInput
from decentralml.keystore import KeystoreLocked, Password, WrongPassword

ALICE_ADDRESS = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


@pytest.fixture
def backend(tmp_path: Path) -> PlaintextKeyring:
    kr = PlaintextKeyring()
    kr.file_path = str(tmp_path / "keyring.cfg")
    return kr


@pytest.fixture
def accounts(tmp_path: Path, backend: PlaintextKeyring) -> Accounts:
    return Accounts(home=tmp_path / "home", backend=backend)


def test_create_list_get_keypair_delete(accounts: Accounts, backend: PlaintextKeyring) -> None:
    account, mnemonic = accounts.create("alice")
    assert len(mnemonic.split()) == 12
    assert accounts.list() == [account]
    assert accounts.get("alice") == account
    keypair = accounts.keypair("alice")
    assert keypair.ss58_address == account.address
    assert keypair.ss58_address == Keypair.create_from_mnemonic(mnemonic).ss58_address
    sig = keypair.sign(b"msg")
    assert Keypair(ss58_address=account.address).verify(b"msg", sig)

    # the index has no secret; the keyring has it under our service name
    index = accounts.index_path.read_text()
    assert mnemonic not in index and "private" not in index
    assert mnemonic in (backend.get_password(SERVICE, "alice") or "")

    accounts.delete("alice")
    assert accounts.list() == []
    assert backend.get_password(SERVICE, "alice") is None
    with pytest.raises(AccountNotFound):
        accounts.keypair("alice")


def test_secrets_never_in_repr(accounts: Accounts) -> None:
    account, mnemonic = accounts.create("bob")
    keypair = accounts.keypair("bob")
    for text in (repr(account), str(account), repr(accounts), repr(keypair),
                 repr(accounts.list())):
        assert mnemonic.split()[0] + " " + mnemonic.split()[1] not in text
        assert keypair.private_key.hex() not in text


def test_import_mnemonic_and_persisted_index(tmp_path: Path, backend: PlaintextKeyring) -> None:
    mnemonic = Keypair.generate_mnemonic()
    first = Accounts(home=tmp_path / "h", backend=backend)
    account = first.import_mnemonic("carol", mnemonic, crypto_type="ed25519")
    assert account.crypto_type == "ed25519"
    assert account.source == "mnemonic"
    again = Accounts(home=tmp_path / "h", backend=backend)  # a fresh process reads the index
    keypair = again.keypair("carol")
    assert keypair.crypto_type == KeypairType.ED25519
    assert keypair.ss58_address == Keypair.create_from_mnemonic(
        mnemonic, crypto_type=KeypairType.ED25519).ss58_address


def test_polkadot_js_json_round_trip(accounts: Accounts, tmp_path: Path) -> None:
    account, _ = accounts.create("dave")
    exported = accounts.export_json("dave", "s3cret")
    assert exported["address"] == account.address
    assert exported["encoding"]["content"] == ["pkcs8", "sr25519"]
    assert "s3cret" not in json.dumps(exported)
    # substrate-interface (the same format polkadot.js reads) decrypts it to the same key
    assert Keypair.create_from_encrypted_json(exported, "s3cret").ss58_address == account.address

    path = tmp_path / "dave.json"
    path.write_text(json.dumps(exported))
    imported = accounts.import_json("dave-copy", path, "s3cret")
    assert imported.address == account.address
    assert imported.source == "json"
    assert accounts.keypair("dave-copy").sign(b"x")
    # and once more from the imported copy (private key, no mnemonic)
    twice = accounts.export_json("dave-copy", "other")
    assert Keypair.create_from_encrypted_json(twice, "other").ss58_address == account.address


def test_import_polkadot_js_export_of_a_known_key(accounts: Accounts) -> None:
    alice = Keypair.create_from_uri("//Alice")
    exported = alice.export_to_encrypted_json("pw", name="alice")
    account = accounts.import_json("alice", json.dumps(exported), "pw")
    assert account.address == ALICE_ADDRESS


def test_bad_inputs(accounts: Accounts) -> None:
    accounts.create("erin")
    with pytest.raises(InvalidInput, match="already exists"):
        accounts.create("erin")
    with pytest.raises(InvalidInput) as exc:
        accounts.create("../evil")
    assert exc.value.field == "name"
    with pytest.raises(InvalidInput) as exc:
        accounts.import_mnemonic("x", "not a mnemonic at all")
    assert exc.value.field == "mnemonic"
    exported = accounts.export_json("erin", "right")
    with pytest.raises(InvalidInput) as exc:
        accounts.import_json("y", exported, "wrong")
    assert exc.value.field == "password"
    with pytest.raises(InvalidInput) as exc:
        accounts.import_json("y", "{not json", "pw")
    assert exc.value.field == "json"
    with pytest.raises(InvalidInput):
        accounts.create("z", crypto_type="ecdsa")  # type: ignore[arg-type]
    with pytest.raises(AccountNotFound):
        accounts.delete("nobody")
    assert [a.name for a in accounts.list()] == ["erin"]


def test_os_keyring_without_backend_gets_a_clear_error(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(KeyringUnavailable) as exc:
            Accounts(home=tmp_path, keyring="os").create("frank")
    finally:
        keyring.set_keyring(previous)
    message = str(exc.value)
    assert "PYTHON_KEYRING_BACKEND" in message and "DECENTRALML_KEYRING_PASSWORD" in message
    assert "pip install" not in message
    assert isinstance(exc.value, ConfigurationError)
    assert Accounts(home=tmp_path).list() == []  # nothing half-written


def test_locked_keystore_names_every_way_to_unlock_it(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DECENTRALML_KEYRING_PASSWORD", raising=False)
    monkeypatch.delenv("DECENTRALML_KEYRING_PASSWORD_FILE", raising=False)
    with pytest.raises(KeystoreLocked) as exc:
        Accounts(home=tmp_path).create("frank")
    message = str(exc.value)
    for way in ("--keyring-password-file", "DECENTRALML_KEYRING_PASSWORD_FILE",
                "DECENTRALML_KEYRING_PASSWORD", "terminal"):
        assert way in message
    assert "install" not in message
    assert Accounts(home=tmp_path).list() == []  # nothing half-written


def test_prompting_backend_without_terminal_is_reported(tmp_path: Path) -> None:
    class Prompting(PlaintextKeyring):
        def set_password(self, *args: Any) -> None:
            raise EOFError  # what getpass does with no terminal

    kr = Prompting()
    kr.file_path = str(tmp_path / "k.cfg")
    with pytest.raises(KeyringUnavailable):
        Accounts(home=tmp_path, backend=kr).create("gina")


def test_keystore_under_home_one_password(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DECENTRALML_KEYRING_PASSWORD", "file-pass")
    store = Accounts(home=tmp_path)
    account, mnemonic = store.create("hank")
    secret_file = tmp_path / "keystore" / "hank.json"
    assert secret_file.is_file() and (secret_file.stat().st_mode & 0o077) == 0
    assert mnemonic.split()[0] not in secret_file.read_text()
    assert account.keyring == "file"
    assert Accounts(home=tmp_path).keypair("hank").ss58_address == account.address
    # a listing and an address never need the password
    monkeypatch.delenv("DECENTRALML_KEYRING_PASSWORD")
    assert [a.name for a in Accounts(home=tmp_path).list()] == ["hank"]
    assert Accounts(home=tmp_path).get("hank").address == account.address
    with pytest.raises(WrongPassword, match="does not open"):
        Accounts(home=tmp_path, password="wrong-pass").keypair("hank")
    # a second account must be sealed with the same password, not start a second one
    with pytest.raises(WrongPassword):
        Accounts(home=tmp_path, password="wrong-pass").create("ivy")
    assert [a.name for a in Accounts(home=tmp_path).list()] == ["hank"]
    calls: list[bool] = []

    def source(new: bool) -> Password:
        calls.append(new)
        return Password("file-pass", "test")

    once = Accounts(home=tmp_path, password=source)
    once.create("ivy")
    once.keypair("ivy")
    once.keypair("hank")
    assert calls == [False]  # asked once, for a keystore that already had an account
    once.delete("ivy")
    assert not (tmp_path / "keystore" / "ivy.json").exists()


def test_keystore_refuses_tampered_and_hostile_files(tmp_path: Path) -> None:
    store = Accounts(home=tmp_path, password="pw")
    store.create("jo")
    path = tmp_path / "keystore" / "jo.json"
    data = json.loads(path.read_text())
    raw = bytearray(base64.b64decode(data["encoded"]))
    raw[-1] ^= 1
    path.write_text(json.dumps({**data, "encoded": base64.b64encode(raw).decode()}))
    with pytest.raises(WrongPassword):
        Accounts(home=tmp_path, password="pw").keypair("jo")
    raw[32:36] = (1 << 30).to_bytes(4, "little")  # an scrypt N that would take gigabytes
    path.write_text(json.dumps({**data, "encoded": base64.b64encode(raw).decode()}))
    with pytest.raises(ConfigurationError, match="scrypt parameters"):
        Accounts(home=tmp_path, password="pw").keypair("jo")


def test_dev_accounts_only_on_dev_chains() -> None:
    assert dev_keypair("//Alice", chain_type="Development").ss58_address == ALICE_ADDRESS
    assert dev_keypair("//Alice", chain_type="Local").ss58_address == ALICE_ADDRESS
    with pytest.raises(ConfigurationError, match="allow_dev_accounts"):
        dev_keypair("//Alice", chain_type="Live")
    assert dev_keypair("//Alice", chain_type="Live", force=True).ss58_address == ALICE_ADDRESS

"""Local signing accounts: secrets in an encrypted keystore, a secret-free index on disk.

An account is a name, an SS58 address and a crypto type, listed in
``<home>/accounts.json`` (``home`` is :func:`decentralml.config.home_dir`). Its secret (the
mnemonic, or the private key of an imported polkadot.js JSON) is never logged, never sent
anywhere, and never part of a ``repr``. It lives in one of two places, recorded per account:

* ``file`` (the default): the encrypted keystore under ``<home>/keystore`` (see
  :mod:`decentralml.keystore`), opened with one password per process. Works the same on a laptop
  and on a headless server, and moves with ``$DECENTRALML_HOME``.
* ``os``: the OS keyring through ``keyring`` (service name ``decentralml``), an explicit opt-in
  (``keyring = "os"`` in config.toml, ``DECENTRALML_KEYRING=os`` or ``--keyring os``).

The keystore password comes from the ``password`` given to :class:`Accounts` (the CLI passes one
that reads a file, its handed-over environment value or a prompt); by default from the file named
by ``keyring_password_file`` / ``DECENTRALML_KEYRING_PASSWORD_FILE``, else from
``DECENTRALML_KEYRING_PASSWORD``. It is asked for only when a secret is read or written: listing
accounts or resolving a name to an address never needs it.

Dev accounts (``//Alice`` ... ``//Ferdie``) are well known and therefore only allowed on chains
whose ``system_chainType`` is Development or Local, unless explicitly forced.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from decentralml.config import ENV_KEYRING, home_dir, load_settings
from decentralml.errors import ConfigurationError, DecentralMLError, InvalidInput
from decentralml.keystore import (
    ENV_KEYRING_PASSWORD,
    Keystore,
    KeystoreLocked,
    Password,
    PasswordSource,
    read_password_file,
)

SERVICE = "decentralml"
DEV_ACCOUNTS = ("Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie")
DEV_CHAIN_TYPES = ("Development", "Local")

CryptoType = Literal["sr25519", "ed25519"]
Source = Literal["created", "mnemonic", "json"]
KeyringKind = Literal["file", "os"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

KEYRING_HELP = (
    "the OS keyring was chosen (keyring = \"os\", DECENTRALML_KEYRING=os or --keyring os) but "
    "it has no usable backend here: unlock or configure one (Secret Service/GNOME Keyring or "
    "KWallet on Linux, Keychain on macOS, Credential Locker on Windows, or any backend named in "
    "PYTHON_KEYRING_BACKEND), or use the default encrypted keystore under $DECENTRALML_HOME "
    "(drop the keyring setting; its password comes from DECENTRALML_KEYRING_PASSWORD_FILE, "
    "DECENTRALML_KEYRING_PASSWORD or a prompt)"
)


def password_from_settings(home: str | Path | None = None) -> PasswordSource:
    """The library's default password source: the configured password file, else the
    ``DECENTRALML_KEYRING_PASSWORD`` environment variable (the CLI removes that variable from
    its environment at start and uses its own source; see ``decentralml.cli.password``)."""
    root = home_dir(home)

    def source(new: bool) -> Password:
        path = load_settings(home).keyring_password_file
        if path:
            return read_password_file(path)
        value = os.environ.get(ENV_KEYRING_PASSWORD)
        if value:
            return Password(value, ENV_KEYRING_PASSWORD)
        raise KeystoreLocked(root / "keystore")

    return source


class KeyringUnavailable(ConfigurationError):
    """No keyring backend can store secrets here; the message says how to configure one."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(KEYRING_HELP + (f" ({detail})" if detail else ""))


class AccountNotFound(DecentralMLError, KeyError):
    """No account with that name in the index (or its secret is gone from the keyring)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "account not found"


class Account(BaseModel):
    """A stored account as listed: no secret in here, ever."""

    model_config = ConfigDict(frozen=True)

    name: str
    address: str
    crypto_type: CryptoType
    source: Source
    #: where its secret is; indexes written before the keystore existed used the OS keyring
    keyring: KeyringKind = "os"


def _crypto_type_id(crypto_type: str) -> int:
    from substrateinterface import KeypairType
    if crypto_type == "sr25519":
        return int(KeypairType.SR25519)
    if crypto_type == "ed25519":
        return int(KeypairType.ED25519)
    raise InvalidInput("crypto_type", f"{crypto_type!r}", "sr25519 or ed25519")


def _crypto_type_name(type_id: int) -> CryptoType:
    from substrateinterface import KeypairType
    return "sr25519" if type_id == KeypairType.SR25519 else "ed25519"


def dev_keypair(uri: str, *, chain_type: str, force: bool = False, ss58_format: int = 42) -> Any:
    """The keypair of a dev URI such as ``//Alice``, if the chain is a development chain.

    Dev keys are public knowledge; on a live chain anyone could spend from them, so they are
    refused unless ``force``.
    """
    from substrateinterface import Keypair
    if not uri.startswith("//") or len(uri) < 3:
        raise InvalidInput("signer", f"{uri!r} is not a dev URI", "//Alice .. //Ferdie")
    if chain_type not in DEV_CHAIN_TYPES and not force:
        raise ConfigurationError(
            f"dev account {uri} refused: the chain's type is {chain_type!r}, not Development or "
            f"Local; pass allow_dev_accounts=True (CLI: --allow-dev-accounts) to force it")
    return Keypair.create_from_uri(uri, ss58_format=ss58_format)


class Accounts:
    """Create, import, export, list and delete local accounts.

    ``keyring`` picks where new secrets go (``"file"``, the default, or ``"os"``; default from the
    settings, see the module docstring); secrets are always read from where their account says.
    ``password`` opens the file keystore (a :data:`~decentralml.keystore.PasswordSource`, or the
    password itself); it is asked for at most once per ``Accounts``. ``backend`` is a
    ``keyring.backend.KeyringBackend`` used for ``os`` accounts (tests pass a file backend in a
    temp dir) and implies ``keyring="os"``.
    """

    def __init__(self, home: str | Path | None = None, backend: Any = None, *,
                 keyring: KeyringKind | None = None,
                 password: PasswordSource | str | None = None) -> None:
        self.home = home_dir(home)
        self._explicit_home = home
        self._backend = backend
        self._kind: KeyringKind | None = keyring if keyring is not None else (
            "os" if backend is not None else None)
        if isinstance(password, str):
            fixed = Password(password, "the password given to Accounts")
            self._password: PasswordSource = lambda new: fixed
        else:
            self._password = password or password_from_settings(home)
        self._keystore: Keystore | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Accounts(home={str(self.home)!r})"

    # -- storage -----------------------------------------------------------------------------------

    @property
    def index_path(self) -> Path:
        return self.home / "accounts.json"

    @property
    def keystore_path(self) -> Path:
        return self.home / "keystore"

    @property
    def keyring_kind(self) -> KeyringKind:
        """Where new secrets go: the settings' ``keyring`` (``file`` unless set to ``os``)."""
        if self._kind is None:
            chosen = load_settings(self._explicit_home).keyring or "file"
            if chosen not in ("file", "os"):
                raise ConfigurationError(f"keyring: {chosen!r} is not a keyring (set {ENV_KEYRING}"
                                         f" or `keyring` in config.toml to \"file\" or \"os\")")
            self._kind = "file" if chosen == "file" else "os"
        return self._kind

    def _file_store(self) -> Keystore:
        if self._keystore is None:
            self._keystore = Keystore(self.keystore_path, self._password)
        return self._keystore

    def _os_keyring(self) -> Any:
        if self._backend is not None:
            return self._backend
        import keyring
        from keyring.backends import chainer, fail
        backend = keyring.get_keyring()
        usable = not isinstance(backend, fail.Keyring) and not (
            isinstance(backend, chainer.ChainerBackend) and not backend.backends)
        if not usable:
            raise KeyringUnavailable(f"keyring chose {type(backend).__name__}")
        self._backend = backend
        return backend

    def _secret_op(self, kind: KeyringKind, op: str, name: str,
                   value: str | None = None) -> str | None:
        if kind == "file":
            store = self._file_store()
            if op == "get":
                return store.get(name)
            if op == "set":
                assert value is not None
                store.set(name, value)
            else:
                store.delete(name)
            return None
        import keyring.errors
        backend = self._os_keyring()
        try:
            if op == "get":
                value = backend.get_password(SERVICE, name)
                return None if value is None else str(value)
            if op == "set":
                backend.set_password(SERVICE, name, value)
                return None
            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                backend.delete_password(SERVICE, name)
            return None
        except ConfigurationError:
            raise
        except (keyring.errors.KeyringError, EOFError, RuntimeError, OSError) as exc:
            # EOFError: a backend prompting for a password on a machine without a terminal
            raise KeyringUnavailable(f"{type(backend).__name__}: {type(exc).__name__}") from None

    def _read_index(self) -> dict[str, Account]:
        if not self.index_path.is_file():
            return {}
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
            return {a["name"]: Account(**a) for a in data.get("accounts", [])}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{self.index_path}: unreadable account index: {exc}") from exc

    def _write_index(self, accounts: dict[str, Account]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.index_path.with_suffix(".json.tmp")
        payload = {"accounts": [a.model_dump() for a in sorted(accounts.values(),
                                                                key=lambda a: a.name)]}
        tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.index_path)

    def _add(self, name: str, keypair: Any, secret: dict[str, Any], source: Source,
             overwrite: bool) -> Account:
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInput("name", f"{name!r}",
                               "1-64 letters, digits, '.', '_' or '-', not starting with a symbol")
        with self._lock:
            index = self._read_index()
            if name in index and not overwrite:
                raise InvalidInput("name", f"an account named {name!r} already exists")
            account = Account(name=name, address=keypair.ss58_address,
                              crypto_type=_crypto_type_name(keypair.crypto_type),
                              source=source, keyring=self.keyring_kind)
            previous = index.get(name)
            self._secret_op(account.keyring, "set", name, json.dumps(secret))
            if previous is not None and previous.keyring != account.keyring:
                self._secret_op(previous.keyring, "delete", name)
            index[name] = account
            self._write_index(index)
        return account

    # -- public API --------------------------------------------------------------------------------

    def create(self, name: str, *, crypto_type: CryptoType = "sr25519", words: int = 12,
               overwrite: bool = False) -> tuple[Account, str]:
        """Create an account from a fresh mnemonic; returns it and the mnemonic (show it once,
        for the user's backup; it is also kept in the keyring)."""
        from substrateinterface import Keypair
        if words not in (12, 15, 18, 21, 24):
            raise InvalidInput("words", f"{words}", "12, 15, 18, 21 or 24")
        mnemonic = Keypair.generate_mnemonic(words)
        account = self._from_mnemonic(name, mnemonic, crypto_type, "created", overwrite)
        return account, mnemonic

    def import_mnemonic(self, name: str, mnemonic: str, *, crypto_type: CryptoType = "sr25519",
                        overwrite: bool = False) -> Account:
        return self._from_mnemonic(name, mnemonic, crypto_type, "mnemonic", overwrite)

    def _from_mnemonic(self, name: str, mnemonic: str, crypto_type: CryptoType, source: Source,
                       overwrite: bool) -> Account:
        from substrateinterface import Keypair
        phrase = " ".join(mnemonic.split())
        try:
            keypair = Keypair.create_from_mnemonic(phrase, crypto_type=_crypto_type_id(crypto_type))
        except ValueError:
            raise InvalidInput("mnemonic", "not a valid BIP39 mnemonic") from None
        secret = {"v": 1, "kind": "mnemonic", "crypto_type": crypto_type, "mnemonic": phrase}
        return self._add(name, keypair, secret, source, overwrite)

    def import_json(self, name: str, data: str | bytes | dict[str, Any] | Path, password: str, *,
                    overwrite: bool = False) -> Account:
        """Import a polkadot.js encrypted JSON export (a file path, its text, or the dict)."""
        from substrateinterface import Keypair
        if isinstance(data, Path):
            data = data.read_text(encoding="utf-8")
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        from nacl.exceptions import CryptoError
        try:
            parsed = json.loads(data) if isinstance(data, str) else dict(data)
        except ValueError:
            raise InvalidInput("json", "not a JSON document") from None
        try:
            keypair = Keypair.create_from_encrypted_json(parsed, password)
        except CryptoError:
            raise InvalidInput("password", "does not decrypt this export") from None
        except (ValueError, KeyError, TypeError, NotImplementedError, AssertionError) as exc:
            raise InvalidInput("json", f"not a readable polkadot.js export "
                               f"({type(exc).__name__})") from None
        secret = {"v": 1, "kind": "private_key",
                  "crypto_type": _crypto_type_name(keypair.crypto_type),
                  "private_key": keypair.private_key.hex(), "public_key": keypair.public_key.hex()}
        return self._add(name, keypair, secret, "json", overwrite)

    def export_json(self, name: str, password: str) -> dict[str, Any]:
        """The account as a polkadot.js encrypted JSON export (sr25519 accounts only)."""
        if not password:
            raise InvalidInput("password", "must not be empty")
        keypair = self.keypair(name)
        if _crypto_type_name(keypair.crypto_type) != "sr25519":
            raise InvalidInput("name", f"{name!r} is ed25519; polkadot.js JSON export is "
                               f"supported for sr25519 accounts only")
        return dict(keypair.export_to_encrypted_json(password, name=name))

    def list(self) -> list[Account]:
        return sorted(self._read_index().values(), key=lambda a: a.name)

    def get(self, name: str) -> Account:
        account = self._read_index().get(name)
        if account is None:
            raise AccountNotFound(f"no account named {name!r} in {self.index_path}")
        return account

    def delete(self, name: str) -> None:
        with self._lock:
            index = self._read_index()
            if name not in index:
                raise AccountNotFound(f"no account named {name!r} in {self.index_path}")
            self._secret_op(index[name].keyring, "delete", name)
            del index[name]
            self._write_index(index)

    def keypair(self, name: str) -> Any:
        """The signing keypair of a stored account (secret read from the keyring)."""
        from substrateinterface import Keypair
        account = self.get(name)
        raw = self._secret_op(account.keyring, "get", name)
        if raw is None:
            where = (str(self.keystore_path) if account.keyring == "file"
                     else f"the OS keyring ({type(self._os_keyring()).__name__})")
            raise AccountNotFound(f"account {name!r} is listed but its secret is not in {where}")
        secret = json.loads(raw)
        type_id = _crypto_type_id(secret["crypto_type"])
        if secret["kind"] == "mnemonic":
            keypair = Keypair.create_from_mnemonic(secret["mnemonic"], crypto_type=type_id)
        else:
            keypair = Keypair(public_key=bytes.fromhex(secret["public_key"]),
                              private_key=bytes.fromhex(secret["private_key"]),
                              crypto_type=type_id, ss58_format=42)
        if keypair.ss58_address != account.address:
            raise ConfigurationError(f"the keyring's secret for {name!r} does not match its "
                                     f"address {account.address}")
        return keypair

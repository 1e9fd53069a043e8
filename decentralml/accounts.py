"""Local signing accounts: secrets in the OS keyring, a secret-free index on disk.

An account is a name, an SS58 address and a crypto type, listed in
``<home>/accounts.json`` (``home`` is :func:`decentralml.config.home_dir`). Its secret (the
mnemonic, or the private key of an imported polkadot.js JSON) lives only in the keyring under the
service name ``decentralml``, is never logged, never sent anywhere, and never part of a ``repr``.

Backends, in order: the one passed to :class:`Accounts`; the encrypted-file fallback when
``DECENTRALML_KEYRING_PASSWORD`` is set (``<home>/keyring.cfg``, AES with a PBKDF2 key, via
``keyrings.alt``); else the OS keyring ``keyring`` picks. A machine with no usable backend gets
:class:`KeyringUnavailable`, whose message says how to configure one.

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

from decentralml.config import home_dir
from decentralml.errors import ConfigurationError, DecentralMLError, InvalidInput

SERVICE = "decentralml"
ENV_KEYRING_PASSWORD = "DECENTRALML_KEYRING_PASSWORD"
DEV_ACCOUNTS = ("Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie")
DEV_CHAIN_TYPES = ("Development", "Local")

CryptoType = Literal["sr25519", "ed25519"]
Source = Literal["created", "mnemonic", "json"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

KEYRING_HELP = (
    "no usable keyring backend for storing account secrets. Either install and unlock an OS "
    "keyring (Secret Service/GNOME Keyring or KWallet on Linux, Keychain on macOS, Credential "
    "Locker on Windows), or on a headless machine use the encrypted-file fallback: "
    "`pip install keyrings.alt pycryptodome` and set DECENTRALML_KEYRING_PASSWORD (secrets go to "
    "<home>/keyring.cfg, encrypted with that password). You can also pick any keyring backend "
    "with PYTHON_KEYRING_BACKEND, e.g. keyrings.alt.file.EncryptedKeyring."
)


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


def _file_fallback(home: Path, password: str) -> Any:
    """keyrings.alt's EncryptedKeyring at ``home/keyring.cfg`` unlocked with ``password``."""
    try:
        from keyrings.alt.file import EncryptedKeyring
    except ImportError as exc:
        raise KeyringUnavailable("the encrypted-file fallback needs `keyrings.alt`") from exc

    class _PasswordFileKeyring(EncryptedKeyring):
        """EncryptedKeyring that takes its password from the environment instead of a prompt."""

        def _get_new_password(self) -> str:
            return password

        def _unlock(self) -> None:
            self.keyring_key = password
            try:
                ref = self.get_password("keyring-setting", "password reference")
            except Exception as exc:
                raise ConfigurationError(
                    f"{ENV_KEYRING_PASSWORD} does not unlock {self.file_path}") from exc
            if ref != "password reference value":
                raise ConfigurationError(
                    f"{ENV_KEYRING_PASSWORD} does not unlock {self.file_path}")

    try:
        backend = _PasswordFileKeyring()
    except (ImportError, RuntimeError) as exc:
        raise KeyringUnavailable(f"encrypted-file fallback: {exc}") from exc
    backend.file_path = str(home / "keyring.cfg")
    return backend


class Accounts:
    """Create, import, export, list and delete local accounts.

    ``backend`` is a ``keyring.backend.KeyringBackend`` (tests pass a file backend in a temp dir);
    by default see the module docstring.
    """

    def __init__(self, home: str | Path | None = None, backend: Any = None) -> None:
        self.home = home_dir(home)
        self._backend = backend
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Accounts(home={str(self.home)!r})"

    # -- storage -----------------------------------------------------------------------------------

    @property
    def index_path(self) -> Path:
        return self.home / "accounts.json"

    def _keyring(self) -> Any:
        if self._backend is not None:
            return self._backend
        password = os.environ.get(ENV_KEYRING_PASSWORD)
        if password:
            self.home.mkdir(parents=True, exist_ok=True)
            self._backend = _file_fallback(self.home, password)
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

    def _secret_op(self, op: str, name: str, value: str | None = None) -> str | None:
        import keyring.errors
        backend = self._keyring()
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
                              source=source)
            self._secret_op("set", name, json.dumps(secret))
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
            self._secret_op("delete", name)
            del index[name]
            self._write_index(index)

    def keypair(self, name: str) -> Any:
        """The signing keypair of a stored account (secret read from the keyring)."""
        from substrateinterface import Keypair
        account = self.get(name)
        raw = self._secret_op("get", name)
        if raw is None:
            raise AccountNotFound(f"account {name!r} is listed but its secret is not in the "
                                  f"keyring ({type(self._keyring()).__name__})")
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

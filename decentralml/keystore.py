"""The default secret store: one encrypted file per account under ``<home>/keystore``.

Each file is sealed with the keystore's password the way polkadot.js seals its JSON exports
(``encoding.type = ["scrypt", "xsalsa20-poly1305"]``, ``encoded = salt | N | p | r | nonce |
ciphertext``): scrypt with N=2^15, r=8, p=1 derives the key, and libsodium's authenticated
secret box encrypts, both through PyNaCl (already a dependency of substrate-interface). A wrong
password fails the box's MAC instead of decrypting to garbage, and so does a tampered file.

Why not keyrings.alt's ``EncryptedKeyring``: it derives its AES key with PBKDF2 at
pycryptodome's default of 1000 iterations and encrypts with unauthenticated AES-CFB, keeps
every secret in one INI file outside ``$DECENTRALML_HOME`` unless told otherwise, and prompts
through ``getpass`` when it wants a password, which is what left headless machines stuck.

The password comes from a :data:`PasswordSource`, called at most once per :class:`Keystore`
(the CLI makes one per command), and only when a secret is actually read or written: listing
accounts never asks for it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from decentralml.errors import ConfigurationError

#: The parameters polkadot.js uses; files with other (possibly hostile) values are refused.
SCRYPT_N = 1 << 15
SCRYPT_R = 8
SCRYPT_P = 1
_SALT = 32
_PARAMS = 12
_NONCE = 24
#: A secret (mnemonic or key JSON) is a few hundred bytes; bound what a file may make us decode.
MAX_FILE_BYTES = 64 * 1024
MAX_PASSWORD_BYTES = 4096
#: The environment variable that may hold the password (see decentralml.cli.handover for how the
#: CLI takes it out of its environment).
ENV_KEYRING_PASSWORD = "DECENTRALML_KEYRING_PASSWORD"
CONTENT = "decentralml-secret"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Password:
    """A keystore password and where it came from (for messages); its value never prints."""

    __slots__ = ("origin", "value")

    def __init__(self, value: str, origin: str) -> None:
        if not value:
            raise ConfigurationError(f"the keystore password from {origin} is empty")
        if len(value.encode("utf-8")) > MAX_PASSWORD_BYTES:
            raise ConfigurationError(f"the keystore password from {origin} is longer than "
                                     f"{MAX_PASSWORD_BYTES} bytes")
        self.value = value
        self.origin = origin

    def __repr__(self) -> str:
        return f"Password(origin={self.origin!r})"


#: Called (at most once per Keystore) when a secret must be read or written; ``new`` is True
#: when the keystore is still empty, so an interactive source can ask for a confirmation.
PasswordSource = Callable[[bool], Password]


class KeystoreLocked(ConfigurationError):
    """The keystore needs its password and nothing configured here can give it."""

    def __init__(self, root: Path, detail: str = "") -> None:
        super().__init__(
            f"the account keystore {root} is locked: give its password with "
            f"--keyring-password-file FILE (or DECENTRALML_KEYRING_PASSWORD_FILE=FILE, or "
            f"`keyring_password_file` in config.toml), or in DECENTRALML_KEYRING_PASSWORD, or "
            f"run the command on a terminal to be asked for it" + (f" ({detail})" if detail
                                                                    else ""))


class WrongPassword(ConfigurationError):
    """The password given does not open the keystore (or the file was tampered with)."""


def read_password_file(path: str | Path) -> Password:
    """The password in ``path``: its first line (a trailing newline is not part of it)."""
    p = Path(path).expanduser()
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_PASSWORD_BYTES + 2)
    except OSError as exc:
        raise ConfigurationError(f"keyring password file {p}: {exc.strerror or exc}") from None
    if len(raw) > MAX_PASSWORD_BYTES + 1:
        raise ConfigurationError(f"keyring password file {p} is longer than "
                                 f"{MAX_PASSWORD_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"keyring password file {p} is not UTF-8 text") from None
    return Password(text.splitlines()[0] if text else "", f"the file {p}")


class Keystore:
    """Encrypted per-account secret files under ``root`` (created 0700, files 0600)."""

    def __init__(self, root: Path, password: PasswordSource) -> None:
        self.root = root
        self._source = password
        self._password: Password | None = None
        self._verified = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Keystore(root={str(self.root)!r})"

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ConfigurationError(f"{name!r} is not a valid account name")
        return self.root / f"{name}.json"

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json") if _NAME.match(p.stem))

    def _get_password(self) -> Password:
        with self._lock:
            if self._password is None:
                self._password = self._source(not self.names())
            return self._password

    # -- sealing -----------------------------------------------------------------------------------

    @staticmethod
    def _key(password: Password, salt: bytes, n: int, r: int, p: int) -> bytes:
        from nacl.hashlib import scrypt

        return bytes(scrypt(password.value.encode("utf-8"), salt, n=n, r=r, p=p, dklen=32,
                            maxmem=2**26))

    def _seal(self, plaintext: bytes, password: Password) -> str:
        from nacl.secret import SecretBox
        from nacl.utils import random

        salt = random(_SALT)
        key = self._key(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        box = SecretBox(key).encrypt(plaintext)
        params = b"".join(v.to_bytes(4, "little") for v in (SCRYPT_N, SCRYPT_P, SCRYPT_R))
        return base64.b64encode(salt + params + box.nonce + box.ciphertext).decode("ascii")

    def _open(self, path: Path, encoded: str, password: Password) -> bytes:
        from nacl.exceptions import CryptoError
        from nacl.secret import SecretBox

        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise ConfigurationError(f"{path}: not a keystore file (bad base64)") from None
        if len(raw) <= _SALT + _PARAMS + _NONCE:
            raise ConfigurationError(f"{path}: not a keystore file (too short)")
        salt = raw[:_SALT]
        n, p, r = (int.from_bytes(raw[_SALT + 4 * i:_SALT + 4 * i + 4], "little")
                   for i in range(3))
        if (n, r, p) != (SCRYPT_N, SCRYPT_R, SCRYPT_P):
            raise ConfigurationError(f"{path}: unexpected scrypt parameters N={n} r={r} p={p}")
        nonce = raw[_SALT + _PARAMS:_SALT + _PARAMS + _NONCE]
        try:
            return bytes(SecretBox(self._key(password, salt, n, r, p)).decrypt(
                raw[_SALT + _PARAMS + _NONCE:], nonce))
        except CryptoError:
            raise WrongPassword(f"the keystore password from {password.origin} does not open "
                                f"{path}") from None

    def _read(self, path: Path) -> dict[str, object]:
        try:
            with path.open("rb") as fh:
                raw = fh.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise ConfigurationError(f"{path}: {exc.strerror or exc}") from None
        if len(raw) > MAX_FILE_BYTES:
            raise ConfigurationError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or not isinstance(data.get("encoded"), str) or \
                    CONTENT not in data["encoding"]["content"]:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError(f"{path}: not a decentralml keystore file") from None
        return data

    # -- public ------------------------------------------------------------------------------------

    def get(self, name: str) -> str | None:
        """The secret stored for ``name``, or None when there is no such file."""
        path = self._path(name)
        try:
            data = self._read(path)
        except FileNotFoundError:
            return None
        plaintext = self._open(path, str(data["encoded"]), self._get_password())
        self._verified = True
        return plaintext.decode("utf-8")

    def set(self, name: str, secret: str) -> None:
        """Seal ``secret`` for ``name`` (atomically replacing an older one).

        A keystore has one password: before the first write of a command, the password is
        checked against an existing file, so a typo cannot start a second password.
        """
        path = self._path(name)
        password = self._get_password()
        if not self._verified:
            for other in self.names():
                with contextlib.suppress(FileNotFoundError):
                    self._open(self._path(other), str(self._read(self._path(other))["encoded"]),
                               password)
                    break
            self._verified = True
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = {"name": name, "encoded": self._seal(secret.encode("utf-8"), password),
                   "encoding": {"content": [CONTENT],
                                "type": ["scrypt", "xsalsa20-poly1305"], "version": "3"}}
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def delete(self, name: str) -> None:
        """Remove ``name``'s file (no password needed; nothing secret is read)."""
        self._path(name).unlink(missing_ok=True)

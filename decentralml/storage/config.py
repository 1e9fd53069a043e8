"""Choosing a store from a spec string: ``local:PATH`` or ``ipfs:URL``.

The spec comes from the caller, else ``DECENTRALML_STORAGE``, else ``storage`` in
``$DECENTRALML_HOME/config.toml``, else the local store under the SDK home (see
:mod:`decentralml.config`). Nothing is contacted or created here: a store touches disk or
network on first use, so building one is free and cannot fail for I/O reasons.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from decentralml.config import ENV_STORAGE, load_settings
from decentralml.errors import InvalidInput
from decentralml.storage.base import Store

#: The API a bare ``ipfs`` spec means; ``with_ipfs.sh`` and the test fixtures set this.
ENV_IPFS_API = "DECENTRALML_IPFS_API"
DEFAULT_IPFS_API = "http://127.0.0.1:5001"

_HINT = (f"set {ENV_STORAGE} (or pass --storage) to local:PATH, e.g. local:~/.decentralml/store, "
         "or ipfs:URL, e.g. ipfs:http://127.0.0.1:5001")


def open_store(spec: str | None = None, home: Path | None = None, *,
               progress: bool | None = None) -> Store:
    """The store ``spec`` names (or the configured/default one).

    ``local`` alone means the default local store under ``home``; ``ipfs`` alone means
    ``$DECENTRALML_IPFS_API`` or ``http://127.0.0.1:5001``.
    """
    from decentralml.storage.ipfs import IPFSStore
    from decentralml.storage.local import LocalStore

    settings = load_settings(home, storage=spec)
    text = settings.storage_spec.strip()
    scheme, _, rest = text.partition(":")
    scheme = scheme.lower()
    rest = rest.strip()
    if scheme == "local":
        path = Path(rest).expanduser() if rest else settings.home / "store"
        return LocalStore(path, progress=progress)
    if scheme == "ipfs":
        url = rest or os.environ.get(ENV_IPFS_API) or DEFAULT_IPFS_API
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidInput("storage", f"{text!r}: the IPFS API must be an http(s) URL "
                                          "like ipfs:http://127.0.0.1:5001", _HINT)
        return IPFSStore(url, progress=progress)
    raise InvalidInput("storage", f"unknown storage spec {text!r}", _HINT)

"""The hashes Substrate uses for storage keys, block hashes and signing payloads.

Thin wrappers over ``hashlib.blake2b`` and ``xxhash`` (the library substrate-interface itself uses)
so every place on the node derives keys exactly like the client's ``create_storage_key``.
"""

from __future__ import annotations

from collections.abc import Callable
from hashlib import blake2b

import xxhash


def blake2_256(data: bytes) -> bytes:
    return blake2b(data, digest_size=32).digest()


def blake2_128(data: bytes) -> bytes:
    return blake2b(data, digest_size=16).digest()


def blake2_64(data: bytes) -> bytes:
    return blake2b(data, digest_size=8).digest()


def twox_64(data: bytes) -> bytes:
    return xxhash.xxh64_intdigest(data, seed=0).to_bytes(8, "little")


def twox_128(data: bytes) -> bytes:
    return (xxhash.xxh64_intdigest(data, seed=0).to_bytes(8, "little")
            + xxhash.xxh64_intdigest(data, seed=1).to_bytes(8, "little"))


def blake2_128_concat(data: bytes) -> bytes:
    return blake2_128(data) + data


def twox_64_concat(data: bytes) -> bytes:
    return twox_64(data) + data


def identity(data: bytes) -> bytes:
    return data


#: Storage hashers by their metadata name (``StorageHasherV13`` variant), with the number of hash
#: bytes that precede the key (``None``: the key cannot be recovered from the storage key).
HASHERS: dict[str, tuple[Callable[[bytes], bytes], int | None]] = {
    "Blake2_128Concat": (blake2_128_concat, 16),
    "Twox64Concat": (twox_64_concat, 8),
    "Identity": (identity, 0),
    "Blake2_128": (blake2_128, None),
    "Blake2_256": (blake2_256, None),
    "Twox128": (twox_128, None),
}

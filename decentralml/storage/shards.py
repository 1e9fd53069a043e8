"""Data shards a task ships: compute rental, where the creator brings the data and rents machines.

A creator with data but no compute splits its data into one directory per slot (``shard-0/``,
``shard-1/``, ... holding what the task reads, e.g. ``data.npz``). Each directory is packed as a
*data* bundle of its own, and the task bundle's manifest lists their CIDs in shard order. The
chain assigns every slot a shard (``accept_task`` records it; docs/protocol.md), so a contributor
fetches and verifies exactly one shard, never the others, and runs the task on it instead of on
data of its own.

Shards are stored as separate bundles rather than as files of the task bundle so that a
contributor's download is its shard alone. Whoever takes a slot sees that slot's shard in the
clear: shipping a shard is publishing it to that contributor (docs/concepts.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from decentralml.chain.types import TaskType
from decentralml.errors import BundleError, InvalidInput
from decentralml.storage.base import Store
from decentralml.storage.bundle import (
    DEFAULT_EXCLUDES,
    MAX_SHARDS,
    Bundle,
    Manifest,
    fetch_bundle,
    pack_bundle,
)


@dataclass(frozen=True)
class PackedShards:
    """The CIDs of a task's shards, in shard order, and the directories they were packed from."""

    cids: tuple[str, ...]
    sources: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.cids)


def shard_dirs(shards_dir: Path) -> list[Path]:
    """The shard directories of ``shards_dir``, in shard order (sorted by name).

    Every visible subdirectory is a shard and must not be empty; files beside them are not
    shards and are left out, so the directory ``decentralml example digits --shards N`` writes
    (``shard-N/`` next to ``model.keras`` and ``holdout.npz``) can be given as it is. A symlink
    is refused: what it points to could change between packing and publishing.
    """
    shards_dir = Path(shards_dir)
    if not shards_dir.is_dir():
        raise InvalidInput("shards", f"{shards_dir} is not a directory",
                           "a directory holding one subdirectory per shard")
    entries = sorted((e for e in shards_dir.iterdir()
                      if not e.name.startswith(".") and e.name not in DEFAULT_EXCLUDES
                      and (e.is_symlink() or e.is_dir())),
                     key=lambda e: e.name)
    if not entries:
        raise InvalidInput("shards", f"{shards_dir} holds no shard directories",
                           "one subdirectory per shard (shard-0/, shard-1/, ...)")
    if len(entries) > MAX_SHARDS:
        raise InvalidInput("shards", f"{shards_dir} holds {len(entries)} shards",
                           f"at most {MAX_SHARDS}")
    for entry in entries:
        if entry.is_symlink():
            raise InvalidInput("shards", f"{entry} is a symlink", "shard directories themselves")
        if not any(entry.iterdir()):
            raise InvalidInput("shards", f"shard {entry.name} is empty")
    return entries


def pack_shards(shards_dir: Path, store: Store, *, task_type: TaskType) -> PackedShards:
    """Pack, store and pin every shard of ``shards_dir``; the same data always gives the same
    CIDs, so the rounds of a job publish their shards once."""
    dirs = shard_dirs(shards_dir)
    cids = []
    for directory in dirs:
        packed = pack_bundle(directory, store, task_type=task_type, entrypoint=None,
                             kind="data")
        store.pin(packed.cid)
        cids.append(packed.cid)
    return PackedShards(cids=tuple(cids), sources=tuple(dirs))


def shard_cid(manifest: Manifest, shard: int) -> str:
    """The CID of shard ``shard`` of a task bundle, or :class:`BundleError` if it has none."""
    if not manifest.shards:
        raise BundleError("the task ships no data shards")
    if not 0 <= shard < len(manifest.shards):
        raise BundleError(f"the chain assigned shard {shard}, but the task's manifest lists "
                          f"{len(manifest.shards)} shards")
    return manifest.shards[shard]


def fetch_shard(store: Store, manifest: Manifest, shard: int, dest: Path) -> Bundle:
    """Fetch and verify only shard ``shard`` of a task into ``dest`` (a data bundle)."""
    bundle = fetch_bundle(store, shard_cid(manifest, shard), dest)
    if bundle.manifest.kind != "data":
        raise BundleError(f"shard {shard} ({bundle.cid}) is a {bundle.manifest.kind} bundle, "
                          f"not data")
    return bundle

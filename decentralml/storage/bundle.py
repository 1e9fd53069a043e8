"""Task bundles: a directory plus a manifest (``decentralml.json``) that pins every file.

A bundle is what a task creator publishes (training scripts, ``start_task.sh``, the model, a data
loader) and what a contributor sends back (the result bundle). The store's CID already proves the
bytes are the ones that were published; the manifest adds what a CID cannot say: which files are
supposed to be there, how big they are, which one to run, what the task needs installed and what
it must produce. :func:`fetch_bundle` checks both before anything appears at its destination, so a
contributor never runs, and a creator never loads, a tampered or unsafe bundle.

Layout of the manifest (``format_version`` 1), serialised canonically (sorted keys) so the same
directory always packs to the same CID::

    {"format_version": 1, "kind": "task", "task_type": "ModelContributor",
     "entrypoint": "start_task.sh",
     "files": [{"path": "start_task.sh", "sha256": "...", "size": 123, "executable": true}, ...],
     "requirements": ["numpy>=1.26"], "outputs": ["update.npz", "update.json"],
     "metadata": {...}, "num_examples": null, "metrics": {}}

``"network": true`` is added by a task that needs network access (the runner gives it only when
the contributor allows it); it is left out when false, so bundles without it keep their CIDs.

A task that ships the creator's data (compute rental) lists ``"shards"``: the CIDs of one *data*
bundle (``"kind": "data"``, files only) per slot, in shard order. The shards are stored as bundles
of their own, not as files of the task bundle, so a contributor fetches only the shard the chain
assigned to its slot (:mod:`decentralml.storage.shards`). Left out when empty.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import math
import os
import re
import shutil
import stat
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from decentralml.chain.types import TaskType
from decentralml.errors import BundleError, FetchLimitExceeded, IntegrityError, InvalidInput
from decentralml.storage._fs import remove_tree_quietly
from decentralml.storage.base import FetchLimits, Store

#: Name of the manifest at the root of every bundle. It is never listed in its own ``files``.
MANIFEST_NAME = "decentralml.json"
#: The manifest format this code writes and the only one it reads.
FORMAT_VERSION = 1
#: Entry point a contributor's runner executes (with ``bash``) unless the manifest names another.
DEFAULT_ENTRYPOINT = "start_task.sh"

#: Largest single file a bundle may hold by default (models are big, but not unbounded).
DEFAULT_MAX_FILE_SIZE = 4 * 1024**3
#: Largest total a fetched bundle may hold by default.
DEFAULT_MAX_TOTAL_SIZE = 16 * 1024**3
#: Most files one bundle may list; keeps a hostile manifest from exhausting memory or inodes.
MAX_FILES = 100_000
#: Largest manifest accepted; it is parsed in memory.
MAX_MANIFEST_SIZE = 16 * 1024**2
#: Longest relative path (UTF-8 bytes) and path component accepted, portable to every OS we meet.
MAX_PATH_LENGTH = 1024
MAX_NAME_LENGTH = 255
#: Deepest directory nesting a bundle may have.
MAX_DEPTH = 256
#: Most data shards a task bundle may list (the chain bounds it further: one per slot).
MAX_SHARDS = 1024
#: Longest shard CID accepted (the chain's ``MaxCidLength`` is 128).
MAX_SHARD_CID_LENGTH = 256
_CID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")

#: What a bundle is: published by a creator to run, sent back by a contributor, or a data shard.
BundleKind = Literal["task", "result", "data"]
#: Default time limit of :func:`fetch_bundle`, seconds.
DEFAULT_FETCH_TIMEOUT = 3600.0

#: Names left out of :func:`pack_bundle` by default: caches and VCS noise that running or editing
#: a bundle locally creates, and which would otherwise change the CID for no reason.
DEFAULT_EXCLUDES: tuple[str, ...] = ("__pycache__", "*.pyc", ".git", ".DS_Store",
                                     ".ipynb_checkpoints")

_CHUNK = 1024 * 1024
_SHA256_HEX = frozenset("0123456789abcdef")


# --------------------------------------------------------------------------------------------
# manifest model


def _check_relative_path(value: str, what: str = "path") -> str:
    """Refuse every path that could land outside the bundle or differ between platforms.

    Paths are POSIX, relative, normalised (no ``.``/``..``/empty parts), free of backslashes and
    control characters, and NFC-normalised so two spellings of one name cannot both appear.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"{what} {value!r} contains control characters")
    if "\\" in value:
        raise ValueError(f"{what} {value!r} contains a backslash")
    if value.startswith("/"):
        raise ValueError(f"{what} {value!r} is absolute")
    if unicodedata.normalize("NFC", value) != value:
        raise ValueError(f"{what} {value!r} is not NFC-normalised")
    if len(value.encode("utf-8")) > MAX_PATH_LENGTH:
        raise ValueError(f"{what} {value[:64]!r}... is longer than {MAX_PATH_LENGTH} bytes")
    parts = value.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"{what} {value!r} has an empty, '.' or '..' component")
        if len(part.encode("utf-8")) > MAX_NAME_LENGTH:
            raise ValueError(f"{what} {value!r} has a component longer than {MAX_NAME_LENGTH}"
                             " bytes")
    return value


class FileEntry(BaseModel):
    """One file of a bundle: where it is, what it hashes to, how big it is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: str
    size: int = Field(ge=0)
    #: Whether the file is restored with the exec bit (scripts); never setuid or anything else.
    executable: bool = False

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        _check_relative_path(value)
        if value == MANIFEST_NAME:
            raise ValueError(f"{MANIFEST_NAME} cannot list itself")
        return value

    @field_validator("sha256")
    @classmethod
    def _sha(cls, value: str) -> str:
        if len(value) != 64 or not set(value) <= _SHA256_HEX:
            raise ValueError("sha256 must be 64 lowercase hex digits")
        return value


_ENTRY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
                    r":([A-Za-z_][A-Za-z0-9_]*)$")


def entry_module(entry: str) -> str:
    """The module of a ``"module:function"`` entry point; ``ValueError`` when malformed."""
    match = _ENTRY.match(entry) if isinstance(entry, str) and len(entry) <= 256 else None
    if match is None:
        raise ValueError(f"entry {entry!r} must be 'module:function' (e.g. 'train:fit')")
    return match.group(1)


class Manifest(BaseModel):
    """The content of ``decentralml.json``. Validation is strict: unknown keys are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: Literal[1] = 1
    #: ``task`` for what a creator publishes, ``result`` for what a contributor sends back,
    #: ``data`` for a shard of the creator's data that a task ships (compute rental).
    kind: BundleKind = "task"
    task_type: TaskType
    #: Script run by the runner (task bundles); ``None`` for result bundles.
    entrypoint: str | None = DEFAULT_ENTRYPOINT
    files: tuple[FileEntry, ...] = Field(max_length=MAX_FILES)
    #: PEP 508 requirements the task needs importable; checked, never installed, by the runner.
    requirements: tuple[str, ...] = ()
    #: Paths (relative to ``DECENTRALML_OUTPUT_DIR``) the task promises to produce.
    outputs: tuple[str, ...] = ()
    #: Free JSON metadata (description, author, dataset notes, task/submission ids of a result).
    metadata: dict[str, Any] = Field(default_factory=dict)
    #: Result bundles: how many examples the contribution was computed on, and its metrics.
    num_examples: int | None = Field(default=None, ge=0)
    metrics: dict[str, float] = Field(default_factory=dict)
    #: Task bundles: the task needs network access. The contributor's runner grants it only
    #: with ``allow_network`` (``--allow-network``); no task gets the network otherwise.
    network: bool = False
    #: Task bundles: a Python entry point, ``"module:function"`` (a module of the bundle, from
    #: ``template.json``'s ``"entry"``), that
    #: the runner calls once per round instead of running ``entrypoint``: in a fresh sandboxed
    #: process, or in a warm task host that keeps it loaded between rounds (docs/bundles.md).
    python_entry: str | None = None
    #: Task bundles with a ``python_entry``: the files that change from round to round (the round's
    #: model and config). Everything else is the bundle's code; a warm task host is reused only
    #: while the code hashes the same (:meth:`code_hash`).
    round_files: tuple[str, ...] = ()
    #: Task bundles that ship the creator's data: the CID of each shard's data bundle, in shard
    #: order; the chain assigns every slot one (``ShardAssigned``). Empty: contributors bring
    #: their own data.
    shards: tuple[str, ...] = Field(default=(), max_length=MAX_SHARDS)

    @field_validator("shards")
    @classmethod
    def _shards(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cid in value:
            if not cid or len(cid) > MAX_SHARD_CID_LENGTH or not set(cid) <= _CID_CHARS:
                raise ValueError(f"shard CID {cid[:80]!r} is not a CID (1..="
                                 f"{MAX_SHARD_CID_LENGTH} characters of [A-Za-z0-9-_.:])")
        return value

    @field_validator("files")
    @classmethod
    def _unique_files(cls, value: tuple[FileEntry, ...]) -> tuple[FileEntry, ...]:
        seen: dict[str, str] = {}
        for entry in value:
            # Case-insensitive filesystems (macOS, Windows) would merge these into one file.
            folded = entry.path.casefold()
            if folded in seen:
                raise ValueError(f"duplicate path {entry.path!r} (same as {seen[folded]!r})")
            seen[folded] = entry.path
        paths = set(seen)
        for entry in value:
            # A file cannot also be a directory holding other files.
            parent = PurePosixPath(entry.path.casefold()).parent
            while str(parent) != ".":
                if str(parent) in paths:
                    raise ValueError(f"{str(parent)!r} is both a file and a directory")
                parent = parent.parent
        return tuple(sorted(value, key=lambda e: e.path))

    @field_validator("requirements")
    @classmethod
    def _requirements(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                Requirement(item)
            except InvalidRequirement as exc:
                raise ValueError(f"invalid requirement {item!r}: {exc}") from exc
        return value

    @field_validator("outputs")
    @classmethod
    def _outputs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            _check_relative_path(item, "output")
        if len(set(value)) != len(value):
            raise ValueError("outputs are listed twice")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metadata must be plain JSON: {exc}") from exc
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: dict[str, float]) -> dict[str, float]:
        for name, number in value.items():
            if not math.isfinite(number):
                raise ValueError(f"metric {name!r} is not finite")
        return value

    @model_validator(mode="after")
    def _entrypoint(self) -> Manifest:
        if self.kind == "task":
            if self.entrypoint is None:
                raise ValueError("a task bundle needs an entrypoint")
            _check_relative_path(self.entrypoint, "entrypoint")
            if self.entrypoint not in {e.path for e in self.files}:
                raise ValueError(f"entrypoint {self.entrypoint!r} is not one of the files")
        elif self.entrypoint is not None:
            raise ValueError(f"a {self.kind} bundle has no entrypoint")
        if self.shards and self.kind != "task":
            raise ValueError(f"a {self.kind} bundle ships no shards")
        if self.python_entry is not None:
            if self.kind != "task":
                raise ValueError("a result bundle has no python_entry")
            module = entry_module(self.python_entry)
            paths = {e.path for e in self.files}
            base = module.replace(".", "/")
            if f"{base}.py" not in paths and f"{base}/__init__.py" not in paths:
                raise ValueError(f"python_entry {self.python_entry!r}: {base}.py is not one of "
                                 "the files")
            for item in self.round_files:
                if item.endswith(".py"):
                    # a warm host imports the code once: code must not change between rounds
                    raise ValueError(f"round file {item!r} is Python code; round files are the "
                                     "round's data (model, config)")
        for item in self.round_files:
            _check_relative_path(item, "round file")
        return self

    def code_hash(self) -> str:
        """SHA-256 over every file but the ``round_files`` (and over what the runner does with
        them): two rounds of one job whose code hashes the same may share a warm task host."""
        digest = hashlib.sha256()
        rounds = set(self.round_files)
        fixed = {"python_entry": self.python_entry, "entrypoint": self.entrypoint,
                 "network": self.network,
                 "requirements": list(self.requirements), "outputs": list(self.outputs),
                 "round_files": sorted(rounds), "task_type": self.task_type.value}
        digest.update(json.dumps(fixed, sort_keys=True).encode())
        for entry in self.files:
            if entry.path not in rounds:
                digest.update(f"{entry.path}\0{entry.sha256}\0{entry.size}\0"
                              f"{int(entry.executable)}\n".encode())
        return digest.hexdigest()

    # -- helpers -----------------------------------------------------------------------------

    @property
    def total_size(self) -> int:
        """Sum of the sizes of every listed file."""
        return sum(entry.size for entry in self.files)

    def entry(self, path: str) -> FileEntry:
        """The entry for ``path``; :class:`KeyError` if it is not listed."""
        for item in self.files:
            if item.path == path:
                return item
        raise KeyError(path)

    def to_json(self) -> bytes:
        """Canonical serialisation: the same manifest always gives the same bytes (and CID)."""
        data = self.model_dump(mode="json")
        if not data["network"]:
            del data["network"]  # absent means false: older bundles keep their CIDs
        for key in ("python_entry", "round_files", "shards"):  # likewise
            if not data[key]:
                del data[key]
        text = json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
        return (text + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> Manifest:
        """Parse and validate a manifest; :class:`BundleError` says what is wrong with it."""
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"{MANIFEST_NAME} is not valid JSON: {exc}") from exc
        except RecursionError:
            raise BundleError(f"{MANIFEST_NAME} is nested too deeply to be a manifest") from None
        if isinstance(raw, dict) and raw.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
            raise BundleError(f"{MANIFEST_NAME} has format_version {raw.get('format_version')!r};"
                              f" this decentralml reads version {FORMAT_VERSION} (upgrade it?)")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise BundleError(f"invalid {MANIFEST_NAME}: {exc}") from exc
        except RecursionError:
            raise BundleError(f"{MANIFEST_NAME} is nested too deeply to be a manifest") from None


@dataclass(frozen=True)
class PackedBundle:
    """What :func:`pack_bundle` returns: the CID to put on chain and the manifest it pins."""

    cid: str
    manifest: Manifest


@dataclass(frozen=True)
class Bundle:
    """A fetched, verified bundle on disk."""

    path: Path
    manifest: Manifest
    cid: str

    @property
    def entrypoint(self) -> Path:
        """Absolute path of the script to run; :class:`BundleError` for a result bundle."""
        if self.manifest.entrypoint is None:
            raise BundleError(f"bundle {self.cid} is a {self.manifest.kind} bundle, not runnable")
        return self.path / self.manifest.entrypoint


# --------------------------------------------------------------------------------------------
# hashing and walking


def _sha256_file(path: Path, limit: int) -> tuple[str, int]:
    """(sha256, size) of ``path``, refusing to read more than ``limit`` bytes."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise BundleError(f"{path.name}: larger than the limit of {limit} bytes")
            digest.update(chunk)
    return digest.hexdigest(), size


def _excluded(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _scan_source(root: Path, excludes: tuple[str, ...]) -> Iterator[tuple[str, Path]]:
    """Yield (relative POSIX path, real file) for every file under ``root`` to pack.

    Symlinks are followed only when they resolve to a regular file inside ``root`` (the file's
    content is packed, never the link); links out of the tree, to directories, devices, FIFOs and
    sockets are refused, because a bundle holds regular files only.
    """
    real_root = root.resolve()

    def walk(directory: Path, prefix: str) -> Iterator[tuple[str, Path]]:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            if _excluded(entry.name, excludes) or (not prefix and entry.name == MANIFEST_NAME):
                continue
            try:
                _check_relative_path(rel)
            except ValueError as exc:
                raise BundleError(f"cannot pack {rel!r}: {exc}") from exc
            path = Path(entry.path)
            if entry.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(real_root):
                    raise BundleError(f"cannot pack {rel!r}: symlink pointing outside the bundle"
                                      f" ({target})")
                if not target.is_file():
                    raise BundleError(f"cannot pack {rel!r}: symlink to something other than a"
                                      " regular file")
                yield rel, target
            elif entry.is_dir(follow_symlinks=False):
                yield from walk(path, rel + "/")
            elif entry.is_file(follow_symlinks=False):
                yield rel, path
            else:
                raise BundleError(f"cannot pack {rel!r}: not a regular file or directory")

    yield from walk(root, "")


def _make_staging(near: Path) -> Path:
    """A private temp dir on the same filesystem as ``near`` when possible (cheap hardlinks and
    atomic renames), else in the system temp dir."""
    with contextlib.suppress(OSError):
        return Path(tempfile.mkdtemp(prefix=".dml-staging-", dir=near))
    return Path(tempfile.mkdtemp(prefix="dml-staging-"))


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hardlink (no bytes moved) when allowed, else copy at disk speed."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


# --------------------------------------------------------------------------------------------
# pack


def build_manifest(directory: Path, *, task_type: TaskType,
                   entrypoint: str | None = DEFAULT_ENTRYPOINT,
                   requirements: Iterable[str] = (), outputs: Iterable[str] = (),
                   metadata: Mapping[str, Any] | None = None,
                   max_file_size: int = DEFAULT_MAX_FILE_SIZE,
                   kind: BundleKind | None = None,
                   num_examples: int | None = None, metrics: Mapping[str, float] | None = None,
                   exclude: Iterable[str] = DEFAULT_EXCLUDES, network: bool = False,
                   entry: str | None = None, round_files: Iterable[str] = (),
                   shards: Iterable[str] = ()) -> Manifest:
    """Hash ``directory`` into a manifest without storing anything (what pack would publish)."""
    if kind is None:
        kind = "task" if entrypoint is not None else "result"
    manifest, _ = _build(directory, task_type=task_type, entrypoint=entrypoint,
                         requirements=requirements, outputs=outputs, metadata=metadata,
                         max_file_size=max_file_size, kind=kind, num_examples=num_examples,
                         metrics=metrics, exclude=exclude, network=network, entry=entry,
                         round_files=round_files, shards=shards)
    return manifest


def _build(directory: Path, *, task_type: TaskType, entrypoint: str | None,
           requirements: Iterable[str], outputs: Iterable[str],
           metadata: Mapping[str, Any] | None, max_file_size: int,
           kind: BundleKind, num_examples: int | None,
           metrics: Mapping[str, float] | None,
           exclude: Iterable[str], network: bool = False, entry: str | None = None,
           round_files: Iterable[str] = (), shards: Iterable[str] = ()
           ) -> tuple[Manifest, list[tuple[str, Path]]]:
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidInput("directory", f"{directory} is not a directory")
    if max_file_size <= 0:
        raise InvalidInput("max_file_size", "must be positive")
    sources = list(_scan_source(directory, tuple(exclude)))
    if len(sources) > MAX_FILES:
        raise BundleError(f"{directory}: {len(sources)} files (limit: {MAX_FILES})")
    entries = []
    for rel, real in sources:
        try:
            sha, size = _sha256_file(real, max_file_size)
        except BundleError as exc:
            raise BundleError(f"cannot pack {rel!r}: {exc}") from exc
        executable = bool(real.stat().st_mode & stat.S_IXUSR) or rel == entrypoint
        entries.append(FileEntry(path=rel, sha256=sha, size=size, executable=executable))
    try:
        manifest = Manifest(kind=kind, task_type=TaskType(task_type), entrypoint=entrypoint,
                            files=tuple(entries), requirements=tuple(requirements),
                            outputs=tuple(outputs), metadata=dict(metadata or {}),
                            num_examples=num_examples, metrics=dict(metrics or {}),
                            network=network, python_entry=entry,
                            round_files=tuple(round_files), shards=tuple(shards))
    except ValidationError as exc:
        raise BundleError(f"cannot pack {directory}: {exc}") from exc
    return manifest, sources


def pack_bundle(directory: Path, store: Store, *, task_type: TaskType,
                entrypoint: str | None = DEFAULT_ENTRYPOINT, requirements: Iterable[str] = (),
                outputs: Iterable[str] = (), metadata: Mapping[str, Any] | None = None,
                max_file_size: int = DEFAULT_MAX_FILE_SIZE,
                exclude: Iterable[str] = DEFAULT_EXCLUDES,
                kind: BundleKind | None = None, num_examples: int | None = None,
                metrics: Mapping[str, float] | None = None, network: bool = False,
                entry: str | None = None, round_files: Iterable[str] = (),
                shards: Iterable[str] = ()) -> PackedBundle:
    """Hash every file of ``directory``, write the manifest next to them and store the lot.

    ``directory`` itself is left untouched: the files are hardlinked (or copied) into a staging
    directory with the manifest, which is what gets stored, so packing never edits a creator's
    tree and a re-pack of unchanged files gives the same CID. ``kind`` defaults to ``"task"``, or
    ``"result"`` when ``entrypoint`` is ``None`` (an output dir has nothing to run); result bundles
    carry ``num_examples``/``metrics`` (see :func:`decentralml.storage.runner.pack_result`).
    Files changed while packing are
    detected (the staged copy is re-hashed when it is not a hardlink; sizes and mtimes otherwise)
    and refused rather than published with a manifest that does not match them.
    """
    directory = Path(directory)
    if kind is None:
        kind = "task" if entrypoint is not None else "result"
    manifest, sources = _build(directory, task_type=task_type, entrypoint=entrypoint,
                               requirements=requirements, outputs=outputs, metadata=metadata,
                               max_file_size=max_file_size, kind=kind, num_examples=num_examples,
                               metrics=metrics, exclude=exclude, network=network,
                               entry=entry, round_files=round_files, shards=shards)
    staging = _make_staging(directory.resolve().parent)
    try:
        tree = staging / "bundle"
        tree.mkdir()
        for rel, real in sources:
            target = tree / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(real, target)
            listed = manifest.entry(rel)
            st = target.stat()
            if st.st_size != listed.size:
                raise BundleError(f"{rel!r} changed while packing; pack again")
            if not os.path.samestat(st, real.stat()):
                sha, _ = _sha256_file(target, max_file_size)
                if sha != listed.sha256:
                    raise BundleError(f"{rel!r} changed while packing; pack again")
            os.chmod(target, 0o755 if listed.executable else 0o644)
        (tree / MANIFEST_NAME).write_bytes(manifest.to_json())
        cid = store.put(tree)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PackedBundle(cid=cid, manifest=manifest)


# --------------------------------------------------------------------------------------------
# fetch and verify


def verify_bundle(root: Path, *, max_total_size: int = DEFAULT_MAX_TOTAL_SIZE,
                  max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> Manifest:
    """Check a bundle tree on disk against its own manifest; return the manifest.

    Refused, with :class:`BundleError`: a missing or invalid manifest, symlinks (inside or out),
    devices/FIFOs/sockets, files the manifest does not list, listed files that are missing,
    directories holding no listed file, and anything over the size limits. Refused with
    :class:`IntegrityError`: a file whose size or sha256 differs from its entry. Nothing is
    modified.
    """
    root = Path(root)
    manifest_path = root / MANIFEST_NAME
    try:
        st = manifest_path.lstat()
    except FileNotFoundError:
        raise BundleError(f"no {MANIFEST_NAME} at the root of the bundle") from None
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(f"{MANIFEST_NAME} is not a regular file")
    if st.st_size > MAX_MANIFEST_SIZE:
        raise BundleError(f"{MANIFEST_NAME} is {st.st_size} bytes (limit: {MAX_MANIFEST_SIZE})")
    manifest = Manifest.from_json(manifest_path.read_bytes())

    listed = {entry.path: entry for entry in manifest.files}
    for entry in manifest.files:
        if entry.size > max_file_size:
            raise BundleError(f"{entry.path!r} is {entry.size} bytes (limit: {max_file_size})")
    if manifest.total_size > max_total_size:
        raise BundleError(f"bundle holds {manifest.total_size} bytes (limit: {max_total_size})")
    needed_dirs = {str(p) for e in manifest.files for p in PurePosixPath(e.path).parents} - {"."}

    found: set[str] = set()
    # Iterative: a hostile tree of any depth is refused with BundleError, never RecursionError.
    pending: list[tuple[Path, str]] = [(root, "")]
    while pending:
        directory, prefix = pending.pop()
        with os.scandir(directory) as it:
            entries = list(it)
        for item in entries:
            rel = f"{prefix}{item.name}"
            if not prefix and item.name == MANIFEST_NAME:
                continue
            mode = item.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                target = os.readlink(item.path)
                lands = os.path.normpath(os.path.join(os.path.dirname(item.path), target))
                inside = os.path.commonpath([os.path.abspath(lands), os.path.abspath(root)]) \
                    == os.path.abspath(root)
                where = "pointing inside the bundle" if inside else "pointing outside the bundle"
                raise BundleError(f"refused {rel!r}: symlink {where} ({target!r}); bundles hold"
                                  " regular files only")
            if stat.S_ISDIR(mode):
                if rel not in needed_dirs:
                    raise BundleError(f"refused {rel!r}: directory not in the manifest")
                pending.append((Path(item.path), rel + "/"))
            elif stat.S_ISREG(mode):
                if rel not in listed:
                    raise BundleError(f"refused {rel!r}: file not in the manifest")
                found.add(rel)
            else:
                raise BundleError(f"refused {rel!r}: not a regular file (device, FIFO or socket)")
    missing = sorted(set(listed) - found)
    if missing:
        raise BundleError(f"files listed in the manifest are missing: {missing[:10]}")
    for rel, entry in listed.items():
        path = root / rel
        size = path.lstat().st_size
        if size != entry.size:
            raise IntegrityError(f"{rel!r} is {size} bytes, the manifest says {entry.size}")
        sha, _ = _sha256_file(path, max_file_size)
        if sha != entry.sha256:
            raise IntegrityError(f"{rel!r} does not match its sha256 in the manifest")
    return manifest


def _normalise_modes(root: Path, manifest: Manifest) -> None:
    """Give every file and directory plain permissions: no setuid/setgid/sticky, no world-write;
    exec only for entries the manifest marks executable."""
    for dirpath, _dirnames, _filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
    os.chmod(root / MANIFEST_NAME, 0o644)
    for entry in manifest.files:
        os.chmod(root / entry.path, 0o755 if entry.executable else 0o644)


def fetch_limits(max_total_size: int = DEFAULT_MAX_TOTAL_SIZE,
                 max_file_size: int = DEFAULT_MAX_FILE_SIZE,
                 timeout: float = DEFAULT_FETCH_TIMEOUT) -> FetchLimits:
    """The :class:`FetchLimits` a bundle is fetched under: what a valid manifest could need.

    At most :data:`MAX_FILES` files plus the directories holding them, at most
    :data:`MAX_DEPTH` levels of directories, the manifest, and the size limits.
    """
    return FetchLimits(max_bytes=max_total_size + MAX_MANIFEST_SIZE,
                       max_file_bytes=max(max_file_size, MAX_MANIFEST_SIZE),
                       max_entries=2 * MAX_FILES + 2, max_depth=MAX_DEPTH, timeout=timeout)


def fetch_bundle(store: Store, cid: str, dest: Path, *,
                 max_total_size: int = DEFAULT_MAX_TOTAL_SIZE,
                 max_file_size: int = DEFAULT_MAX_FILE_SIZE,
                 timeout: float = DEFAULT_FETCH_TIMEOUT) -> Bundle:
    """Fetch bundle ``cid`` into ``dest``, verified; nothing is left at ``dest`` on failure.

    The DAG is bounded while it streams (:func:`fetch_limits`: total bytes, per-file bytes,
    entry count, depth and ``timeout`` seconds), so a directory or file bomb is refused with
    :class:`BundleError` before it is written out. The store verifies the bytes against the
    CID; then :func:`verify_bundle` checks the tree
    against the manifest, in a staging directory next to ``dest``. Only a bundle that passes is
    renamed into place (an atomic rename on the same filesystem), so ``dest`` either holds a
    complete verified bundle or does not exist. ``dest`` must not exist or be an empty directory.
    """
    dest = Path(dest)
    if not isinstance(cid, str) or not cid:
        raise InvalidInput("cid", "must be a non-empty string")
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise InvalidInput("dest", f"{dest} already exists and is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.fetch-", dir=dest.parent))
    try:
        tree = staging / "bundle"
        try:
            store.get(cid, tree, limits=fetch_limits(max_total_size, max_file_size, timeout))
        except FetchLimitExceeded as exc:
            raise BundleError(f"bundle {exc}") from exc
        if tree.is_symlink() or not tree.is_dir():
            raise BundleError(f"{cid} is not a directory bundle")
        manifest = verify_bundle(tree, max_total_size=max_total_size, max_file_size=max_file_size)
        _normalise_modes(tree, manifest)
        if dest.exists():
            dest.rmdir()
        os.rename(tree, dest)
    finally:
        remove_tree_quietly(staging)
    return Bundle(path=dest, manifest=manifest, cid=cid)


def read_manifest(root: Path) -> Manifest:
    """The manifest of a bundle tree on disk, validated but without checking the files."""
    path = Path(root) / MANIFEST_NAME
    if path.is_symlink() or not path.is_file():
        raise BundleError(f"no {MANIFEST_NAME} in {root}")
    if path.stat().st_size > MAX_MANIFEST_SIZE:
        raise BundleError(f"{path} is larger than {MAX_MANIFEST_SIZE} bytes")
    return Manifest.from_json(path.read_bytes())


def load_bundle(root: Path, *, cid: str = "", max_total_size: int = DEFAULT_MAX_TOTAL_SIZE,
                max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> Bundle:
    """A bundle already on disk (fetched earlier, e.g. before a restart), verified again.

    Re-hashing costs a read of the bundle, which is what makes resuming safe: a directory edited
    since :func:`fetch_bundle` is refused instead of trusted. ``cid`` is informational here (the
    tree cannot be re-checked against it without the store).
    """
    root = Path(root)
    if root.is_symlink() or not root.is_dir():
        raise BundleError(f"{root} is not a bundle directory")
    manifest = verify_bundle(root, max_total_size=max_total_size, max_file_size=max_file_size)
    return Bundle(path=root, manifest=manifest, cid=cid)

"""``.npz`` files that hash the same everywhere and that hostile input cannot blow up.

Writing: ``numpy.savez`` stamps every zip member with the current local time, so two peers that
computed bit-identical weights would still publish different bytes, hence different CIDs, and could
never agree on an aggregate by hash. :func:`write_npz` writes the same layout numpy reads (one
uncompressed ``NAME.npy`` member per array, ``.npy`` format 1.0) with every zip field that
could vary pinned: a fixed 1980-01-01 date, Unix as the creating system, fixed permissions,
ZIP64 always (so the format does not switch with the size). The bytes then depend only on the
names, dtypes, shapes and values.

Reading: :func:`read_npz` never unpickles (object dtypes are refused before any data is read), only
accepts the members it is asked for, checks each header's declared size against the member's
real size and against a byte budget before allocating, so a forged header cannot make it allocate
terabytes.
"""

from __future__ import annotations

import io
import math
import os
import secrets
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

from decentralml.errors import InvalidInput, ModelError

#: The date every member carries: the earliest a zip header can hold, the same on every machine.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
#: numpy's own default limit for an ``.npy`` header.
MAX_NPY_HEADER = 10_000
#: Array kinds an npz written or read here may hold: floats, signed and unsigned ints, booleans.
NUMERIC_KINDS = "fiub"


def write_npz(f: IO[bytes], arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` (in their mapping order) to ``f`` as a byte-reproducible ``.npz``."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            a = np.asarray(array)
            if a.dtype.hasobject or a.dtype.kind not in NUMERIC_KINDS:
                raise InvalidInput("arrays", f"{name} has unsupported dtype {a.dtype}",
                                   "numeric (float, int, uint, bool)")
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_DATE_TIME)
            info.create_system = 3  # ZipInfo says 0 on Windows: pinned so bytes do not depend on it
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asarray(a, order="C"), version=(1, 0),
                                          allow_pickle=False)


def save_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> Path:
    """:func:`write_npz` to ``path`` atomically (a reader never sees half a file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(p, lambda f: write_npz(f, arrays))
    return p


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write through a temporary file in the same directory, then rename it over ``path``.

    The temporary file is created with mode 0o666 less the umask, as a plain ``open`` would (not
    ``mkstemp``'s 0600): a data shard written here is read by the sandboxed task, which runs as
    another uid under root (docs/security.md). The kernel applies the umask, so it is never read
    or changed here (``os.umask`` is process-wide).
    """
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_header(f: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """``(shape, fortran_order, dtype)`` of the ``.npy`` stream ``f``, header size bounded."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(
            f, max_header_size=MAX_NPY_HEADER)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(
            f, max_header_size=MAX_NPY_HEADER)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return tuple(int(d) for d in shape), bool(fortran), np.dtype(dtype)


def read_npz(path: str | os.PathLike[str], names: Sequence[str], *, max_bytes: int
             ) -> dict[str, np.ndarray]:
    """Exactly the arrays ``names`` of the ``.npz`` at ``path``, at most ``max_bytes`` of data.

    Any other member, a missing one, an object or non-numeric dtype, a header that disagrees
    with the member's size, or more data than ``max_bytes`` in total is a
    :class:`~decentralml.errors.ModelError` naming the file and the member.
    """
    p = Path(path)
    try:
        zf = zipfile.ZipFile(p)
    except FileNotFoundError:
        raise ModelError(f"{p}: no such file") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelError(f"{p}: not a valid .npz file: {exc}") from None
    with zf:
        members = [i.filename for i in zf.infolist()]
        expected = [f"{n}.npy" for n in names]
        if len(members) != len(set(members)):
            raise ModelError(f"{p}: duplicate members")
        extra = [m for m in members if m not in expected]
        if extra:
            raise ModelError(f"{p}: unexpected member {extra[0]!r} "
                             f"(expected only {', '.join(expected)})")
        missing = [n for n, m in zip(names, expected, strict=True) if m not in members]
        if missing:
            raise ModelError(f"{p}: missing array {missing[0]!r}")
        budget = max_bytes
        out: dict[str, np.ndarray] = {}
        for name in names:
            array = _read_member(zf, zf.getinfo(f"{name}.npy"), f"{p}: array {name!r}", budget)
            budget -= array.nbytes
            out[name] = array
        return out


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, budget: int
                 ) -> np.ndarray:
    try:
        with zf.open(info) as f:
            shape, fortran, dtype = read_header(f)
            if dtype.hasobject or dtype.kind not in NUMERIC_KINDS:
                raise ModelError(f"{where} has dtype {dtype}; only numeric arrays are read "
                                 "(pickled data is never loaded)")
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes > budget:
                raise ModelError(f"{where} declares {nbytes} bytes, over what is left of the "
                                 f"file's budget ({max(budget, 0)} bytes)")
            flat = read_payload(f, info, shape, dtype, where)
    except ModelError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelError(f"{where}: unreadable: {exc}") from None
    return np.asarray(flat.reshape(shape, order="F" if fortran else "C"), order="C")


def read_payload(f: IO[bytes], info: zipfile.ZipInfo, shape: tuple[int, ...],
                 dtype: np.dtype[Any], where: str) -> np.ndarray:
    """The flat data of an ``.npy`` member whose header ``f`` has just been read, into one
    preallocated array: the member's size must be exactly what its header declares, so a lying
    header cannot make us allocate or read more than the (already bounded) array."""
    nbytes = math.prod(shape) * dtype.itemsize
    if info.file_size != f.tell() + nbytes:
        raise ModelError(f"{where}: member is {info.file_size} bytes, its header "
                         f"declares {f.tell() + nbytes}")
    flat = np.empty(math.prod(shape), dtype=dtype)
    view = flat.data.cast("B")
    reader = cast(io.BufferedIOBase, f)
    got = 0
    while got < nbytes:
        n = reader.readinto(view[got:])
        if not n:
            raise ModelError(f"{where}: truncated data")
        got += n
    return flat

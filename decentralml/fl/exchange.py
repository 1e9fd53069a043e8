"""How models travel between creator and contributors, safely.

The creator publishes the architecture once, as a ``.keras`` file (see
:func:`decentralml.fl.keras.save_architecture`, always read back with ``safe_mode=True``).
Contributors send back **weights only**, never code:

- ``update.npz`` (:data:`UPDATE_FILE`): an uncompressed numpy zip with one ``.npy`` member per
  model variable, in the order of ``model.weights``. Member names are
  ``"{index:04d}:{path}"`` where ``path`` is the variable's Keras path without the top model's
  own name (``0002:dense/kernel``, not ``sequential_3/dense/kernel``): stable across processes
  for a model loaded from the same ``.keras`` file, unique, and readable in error messages.
- ``update.json`` (:data:`SIDECAR_FILE`): ``{"num_examples": int, "metrics": {...}}``.

Both are written byte-reproducibly (:mod:`decentralml.fl.npz`: no timestamps in the zip; sorted
JSON keys), so the same weights and claims always give the same files and therefore the same CID;
that is what lets peers vote on an aggregate by its hash. :func:`save_weights` writes the weights
alone, as one such file.

:func:`load_update` trusts nothing in those files. The zip is read member by member with
:mod:`zipfile` and :mod:`numpy.lib.format`'s header readers: pickles are never involved (object
dtypes are refused, as ``np.load(..., allow_pickle=False)`` would), every member's name, shape and
dtype is checked against the model *before* its data is read (so a forged header cannot make us
allocate terabytes), the data must have exactly the declared size, and values must be finite.
Errors are :class:`~decentralml.errors.ModelError` naming the file and the variable.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from decentralml.errors import InvalidInput, ModelError
from decentralml.fl.base import MAX_NUM_EXAMPLES, Update, UpdateKey
from decentralml.fl.npz import atomic_write, read_header, read_payload, write_npz

UPDATE_FILE = "update.npz"
SIDECAR_FILE = "update.json"

#: A sidecar is a few numbers; anything bigger than this is not one.
MAX_SIDECAR_BYTES = 1 << 20


@dataclass(frozen=True)
class WeightSpec:
    """Names, shapes and dtypes of a model's variables: what an update must match."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype[Any], ...]

    def __post_init__(self) -> None:
        if not len(self.names) == len(self.shapes) == len(self.dtypes):
            raise InvalidInput("like", "names, shapes and dtypes differ in length")
        if len(set(self.names)) != len(self.names):
            raise InvalidInput("like", "variable names are not unique")

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def of(cls, like: Any) -> WeightSpec:
        """The spec of ``like``: a :class:`WeightSpec`, a Keras model (anything with
        ``.weights`` of variables having ``.path``), a ``{name: array}`` mapping, or a sequence of
        arrays (named ``"{index:04d}"``)."""
        if isinstance(like, WeightSpec):
            return like
        if isinstance(like, Mapping):
            arrays = [np.asarray(a) for a in like.values()]
            return cls(tuple(str(k) for k in like),
                       tuple(a.shape for a in arrays), tuple(a.dtype for a in arrays))
        if hasattr(like, "weights") and not isinstance(like, Sequence | np.ndarray):
            names = model_weight_names(like)
            return cls(tuple(names),
                       tuple(tuple(int(d) for d in v.shape) for v in like.weights),
                       tuple(np.dtype(str(v.dtype)) for v in like.weights))
        if isinstance(like, Sequence):
            arrays = [np.asarray(a) for a in like]
            return cls(tuple(f"{i:04d}" for i in range(len(arrays))),
                       tuple(a.shape for a in arrays), tuple(a.dtype for a in arrays))
        raise InvalidInput("like", f"cannot take a weight layout from a {type(like).__name__}")


def model_weight_names(model: Any) -> list[str]:
    """``"{index:04d}:{path}"`` for each of ``model.weights`` (see the module docstring)."""
    prefix = f"{getattr(model, 'name', '')}/"
    names = []
    for i, v in enumerate(model.weights):
        path = str(getattr(v, "path", None) or getattr(v, "name", f"var{i}"))
        names.append(f"{i:04d}:{path.removeprefix(prefix)}")
    return names


def _named_arrays(model_or_weights: Any, names: Sequence[str] | None
                  ) -> tuple[list[str], list[np.ndarray]]:
    if isinstance(model_or_weights, Mapping):
        pairs = [(str(k), np.asarray(v)) for k, v in model_or_weights.items()]
        return [k for k, _ in pairs], [v for _, v in pairs]
    if hasattr(model_or_weights, "get_weights") and hasattr(model_or_weights, "weights"):
        arrays = [np.asarray(a) for a in model_or_weights.get_weights()]
        return model_weight_names(model_or_weights), arrays
    if isinstance(model_or_weights, Sequence):
        arrays = [np.asarray(a) for a in model_or_weights]
        if names is None:
            names = [f"{i:04d}" for i in range(len(arrays))]
        if len(names) != len(arrays):
            raise InvalidInput("names", f"{len(names)} names for {len(arrays)} arrays")
        return list(names), arrays
    raise InvalidInput("model_or_weights",
                       f"expected a Keras model, a mapping or a list of arrays, "
                       f"got {type(model_or_weights).__name__}")


def _check_num_examples(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelError(f"{where}: num_examples must be an integer, got {value!r}")
    if not 0 <= value <= MAX_NUM_EXAMPLES:
        raise ModelError(f"{where}: num_examples is {value} (limit: 0..={MAX_NUM_EXAMPLES})")
    return value


def _checked_arrays(model_or_weights: Any, names: Sequence[str] | None
                    ) -> dict[str, np.ndarray]:
    keys, arrays = _named_arrays(model_or_weights, names)
    if len(set(keys)) != len(keys):
        raise InvalidInput("names", "array names are not unique")
    for key, a in zip(keys, arrays, strict=True):
        if a.dtype.hasobject or a.dtype.kind not in "fiub":
            raise InvalidInput("model_or_weights", f"{key} has unsupported dtype {a.dtype}")
        if a.dtype.kind == "f" and not bool(np.isfinite(a).all()):
            raise InvalidInput("model_or_weights", f"{key} holds NaN or inf")
    return dict(zip(keys, arrays, strict=True))


def save_weights(model_or_weights: Any, path: str | os.PathLike[str], *,
                 names: Sequence[str] | None = None) -> Path:
    """Write the weights alone to the ``.npz`` file ``path`` (atomically); return ``path``.

    The file is byte-reproducible: the same names, dtypes, shapes and values give the same bytes
    on any machine at any time, so an aggregate's CID identifies its weights. Read it back with
    :func:`load_weights` (or :class:`NpzWeights`). ``model_or_weights`` and ``names`` are as for
    :func:`save_update`; non-finite weights are refused.
    """
    arrays = _checked_arrays(model_or_weights, names)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(p, lambda f: write_npz(f, arrays))
    return p


def load_weights(path: str | os.PathLike[str], *, like: Any) -> list[np.ndarray]:
    """The checked arrays of a weights file (:func:`save_weights`, ``update.npz``) in memory."""
    return NpzWeights(path, WeightSpec.of(like)).load()


def save_update(model_or_weights: Any, directory: str | os.PathLike[str], num_examples: int,
                metrics: Mapping[str, Any] | None = None, *,
                names: Sequence[str] | None = None) -> Path:
    """Write ``update.npz`` and ``update.json`` into ``directory``; return the ``.npz`` path.

    ``model_or_weights`` is a Keras model (names from its variables, the form ``load_update``
    checks against), a ``{name: array}`` mapping, or a list of arrays (named by ``names`` or by
    index). Refuses to write non-finite weights or metrics: a contributor should learn about a
    diverged run before submitting it, not after. Files are written atomically and
    byte-reproducibly (see the module docstring).
    """
    try:
        num_examples = _check_num_examples(num_examples, "save_update")
    except ModelError as exc:
        raise InvalidInput("num_examples", str(exc)) from None
    arrays = _checked_arrays(model_or_weights, names)
    sidecar = {"num_examples": num_examples, "metrics": dict(metrics or {})}
    try:
        text = json.dumps(sidecar, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("metrics", f"not finite JSON: {exc}") from None

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    npz_path = out / UPDATE_FILE
    atomic_write(npz_path, lambda f: write_npz(f, arrays))
    atomic_write(out / SIDECAR_FILE, lambda f: f.write(text.encode("utf-8")))
    return npz_path


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def read_sidecar(path: str | os.PathLike[str]) -> tuple[int, dict[str, Any]]:
    """``(num_examples, metrics)`` from an ``update.json``, validated."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_SIDECAR_BYTES:
            raise ModelError(f"{p}: {size} bytes is too large for a sidecar "
                             f"(limit: {MAX_SIDECAR_BYTES})")
        data = json.loads(p.read_bytes().decode("utf-8"), parse_constant=_reject_constant)
    except FileNotFoundError:
        raise ModelError(f"{p}: missing sidecar {SIDECAR_FILE}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelError(f"{p}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{p}: the sidecar must be a JSON object")
    if "num_examples" not in data:
        raise ModelError(f"{p}: num_examples is missing")
    n = _check_num_examples(data["num_examples"], str(p))
    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict):
        raise ModelError(f"{p}: metrics must be a JSON object")
    for name, value in metrics.items():
        # A number must be finite: 1e400 parses to infinity and 10**400 overflows a float, and
        # both are refused like NaN. (Notes as strings stay allowed.)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        try:
            finite = math.isfinite(float(value))
        except OverflowError:
            finite = False
        if not finite:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
            raise ModelError(f"{p}: metric {name!r} must be a finite number, got {shown}")
    return n, metrics


class NpzWeights(Sequence[np.ndarray]):
    """The arrays of an ``update.npz``, read lazily and checked against a :class:`WeightSpec`.

    ``weights[i]`` opens the file, checks member ``i``'s header and size, and returns a fresh
    array; nothing is cached, so a strategy walking the updates holds one array at a time.
    Use :meth:`verify` to check every member (including finiteness) once up front.
    """

    def __init__(self, path: str | os.PathLike[str], spec: WeightSpec) -> None:
        self.path = Path(path)
        self.spec = spec
        self.names = list(spec.names)
        self.shapes = list(spec.shapes)
        self.dtypes = list(spec.dtypes)

    def __len__(self) -> int:
        return len(self.spec)

    def __repr__(self) -> str:
        return f"NpzWeights({str(self.path)!r}, {len(self)} arrays)"

    def _where(self, index: int) -> str:
        return f"{self.path}: variable {self.names[index]}"

    def _open(self) -> zipfile.ZipFile:
        try:
            zf = zipfile.ZipFile(self.path)
        except FileNotFoundError:
            raise ModelError(f"{self.path}: missing update file") from None
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ModelError(f"{self.path}: not a valid .npz file: {exc}") from None
        return zf

    def check_members(self, zf: zipfile.ZipFile) -> None:
        """The archive holds exactly one ``.npy`` member per expected variable."""
        members = [i.filename for i in zf.infolist()]
        expected = [f"{n}.npy" for n in self.names]
        missing = [m.removesuffix(".npy") for m in expected if m not in set(members)]
        extra = [m for m in members if m not in set(expected)]
        if missing:
            raise ModelError(f"{self.path}: missing variable {missing[0]}"
                             + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        if extra:
            raise ModelError(f"{self.path}: unexpected member {extra[0]!r}"
                             + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
                             + "; it does not match any variable of the model")
        if len(members) != len(set(members)):
            raise ModelError(f"{self.path}: duplicate members")

    def _read(self, zf: zipfile.ZipFile, index: int, check_finite: bool) -> np.ndarray:
        name = self.names[index]
        shape, dtype = self.shapes[index], self.dtypes[index]
        try:
            info = zf.getinfo(f"{name}.npy")
        except KeyError:
            raise ModelError(f"{self.path}: missing variable {name}") from None
        try:
            with zf.open(info) as f:
                got_shape, fortran, got_dtype = read_header(f)
                if got_dtype.hasobject:
                    raise ModelError(f"{self._where(index)} has an object dtype "
                                     "(pickled data is never loaded)")
                if got_shape != shape:
                    raise ModelError(f"{self._where(index)} has shape {got_shape}, "
                                     f"the model expects {shape}")
                if got_dtype != dtype:
                    raise ModelError(f"{self._where(index)} has dtype {got_dtype}, "
                                     f"the model expects {dtype}")
                flat = read_payload(f, info, shape, dtype, self._where(index))
        except ModelError:
            raise
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise ModelError(f"{self._where(index)}: unreadable: {exc}") from None
        array = flat.reshape(shape, order="F" if fortran else "C")
        if check_finite and dtype.kind == "f" and not bool(np.isfinite(array).all()):
            raise ModelError(f"{self._where(index)} holds NaN or inf")
        return np.asarray(array, order="C")  # ascontiguousarray would make a 0-d array 1-d

    def __iter__(self) -> Iterator[np.ndarray]:
        with self._open() as zf:
            self.check_members(zf)
            for i in range(len(self)):
                yield self._read(zf, i, check_finite=False)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        if not isinstance(index, int | np.integer):
            raise TypeError("NpzWeights supports integer indices only")
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(index)
        with self._open() as zf:
            return self._read(zf, i, check_finite=False)

    def verify(self) -> None:
        """Check every member, values included, reading one array at a time."""
        with self._open() as zf:
            self.check_members(zf)
            for i in range(len(self)):
                self._read(zf, i, check_finite=True)

    def load(self) -> list[np.ndarray]:
        """Every array, checked, in memory."""
        with self._open() as zf:
            self.check_members(zf)
            return [self._read(zf, i, check_finite=True) for i in range(len(self))]


def load_update(path: str | os.PathLike[str], *, like: Any, lazy: bool = False,
                source: str | None = None, key: UpdateKey | None = None) -> Update:
    """Load and check a contributor's update against ``like`` (a Keras model or a spec).

    ``path`` is the ``update.npz`` file or the directory holding it; the sidecar is read from the
    same directory. Every array is checked (name, shape, dtype, finite values) before anything is
    returned. With ``lazy=True`` the arrays are checked and dropped, and the returned update reads
    them again on demand (:class:`NpzWeights`): K such updates cost almost no memory, which is
    what :class:`~decentralml.fl.fedavg.FedAvg` streaming needs. ``key`` (a submission id, a
    CID) fixes the update's place in a deterministic aggregation (:attr:`Update.key`).
    """
    p = Path(path)
    npz = p / UPDATE_FILE if p.is_dir() else p
    spec = WeightSpec.of(like)
    num_examples, metrics = read_sidecar(npz.parent / SIDECAR_FILE)
    weights = NpzWeights(npz, spec)
    label = source or str(npz)
    if lazy:
        weights.verify()
        return Update(weights, num_examples, metrics, source=label, key=key)
    return Update(_NamedList(weights.load(), spec.names), num_examples, metrics, source=label,
                  key=key)


class _NamedList(list[np.ndarray]):
    """A list of arrays that remembers their names, for error messages."""

    def __init__(self, arrays: list[np.ndarray], names: Sequence[str]) -> None:
        super().__init__(arrays)
        self.names = list(names)

"""Keras adapters: the only place the numpy core meets a framework.

Keras (and TensorFlow behind it) is imported lazily, on the first call that needs it, so
``import decentralml.fl`` stays cheap and the numpy strategies work without the ``[tf]`` extra;
without it these functions raise an :class:`ImportError` that says what to install.

Architectures are exchanged as ``.keras`` files and always loaded with ``safe_mode=True``; there
is deliberately no way to turn that off here. Before Keras even sees the file,
:func:`load_architecture` reads its ``config.json`` and refuses ``Lambda`` layers, serialized
Python functions and classes from outside the ``keras`` package, so a hostile file is refused with
an error naming the layer instead of relying on a single check deep inside Keras.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from decentralml.config import quiet_framework_env
from decentralml.errors import InvalidInput, ModelError

INSTALL_HINT = 'pip install "decentralml[tf]" (or "decentralml[tf-cpu]")'

#: A model's config.json is a few hundred kilobytes at most; refuse to parse more.
MAX_CONFIG_BYTES = 16 << 20
#: Largest total a ``.keras`` file may expand to, and most members it may hold.
MAX_MODEL_BYTES = 4 << 30
MAX_MODEL_MEMBERS = 1000
#: A member expanding more than this many times its stored size is a zip bomb (Keras writes
#: members uncompressed, so an honest file expands 1x); below the floor nobody cares.
MAX_EXPANSION = 100
EXPANSION_FLOOR = 16 << 20
#: Layer classes that carry Python code; refused whatever Keras' safe mode would say.
CODE_LAYERS = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda"})


def require_keras() -> ModuleType:
    """The ``keras`` module, or an ImportError that says how to get it."""
    # before TensorFlow's first import, which reads them: a notebook gets no start-up noise either
    quiet_framework_env(os.environ)
    try:
        import keras
    except ImportError as exc:  # pragma: no cover - exercised in an environment without TF
        raise ImportError(f"Keras and TensorFlow are needed for this: {INSTALL_HINT}") from exc
    return keras


def get_weights(model: Any) -> list[np.ndarray]:
    """The model's variables as numpy arrays, in ``model.weights`` order."""
    return [np.asarray(a) for a in model.get_weights()]


def set_weights(model: Any, weights: Sequence[np.ndarray]) -> None:
    """Load ``weights`` into ``model``, checking shapes and dtypes first with messages naming the
    variable (Keras' own error does not say which one)."""
    from decentralml.fl.exchange import model_weight_names

    names = model_weight_names(model)
    if len(weights) != len(names):
        raise ModelError(f"{len(weights)} arrays for a model with {len(names)} variables")
    for name, v, w in zip(names, model.weights, weights, strict=True):
        shape = tuple(int(d) for d in v.shape)
        if tuple(np.shape(w)) != shape:
            raise ModelError(f"variable {name}: shape {np.shape(w)}, the model expects {shape}")
    model.set_weights([np.asarray(w, dtype=str(v.dtype))
                       for v, w in zip(model.weights, weights, strict=True)])


def clone_model(model: Any, weights: Sequence[np.ndarray] | None = None) -> Any:
    """A new, uncompiled model with the same architecture and ``weights`` (or ``model``'s).

    Rebuilt from ``get_config()`` rather than with ``keras.models.clone_model``, which in Keras 3
    also copies the compile configuration: a fresh, uncompiled copy is what federated code wants
    (each training run compiles its own optimizer) and what gets saved for contributors.
    """
    keras = require_keras()
    try:
        clone = type(model).from_config(model.get_config())
    except (NotImplementedError, TypeError):  # subclassed model without a config
        clone = keras.models.clone_model(model)
    set_weights(clone, get_weights(model) if weights is None else weights)
    return clone


def save_architecture(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``model`` uncompiled (no optimizer, no loss) as a ``.keras`` file for contributors.

    Uncompiled because the training recipe belongs to the contributor side (``train_local``) and
    a compile config is one more thing to deserialize. The current weights travel too, so the
    file also is round 0's global model.
    """
    require_keras()
    p = Path(path)
    if p.suffix != ".keras":
        raise InvalidInput("path", f"{p.name} does not end in .keras", "a .keras file")
    if getattr(model, "compiled", False) or getattr(model, "optimizer", None) is not None:
        model = clone_model(model)
    p.parent.mkdir(parents=True, exist_ok=True)
    model.save(p)
    return p


def _walk(node: Any, layer: str | None = None) -> Iterator[tuple[dict[str, Any], str | None]]:
    if isinstance(node, dict):
        config = node.get("config")
        if isinstance(config, dict) and isinstance(config.get("name"), str) \
                and "class_name" in node:
            layer = config["name"]
        yield node, layer
        for value in node.values():
            yield from _walk(value, layer)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, layer)


def _check_members(p: Path, zf: zipfile.ZipFile) -> None:
    """Refuse a zip bomb by the sizes its directory declares, before anything is inflated.

    Python's zipfile never inflates a member past its declared size, so these sizes bound what
    Keras (which reads the file through zipfile) can be made to allocate.
    """
    infos = zf.infolist()
    if len(infos) > MAX_MODEL_MEMBERS:
        raise ModelError(f"{p}: {len(infos)} members (limit: {MAX_MODEL_MEMBERS})")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > EXPANSION_FLOOR \
                and info.file_size > MAX_EXPANSION * max(info.compress_size, 1):
            raise ModelError(f"{p}: member {info.filename!r} expands from {info.compress_size} "
                             f"to {info.file_size} bytes, more than {MAX_EXPANSION}x (a zip "
                             "bomb); refused before loading")
    if total > MAX_MODEL_BYTES:
        raise ModelError(f"{p}: members expand to {total} bytes (limit: {MAX_MODEL_BYTES})")


def scan_architecture(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``config.json`` of a ``.keras`` file, if it holds no code; ModelError if not.

    The zip's member sizes are checked first (:data:`MAX_MODEL_BYTES`, :data:`MAX_EXPANSION`),
    so a small file that would inflate to gigabytes is refused before Keras opens it.
    """
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as zf:
            _check_members(p, zf)
            info = zf.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise ModelError(f"{p}: config.json is {info.file_size} bytes "
                                 f"(limit: {MAX_CONFIG_BYTES})")
            config = json.loads(zf.read(info).decode("utf-8"))
    except ModelError:
        raise
    except FileNotFoundError:
        raise ModelError(f"{p}: no such model file") from None
    except KeyError:
        raise ModelError(f"{p}: not a .keras file (no config.json)") from None
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelError(f"{p}: not a valid .keras file: {exc}") from None
    for node, layer in _walk(config):
        where = f"{p}: layer {layer!r}" if layer else f"{p}"
        cls = node.get("class_name")
        if cls in CODE_LAYERS:
            raise ModelError(f"{where} is a {cls} layer, which carries Python code; "
                             "architectures must be built from standard layers only")
        if cls in ("__lambda__", "function", "__typespec__"):
            raise ModelError(f"{where} contains a serialized Python function")
        module = node.get("module")
        if module is not None and not (isinstance(module, str)
                                       and (module == "keras" or module.startswith("keras."))):
            raise ModelError(f"{where} uses {cls!r} from module {module!r}; only classes from "
                             "the keras package are loaded")
        registered = node.get("registered_name")
        if isinstance(registered, str) and ">" in registered:
            raise ModelError(f"{where} uses the custom object {registered!r}; only standard "
                             "Keras classes are loaded")
    return config


def load_architecture(path: str | os.PathLike[str]) -> Any:
    """Load a ``.keras`` architecture safely: scanned first, then ``safe_mode=True``, uncompiled.

    Any refusal or corruption is a :class:`~decentralml.errors.ModelError`; Keras' own advice to
    pass ``safe_mode=False`` is not repeated, because that option does not exist here.
    """
    keras = require_keras()
    p = Path(path)
    if p.suffix != ".keras":
        raise ModelError(f"{p}: architectures are exchanged as .keras files only")
    scan_architecture(p)
    try:
        model = keras.saving.load_model(p, compile=False, safe_mode=True)
    except Exception as exc:
        text = str(exc).split(" If you trust", 1)[0].split("safe_mode=False", 1)[0]
        raise ModelError(f"{p}: refused or unreadable model: {text.strip()}") from None
    if not isinstance(model, keras.Model):
        raise ModelError(f"{p}: holds a {type(model).__name__}, not a Keras model")
    return model


#: The names the rest of the SDK and the examples use for the architecture file.
save_model = save_architecture
load_model = load_architecture

"""Before a task is published: does its bundle hold every file it will need to run?

A task whose bundle cannot run locks the creator's reward in escrow and fails on every
contributor's machine, so publishing refuses such a bundle up front, naming the missing file.
Two sources say what a bundle needs:

* ``template.json``'s ``"needs"``: files the task code opens itself (``model.keras``, a config)
  and that a shell script cannot reveal;
* the entry point (``start_task.sh``): the files it runs or reads by a path inside the bundle
  (``python train.py``, ``"$here/train.py"``). Paths under other variables (the contributor's
  ``$DECENTRALML_DATA_DIR``, ...) are not the bundle's and are not checked.

The shell scan is a deliberately small pattern match, not a shell parser: it catches the common
"forgot to copy the script" mistake; ``"needs"`` is the precise, declared contract.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from decentralml.errors import InvalidInput

#: The descriptor a bundle may carry (templates do); ``needs`` lists files that must be present.
DESCRIPTOR = "template.json"

#: File types a start script plausibly runs or reads from its own bundle.
_SUFFIXES = ("py", "sh", "json", "jsonl", "keras", "npz", "txt", "csv")
# A path relative to the bundle: bare (train.py), ./train.py, or under a variable that holds the
# script's own directory ($here/, ${HERE}/, $DECENTRALML_TASK_DIR/), preceded by a word boundary
# a shell would split on (start, blank, quote, =).
_BUNDLE_PATH = re.compile(
    r"""(?:^|(?<=[\s"'=]))"""
    r"""(?:\$\{?(?:here|HERE|dir|DIR|DECENTRALML_TASK_DIR)\}?"?/|\./)?"""
    r"""(?P<path>[A-Za-z0-9_][A-Za-z0-9_./-]*\.(?:""" + "|".join(_SUFFIXES) + r"""))"""
    r"""(?=$|[\s"';|&)])""")

#: Hints for files with a known way to get them.
HINTS = {
    "model.keras": "pass --model FILE.keras to `task create` (or `model=` to publish); "
                   "`decentralml example digits --out DIR` writes the digits example's model",
}


def declared_needs(bundle_dir: Path) -> list[str]:
    """``template.json``'s ``"needs"`` (relative paths), or [] when there is no descriptor."""
    path = bundle_dir / DESCRIPTOR
    if not path.is_file():
        return []
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput("bundle", f"{path} is not valid JSON: {exc}") from None
    needs = meta.get("needs", []) if isinstance(meta, dict) else None
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise InvalidInput("bundle", f"{path}: \"needs\" must be a list of file names")
    return list(needs)


#: The round files of an entry-point bundle whose ``template.json`` names none: the round's model
#: and config, what a federated job rewrites each round.
DEFAULT_ROUND_FILES = ("config.json", "model.keras")


def declared_entry(bundle_dir: Path) -> tuple[str | None, tuple[str, ...]]:
    """``template.json``'s Python ``"entry"`` (``"module:function"``) and ``"round_files"``.

    ``(None, ())`` without a descriptor or an entry. A malformed entry, or one whose module is
    not in the bundle, is refused here, before anything is packed.
    """
    path = bundle_dir / DESCRIPTOR
    if not path.is_file():
        return None, ()
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput("bundle", f"{path} is not valid JSON: {exc}") from None
    entry = meta.get("entry") if isinstance(meta, dict) else None
    if entry is None:
        return None, ()
    from decentralml.storage.bundle import entry_module

    try:
        module = entry_module(entry)
    except ValueError as exc:
        raise InvalidInput("entry", f"{path}: {exc}") from None
    base = module.replace(".", "/")
    if not ((bundle_dir / f"{base}.py").is_file()
            or (bundle_dir / base / "__init__.py").is_file()):
        raise InvalidInput("entry", f"{path}: entry {entry!r} names {base}.py, which is not in "
                           f"{bundle_dir}")
    rounds = meta.get("round_files", list(DEFAULT_ROUND_FILES))
    if not isinstance(rounds, list) or not all(isinstance(n, str) for n in rounds):
        raise InvalidInput("round_files", f"{path}: \"round_files\" must be a list of file names")
    return entry, tuple(rounds)


def script_references(script: str) -> list[str]:
    """Bundle-relative paths ``script`` (a start_task.sh) mentions, in order, without repeats."""
    found: list[str] = []
    for line in script.splitlines():
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#!") else ""
        for match in _BUNDLE_PATH.finditer(code):
            path = match.group("path")
            if path not in found:
                found.append(path)
    return found


def missing_files(bundle_dir: Path, entrypoint: str = "start_task.sh") -> list[str]:
    """What the bundle needs and does not have: the entry point, declared needs, script refs."""
    bundle_dir = Path(bundle_dir)
    start = bundle_dir / entrypoint
    if not start.is_file():
        return [entrypoint]
    needed = [*declared_needs(bundle_dir)]
    for ref in script_references(start.read_text(encoding="utf-8", errors="replace")):
        if ref not in needed:
            needed.append(ref)
    return [name for name in needed if not (bundle_dir / name).is_file()]


def check_bundle_runs(bundle_dir: Path, entrypoint: str = "start_task.sh") -> None:
    """Raise :class:`InvalidInput` naming the first missing file (with a hint when known)."""
    missing = missing_files(bundle_dir, entrypoint)
    if not missing:
        return
    name = missing[0]
    others = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
    hint = HINTS.get(name)
    raise InvalidInput("bundle", f"{bundle_dir} has no {name}, which the task needs to run"
                       f"{others}" + (f"; {hint}" if hint else ""))

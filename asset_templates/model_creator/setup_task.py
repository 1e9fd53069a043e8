"""Set up a task as a model creator: copy a template, fill in its hooks, pack and publish it.

    python asset_templates/model_creator/setup_task.py list
    python asset_templates/model_creator/setup_task.py new model_contributor my_task \
        --hooks my_hooks.py --description "Fine-tune on your photos"
    python asset_templates/model_creator/setup_task.py pack my_task --store local:/tmp/store

``new`` copies ``asset_templates/<template>`` to a new directory and, with ``--hooks``, replaces
the block between ``# --- hooks: begin ---`` and ``# --- hooks: end ---`` of the template's
script with your file, so the runner-facing ``main`` stays the one that was tested. ``pack``
reads ``template.json`` (task type, requirements, outputs) and stores the directory as a task
bundle, printing the CID to give ``decentralml task create`` (or ``ModelCreator.publish``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent.parent
TEMPLATE_FILE = "template.json"
BEGIN = "# --- hooks: begin ---"
END = "# --- hooks: end ---"


def list_templates() -> list[str]:
    """Templates that can be copied: directories holding a ``template.json``."""
    return sorted(p.name for p in TEMPLATES.iterdir() if (p / TEMPLATE_FILE).is_file())


def read_template(directory: Path) -> dict[str, Any]:
    """The template's ``template.json``: task type, entrypoint, requirements, outputs."""
    data = json.loads((directory / TEMPLATE_FILE).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "task_type" not in data:
        raise SystemExit(f"{directory / TEMPLATE_FILE}: needs at least a task_type")
    return data


def hook_script(directory: Path) -> Path:
    """The one script of a template that carries the hook markers."""
    found = [p for p in sorted(directory.glob("*.py")) if BEGIN in p.read_text(encoding="utf-8")]
    if len(found) != 1:
        raise SystemExit(f"{directory}: expected one script with hook markers, found {found}")
    return found[0]


def fill_hooks(script: Path, hooks: str) -> None:
    """Replace the marked hooks block of ``script`` with ``hooks`` (markers kept)."""
    text = script.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{script}: hook markers not found")
    body = hooks.strip("\n") + "\n"
    script.write_text(text[: start + len(BEGIN)] + "\n" + body + text[end:], encoding="utf-8")


def copy_template(template: str, dest: Path, *, hooks: Path | None = None,
                  description: str | None = None) -> Path:
    """Copy ``template`` to ``dest`` (which must not exist) and fill it in; return ``dest``."""
    source = TEMPLATES / template
    if template not in list_templates():
        raise SystemExit(f"unknown template {template!r}; one of {list_templates()}")
    if dest.exists():
        raise SystemExit(f"{dest} already exists; choose a new directory")
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if hooks is not None:
        fill_hooks(hook_script(dest), hooks.read_text(encoding="utf-8"))
    if description is not None:
        spec = read_template(dest)
        spec["description"] = description
        (dest / TEMPLATE_FILE).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return dest


def pack(directory: Path, store: Any) -> Any:
    """Pack ``directory`` as a task bundle with the settings of its ``template.json``."""
    from decentralml.chain.types import TaskType
    from decentralml.storage.bundle import pack_bundle
    from decentralml.storage.preflight import declared_entry

    spec = read_template(directory)
    metadata = {"description": spec.get("description", "")}
    entry, round_files = declared_entry(directory)  # the Python entry point, if it has one
    return pack_bundle(directory, store, task_type=TaskType(spec["task_type"]),
                       entrypoint=spec.get("entrypoint", "start_task.sh"),
                       requirements=spec.get("requirements", ()),
                       outputs=spec.get("outputs", ()), metadata=metadata, entry=entry,
                       round_files=round_files)


def _open_store(spec: str) -> Any:
    import decentralml.storage as storage

    opener = getattr(storage, "open_store", None)
    if opener is None:
        raise SystemExit("this decentralml has no storage backends (no open_store)")
    return opener(spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the templates")
    new = sub.add_parser("new", help="copy a template to a new task directory")
    new.add_argument("template")
    new.add_argument("dest", type=Path)
    new.add_argument("--hooks", type=Path, help="file replacing the template's hooks block")
    new.add_argument("--description")
    packer = sub.add_parser("pack", help="store a task directory as a bundle, print its CID")
    packer.add_argument("directory", type=Path)
    packer.add_argument("--store", required=True, help="storage spec, e.g. local:/path or ipfs")
    args = parser.parse_args(argv)

    if args.command == "list":
        for name in list_templates():
            print(f"{name}: {read_template(TEMPLATES / name).get('description', '')}")
    elif args.command == "new":
        dest = copy_template(args.template, args.dest, hooks=args.hooks,
                             description=args.description)
        print(f"created {dest}; edit the hooks in {hook_script(dest).name}, then run `pack`")
    else:
        packed = pack(args.directory, _open_store(args.store))
        print(packed.cid)
        print(f"{len(packed.manifest.files)} files, {packed.manifest.total_size} bytes",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Python entry point of a bundle: the contract, and the program that calls it in the sandbox.

A bundle's ``template.json`` may name a function, ``"entry": "train:fit"``, that the runner calls
once per round instead of running ``start_task.sh``. The function gets a :class:`Round` (where
the round's files are, its ``config.json``, the contributor's data directory) and returns a
:class:`RoundResult` (numpy arrays, an example count and metrics), which is written as the
weights-only ``update.npz`` + ``update.json`` of today; or it writes its outputs itself and
returns ``None`` (any task type). Nothing in the contract is Keras: a PyTorch or JAX bundle returns
its arrays the same way.

This module is also the program that runs inside the bubblewrap sandbox (it only ever runs
there, or unconfined when the contributor opted out): ``--once`` runs one round and exits (the
cold path, :func:`decentralml.storage.runner.run_bundle`); ``--serve IN OUT`` stays up and runs
a round for each request read from descriptor ``IN``, answering on ``OUT`` (the warm path,
:mod:`decentralml.storage.task_host`). Everything in the process after the first round is the
creator's code's to change, so the runner trusts nothing it says: the answer only says "done" or
"failed", and the result is read from the output directory with the same checks as a cold run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The largest request or answer line on the control pipes.
MAX_MESSAGE = 64 * 1024


@dataclass(frozen=True)
class Round:
    """What the entry point is given for one round.

    The round's files (``model.keras``, ``config.json`` of a federated round: the bundle's
    ``round_files``) are in ``task_dir`` next to the bundle's code; ``config`` is ``config.json``
    already parsed (``{}`` without one). ``number`` counts the rounds this process has run (1 on
    the cold path): a warm host keeps whatever the entry point's module kept between them.
    """

    task_dir: Path
    output_dir: Path
    data_dir: Path | None
    config: dict[str, Any]
    task_id: str
    submission_id: str
    number: int = 1


@dataclass(frozen=True)
class RoundResult:
    """A weights-only update: arrays by name (or a list, named by index), what they were
    computed on, and finite metrics."""

    weights: Mapping[str, Any] | Sequence[Any]
    num_examples: int
    metrics: Mapping[str, float] = field(default_factory=dict)


def load_entry(entry: str, task_dir: Path) -> Callable[[Round], Any]:
    """Import ``module:function`` from the bundle in ``task_dir``."""
    module_name, _, function = entry.partition(":")
    if str(task_dir) not in sys.path:
        sys.path.insert(0, str(task_dir))
    module = importlib.import_module(module_name)
    fn = getattr(module, function, None)
    if not callable(fn):
        raise TypeError(f"entry {entry!r}: {module_name} has no function {function!r}")
    return fn


def write_result(result: Any, output_dir: Path) -> None:
    """Write what the entry point returned as ``update.npz`` + ``update.json``."""
    if result is None:
        return  # it wrote its outputs itself
    if isinstance(result, tuple) and len(result) == 3:
        result = RoundResult(*result)
    if not isinstance(result, RoundResult):
        raise TypeError("the entry point must return a RoundResult, (weights, num_examples, "
                        f"metrics) or None, not {type(result).__name__}")
    from decentralml.fl.exchange import save_update

    weights = result.weights
    if not isinstance(weights, Mapping):
        weights = list(weights)
    save_update(weights, output_dir, num_examples=result.num_examples,
                metrics=dict(result.metrics))


def _context(number: int) -> Round:
    env = os.environ
    task_dir = Path(env["DECENTRALML_TASK_DIR"])
    config_path = task_dir / "config.json"
    config = (json.loads(config_path.read_text(encoding="utf-8"))
              if config_path.is_file() else {})
    data = env.get("DECENTRALML_DATA_DIR")
    return Round(
        task_dir=task_dir, output_dir=Path(env["DECENTRALML_OUTPUT_DIR"]),
        data_dir=Path(data) if data else None,
        config=config if isinstance(config, dict) else {"value": config},
        task_id=env.get("DECENTRALML_TASK_ID", ""),
        submission_id=env.get("DECENTRALML_SUBMISSION_ID", ""), number=number)


def _report(exc: BaseException) -> str:
    """Print why the round failed (the log); a ``SystemExit`` message is its own report."""
    if isinstance(exc, SystemExit):
        print(exc.code if isinstance(exc.code, str) else f"exit {exc.code}", file=sys.stderr)
    else:
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    return f"{type(exc).__name__}: {exc}"[:2000]


def run_once(entry: str) -> int:
    ctx = _context(1)
    try:
        write_result(load_entry(entry, ctx.task_dir)(ctx), ctx.output_dir)
    except (Exception, SystemExit) as exc:  # a round's own failure, reported, never a crash
        _report(exc)
        return 1
    return 0


def serve(entry: str, fd_in: int, fd_out: int) -> int:
    """Run a round per request line until the runner closes ``fd_in``."""
    requests = os.fdopen(fd_in, "rb", buffering=0)
    answers = os.fdopen(fd_out, "wb", buffering=0)

    def answer(message: dict[str, Any]) -> None:
        answers.write(json.dumps(message).encode()[:MAX_MESSAGE - 1] + b"\n")

    answer({"ready": True})
    fn: Callable[[Round], Any] | None = None
    number = 0
    while True:
        line = requests.readline(MAX_MESSAGE)
        if not line:
            return 0
        request = json.loads(line)
        number += 1
        os.environ["DECENTRALML_TASK_ID"] = str(request["task_id"])
        os.environ["DECENTRALML_SUBMISSION_ID"] = str(request["submission_id"])
        try:
            ctx = _context(number)
            if fn is None:
                fn = load_entry(entry, ctx.task_dir)
            write_result(fn(ctx), ctx.output_dir)
        except (Exception, SystemExit) as exc:  # the round failed; the runner ends the host
            answer({"ok": False, "error": _report(exc)})
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        answer({"ok": True})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m decentralml.storage.entry")
    parser.add_argument("--entry", required=True, help="module:function")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true")
    mode.add_argument("--serve", nargs=2, type=int, metavar=("IN", "OUT"))
    args = parser.parse_args(argv)
    if args.once:
        code = run_once(args.entry)
        # The round's files are written and closed; the interpreter's teardown (TensorFlow's
        # exit handlers and the collection of its modules: most of a second) would only make a
        # cold round longer.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return serve(args.entry, *args.serve)


if __name__ == "__main__":
    # Run as ``-m``, this file is ``__main__``; the entry point imports RoundResult from
    # ``decentralml.storage.entry``, which must be the module whose classes the host checks.
    from decentralml.storage import entry as _entry

    raise SystemExit(_entry.main())

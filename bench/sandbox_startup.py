"""Start-up cost of a task: the bubblewrap sandbox against a plain run, and a warm round against a
cold one, in the same run.

1. **Sandbox**: a ``true``-like ``start_task.sh`` (``echo`` into its output), sandboxed and plain,
   alternately: what ``run_bundle`` adds around a task (verifying and copying the bundle, the
   sandbox probe, bwrap's namespaces and mounts, the disk watchdog, reading the sidecar).
2. **Warm against cold** (Python entry point): the same round of an entry-point bundle run cold
   (a fresh sandboxed interpreter importing numpy and the bundle) and in a warm task host (the
   process kept from the previous round), alternately.
3. With ``--tf``: the federated example's round (``examples/federated_mnist/bundle``, TensorFlow,
   the digits CNN, 2 epochs on a third of the digits) cold and warm; reported per round: the
   wall time, the training time the bundle measured, and the rest (the task's overhead).

Reported: medians and ratios (``sandboxed/plain``, ``cold/warm``).

Run: ``.venv/bin/python bench/sandbox_startup.py [--runs 15] [--tf]`` (needs bubblewrap).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from decentralml.chain.types import TaskType
from decentralml.storage.bundle import MANIFEST_NAME, Bundle, build_manifest, load_bundle
from decentralml.storage.preflight import declared_entry
from decentralml.storage.runner import RunLimits, SandboxWarning, run_bundle
from decentralml.storage.task_host import TaskHostPool

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "federated_mnist" / "bundle"
ENTRY = '''
import numpy as np
from decentralml.storage.entry import RoundResult

def fit(task):
    return RoundResult(weights=[np.ones(4) * task.number], num_examples=1, metrics={})
'''


def _bundle(src: Path, name: str, *, entry: str | None = None,
            round_files: tuple[str, ...] = ()) -> Bundle:
    (src / MANIFEST_NAME).unlink(missing_ok=True)
    (src / MANIFEST_NAME).write_bytes(
        build_manifest(src, task_type=TaskType.ModelContributor, entry=entry,
                       round_files=round_files).to_json())
    return load_bundle(src, cid=f"bafybench{name}")


def sandbox_overhead(root: Path, runs: int) -> None:
    src = root / "trivial"
    src.mkdir()
    (src / "start_task.sh").write_text(
        'echo \'{"num_examples": 1, "metrics": {}}\' > "$DECENTRALML_OUTPUT_DIR/result.json"\n')
    bundle = _bundle(src, "trivial")
    times: dict[str, list[float]] = {"bubblewrap": [], "none": []}
    for i in range(runs + 1):  # the first round warms caches and is dropped
        for mode in ("bubblewrap", "none"):
            started = time.perf_counter()
            result = run_bundle(bundle, task_id=1, submission_id=i, data_dir=None,
                                workdir=root / f"{mode}-{i}", limits=RunLimits(timeout=60),
                                sandbox=mode)
            elapsed = time.perf_counter() - started
            assert result.ok and result.sandbox == mode
            if i:
                times[mode].append(elapsed)
    boxed, plain = statistics.median(times["bubblewrap"]), statistics.median(times["none"])
    print(f"1. sandbox, trivial start_task.sh, {runs} runs per backend")
    print(f"   plain (sandbox=none):   {plain * 1000:8.1f} ms median")
    print(f"   sandboxed (bubblewrap): {boxed * 1000:8.1f} ms median")
    print(f"   overhead:               {(boxed - plain) * 1000:8.1f} ms per task start")
    print(f"   ratio sandboxed/plain:  {boxed / plain:8.2f}x")


def warm_vs_cold(root: Path, name: str, bundles: list[Bundle], data: Path | None,
                 train: bool) -> None:
    """Round k cold, then round k in the warm host, alternately (the first warm round, which
    starts the host, is reported apart)."""
    cold: list[float] = []
    warm: list[float] = []
    cold_train: list[float] = []
    warm_train: list[float] = []
    first: float | None = None
    limits = RunLimits(timeout=900)
    with TaskHostPool(root / f"hosts-{name}") as pool:
        for k, bundle in enumerate(bundles):
            started = time.perf_counter()
            result = run_bundle(bundle, task_id=1, submission_id=k, data_dir=data,
                                workdir=root / f"{name}-cold-{k}", limits=limits)
            cold.append(time.perf_counter() - started)
            cold_train.append(float(result.metrics.get("train_seconds", 0.0)))
            started = time.perf_counter()
            result = pool.run(bundle, creator="bench", job=name, task_id=1, submission_id=k,
                              data_dir=data, workdir=root / f"{name}-warm-{k}", limits=limits)
            elapsed = time.perf_counter() - started
            if k == 0:
                first = elapsed
            else:
                warm.append(elapsed)
                warm_train.append(float(result.metrics.get("train_seconds", 0.0)))
        assert [e for e, _ in pool.events] == ["started"] + ["reused"] * (len(bundles) - 1)

    def line(label: str, walls: list[float], trains: list[float]) -> None:
        wall = statistics.median(walls)
        text = f"   {label:<30}{wall:8.3f} s median"
        if train:
            rest = statistics.median(w - t for w, t in zip(walls, trains, strict=True))
            text += f" (training {statistics.median(trains):.3f} s, the rest {rest:.3f} s)"
        print(text)

    line("cold round:", cold, cold_train)
    print(f"   {'first warm round (starts it):':<30}{first:8.3f} s")
    line("warm round (2nd on):", warm, warm_train)
    print(f"   {'ratio cold/warm:':<30}{statistics.median(cold) / statistics.median(warm):8.2f}x")
    if train:
        cold_rest = statistics.median(w - t for w, t in zip(cold, cold_train, strict=True))
        warm_rest = statistics.median(w - t for w, t in zip(warm, warm_train, strict=True))
        print(f"   {'overhead ratio cold/warm:':<30}{cold_rest / warm_rest:8.2f}x")


def tf_bundles(root: Path, rounds: int) -> tuple[list[Bundle], Path]:
    import numpy as np

    from decentralml.fl import load_mnist, make_digits_cnn, partition_iid, save_model

    (x, y), _test, _source = load_mnist(None)
    xs, ys = partition_iid(x, y, 3, seed=0)[0]
    data = root / "tf-data"
    data.mkdir()
    np.savez(data / "data.npz", x=xs, y=ys)
    entry, round_files = declared_entry(EXAMPLE)
    out = []
    for k in range(rounds):
        src = root / f"tf-bundle-{k}"
        shutil.copytree(EXAMPLE, src)
        save_model(make_digits_cnn(xs.shape[1:], 10, seed=k), src / "model.keras")
        out.append(_bundle(src, f"tf{k}", entry=entry, round_files=round_files))
    return out, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tf", action="store_true",
                        help="also the federated example's TensorFlow round, cold and warm")
    parser.add_argument("--tf-rounds", type=int, default=4)
    args = parser.parse_args()
    warnings.simplefilter("ignore", SandboxWarning)
    with tempfile.TemporaryDirectory(prefix="dml-bench-sandbox-") as tmp:
        root = Path(tmp)
        sandbox_overhead(root, args.runs)
        bundles: list[Any] = []
        for k in range(args.runs + 1):
            src = root / f"entry-{k}"
            src.mkdir()
            (src / "train.py").write_text(ENTRY)
            (src / "start_task.sh").write_text("exec python train.py\n")
            (src / "config.json").write_text(f'{{"round": {k}}}')
            bundles.append(_bundle(src, f"entry{k}", entry="train:fit",
                                   round_files=("config.json",)))
        print(f"2. Python entry point (numpy), {args.runs} rounds each, sandboxed")
        warm_vs_cold(root, "entry", bundles, None, train=False)
        if args.tf:
            tf, data = tf_bundles(root, args.tf_rounds)
            print(f"3. the federated example's round (TensorFlow, digits CNN), "
                  f"{args.tf_rounds - 1} rounds each after the first, sandboxed")
            warm_vs_cold(root, "tf", tf, data, train=True)


if __name__ == "__main__":
    main()

"""Start-up cost of the bubblewrap sandbox: a trivial task run sandboxed and plain, same run.

The task is ``true``-like (``echo`` into its output), so what is measured is what ``run_bundle``
adds around it: verifying and copying the bundle, the sandbox probe and bwrap's namespaces and
mounts (sandboxed), the disk watchdog, reading the sidecar. Both backends run the same bundle
alternately; reported: median seconds of each, and ``sandboxed/plain`` as a ratio (the sandbox's
overhead relative to a plain run on this machine), plus the median absolute overhead.

Run: ``.venv/bin/python bench/sandbox_startup.py [--runs 15]`` (needs bubblewrap).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from decentralml.chain.types import TaskType
from decentralml.storage.bundle import MANIFEST_NAME, build_manifest, load_bundle
from decentralml.storage.runner import RunLimits, SandboxWarning, run_bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dml-bench-sandbox-") as tmp:
        root = Path(tmp)
        src = root / "bundle"
        src.mkdir()
        (src / "start_task.sh").write_text(
            'echo \'{"num_examples": 1, "metrics": {}}\' > "$DECENTRALML_OUTPUT_DIR/result.json"\n')
        (src / MANIFEST_NAME).write_bytes(
            build_manifest(src, task_type=TaskType.ModelContributor).to_json())
        bundle = load_bundle(src, cid="bafybench")
        times: dict[str, list[float]] = {"bubblewrap": [], "none": []}
        warnings.simplefilter("ignore", SandboxWarning)
        for i in range(args.runs + 1):  # the first round warms caches and is dropped
            for mode in ("bubblewrap", "none"):
                started = time.perf_counter()
                result = run_bundle(bundle, task_id=1, submission_id=i, data_dir=None,
                                    workdir=root / f"{mode}-{i}", limits=RunLimits(timeout=60),
                                    sandbox=mode)
                elapsed = time.perf_counter() - started
                assert result.ok and result.sandbox == mode
                if i:
                    times[mode].append(elapsed)
        boxed = statistics.median(times["bubblewrap"])
        plain = statistics.median(times["none"])
        print(f"runs per backend:       {args.runs}")
        print(f"plain (sandbox=none):   {plain * 1000:8.1f} ms median")
        print(f"sandboxed (bubblewrap): {boxed * 1000:8.1f} ms median")
        print(f"overhead:               {(boxed - plain) * 1000:8.1f} ms per task start")
        print(f"ratio sandboxed/plain:  {boxed / plain:8.2f}x")


if __name__ == "__main__":
    main()

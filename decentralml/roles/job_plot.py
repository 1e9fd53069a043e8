"""A federated job's report as a picture: per-round accuracy (the federated model and each
contributor's update) and the rewards paid per round.

Uses matplotlib's object API with the Agg canvas directly (no ``pyplot``): nothing global is
switched, so it works headless, in a server and next to a notebook's own backend.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decentralml.roles.job_store import JobState

def job_figure(state: JobState) -> Any:
    """A matplotlib ``Figure`` of the job's rounds so far (two panels side by side)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    acc, pay = fig.subplots(1, 2)
    closed = [r for r in state.rounds if r.phase == "closed"]
    rounds = [r.round for r in closed]
    xs = [0, *rounds] if state.initial_accuracy is not None else rounds
    ys = ([state.initial_accuracy] if state.initial_accuracy is not None else []) + \
        [r.accuracy for r in closed]
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    if points:
        acc.plot([p[0] for p in points], [p[1] for p in points], marker="o", color="#1f6feb",
                 label="federated model", linewidth=2)
    workers = sorted({c.worker for r in state.rounds for c in r.contributors})
    label = {c.worker: c.name or c.worker[:8] for r in state.rounds for c in r.contributors}
    palette = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    for i, worker in enumerate(workers):
        pts = [(r.round, c.accuracy) for r in state.rounds for c in r.contributors
               if c.worker == worker and c.accuracy is not None]
        if pts:
            acc.scatter([p[0] for p in pts], [p[1] for p in pts], s=30, alpha=0.8,
                        color=palette[i % len(palette)], label=f"update {label[worker]}")
    if state.spec.target_accuracy is not None:
        acc.axhline(state.spec.target_accuracy, color="grey", linestyle="--", linewidth=1,
                    label="target")
    acc.set_title(f"job {state.spec.name}: holdout accuracy")
    acc.set_xlabel("round")
    acc.set_ylabel("accuracy")
    acc.set_ylim(0, 1)
    acc.set_xticks(list(range(0 if points and points[0][0] == 0 else 1, state.spec.rounds + 1)))
    acc.grid(alpha=0.3)
    acc.legend(loc="lower right", fontsize=8)

    # The bars are drawn in the job's token (floats are fine for a picture; report.json keeps
    # the exact planck), or in planck for a job recorded without its token.
    token = state.spec.token
    unit, per_unit = (token.symbol, 10**token.decimals) if token else ("planck", 1)
    bottoms = [0.0] * len(state.rounds)
    labels = [r.round for r in state.rounds]
    for i, worker in enumerate(workers):
        heights = [sum(c.reward for c in r.contributors if c.worker == worker) / per_unit
                   for r in state.rounds]
        pay.bar(labels, heights, bottom=bottoms, color=palette[i % len(palette)],
                label=label[worker])
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    pay.set_title(f"rewards paid per round ({unit})")
    pay.set_xlabel("round")
    pay.set_ylabel(unit)
    pay.set_xticks(labels or [1])
    pay.grid(alpha=0.3, axis="y")
    if workers:
        pay.legend(loc="upper right", fontsize=8)
    return fig


def plot_job(state: JobState, path: Path) -> Path:
    """Write the job's figure as a PNG at ``path`` (atomically) and return the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = job_figure(state)
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

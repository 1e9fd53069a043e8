"""``decentralml example digits``: the files the quickstart's by-hand story uses.

A creator needs an initial model and a holdout set, each contributor a data shard; on a fresh
clone nobody has them, so this command writes them from scikit-learn's bundled digits (offline).
"""

from __future__ import annotations

from pathlib import Path

import click

from decentralml.cli.app import App, pass_app, table


@click.group("example")
def example() -> None:
    """Write example files (models, holdout sets, data shards) to try the marketplace."""


@example.command("digits")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write model.keras, holdout.npz and shard-N/ into.")
@click.option("--shards", type=int, default=3, show_default=True,
              help="How many contributor shards (shard-1/data.npz ...).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the initial weights and the split.")
@pass_app
def digits(app: App, out: Path, shards: int, seed: int) -> None:
    """The digits CNN (model.keras), a holdout set and IID contributor shards."""
    from decentralml.fl.example import write_digits_example

    written = write_digits_example(out, shards=shards, seed=seed)
    rows: list[list[object]] = [["model.keras", "creator: task create --model", ""],
            ["holdout.npz", "creator: validate/federate --holdout", written.holdout_examples]]
    rows += [[f"{d.name}/data.npz", "contributor: work --data", n]
             for d, n in zip(written.shards, written.shard_examples, strict=True)]
    app.emit(written, lambda c: c.print(table(f"digits example in {out}",
                                              ["file", "for", "examples"], rows)))

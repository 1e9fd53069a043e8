"""``decentralml demo``: the whole federated story on this machine (grows with the project)."""

from __future__ import annotations

import click


@click.command()
def demo() -> None:
    """Show what exists so far: the protocol types and a task's escrow account."""
    from decentralml.chain.types import CreateTaskArgs, TaskType, build, escrow_account_id

    args = build(CreateTaskArgs, task_type=TaskType.ModelContributor, question="Train on MNIST",
                 reward=10**12, max_assignments=3, assets_cid="bafy-demo",
                 assets_storage="Local", expiration_block=100)
    click.echo(f"create_task args ok; escrow {args.escrow}; escrow account of task 0: "
               f"0x{escrow_account_id(0).hex()}")

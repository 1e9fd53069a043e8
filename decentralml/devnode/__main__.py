"""``python -m decentralml.devnode``: same as ``decentralml devnode``."""

from decentralml.devnode.cli import devnode_command

if __name__ == "__main__":
    devnode_command(prog_name="python -m decentralml.devnode")

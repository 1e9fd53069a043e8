"""Deleting a tree of any depth: what a hostile DAG or task leaves behind must still go.

``shutil.rmtree`` recurses once per directory level on Python < 3.12, so a tree a few thousand
levels deep raises ``RecursionError`` (which ``ignore_errors`` does not catch), and full paths
that deep outgrow ``PATH_MAX``. This walks down and back up with directory file descriptors,
holding one at a time, so neither the stack nor the path length nor the fd table limits it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def remove_tree(path: Path) -> None:
    """Delete ``path`` (a file, a link or a directory tree of any depth); missing is fine."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        return
    except OSError:  # not a directory (or a link to one): remove the entry itself
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    names: list[str] = []  # the path from ``path`` down to the directory ``fd`` is open on
    try:
        while True:
            child = None
            with os.scandir(fd) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.name, dir_fd=fd)
            if child is not None:
                down = os.open(child, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = down
                names.append(child)
                continue
            if not names:
                break
            up = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = up
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def remove_tree_quietly(path: Path) -> None:
    """:func:`remove_tree`, ignoring what cannot be removed (best-effort cleanup paths)."""
    with contextlib.suppress(OSError):
        remove_tree(path)

"""Checks of an output folder before a command computes anything, so a bad path fails at once."""

from __future__ import annotations

import os
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that cannot hold the command's files."""


def check_output_folder(path: str | os.PathLike, flag: str) -> None:
    """Raise :class:`OutputPathError` unless ``path`` is a writable folder or could be created as one.

    Nothing is created: the nearest existing ancestor must be a writable folder.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{flag} {path}: exists and is a file, not a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(f"{flag} {path}: {probe} is a file, so no folder can be made below it")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputPathError(f"{flag} {path}: {probe} is not writable")

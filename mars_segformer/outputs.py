"""Output folders and files: checks before a command computes anything, so a bad path fails at once,
and the one atomic-write helper every writer uses."""

from __future__ import annotations

import contextlib
import json
import math
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path`` to write to; on success it is renamed onto ``path``
    (``os.replace``: readers see the old file or the new one, never half of one), on any error or
    interrupt it is removed, so a failed write (a full disk, a signal) leaves nothing behind.

    The temporary name keeps ``path``'s suffix, for writers that pick the format from it (PIL,
    matplotlib) or add it (``np.savez``).
    """
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def strict_json(obj):
    """``obj`` with every non-finite float (NaN, inf) as ``None``, so ``json.dumps`` writes strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | os.PathLike, obj, **dumps_kwargs) -> None:
    """``obj`` as strict JSON (non-finite floats as null), written atomically."""
    dumps_kwargs.setdefault("indent", 1)
    atomic_write_text(path, json.dumps(strict_json(obj), allow_nan=False, **dumps_kwargs))

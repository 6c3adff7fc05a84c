"""One entry point for every supported data source."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .ai4mars import load_ai4mars_folder
from .io import MarsArrays, load_npz
from .sample import sample_path

#: a Hub repo id, owner/name (one place for the rule: data sources and model sources both use it)
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def model_source_kind(spec: str, presets) -> str:
    """``"preset"``, ``"folder"`` or ``"hub"`` for a ``--model`` value: a preset name wins over a same-named
    folder, an existing folder is local, ``owner/name`` is a Hub repo.

    Raises:
        ValueError: a file, or none of the three (the message names the presets).
    """
    if spec in presets:
        return "preset"
    if Path(spec).is_dir():
        return "folder"
    if Path(spec).exists():
        raise ValueError(f"--model {spec}: is a file; expected a preset name, a checkpoint folder or a Hub repo id")
    if HUB_ID.fullmatch(spec) and not spec.startswith((".", "/")):
        return "hub"
    raise ValueError(f"unknown --model {spec!r}: not a preset ({', '.join(sorted(presets))}), an existing folder, "
                     "or a Hub repo id 'owner/name'")


def load_arrays(path: str | os.PathLike | None = None, revision: str | None = None,
                token: str | None = None, images_only: bool = False) -> MarsArrays:
    """Load an ``.npz`` file (course layout; memory-mapped above a size, see ``data/mapped.py``), an AI4Mars
    folder, a Hub dataset ``owner/name`` (when no such local path exists; ``revision`` for a branch, tag or
    commit), or with None the embedded sample. ``images_only``: an ``.npz`` of unlabelled tiles alone is
    taken too (see ``io.load_npz``; read into memory, not mapped)."""
    if path is None:
        return load_npz(sample_path())
    p = Path(path)
    if not p.exists() and HUB_ID.fullmatch(str(path)) and not str(path).endswith(".npz"):
        from .hub import load_hub_dataset

        return load_hub_dataset(str(path), revision, token)
    if p.is_dir():
        return load_ai4mars_folder(p)
    from .mapped import load_npz_mapped, should_map

    if images_only and _lacks_training_set(p):
        return load_npz(p, images_only=True)
    return load_npz_mapped(p) if should_map(p) else load_npz(p)  # a file larger than memory is memory-mapped


def _lacks_training_set(path: Path) -> bool:
    """An ``.npz`` whose member list has no ``training_set`` (unreadable files answer False and fail later
    with their own message)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return "training_set.npy" not in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False

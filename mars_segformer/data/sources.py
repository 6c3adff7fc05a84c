"""One entry point for every supported data source."""

from __future__ import annotations

import os
from pathlib import Path

from .ai4mars import load_ai4mars_folder
from .io import MarsArrays, load_npz
from .sample import sample_path


def load_arrays(path: str | os.PathLike | None = None) -> MarsArrays:
    """Load an ``.npz`` file (course layout), an AI4Mars folder, or with None the embedded sample."""
    if path is None:
        return load_npz(sample_path())
    path = Path(path)
    return load_ai4mars_folder(path) if path.is_dir() else load_npz(path)

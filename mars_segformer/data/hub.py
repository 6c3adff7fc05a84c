"""Reading a tile dataset published on the Hub (``push_dataset_to_hub.py``) with ``datasets.load_dataset``.

The published ``DatasetDict`` has ``train`` / ``validation`` / ``test`` splits, each with columns
``image`` and ``mask`` (``Image`` features; ``mask`` is None in ``test``) and ``frame_id``. The labelled
splits come back together as the training tiles (the training job makes its own seeded split by
frame, which with ``--seed 42`` reproduces the published one) and go through the same validation as a
local file.
"""

from __future__ import annotations

import numpy as np

from .errors import MarsDataError
from .io import MarsArrays, arrays_from_course_layout

#: columns a published tile dataset must have
COLUMNS = ("image", "mask", "frame_id")
LABELLED_SPLITS = ("train", "validation")


def _gray(images, where: str) -> np.ndarray:
    try:
        return np.stack([np.asarray(im.convert("L")) for im in images])
    except ValueError as err:  # tiles of different sizes
        raise MarsDataError(f"{where}: tiles differ in size ({err})") from None


def _exists(repo_id: str, token: str | None) -> bool:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        HfApi(token=token).dataset_info(repo_id)
        return True
    except HfHubHTTPError:
        return False


def load_hub_dataset(repo_id: str, revision: str | None = None, token: str | None = None) -> MarsArrays:
    """Arrays of a Hub tile dataset.

    Raises:
        MarsDataError: no such repo or revision, missing splits or columns, or arrays that fail the
            checks of a local file.
    """
    import datasets
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    where = f"{repo_id}" + (f"@{revision}" if revision else "")
    try:
        dd = datasets.load_dataset(repo_id, revision=revision, token=token)
    except RevisionNotFoundError:
        raise MarsDataError(f"--data_revision {revision!r}: no such branch, tag or commit in dataset {repo_id}") from None
    except (RepositoryNotFoundError, datasets.exceptions.DatasetNotFoundError):
        if revision and _exists(repo_id, token):  # datasets says "not found" for a missing revision too
            raise MarsDataError(f"--data_revision {revision!r}: no such branch, tag or commit in dataset "
                                f"{repo_id}") from None
        raise MarsDataError(f"--data {repo_id}: no such Hub dataset (or it is private and no token allows it)") from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise MarsDataError(f"--data {where}: cannot load the Hub dataset ({str(err).splitlines()[0]})") from None
    missing = [s for s in LABELLED_SPLITS if s not in dd]
    if missing:
        raise MarsDataError(f"{where}: missing split(s) {missing}; expected train, validation and test")
    for name, split in dd.items():
        absent = [c for c in COLUMNS if c not in split.column_names]
        if absent:
            raise MarsDataError(f"{where}: split {name!r} lacks column(s) {absent}; expected {list(COLUMNS)} "
                                "(a dataset made by push_dataset_to_hub.py)")
    labelled = datasets.concatenate_datasets([dd[s] for s in LABELLED_SPLITS])
    decoded = labelled["mask"]  # each access decodes every PNG: read once
    if any(m is None for m in decoded):
        raise MarsDataError(f"{where}: a train/validation tile has no mask")
    images = _gray(labelled["image"], f"{where} train/validation images")
    masks = np.stack([np.asarray(m) for m in decoded])
    test = dd["test"] if "test" in dd else None
    test_images = _gray(test["image"], f"{where} test images") if test is not None and len(test) else None
    return arrays_from_course_layout(
        np.stack([images, masks], axis=1), test_images, np.asarray(labelled["frame_id"]),
        None if test_images is None else np.asarray(test["frame_id"]), source=f"hf://datasets/{where}",
    )

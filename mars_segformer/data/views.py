"""Images for self-supervised pretraining: which tiles may be used, and two augmented views of each.

Pretraining sees images without their masks: the labelled training tiles, and the unlabelled
(test-set) tiles, except every tile of a frame the run will be validated on (the same seeded split
as ``train_hf.py``: ``--seed`` / ``--val_fraction``), or the validation score would be read off
images the encoder has already studied.
"""

from __future__ import annotations

import albumentations as A
import numpy as np

from .dataset import DataConfig, clean_and_split
from .errors import MarsDataError
from .io import MarsArrays
from .split import leakage_guard


def pretraining_images(arrays: MarsArrays, split: DataConfig) -> tuple[np.ndarray, dict]:
    """The tiles pretraining may use under ``split`` and a record of what was kept out.

    Returns:
        (N, H, W) uint8 images, and ``{"labelled_tiles", "unlabelled_tiles", "validation_tiles_excluded",
        "unlabelled_tiles_excluded", "frame_ids"}``.

    Raises:
        MarsDataError: no image is left.
    """
    if len(arrays.train_images) + len(arrays.test_images) == 0:
        raise MarsDataError(f"{arrays.source}: holds no images (training_set and test_set are empty)")
    if len(arrays.train_images) >= 2:
        cleaned, _, train_idx, val_idx = clean_and_split(arrays, DataConfig(
            val_fraction=split.val_fraction, seed=split.seed, drop_outliers=split.drop_outliers,
            outlier_min_count=split.outlier_min_count))
        allowed, guard = leakage_guard(cleaned, val_idx)
        labelled = cleaned.train_images[train_idx]
    else:  # nothing to validate on: every image may be used
        val_idx, allowed = np.array([], int), np.arange(len(arrays.test_images))
        guard = {"frame_ids": arrays.test_frame_ids is not None, "excluded_tiles": 0}
        labelled = arrays.train_images
    images = np.concatenate([labelled, arrays.test_images[allowed]]) if len(allowed) else labelled
    if len(images) == 0:
        raise MarsDataError(f"{arrays.source}: no image is left once the validation frames are kept out")
    return np.ascontiguousarray(images, dtype=np.uint8), {
        "labelled_tiles": int(len(labelled)), "unlabelled_tiles": int(len(allowed)),
        "validation_tiles_excluded": int(len(val_idx)), "unlabelled_tiles_excluded": int(guard["excluded_tiles"]),
        "frame_ids": bool(guard["frame_ids"])}


def view_augmentation(height: int, width: int, seed: int | None = None) -> A.Compose:
    """One random view of a gray tile, after DenseCL's (MoCo v2's) recipe made for gray Mars tiles: a
    resized crop of 25-100 % of the tile at about its own aspect ratio, horizontal flip, brightness and
    contrast jitter (in place of colour jitter), Gaussian blur."""
    aspect = width / height
    return A.Compose([
        A.RandomResizedCrop(size=(height, width), scale=(0.25, 1.0), ratio=(aspect * 0.75, aspect / 0.75)),
        A.HorizontalFlip(p=0.5),
        A.RandomBrightnessContrast(brightness_limit=0.4, contrast_limit=0.4, p=0.8),
        A.GaussianBlur(sigma_limit=(0.1, 1.5), p=0.5),
    ], seed=seed)


def two_views(images: np.ndarray, augment: A.Compose) -> tuple[np.ndarray, np.ndarray]:
    """(B, H, W) uint8 -> two (B, H, W) uint8 batches, each tile augmented independently in each."""
    first = np.stack([augment(image=t)["image"] for t in images])
    second = np.stack([augment(image=t)["image"] for t in images])
    return first, second

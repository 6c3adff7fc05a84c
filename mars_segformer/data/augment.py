"""Augmentation on read: albumentations transforms chosen by name, CutMix, big-rock oversampling.

Every geometric transform resamples masks with nearest neighbour and fills new border pixels with
class 0 (background, ignored by the default loss), so masks never gain label values.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import albumentations as A
import cv2
import numpy as np

BIG_ROCK = 4

class MarsAffine(A.DualTransform):
    """Rotation and scaling about the tile centre in one ``cv2.warpAffine``.

    Albumentations' own ``Affine`` spends ~0.5 ms per 64x128 tile on parameter bookkeeping; this
    does the same warp in ~0.09 ms, which is what keeps augmentation off the training critical path.

    Args:
        rotate: range of angles in degrees.
        scale: range of zoom factors.
        p: probability of applying.
    """

    def __init__(self, rotate: tuple[float, float] = (0.0, 0.0), scale: tuple[float, float] = (1.0, 1.0),
                 p: float = 0.5):
        super().__init__(p=p)
        self.rotate, self.scale = tuple(rotate), tuple(scale)

    def get_params_dependent_on_data(self, params, data):
        h, w = params["shape"][:2]
        angle = self.py_random.uniform(*self.rotate)
        zoom = self.py_random.uniform(*self.scale)
        return {"matrix": cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, zoom)}

    def apply(self, img, matrix, **params):
        return cv2.warpAffine(img, matrix, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def apply_to_mask(self, mask, matrix, **params):
        return cv2.warpAffine(mask, matrix, (mask.shape[1], mask.shape[0]), flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def get_transform_init_args_names(self):
        return ("rotate", "scale")


@functools.lru_cache(maxsize=8)
def _pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    return gy, gx


class MarsElastic(A.DualTransform):
    """Smooth elastic deformation: a coarse random displacement grid, upsampled, then ``cv2.remap``.

    Args:
        alpha: displacement standard deviation in pixels at the grid nodes.
        grid: (rows, cols) of the coarse grid; fewer nodes give smoother warps.
        p: probability of applying.
    """

    def __init__(self, alpha: float = 3.0, grid: tuple[int, int] = (4, 8), p: float = 0.3):
        super().__init__(p=p)
        self.alpha, self.grid = float(alpha), tuple(grid)

    def get_params_dependent_on_data(self, params, data):
        h, w = params["shape"][:2]
        # cubic upsampling costs ~90 us a field against ~12 us for linear, and the warp looks the same
        nodes = [self.py_random.gauss(0.0, self.alpha) for _ in range(2 * self.grid[0] * self.grid[1])]
        field = np.asarray(nodes, np.float32).reshape(2, *self.grid)
        dx = cv2.resize(field[0], (w, h), interpolation=cv2.INTER_LINEAR)
        dy = cv2.resize(field[1], (w, h), interpolation=cv2.INTER_LINEAR)
        gy, gx = _pixel_grid(h, w)
        return {"map_x": gx + dx, "map_y": gy + dy}

    def apply(self, img, map_x, map_y, **params):
        return cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def apply_to_mask(self, mask, map_x, map_y, **params):
        return cv2.remap(mask, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def get_transform_init_args_names(self):
        return ("alpha", "grid")


#: ``exposure``'s limits: brightness as a share of 255, contrast as a factor's distance from 1
EXPOSURE_BRIGHTNESS, EXPOSURE_CONTRAST = 0.05, 0.1

#: name -> factory of one albumentations transform; the names are what configs and the CLI accept.
AUGMENTATIONS = {
    "hflip": lambda: A.HorizontalFlip(p=0.5),
    "vflip": lambda: A.VerticalFlip(p=0.5),
    "rotate": lambda: MarsAffine(rotate=(-20, 20), p=0.5),
    "scale": lambda: MarsAffine(scale=(0.8, 1.25), p=0.5),
    "elastic": lambda: MarsElastic(alpha=3.0, p=0.3),
    "blur": lambda: A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.5), p=0.3),
    "brightness_contrast": lambda: A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
    # exposure jitter inside the data's own spread: out = alpha * tile + beta * 255 with alpha in [0.9, 1.1] and
    # beta in +-0.05 (+-13 grey levels), where frames' mean brightness in the shared file has an sd of 17 levels;
    # brightness_contrast's +-0.2 is +-51 levels (docs/results.md, "Brightness / contrast jitter")
    "exposure": lambda: A.RandomBrightnessContrast(brightness_limit=EXPOSURE_BRIGHTNESS, contrast_limit=EXPOSURE_CONTRAST,
                                                   p=0.5),
}

#: augmentations that draw from the training pool, built with the DatasetDict (``data.copy_paste``,
#: ``data.frame_shift``)
POOL_AUGMENTATIONS = ("copy_paste", "frame_shift", "frame_zoom")
#: every name ``--augmentations`` accepts
AUGMENTATION_NAMES = (*AUGMENTATIONS, *POOL_AUGMENTATIONS)

#: The reference recipe's full set. At the CPU budgets measured here (docs/ablation.md) it lowered
#: the validation score, so the default is horizontal flips and shifted frame reads; the full set stays one flag
#: away. ``frame_shift`` (issue 19; docs/results.md, "Context in training"): +0.026 / +0.001 task mIoU at full
#: length over two seeds, level at 200 steps; it does nothing on data without complete frames.
REFERENCE_AUGMENTATIONS = ("hflip", "rotate", "scale", "elastic", "blur", "brightness_contrast")
DEFAULT_AUGMENTATIONS = ("hflip", "frame_shift")


def build_augmentation(names: Sequence[str], seed: int | None = None) -> A.Compose | None:
    """An albumentations pipeline of the named transforms, in the given order (None for no names);
    the pool augmentations (``copy_paste``, ``frame_shift``, ``frame_zoom``) are left to the dataset builder.

    Args:
        names: keys of :data:`AUGMENTATIONS` (and :data:`POOL_AUGMENTATIONS`, skipped here).
        seed: seed of the pipeline's generator; without one albumentations draws a random seed, and
            two runs with the same ``--seed`` would see different flips.
    """
    unknown = [n for n in names if n not in AUGMENTATION_NAMES]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; choose from {sorted(AUGMENTATION_NAMES)}")
    names = [n for n in names if n not in POOL_AUGMENTATIONS]
    if not names:
        return None
    return A.Compose([AUGMENTATIONS[n]() for n in names], seed=seed)


class CutMix:
    """Paste rectangles from 2-4 other training tiles into a tile, masks moving with their pixels.

    Args:
        images: (N, H, W) uint8 pool to draw patches from (the training split).
        masks: (N, H, W) class ids of the pool.
        p: probability that a tile gets patches at all.
        num_sources: inclusive range of how many other tiles contribute one patch each.
        max_side: largest patch side as a share of the tile side.
        seed: seed of this object's generator (each DataLoader worker should reseed it).
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, p: float = 0.5,
                 num_sources: tuple[int, int] = (2, 4), max_side: float = 0.5, seed: int | None = None):
        if len(images) != len(masks):
            raise ValueError(f"CutMix pool: {len(images)} images but {len(masks)} masks")
        if len(images) < 2:
            raise ValueError("CutMix needs a pool of at least 2 tiles")
        self.images, self.masks = images, masks
        self.p, self.num_sources, self.max_side = p, num_sources, max_side
        self.rng = np.random.default_rng(seed)

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.rng.random() >= self.p:
            return image, mask
        image, mask = image.copy(), mask.copy()
        h, w = image.shape[:2]
        k = int(self.rng.integers(self.num_sources[0], self.num_sources[1] + 1))
        for src in self.rng.integers(0, len(self.images), size=k):
            ph = int(self.rng.integers(max(1, h // 8), max(2, int(h * self.max_side)) + 1))
            pw = int(self.rng.integers(max(1, w // 8), max(2, int(w * self.max_side)) + 1))
            y, x = int(self.rng.integers(0, h - ph + 1)), int(self.rng.integers(0, w - pw + 1))
            image[y:y + ph, x:x + pw] = self.images[src, y:y + ph, x:x + pw]
            mask[y:y + ph, x:x + pw] = self.masks[src, y:y + ph, x:x + pw]
        return image, mask


def oversample_indices(masks: np.ndarray, factor: int = 15, cls: int = BIG_ROCK, indices=None) -> np.ndarray:
    """Row indices in which every tile holding ``cls`` appears ``factor`` times (the reference recipe).

    Args:
        masks: (N, H, W) class ids.
        factor: total copies of each tile with the class (1 = no oversampling).
        cls: the class to oversample.
        indices: the tiles of ``masks`` to sample (rows then count positions in ``indices``); read a
            chunk at a time, with no copy of the masks.
    """
    if factor < 1:
        raise ValueError(f"oversampling factor must be >= 1, got {factor}")
    from .chunks import class_presence

    has = class_presence(masks, indices, max(cls + 1, 5))[:, cls]
    return np.concatenate([np.arange(len(has))] + [np.flatnonzero(has)] * (factor - 1))

"""Copy-paste of big-rock instances (Ghiasi et al. 2021, "Simple Copy-Paste", for a rare class).

An instance is one connected component of class 4 in a training mask, kept with its own image
pixels. A training read pastes 1-3 of them, scale-jittered and maybe mirrored, at random places of
the tile: the image takes the rock's pixels and the mask becomes class 4 exactly there.
Named ``copy_paste`` in ``--augmentations``; it runs before the albumentations pipeline, so the
pasted rocks are flipped, rotated, ... with the tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .augment import BIG_ROCK

#: the share of training reads given instances (``--copy_paste_p``'s default): half, as built for issue 19
PASTE_P = 0.5


@dataclass
class Instance:
    """One connected component: its bounding-box crop of the image and its (h, w) bool shape."""

    image: np.ndarray
    shape: np.ndarray
    tile: int


def find_instances(masks: np.ndarray, images: np.ndarray, cls: int = BIG_ROCK, min_area: int = 4) -> list[Instance]:
    """The connected components (8-connectivity) of ``cls`` with at least ``min_area`` pixels.

    Args:
        masks: (N, H, W) class ids.
        images: (N, H, W) uint8 images.
        cls: the class whose instances are collected.
        min_area: smaller components (label noise, one or two pixels) are left out.
    """
    out = []
    for i in np.flatnonzero((masks.reshape(len(masks), -1) == cls).any(axis=1)):
        n, comp, stats, _ = cv2.connectedComponentsWithStats((masks[i] == cls).astype(np.uint8), connectivity=8)
        for k in range(1, n):
            x, y, w, h, area = stats[k]
            if area >= min_area:
                out.append(Instance(images[i, y:y + h, x:x + w].copy(), comp[y:y + h, x:x + w] == k, int(i)))
    return out


class CopyPaste:
    """Paste big-rock instances from the training split into a tile.

    Args:
        images: (N, H, W) uint8 training images.
        masks: (N, H, W) their class ids.
        p: probability that a read gets instances at all.
        max_instances: 1 to this many instances per read.
        scale: range of the zoom applied to each instance.
        seed: seed of this object's generator.
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, p: float = PASTE_P, max_instances: int = 3,
                 scale: tuple[float, float] = (0.75, 1.5), seed: int | None = None):
        self.instances = find_instances(masks, images)
        self.p, self.max_instances, self.scale = p, max_instances, scale
        self.rng = np.random.default_rng(seed)

    def _resized(self, inst: Instance) -> tuple[np.ndarray, np.ndarray]:
        z = float(self.rng.uniform(*self.scale))
        h, w = inst.shape.shape
        size = (max(1, round(w * z)), max(1, round(h * z)))
        img = cv2.resize(inst.image, size, interpolation=cv2.INTER_LINEAR)
        shape = cv2.resize(inst.shape.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        if self.rng.random() < 0.5:
            img, shape = img[:, ::-1], shape[:, ::-1]
        return img, shape

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.instances or self.rng.random() >= self.p:
            return image, mask
        image, mask = image.copy(), mask.copy()
        H, W = image.shape[:2]
        for _ in range(int(self.rng.integers(1, self.max_instances + 1))):
            img, shape = self._resized(self.instances[int(self.rng.integers(len(self.instances)))])
            h, w = min(shape.shape[0], H), min(shape.shape[1], W)
            img, shape = img[:h, :w], shape[:h, :w]
            y, x = int(self.rng.integers(0, H - h + 1)), int(self.rng.integers(0, W - w + 1))
            region_i, region_m = image[y:y + h, x:x + w], mask[y:y + h, x:x + w]
            region_i[shape] = img[shape]
            region_m[shape] = BIG_ROCK
        return image, mask

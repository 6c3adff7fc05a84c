"""Shifted reads from whole frames: a training tile read at a random offset inside its own rover frame.

The shared file stores a frame's tiles next to each other, row-major, 4 rows × 2 columns of a 256×256 frame
(``../shared/data/README.md``), so a frame stored with all its tiles can be put back together exactly. A
tile-trained model misses big rocks cut by the tile's edge (their pixels go to bedrock: docs/results.md,
"Which big rocks are missed"), and predicts them far better when it sees past that edge. This augmentation
gives training what the fixed grid hides: with probability ``p`` a read of a tile from a complete training
frame becomes the tile-sized window of that frame moved by up to ``max_shift`` of a tile's height and width
(kept inside the frame), with its mask cut the same way. Every pixel shown is a real, labelled pixel of the
same frame, so no border is invented and no other frame leaks in. Named ``frame_shift`` in
``--augmentations``; reads of tiles whose frame is incomplete (or of a file with no frame ids) are unchanged.
"""

from __future__ import annotations

import numpy as np

from .ai4mars import join_tiles
from .io import FRAME_SIZE, TILE_SHAPE

#: tiles of a complete frame: (FRAME_SIZE / tile height) rows × (FRAME_SIZE / tile width) columns
TILES_PER_FRAME = (FRAME_SIZE // TILE_SHAPE[0]) * (FRAME_SIZE // TILE_SHAPE[1])
#: share of an eligible tile's reads that are shifted, and the largest shift as a share of the tile's sides
SHIFT_P, MAX_SHIFT = 0.5, 0.5


def complete_frames(frame_ids: np.ndarray, wanted=None) -> np.ndarray:
    """Row indices of the tiles of every frame stored with all :data:`TILES_PER_FRAME` tiles, frame by frame.

    Args:
        frame_ids: (N,) frame id of each stored tile, a frame's tiles next to each other.
        wanted: if given, only frames whose id is in it.

    Returns:
        (F * TILES_PER_FRAME,) int64 rows, each frame's tiles in their stored (row-major) order.
    """
    frame_ids = np.asarray(frame_ids)
    if len(frame_ids) == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, frame_ids[1:] != frame_ids[:-1]])
    ends = np.r_[starts[1:], len(frame_ids)]
    rows = [np.arange(s, e) for s, e in zip(starts, ends, strict=True)
            if e - s == TILES_PER_FRAME and (wanted is None or frame_ids[s] in wanted)]
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)


class FrameShift:
    """Read training tiles of complete frames at a random offset inside their frame.

    Args:
        images: (N, H, W) uint8 images of every labelled tile (the rows the dataset's ``index`` names).
        masks: (N, H, W) their class ids.
        frame_ids: (N,) frame ids (None: no frame is known, and the augmentation does nothing).
        allowed: rows that may be read this way (the training split); a frame is used only when all its
            tiles are allowed, so a shifted read never shows a validation tile's pixels.
        p: probability that a read of an eligible tile is shifted.
        max_shift: largest shift as a share of the tile's height and width (each drawn uniformly).
        seed: seed of this object's generator (each DataLoader worker reseeds it).
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, frame_ids, allowed, p: float = SHIFT_P,
                 max_shift: float = MAX_SHIFT, seed: int | None = None):
        if not 0 <= p <= 1 or not 0 < max_shift <= 1:
            raise ValueError(f"frame_shift: p must be in [0, 1] and max_shift in (0, 1], got {p}, {max_shift}")
        rows = np.zeros(0, np.int64)
        if frame_ids is not None and images.shape[1:] == TILE_SHAPE:
            rows = complete_frames(frame_ids)
            per_frame = rows.reshape(-1, TILES_PER_FRAME)
            rows = per_frame[np.isin(per_frame, np.asarray(allowed)).all(axis=1)].ravel()
        #: (F, FRAME_SIZE, FRAME_SIZE) frames put back together, and their masks
        self.images = join_tiles(images[rows]) if len(rows) else np.zeros((0, FRAME_SIZE, FRAME_SIZE), np.uint8)
        self.masks = join_tiles(masks[rows]) if len(rows) else np.zeros((0, FRAME_SIZE, FRAME_SIZE), np.uint8)
        cols = FRAME_SIZE // TILE_SHAPE[1]
        #: row -> (frame, tile row, tile column)
        self.where = {int(r): (k // TILES_PER_FRAME, (k % TILES_PER_FRAME) // cols, k % cols)
                      for k, r in enumerate(rows)}
        self.p, self.max_shift = p, max_shift
        self.rng = np.random.default_rng(seed)

    @property
    def num_frames(self) -> int:
        return len(self.images)

    def __call__(self, image: np.ndarray, mask: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
        at = self.where.get(int(index))
        if at is None or self.rng.random() >= self.p:
            return image, mask
        k, r, c = at
        (th, tw), (fh, fw) = image.shape, self.images.shape[1:]
        sy, sx = round(self.max_shift * th), round(self.max_shift * tw)
        y = min(max(r * th + int(self.rng.integers(-sy, sy + 1)), 0), fh - th)
        x = min(max(c * tw + int(self.rng.integers(-sx, sx + 1)), 0), fw - tw)
        return self.images[k, y:y + th, x:x + tw].copy(), self.masks[k, y:y + th, x:x + tw].copy()

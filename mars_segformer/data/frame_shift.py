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

``frame_zoom`` is the same read at a random scale: the window's sides are the tile's times a factor drawn
log-uniformly from :data:`ZOOM_SCALE`, and the window is resized to the tile's shape (image bilinear or by area,
mask nearest). It is the scale augmentation of common segmentation recipes without the borders an affine
rescale of the tile alone has to invent: a zoomed-out read shows the frame around the tile. With ``zoom_until``
below 1 (``--frame_zoom_until``) the zoom ends after that share of the training steps and the reads are only shifted
from then on, so the last steps train at the tile's own scale (as strong augmentations are switched off for the
last epochs of detection recipes); the trainer reports its progress through :meth:`FrameShift.set_progress`.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .ai4mars import join_tiles
from .frame_layout import frame_runs
from .io import FRAME_SIZE, TILE_SHAPE

#: tiles of a complete frame: (FRAME_SIZE / tile height) rows × (FRAME_SIZE / tile width) columns
TILES_PER_FRAME = (FRAME_SIZE // TILE_SHAPE[0]) * (FRAME_SIZE // TILE_SHAPE[1])
#: share of an eligible tile's reads that are shifted (``--frame_read_p``'s default), and the largest shift as a
#: share of the tile's sides. Every read since issue 19's full-length runs (docs/results.md, "Every eligible read
#: shifted": level, +0.012 and +0.018 over three splits against half the reads)
SHIFT_P, MAX_SHIFT = 1.0, 0.5
#: the share every run moved before ``--frame_read_p`` existed (a run folder or metrics.json without it)
EARLIER_SHIFT_P = 0.5
#: ``frame_zoom``'s range of the window's scale (its sides over the tile's): below 1 zooms in, above 1 out
ZOOM_SCALE = (2 / 3, 1.5)
#: the stored order is trusted to be the frame's layout only if the joined frames' median :func:`seam_ratio` is
#: at most the first; a frame above the second is left out. On the shared file's 426 complete frames the ratio's
#: median is 1.27 (at most 2.67); joined in a shuffled order 5.88, with the two columns swapped 3.94
#: (``bench/frame_seams.py``).
SEAM_MEDIAN_MAX, SEAM_FRAME_MAX = 2.0, 3.0


def zoom_text(scale) -> str:
    """``", windows A-Bx the tile's size"`` for a ``frame_zoom`` scale range (as :class:`FrameShift` and
    ``metrics.json`` record it); empty for shifted windows only, (1, 1)."""
    return "" if tuple(scale) == (1, 1) else f", windows {scale[0]:.2f}-{scale[1]:.2f}x the tile's size"


def until_text(zoom_until: float) -> str:
    """``", zoomed for the first N % of the steps, then shifted only"`` for a ``frame_zoom`` schedule that ends
    (``zoom_until`` below 1); empty for a zoom throughout."""
    return "" if zoom_until >= 1 else f", zoomed for the first {zoom_until:.0%} of the steps, then shifted only"


def complete_frames(frame_ids: np.ndarray, wanted=None) -> np.ndarray:
    """Row indices of the tiles of every frame stored with all :data:`TILES_PER_FRAME` tiles, frame by frame.

    Args:
        frame_ids: (N,) frame id of each stored tile, a frame's tiles next to each other.
        wanted: if given, only frames whose id is in it.

    Returns:
        (F * TILES_PER_FRAME,) int64 rows, each frame's tiles in their stored (row-major) order.
    """
    frame_ids = np.asarray(frame_ids)
    rows = [np.arange(s, e) for s, e in frame_runs(frame_ids)
            if e - s == TILES_PER_FRAME and (wanted is None or frame_ids[s] in wanted)]
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)


def seam_ratio(frame: np.ndarray) -> float:
    """How much larger the gray-level step across the joins of a frame's tiles is than between neighbouring rows
    (or columns) inside them: about 1 where the tiles were cut from this frame in this layout, several times
    larger where unrelated tiles meet.

    Args:
        frame: (FRAME_SIZE, FRAME_SIZE) uint8 image joined by :func:`..ai4mars.join_tiles`.
    """
    th, tw = TILE_SHAPE
    f = frame.astype(np.float32)
    steps_y = np.abs(np.diff(f, axis=0)).mean(axis=1)  # (FRAME_SIZE - 1,) mean step between rows y and y + 1
    steps_x = np.abs(np.diff(f, axis=1)).mean(axis=0)
    seams_y, seams_x = np.arange(th - 1, FRAME_SIZE - 1, th), np.arange(tw - 1, FRAME_SIZE - 1, tw)
    ratios = [steps[seams] / max(float(np.delete(steps, seams).mean()), 0.5)
              for steps, seams in ((steps_y, seams_y), (steps_x, seams_x)) if len(seams)]
    return float(np.concatenate(ratios).max())


def joinable_frames(images: np.ndarray, frame_ids, allowed) -> tuple[np.ndarray, float | None]:
    """The complete frames whose tiles are all ``allowed`` and can be joined in the shared file's layout.

    Args:
        images: (N, H, W) uint8 tiles.
        frame_ids: (N,) frame id of each tile, a frame's tiles next to each other (None: no frame is known).
        allowed: rows a frame's tiles must all be among (e.g. the training split).

    Returns:
        (F, TILES_PER_FRAME) int64 rows of each frame, in its row-major tile order, and the median
        :func:`seam_ratio` of the candidate frames (None: none). Frames above ``SEAM_FRAME_MAX`` are left out, and
        all are when the median is above ``SEAM_MEDIAN_MAX`` (the ids group tiles in another order).
    """
    none = np.zeros((0, TILES_PER_FRAME), np.int64)
    if frame_ids is None or images.shape[1:] != TILE_SHAPE:
        return none, None
    per_frame = complete_frames(frame_ids).reshape(-1, TILES_PER_FRAME)
    per_frame = per_frame[np.isin(per_frame, np.asarray(allowed)).all(axis=1)]
    if not len(per_frame):
        return none, None
    ratios = np.array([seam_ratio(join_tiles(images[f])[0]) for f in per_frame])
    median = float(np.median(ratios))
    return (per_frame[ratios <= SEAM_FRAME_MAX] if median <= SEAM_MEDIAN_MAX else none), median


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
        scale: (low, high) range of the window's scale, drawn log-uniformly and resized back to the tile's shape
            ((1, 1): shifted windows only, ``frame_shift``; :data:`ZOOM_SCALE`: ``frame_zoom``).
        seed: seed of this object's generator (each DataLoader worker reseeds it).
        zoom_until: share of the training steps during which reads are zoomed (``scale`` other than (1, 1));
            after it they are only shifted (1: zoomed throughout).
        soft: (N, C, H, W) soft labels of the same rows (a teacher's class probabilities, distillation), cut and
            resized with the image by :meth:`read`; None without.

    Frames are joined in the shared file's layout only where the joins look like it (:func:`seam_ratio`): a file
    whose frame ids group tiles in another order gets no shifted reads rather than wrong ones.
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, frame_ids, allowed, p: float = SHIFT_P,
                 max_shift: float = MAX_SHIFT, scale: tuple[float, float] = (1.0, 1.0), seed: int | None = None,
                 zoom_until: float = 1.0, soft: np.ndarray | None = None):
        if not 0 <= p <= 1 or not 0 < max_shift <= 1:
            raise ValueError(f"frame_shift: p must be in [0, 1] and max_shift in (0, 1], got {p}, {max_shift}")
        if not 0 < zoom_until <= 1:  # nan too
            raise ValueError(f"frame_zoom: zoom_until is a share of the training steps in (0, 1], got {zoom_until}")
        if not 0 < scale[0] <= scale[1] or scale[1] * TILE_SHAPE[1] > FRAME_SIZE:
            raise ValueError(f"frame_zoom: scale must be (low, high) with 0 < low <= high <= "
                             f"{FRAME_SIZE // TILE_SHAPE[1]} (the window fits the frame), got {scale}")
        per_frame, seam_median = joinable_frames(images, frame_ids, allowed)
        rows = per_frame.ravel()
        #: median seam ratio of the complete frames (None: none to join); above SEAM_MEDIAN_MAX nothing is shifted
        self.seam_median = seam_median
        #: the tiles themselves, not copied (a memory-mapped file stays mapped): windows are cut from the <= 2 x 2
        #: tiles they cross at read time
        self.images, self.masks, self.soft = images, masks, soft
        #: (F, TILES_PER_FRAME) rows of each frame used, in the frame's row-major tile order
        self.frames = rows.reshape(-1, TILES_PER_FRAME)
        cols = FRAME_SIZE // TILE_SHAPE[1]
        #: row -> (frame, tile row, tile column)
        self.where = {int(r): (k // TILES_PER_FRAME, (k % TILES_PER_FRAME) // cols, k % cols)
                      for k, r in enumerate(rows)}
        self.p, self.max_shift, self.scale = p, max_shift, (float(scale[0]), float(scale[1]))
        self.zoom_until = float(zoom_until)
        #: whether reads are zoomed now: in shared memory, so that DataLoader workers (persistent ones too, forked
        #: or spawned) see what :meth:`set_progress` sets in the training process
        self._zooming = torch.ones((), dtype=torch.bool).share_memory_()
        self.rng = np.random.default_rng(seed)

    @property
    def zooming(self) -> bool:
        """Whether a read now draws its window's scale from ``scale`` (False: shifted at the tile's size)."""
        return self.scale != (1.0, 1.0) and bool(self._zooming)

    def set_progress(self, done: float) -> None:
        """Tell the reads how far training is (``done``: the share of its steps taken): the zoom is on while
        ``done`` is below ``zoom_until``."""
        self._zooming.fill_(done < self.zoom_until)

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def key(self) -> tuple:
        """What identifies this augmentation without its pixels: the frames' rows, the tiles' shape and the
        settings (``datasets`` fingerprints a formatted dataset by pickling its transform; see
        ``data/dataset.py``)."""
        return ("FrameShift", tuple(self.images.shape), str(self.images.dtype), self.frames.tobytes(), self.p,
                self.max_shift, self.scale, self.zoom_until)

    def window(self, k: int, y: int, x: int, h: int | None = None, w: int | None = None, arrays=None
               ) -> tuple[np.ndarray, ...]:
        """The ``h`` × ``w`` window (default: the tile's size) of frame ``k`` whose top-left pixel is (``y``,
        ``x``), cut from the stored tiles it crosses of each of ``arrays`` (default: images and masks; an array
        with channels before the tile's axes, (N, C, H, W), gives (C, h, w))."""
        th, tw = TILE_SHAPE
        h, w = h or th, w or tw
        cols = FRAME_SIZE // tw
        r0, r1, c0, c1 = y // th, (y + h - 1) // th, x // tw, (x + w - 1) // tw
        rows = [[self.frames[k, r * cols + c] for c in range(c0, c1 + 1)] for r in range(r0, r1 + 1)]
        oy, ox = y - r0 * th, x - c0 * tw
        # np.block joins the inner lists along the last axis and the outer along the one before: the tile's axes
        return tuple(np.block([[a[i] for i in row] for row in rows])[..., oy:oy + h, ox:ox + w]
                     for a in (arrays or (self.images, self.masks)))

    def __call__(self, image: np.ndarray, mask: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.read(image, mask, index)[:2]

    def read(self, image: np.ndarray, mask: np.ndarray, index: int, soft: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Image, mask and (with ``soft``, the row's (C, H, W) soft labels, cut from :attr:`soft`) soft labels of
        one read of row ``index``: the stored tile, or a window of its frame."""
        if soft is not None and self.soft is None:
            raise ValueError("frame_shift: soft labels asked for, but this FrameShift was built without them")
        at = self.where.get(int(index))
        if at is None or self.rng.random() >= self.p:
            return image, mask, soft
        k, r, c = at
        th, tw = image.shape
        sy, sx = round(self.max_shift * th), round(self.max_shift * tw)
        dy, dx = int(self.rng.integers(-sy, sy + 1)), int(self.rng.integers(-sx, sx + 1))
        if not self.zooming:
            h, w = th, tw
        else:
            s = float(np.exp(self.rng.uniform(np.log(self.scale[0]), np.log(self.scale[1]))))
            h, w = min(round(th * s), FRAME_SIZE), min(round(tw * s), FRAME_SIZE)
        # the window's centre is the tile's, moved by (dy, dx); then the window is kept inside the frame
        y = min(max(r * th + dy + (th - h) // 2, 0), FRAME_SIZE - h)
        x = min(max(c * tw + dx + (tw - w) // 2, 0), FRAME_SIZE - w)
        arrays = (self.images, self.masks) if soft is None else (self.images, self.masks, self.soft)
        img, msk, *rest = self.window(k, y, x, h, w, arrays)
        cut = rest[0] if rest else None
        if (h, w) == (th, tw):
            return img, msk, cut
        smooth = cv2.INTER_AREA if h > th else cv2.INTER_LINEAR
        if cut is not None:  # probabilities are resized smoothly, like the image, channel by channel (OpenCV's
            # area resize takes at most 4): (C, h, w) -> (C, H, W)
            cut = np.stack([cv2.resize(np.ascontiguousarray(c), (tw, th), interpolation=smooth) for c in cut])
        return (cv2.resize(img, (tw, th), interpolation=smooth), cv2.resize(msk, (tw, th), interpolation=cv2.INTER_NEAREST),
                cut)

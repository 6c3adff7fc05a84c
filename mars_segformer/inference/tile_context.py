"""Tiles predicted inside their frame: each tile whose frame's other tiles are at hand is seen with them.

A model trained on 64×128 tiles scores far higher on whole validation frames than tile by tile (docs/results.md,
"Context beyond the tile": a rock cut by the tile's edge is seen with its outline). Where the tiles come with frame
ids (the shared file's ``training_frame_ids`` / ``test_frame_ids``), :func:`predict_masks_in_context` puts each
frame's stored tiles back in their places (:func:`..data.frame_layout.frame_blocks`, which also places the tiles of
frames that lost some, in the largest rectangles their tiles fill), predicts each joined image at once and cuts
the prediction back into the tiles. Tiles of frames that cannot be put together are predicted alone, as
:func:`.predictor.predict_masks` does.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from ..data.frame_layout import Block, frame_blocks, join_block
from .predictor import predict_masks, predict_probs


def _batches(blocks: list[Block], tiles_per_batch: int):
    """Blocks of one shape at a time, about ``tiles_per_batch`` tiles' worth of pixels per batch."""
    for shape in sorted({b.shape for b in blocks}):
        group = [b for b in blocks if b.shape == shape]
        n = max(1, tiles_per_batch // (shape[0] * shape[1]))
        for i in range(0, len(group), n):
            yield group[i:i + n]


def _fill_from_blocks(images: np.ndarray, frame_ids, batch_size: int, progress: bool, predict, outs) -> dict:
    """Fills ``outs`` (arrays of (N, H, W)) at the tiles inside a block from ``predict`` (joined (n, H', W') uint8
    images -> a tuple of (n, H', W') arrays, one per out); returns how many blocks there were, and ``filled``, the
    (N,) bool mask of the tiles filled."""
    blocks = frame_blocks(images, frame_ids)
    filled = np.zeros(len(images), bool)
    th, tw = images.shape[1:]
    with tqdm(total=len(blocks), desc="frames", unit="block", disable=not progress or not blocks) as bar:
        for group in _batches(blocks, batch_size):
            results = predict(np.stack([join_block(images, b) for b in group]))
            for i, block in enumerate(group):
                for row, (r, c) in zip(block.rows[block.owned], block.cells[block.owned], strict=True):
                    for out, res in zip(outs, results, strict=True):
                        out[row] = res[i, r * th:(r + 1) * th, c * tw:(c + 1) * tw]
                filled[block.rows[block.owned]] = True
            bar.update(len(group))
    return {"blocks": len(blocks), "filled": filled}


def _info(done: dict) -> dict:
    return {"blocks": done["blocks"], "tiles_in_frames": int(done["filled"].sum()),
            "tiles_alone": int((~done["filled"]).sum())}


def predict_masks_in_context(model, images: np.ndarray, frame_ids, batch_size: int = 64, tta: str = "none",
                             progress: bool = True, scales=(1.0,)) -> tuple[np.ndarray, dict]:
    """Predicted class ids of tiles, each seen inside its frame where the frame can be put together.

    Args:
        model: a segmentation model whose logits come back at its input's size (any ``from_pretrained`` of this
            package's runs).
        images: (N, H, W) uint8 tiles, a frame's tiles next to each other.
        frame_ids: (N,) frame id of each tile, or None (every tile alone).
        batch_size: tiles' worth of pixels per forward pass.
        tta: flip test-time augmentation, applied to each joined image as to a tile.
        scales: multi-scale test-time augmentation factors.

    Returns:
        (N, H, W) uint8 class ids, and how many blocks (hole-free rectangles of a frame's tiles) were predicted and
        how many tiles took their prediction from one.
    """
    masks = np.empty(images.shape, np.uint8)
    done = _fill_from_blocks(images, frame_ids, batch_size, progress,
                             lambda x: (predict_masks(model, x, len(x), tta, False, scales),), (masks,))
    alone = np.flatnonzero(~done["filled"])
    if len(alone):
        masks[alone] = predict_masks(model, images[alone], batch_size, tta, progress, scales)
    return masks, _info(done)


def _class_and_confidence(model, images: np.ndarray, tta: str) -> tuple[np.ndarray, np.ndarray]:
    """(n, H, W) uint8 class ids and float32 probabilities of those classes (``tta``-averaged)."""
    conf, ids = predict_probs(model, images, tta).max(dim=1)
    return ids.cpu().numpy().astype(np.uint8), conf.cpu().numpy()


def predict_confidence_in_context(model, images: np.ndarray, frame_ids, batch_size: int = 64, tta: str = "none",
                                  progress: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """Class ids and their probabilities, each tile seen inside its frame where it can be put together
    (pseudo-labels with frame context, ``training.pseudo_labels``); arguments as :func:`predict_masks_in_context`.

    Returns:
        (N, H, W) uint8 class ids, (N, H, W) float32 probabilities of them, and what was joined.
    """
    ids, conf = np.empty(images.shape, np.uint8), np.empty(images.shape, np.float32)
    done = _fill_from_blocks(images, frame_ids, batch_size, progress,
                             lambda x: _class_and_confidence(model, x, tta), (ids, conf))
    alone = np.flatnonzero(~done["filled"])
    for i in tqdm(range(0, len(alone), batch_size), desc="tiles", unit="batch", disable=not progress or not len(alone)):
        rows = alone[i:i + batch_size]
        ids[rows], conf[rows] = _class_and_confidence(model, images[rows], tta)
    return ids, conf, _info(done)

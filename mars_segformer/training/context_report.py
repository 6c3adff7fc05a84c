"""The closing report's second number: the validation tiles predicted inside their frames, beside the tile score.

The task's metric, the best-checkpoint choice and the logit adjustment all score tiles one by one. Where the data's
frame ids let the validation frames be put back together, a tile-trained model scores higher seeing them whole
(docs/results.md, "Context beyond the tile"); ``predict --context frame`` predicts that way, and this is its number on
the run's own validation split, written to ``metrics.json`` as ``validation_frame_context`` (never instead of
``validation``).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..data.io import CLASS_NAMES
from ..inference.tile_context import predict_masks_in_context
from .devices import float32_forward
from .trainer import StreamingMetrics


def frame_context_scores(model, images: np.ndarray, masks: np.ndarray, frame_ids, batch_size: int = 64
                         ) -> dict | None:
    """The closing evaluation's scores (task and per-class IoU, ...) of ``images`` predicted inside their frames,
    with how many were; None when the data has no frame ids or no frame can be put together.

    Args:
        model: the model as it will be saved, evaluated in float32 as the closing evaluation does.
        images: (N, H, W) uint8 validation tiles, a frame's tiles next to each other.
        masks: (N, H, W) their labels.
        frame_ids: (N,) their frame ids, or None.
        batch_size: tiles' worth of pixels per forward pass.
    """
    if frame_ids is None or not len(images):
        return None
    model.eval()
    with float32_forward(model):
        preds, joined = predict_masks_in_context(model, images, frame_ids, batch_size, progress=False)
    if not joined["blocks"]:
        return None
    # scored as the Trainer's evaluation scores the validation tiles, so both entries of metrics.json read alike
    scores = StreamingMetrics(len(CLASS_NAMES), 0, list(CLASS_NAMES))
    return {**scores(SimpleNamespace(predictions=preds, label_ids=masks), compute_result=True), **joined}

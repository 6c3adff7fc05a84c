"""Pseudo-labels: a teacher model labels unlabelled tiles, keeping only the pixels it is sure of.

Confidence is the teacher's flip-averaged class probability. A pixel keeps its predicted class when
that confidence reaches the class's threshold, else it becomes 0 (background: ignored by the loss).
One global threshold would wipe out a rare class whose pixels the teacher is rarely sure of (big
rock), so each class can also have its own threshold and a **quota**: the most confident ``quota``
share of the pixels predicted as that class is kept whatever the threshold. The result is a
course-layout ``.npz`` (so every loader reads it) with a JSON record beside it.

Leakage guard: tiles whose frame is in the validation split of the labelled data are never labelled.
Without frame ids (the course file) the guard cannot know which unlabelled tiles share a frame with a
validation tile; it then only keeps validation *tiles* out, and says so in the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import CLASS_NAMES, MarsArrays, MarsDataError, save_npz
from ..data.io import MARS_LABELS
from ..data.split import leakage_guard  # noqa: F401  (the guard's home is the split; named here for self_train)
from ..inference.options import CONTEXTS
from ..outputs import atomic_write_json


@dataclass
class PseudoLabelConfig:
    """How confident the teacher must be.

    Attributes:
        threshold: confidence a pixel needs, in (0, 1).
        class_thresholds: per-class thresholds (class name -> value in (0, 1)) overriding ``threshold``.
        quota: share of each class's predicted pixels kept regardless of the threshold (the most
            confident ones), in [0, 1); 0 turns quotas off.
        min_kept: tiles with a smaller share of kept pixels are left out.
        tta: flip test-time augmentation for the probabilities (``none``, ``hflip``, ``flips``).
        context: ``tile``: each tile labelled alone; ``frame``: inside its frame where the tiles' frame ids let it
            be put back together (``inference.tile_context``; a tile-trained model predicts far better so).
    """

    threshold: float = 0.9
    class_thresholds: dict[str, float] = field(default_factory=dict)
    quota: float = 0.3
    min_kept: float = 0.05
    tta: str = "hflip"
    context: str = "tile"

    def check(self) -> None:
        for name, t in {"threshold": self.threshold, **{f"class_thresholds[{k}]": v
                                                          for k, v in self.class_thresholds.items()}}.items():
            if not 0 < t < 1:
                raise MarsDataError(f"pseudo-label {name} must lie in (0, 1), got {t}")
        unknown = sorted(set(self.class_thresholds) - set(CLASS_NAMES[1:]))
        if unknown:
            raise MarsDataError(f"pseudo-label class_thresholds: unknown class(es) {unknown}; "
                                f"choose from {list(CLASS_NAMES[1:])}")
        if self.context not in CONTEXTS:
            raise MarsDataError(f"pseudo-label context must be one of {', '.join(CONTEXTS)}, got {self.context!r}")
        if not 0 <= self.quota < 1:
            raise MarsDataError(f"pseudo-label quota must lie in [0, 1), got {self.quota}")
        if not 0 <= self.min_kept < 1:
            raise MarsDataError(f"pseudo-label min_kept must lie in [0, 1), got {self.min_kept}")


def check_teacher_labels(model, where: str) -> None:
    """The teacher must predict the Mars classes, in the Mars order."""
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    if id2label != MARS_LABELS:
        raise MarsDataError(f"{where}: the teacher's labels {id2label} are not the data's classes {MARS_LABELS}")


def pseudo_label(teacher, images: np.ndarray, frame_ids, config: PseudoLabelConfig, batch_size: int = 64,
                 progress: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """Label ``images`` with ``teacher``.

    Returns:
        (kept tile indices, their pseudo masks, a record of thresholds and per-class coverage).
    """

    from ..inference.tile_context import predict_confidence_in_context

    config.check()
    n_cls = len(CLASS_NAMES)
    # without frame ids every tile is labelled alone, as --context tile asks
    preds, conf, joined = predict_confidence_in_context(teacher, images, frame_ids if config.context == "frame"
                                                        else None, batch_size, config.tta, progress)
    thresholds, coverage = {}, {}
    keep = np.zeros(images.shape, bool)
    for c in range(1, n_cls):
        name = CLASS_NAMES[c]
        is_c = preds == c
        t = config.class_thresholds.get(name, config.threshold)
        if config.quota > 0 and is_c.any():  # the most confident quota of this class stays in
            t = min(t, float(np.quantile(conf[is_c], 1 - config.quota)))
        thresholds[name] = round(float(t), 6)
        kept = is_c & (conf >= t)
        keep |= kept
        coverage[name] = {"predicted_pixels": int(is_c.sum()), "kept_pixels": int(kept.sum()),
                          "kept_share": round(float(kept.sum() / max(is_c.sum(), 1)), 4)}
    masks = np.where(keep, preds, 0).astype(np.uint8)
    share = keep.reshape(len(images), -1).mean(1)
    tiles = np.flatnonzero(share >= config.min_kept)
    record = {"config": {"threshold": config.threshold, "class_thresholds": config.class_thresholds,
                         "quota": config.quota, "min_kept": config.min_kept, "tta": config.tta,
                         "context": config.context},
              "frame_context": joined if config.context == "frame" else None,
              "thresholds_used": thresholds, "coverage": coverage, "tiles_labelled": int(len(images)),
              "tiles_kept": int(len(tiles)), "pixels_kept_share": round(float(keep.mean()), 4)}
    return tiles, masks[tiles], record


def write_pseudo_labels(out: Path, images: np.ndarray, masks: np.ndarray, frame_ids, record: dict) -> None:
    """``out`` (course-layout ``.npz``: pseudo-labelled tiles as ``training_set``) and ``out.json``, each
    written whole or not at all."""
    arrays = MarsArrays(images, masks, np.zeros((0, *images.shape[1:]), np.uint8),
                        None if frame_ids is None else np.asarray(frame_ids), None, str(out))
    save_npz(arrays, out)
    atomic_write_json(out.with_suffix(".json"), record, default=str)

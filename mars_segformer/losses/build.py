"""Loss specs ("focal:1,dice:0.5") -> modules, and class weights from pixel frequencies."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .dice import DiceLoss
from .focal import FocalLoss
from .jaccard import JaccardLoss
from .lovasz import LovaszSoftmaxLoss
from .ohem import OhemCrossEntropyLoss
from .spec import LOSSES, parse_loss_spec  # noqa: F401  (LOSSES: re-exported)


class CrossEntropyLoss(nn.Module):
    """Weighted cross-entropy with an optional ignored label."""

    def __init__(self, weight=None, ignore_index: int | None = 0):
        super().__init__()
        self.ignore_index = -100 if ignore_index is None else ignore_index
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))

    def forward(self, logits, labels):
        return F.cross_entropy(logits.float(), labels.long(), weight=self.weight, ignore_index=self.ignore_index)


class CombinedLoss(nn.Module):
    """Weighted sum of losses; logits are first upsampled to the label size."""

    def __init__(self, parts: list[tuple[float, nn.Module]]):
        super().__init__()
        self.weights = [w for w, _ in parts]
        self.parts = nn.ModuleList(m for _, m in parts)

    def forward(self, logits, labels):
        if logits.shape[-2:] != labels.shape[-2:]:
            logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
        return sum(w * m(logits, labels) for w, m in zip(self.weights, self.parts, strict=True))


def build_loss(spec: str = "focal", gamma: float = 2.0, class_weights=None, ignore_index: int | None = 0,
               ohem_keep: float = 0.25) -> CombinedLoss:
    """Parse ``"name[:weight],..."`` with names from :data:`LOSSES`.

    Args:
        spec: e.g. ``"focal"``, ``"focal:1,dice:0.5"``, ``"focal:1,lovasz:0.5"``.
        gamma: focal loss gamma.
        class_weights: (C,) weights for ce/focal/ohem, or None.
        ohem_keep: share of the counted pixels the ``ohem`` loss keeps (the hardest ones).
        ignore_index: label left out of every loss (0 ignores background; None counts it as a class).
    """
    parts = []
    for name, weight in parse_loss_spec(spec):
        if name == "ce":
            parts.append((weight, CrossEntropyLoss(class_weights, ignore_index)))
        elif name == "focal":
            parts.append((weight, FocalLoss(gamma, class_weights, ignore_index)))
        elif name == "dice":
            parts.append((weight, DiceLoss(ignore_index)))
        elif name == "lovasz":
            parts.append((weight, LovaszSoftmaxLoss(ignore_index)))
        elif name == "ohem":
            parts.append((weight, OhemCrossEntropyLoss(ohem_keep, class_weights, ignore_index)))
        else:
            parts.append((weight, JaccardLoss(ignore_index)))
    return CombinedLoss(parts)


def class_weights_from_masks(masks: np.ndarray, num_classes: int = 5, ignore_index: int | None = 0,
                             power: float = 0.5, max_weight: float = 20.0, indices=None) -> list[float]:
    """Weights ``freq_c^-power`` normalised to mean 1 over the counted classes (ignored class: 0), counted over
    ``masks`` (or its tiles ``indices``, read a chunk at a time: no copy of the masks).

    ``power=0.5`` (inverse square root) keeps big rock (~0.5 % of pixels) at ~10x soil rather than ~50x,
    which, on top of oversampling, would swamp the other classes.
    """
    from ..data.chunks import class_pixel_counts

    counts = class_pixel_counts(masks, indices, num_classes).astype(np.float64)
    counted = np.ones(num_classes, bool)
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        counted[ignore_index] = False
    freq = counts / max(counts[counted].sum(), 1)
    w = np.where(counted & (freq > 0), np.power(np.maximum(freq, 1e-12), -power), 0.0)
    w = np.minimum(w / w[counted & (freq > 0)].mean(), max_weight)
    return w.tolist()

"""Soft Jaccard (IoU) loss: a differentiable stand-in for the mean-IoU score."""

from __future__ import annotations

import torch
from torch import nn

from .dice import _probs_and_onehot


class JaccardLoss(nn.Module):
    """``1 - mean_c (|P_c ∩ Y_c| + s) / (|P_c ∪ Y_c| + s)`` with soft sets, batch-wide.

    Args:
        ignore_index: label value whose pixels are left out, and whose class is not averaged.
        smooth: additive smoothing.
    """

    def __init__(self, ignore_index: int | None = 0, smooth: float = 1.0):
        super().__init__()
        self.ignore_index, self.smooth = ignore_index, smooth

    def forward(self, logits, labels):
        p, y = _probs_and_onehot(logits, labels, self.ignore_index)
        inter = (p * y).sum(dim=(0, 2, 3))
        union = p.sum(dim=(0, 2, 3)) + y.sum(dim=(0, 2, 3)) - inter
        iou = (inter + self.smooth) / (union + self.smooth)
        keep = torch.ones_like(iou, dtype=torch.bool)
        if self.ignore_index is not None and 0 <= self.ignore_index < len(iou):
            keep[self.ignore_index] = False
        return 1 - iou[keep].mean()

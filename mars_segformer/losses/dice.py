"""Soft multi-class Dice loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _probs_and_onehot(logits, labels, ignore_index):
    probs = logits.float().softmax(dim=1)  # (B, C, H, W)
    labels = labels.long()
    valid = torch.ones_like(labels, dtype=torch.bool) if ignore_index is None else labels != ignore_index
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    onehot = F.one_hot(safe, logits.shape[1]).permute(0, 3, 1, 2).float()  # (B, C, H, W)
    v = valid.unsqueeze(1).float()
    return probs * v, onehot * v


class DiceLoss(nn.Module):
    """``1 - mean_c (2|P_c ∩ Y_c| + s) / (|P_c| + |Y_c| + s)`` over the counted classes, batch-wide.

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
        denom = p.sum(dim=(0, 2, 3)) + y.sum(dim=(0, 2, 3))
        dice = (2 * inter + self.smooth) / (denom + self.smooth)
        keep = torch.ones_like(dice, dtype=torch.bool)
        if self.ignore_index is not None and 0 <= self.ignore_index < len(dice):
            keep[self.ignore_index] = False
        return 1 - dice[keep].mean()

"""Soft multi-class Dice loss, and the soft-overlap machinery it shares with the Jaccard loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SoftOverlapLoss(nn.Module):
    """``1 - mean_c score_c`` of per-class soft overlaps over the whole batch; the ignored label's
    pixels are left out and its class is not averaged. Subclasses define ``score``.

    Args:
        ignore_index: label value left out (None: every pixel and class counts).
        smooth: additive smoothing.
    """

    def __init__(self, ignore_index: int | None = 0, smooth: float = 1.0):
        super().__init__()
        self.ignore_index, self.smooth = ignore_index, smooth

    def score(self, inter: torch.Tensor, p_sum: torch.Tensor, y_sum: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, logits, labels):
        probs = logits.float().softmax(dim=1)  # (B, C, H, W)
        labels = labels.long()
        valid = torch.ones_like(labels, dtype=torch.bool) if self.ignore_index is None else labels != self.ignore_index
        safe = torch.where(valid, labels, torch.zeros_like(labels))
        v = valid.unsqueeze(1).float()
        p = probs * v
        y = F.one_hot(safe, logits.shape[1]).permute(0, 3, 1, 2).float() * v  # (B, C, H, W)
        s = self.score((p * y).sum(dim=(0, 2, 3)), p.sum(dim=(0, 2, 3)), y.sum(dim=(0, 2, 3)))
        keep = torch.ones_like(s, dtype=torch.bool)
        if self.ignore_index is not None and 0 <= self.ignore_index < len(s):
            keep[self.ignore_index] = False
        return 1 - s[keep].mean()


class DiceLoss(SoftOverlapLoss):
    """``1 - mean_c (2|P_c ∩ Y_c| + s) / (|P_c| + |Y_c| + s)``."""

    def score(self, inter, p_sum, y_sum):
        return (2 * inter + self.smooth) / (p_sum + y_sum + self.smooth)

"""Soft Jaccard (IoU) loss: a differentiable stand-in for the mean-IoU score."""

from __future__ import annotations

from .dice import SoftOverlapLoss


class JaccardLoss(SoftOverlapLoss):
    """``1 - mean_c (|P_c ∩ Y_c| + s) / (|P_c ∪ Y_c| + s)`` with soft sets."""

    def score(self, inter, p_sum, y_sum):
        return (inter + self.smooth) / (p_sum + y_sum - inter + self.smooth)

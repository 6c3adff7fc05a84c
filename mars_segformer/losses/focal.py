"""Focal loss (Lin et al. 2017) with per-class weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FocalLoss(nn.Module):
    """``-w_t (1 - p_t)^gamma log p_t`` averaged over the pixels that are not ignored.

    The mean is the weighted mean (sum of losses over sum of the weights of counted pixels), so that
    with ``gamma=0`` it equals ``F.cross_entropy(weight=...)``.

    Args:
        gamma: focusing parameter; 0 gives weighted cross-entropy.
        weight: (C,) class weights or None.
        ignore_index: label value left out (None: every pixel counts).
    """

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None, ignore_index: int | None = 0):
        super().__init__()
        self.gamma = gamma
        self.ignore_index = ignore_index
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.long()
        valid = torch.ones_like(labels, dtype=torch.bool) if self.ignore_index is None else labels != self.ignore_index
        safe = torch.where(valid, labels, torch.zeros_like(labels))
        logp = F.log_softmax(logits.float(), dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)  # (B, H, W)
        loss = -((1 - logp.exp()) ** self.gamma) * logp if self.gamma else -logp
        w = self.weight[safe] if self.weight is not None else torch.ones_like(loss)
        w = w * valid
        return (loss * w).sum() / w.sum().clamp_min(1e-12)

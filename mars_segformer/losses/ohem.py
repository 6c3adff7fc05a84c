"""Online hard-example mining (Shrivastava et al. 2016, as in semantic segmentation toolkits):
cross-entropy over the hardest share of the counted pixels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class OhemCrossEntropyLoss(nn.Module):
    """Mean (optionally class-weighted) cross-entropy of the ``keep`` share of counted pixels with the
    largest loss.

    Args:
        keep: share of the counted pixels kept, in (0, 1]; 1 gives plain cross-entropy.
        weight: (C,) class weights or None; the pixels are ranked by their weighted loss.
        ignore_index: label value left out (None: every pixel counts).
    """

    def __init__(self, keep: float = 0.25, weight: torch.Tensor | None = None, ignore_index: int | None = 0):
        super().__init__()
        if not 0 < keep <= 1:
            raise ValueError(f"OHEM keep share must be in (0, 1], got {keep}")
        self.keep = keep
        self.ignore_index = -100 if ignore_index is None else ignore_index
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.long()
        loss = F.cross_entropy(logits.float(), labels, weight=self.weight, ignore_index=self.ignore_index,
                               reduction="none").flatten()  # (B*H*W,), 0 where ignored
        counted = int((labels != self.ignore_index).sum())
        if counted == 0:
            return loss.sum() * 0.0
        k = max(1, round(self.keep * counted))
        return loss.topk(k).values.mean()

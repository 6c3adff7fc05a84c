"""Cross-entropy against soft labels: the distillation term (a teacher's class probabilities as the target)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of -sum_k q_k log softmax(logits)_k.

    Args:
        logits: (B, K, h, w) student logits; resized (bilinear) to the soft labels' size when they differ.
        soft: (B, K, H, W) teacher probabilities, uint8 in 1/255 (as the data carries them) or float; each pixel's
            are renormalised to sum to 1 (rounding to 1/255 leaves them a little off).

    Every pixel counts, background included: a teacher's guess is the only label an unlabelled pixel gets.
    """
    if tuple(logits.shape[-2:]) != tuple(soft.shape[-2:]):
        logits = F.interpolate(logits, size=tuple(soft.shape[-2:]), mode="bilinear", align_corners=False)
    q = soft.float()
    q = q / q.sum(dim=1, keepdim=True).clamp_min(1e-6)
    return -(q * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()

"""Lovász-softmax loss (Berman et al., CVPR 2018): a convex surrogate of per-class Jaccard loss.

Written out here (the reference implementation's ``lovasz_softmax_flat``, ~20 lines) rather than
imported: none of this project's dependencies ships it, and segmentation_models_pytorch would add
a package for one function. The test checks it against its defining property: on one-hot
probabilities it equals ``1 - IoU`` averaged over the classes present.
"""

from __future__ import annotations

import torch
from torch import nn


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss with respect to sorted errors."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if len(gt_sorted) > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def lovasz_softmax_flat(probs: torch.Tensor, labels: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """Mean over ``classes`` present in ``labels`` of the Lovász hinge on (P, C) probabilities."""
    losses = []
    for c in classes:
        fg = (labels == c).float()  # (P,)
        if fg.sum() == 0:
            continue
        errors = (fg - probs[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, lovasz_grad(fg[perm])))
    return torch.stack(losses).mean() if losses else probs.sum() * 0.0


class LovaszSoftmaxLoss(nn.Module):
    """Lovász-softmax over the batch's pixels (one Jaccard per class for the whole batch, like the
    task metric), averaged over the classes present; ignored pixels are left out.

    Args:
        ignore_index: label value left out (None: every pixel and class counts).
    """

    def __init__(self, ignore_index: int | None = 0):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        num_classes = logits.shape[1]
        probs = logits.float().softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, num_classes)  # (B*H*W, C)
        labels = labels.reshape(-1).long()
        classes = list(range(num_classes))
        if self.ignore_index is not None:
            keep = labels != self.ignore_index
            probs, labels = probs[keep], labels[keep]
            classes = [c for c in classes if c != self.ignore_index]
        return lovasz_softmax_flat(probs, labels, classes)

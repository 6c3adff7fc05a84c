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
    """Gradient of the Lovász extension of the Jaccard loss with respect to sorted errors, along the last
    dimension (one row per class)."""
    gts = gt_sorted.sum(-1, keepdim=True)
    intersection = gts - gt_sorted.cumsum(-1)
    union = gts + (1 - gt_sorted).cumsum(-1)  # >= 1: the first element is a hit or adds to the union
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def lovasz_softmax_flat(probs: torch.Tensor, labels: torch.Tensor, classes: list[int],
                        valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over ``classes`` present in ``labels`` of the Lovász hinge on (P, C) probabilities.

    All classes are sorted in one call and nothing is read back to the host: on a GPU a test such as
    "is this class present?" or a boolean selection of pixels makes the host wait for the device, several
    times a step (``bench/step_syncs.py``). Pixels not ``valid`` enter with error 0 and as misses: sorted
    last, they add nothing to the loss or its gradient, exactly as if they had been left out.

    Args:
        probs: (P, C) class probabilities.
        labels: (P,) class ids.
        classes: the classes scored.
        valid: (P,) bool, the pixels that count (None: all).
    """
    cls = torch.as_tensor(classes, device=labels.device)
    fg = (labels.unsqueeze(0) == cls.unsqueeze(1)).to(probs.dtype)  # (K, P) one row per scored class
    errors = (fg - probs[:, cls].T).abs()  # (K, P)
    if valid is not None:  # an invalid pixel: a miss with no error (its label may be a scored class)
        w = valid.to(probs.dtype)
        fg, errors = fg * w, errors * w
    errors_sorted, perm = torch.sort(errors, dim=1, descending=True)
    losses = (errors_sorted * lovasz_grad(torch.gather(fg, 1, perm))).sum(1)  # (K,)
    present = (fg.sum(1) > 0).to(probs.dtype)
    return (losses * present).sum() / present.sum().clamp(min=1.0)


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
        classes = [c for c in range(num_classes) if c != self.ignore_index]
        valid = None if self.ignore_index is None else labels != self.ignore_index
        return lovasz_softmax_flat(probs, labels, classes, valid)

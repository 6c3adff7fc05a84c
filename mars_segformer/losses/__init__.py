"""Segmentation losses on (B, C, H, W) logits and (B, H, W) labels, with an ignored label value.

``build_loss("focal:1,dice:0.5", ...)`` gives weighted sums, as the reference tried them all.
"""

from .build import LOSSES, CombinedLoss, build_loss, class_weights_from_masks
from .dice import DiceLoss
from .focal import FocalLoss
from .jaccard import JaccardLoss
from .lovasz import LovaszSoftmaxLoss
from .ohem import OhemCrossEntropyLoss

__all__ = ["LOSSES", "CombinedLoss", "DiceLoss", "FocalLoss", "JaccardLoss", "LovaszSoftmaxLoss", "OhemCrossEntropyLoss", "build_loss", "class_weights_from_masks"]

"""Segmentation losses on (B, C, H, W) logits and (B, H, W) labels, with an ignored label value.

``build_loss("focal:1,dice:0.5", ...)`` gives weighted sums, as the reference tried them all.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "build": ["CombinedLoss", "build_loss", "class_weights_from_masks"],
    "dice": ["DiceLoss"],
    "focal": ["FocalLoss"],
    "jaccard": ["JaccardLoss"],
    "lovasz": ["LovaszSoftmaxLoss"],
    "ohem": ["OhemCrossEntropyLoss"],
    "soft_ce": ["soft_cross_entropy"],
    "spec": ["LOSSES", "parse_loss_spec"],
})

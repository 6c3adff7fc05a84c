"""Dropout before UperNet's classifiers while training (``--head_dropout P``).

mmsegmentation's decode heads drop a share of the channels of the fused feature map before their 1x1 classifier
(``dropout_ratio=0.1``, ``nn.Dropout2d``); transformers' UperNet has no such layer. It is added here as a forward
pre-hook on the classifier convolutions of the decode head (and of the auxiliary head, where there is one), active
only while the module is in training mode. The saved model is the same transformers class with the same tensors,
so ``pipeline`` and ``predict`` run it unchanged. SegFormer's decode head has its own dropout
(``classifier_dropout_prob``, set with ``--model_overrides``), so other architectures are refused.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle
from transformers import UperNetForSemanticSegmentation

from .hook_targets import hook_targets


def head_classifiers(model: nn.Module) -> list[nn.Conv2d]:
    """The 1x1 classifier convolutions of an UperNet's decode head and auxiliary head (empty for other models)."""
    if not isinstance(model, UperNetForSemanticSegmentation):
        return []
    heads = [model.decode_head, getattr(model, "auxiliary_head", None)]
    return [h.classifier for h in heads if h is not None]


def attach_head_dropout(model: nn.Module, p: float) -> list[RemovableHandle]:
    """Drop whole channels (``F.dropout2d``) of each classifier's input with probability ``p`` in training mode.

    Args:
        model: an ``UperNetForSemanticSegmentation``.
        p: the share of channels dropped, in [0, 1); 0 attaches nothing.

    Returns:
        The hooks' handles (``handle.remove()`` takes one off).

    Raises:
        ValueError: ``p`` outside [0, 1), or a model without UperNet's classifiers.
    """
    convs = hook_targets(model, p, "--head_dropout", head_classifiers,
                         "drops channels before an UperNet decode head's classifier",
                         "SegFormer: --model_overrides '{\"classifier_dropout_prob\": P}'")

    def drop(module: nn.Module, args: tuple):
        # args[0]: (B, C, h, w) fused features; whole channels are zeroed and the rest scaled by 1 / (1 - p)
        return (F.dropout2d(args[0], p, training=module.training), *args[1:])

    return [conv.register_forward_pre_hook(drop) for conv in convs]

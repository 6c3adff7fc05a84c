"""Stochastic depth in UperNet's ResNet backbone while training (``--drop_path R``).

timm's from-scratch recipes drop each residual block's branch for a random share of the samples (``drop_path_rate``,
rising linearly with depth from 0 at the first block to ``R`` at the last); transformers' ResNet has no such
setting. It is added here as a forward hook on each block's residual branch (``layer``, the convolutions before the
shortcut is added), which ``torchvision.ops.stochastic_depth`` zeroes per sample and scales by 1 / (1 - p), active
only while the module is in training mode. The saved model is the same transformers class with the same tensors, so
``pipeline`` and ``predict`` run it unchanged. transformers' ConvNeXt backbones have their own setting
(``drop_path_rate``, set with ``--model_overrides``), so models without ResNet blocks are refused.
"""

from __future__ import annotations

from torch import nn
from torch.utils.hooks import RemovableHandle
from torchvision.ops import stochastic_depth
from transformers.models.resnet.modeling_resnet import ResNetBasicLayer, ResNetBottleNeckLayer

from .hook_targets import hook_targets


def residual_blocks(model: nn.Module) -> list[nn.Module]:
    """The ResNet blocks of ``model`` in forward order (empty for models without them)."""
    return [m for m in model.modules() if isinstance(m, (ResNetBasicLayer, ResNetBottleNeckLayer))]


def block_rates(rate: float, n: int) -> list[float]:
    """timm's linear rule: block ``i`` of ``n`` drops its branch with probability ``rate * i / (n - 1)``."""
    return [rate * i / (n - 1) if n > 1 else rate for i in range(n)]


def attach_drop_path(model: nn.Module, rate: float) -> list[RemovableHandle]:
    """Drop each ResNet block's residual branch per sample while training, deeper blocks more often.

    Args:
        model: a model over transformers' ResNet (UperNet-R18 / R34).
        rate: the last block's drop probability, in [0, 1); 0 attaches nothing.

    Returns:
        The hooks' handles (``handle.remove()`` takes one off), one per block whose rate is above 0.

    Raises:
        ValueError: ``rate`` outside [0, 1), or a model without ResNet blocks.
    """
    blocks = hook_targets(model, rate, "--drop_path", residual_blocks, "drops residual branches of a ResNet backbone",
                          "ConvNeXt backbones: --model_overrides '{\"drop_path_rate\": R}'")

    def hook_for(p: float):
        def drop(module: nn.Module, _args: tuple, output):
            # output: (B, C, h, w), the branch before the shortcut is added; a sample's whole branch is zeroed
            # with probability p, the kept ones scaled by 1 / (1 - p)
            return stochastic_depth(output, p, "row", training=module.training)
        return drop

    return [block.layer.register_forward_hook(hook_for(p))
            for block, p in zip(blocks, block_rates(rate, len(blocks)), strict=True) if p > 0]

"""Presets of transformers' UperNet on transformers' own ResNet backbone, for the five Mars classes.

Both classes ship with transformers, so a saved checkpoint loads with
``AutoModelForSemanticSegmentation`` / ``pipeline`` and no ``trust_remote_code``. UperNet fuses the
four backbone stages (strides 4-32) through a pyramid-pooling module and an FPN and returns logits
at the input's full resolution (64×128 for a tile), unlike SegFormer's 1/4.
"""

from __future__ import annotations

from transformers import ResNetConfig, UperNetConfig

from ..data.io import MARS_LABELS

#: ResNet shapes (basic blocks, widths 64-512) and the decoder width of each preset.
UPERNET_SIZES = {
    "r18": dict(depths=[2, 2, 2, 2], hidden_size=128),
    "r34": dict(depths=[3, 4, 6, 3], hidden_size=256),
}


def upernet_config(size: str = "r18", hidden_sizes=(64, 128, 256, 512), embedding_size: int = 64,
                   **overrides) -> UperNetConfig:
    """A ``UperNetConfig`` over a ``ResNetConfig`` of shape ``size`` with the Mars labels.

    Args:
        size: ``"r18"`` or ``"r34"`` (ResNet-18/34 depths with basic blocks).
        hidden_sizes: backbone stage widths.
        embedding_size: width of the backbone's stem.
        **overrides: ``UperNetConfig`` fields (``hidden_size``, ``use_auxiliary_head``, ...) or
            ``depths`` of the backbone.
    """
    if size not in UPERNET_SIZES:
        raise ValueError(f"unknown UperNet size {size!r}; choose from {sorted(UPERNET_SIZES)}")
    kwargs = {**UPERNET_SIZES[size], **overrides}
    backbone = ResNetConfig(
        num_channels=3,
        embedding_size=embedding_size,
        hidden_sizes=list(hidden_sizes),
        depths=list(kwargs.pop("depths")),
        layer_type="basic",
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    kwargs.setdefault("use_auxiliary_head", False)
    return UperNetConfig(
        backbone_config=backbone,
        id2label=dict(MARS_LABELS),
        label2id={v: k for k, v in MARS_LABELS.items()},
        loss_ignore_index=255,
        **kwargs,
    )

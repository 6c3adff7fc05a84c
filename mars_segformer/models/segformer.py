"""Presets of transformers' SegFormer (MiT-b0/b1/b2) for the five Mars classes, from scratch.

MiT's first stage cuts the input by 4 (overlapping 7×7 patches, stride 4), so a 64×128 tile gives
16×32 logits and a big rock is a pixel or two wide there. The small-tile presets (``-s2``) keep the
plain ``SegformerConfig`` and change the first stride to 2: logits at 1/2 of the tile (32×64), the
later stages at twice the resolution too. Upsampling tiles 2× in the image processor would reach
the same logit resolution at a higher cost (every stage and the patch embedding on 4× the pixels),
so the stride is the cheaper way.
"""

from __future__ import annotations

from transformers import SegformerConfig

from ..data.io import MARS_LABELS

#: Mix Transformer sizes from the SegFormer paper (Xie et al. 2021), table 6.
MIT_SIZES = {
    "b0": dict(hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2], decoder_hidden_size=256),
    "b1": dict(hidden_sizes=[64, 128, 320, 512], depths=[2, 2, 2, 2], decoder_hidden_size=256),
    "b2": dict(hidden_sizes=[64, 128, 320, 512], depths=[3, 4, 6, 3], decoder_hidden_size=768),
}

#: first-stage stride of the small-tile presets (MiT's own is 4)
SMALL_TILE_STRIDES = [2, 2, 2, 2]


def segformer_config(size: str = "b0", **overrides) -> SegformerConfig:
    """A ``SegformerConfig`` of MiT-``size`` with the Mars labels.

    Args:
        size: ``"b0"``, ``"b1"`` or ``"b2"``.
        **overrides: any ``SegformerConfig`` field.
    """
    if size not in MIT_SIZES:
        raise ValueError(f"unknown SegFormer size {size!r}; choose from {sorted(MIT_SIZES)}")
    kwargs = dict(
        num_channels=3,
        num_encoder_blocks=4,
        num_attention_heads=[1, 2, 5, 8],
        sr_ratios=[8, 4, 2, 1],
        id2label=dict(MARS_LABELS),
        label2id={v: k for k, v in MARS_LABELS.items()},
        semantic_loss_ignore_index=255,
        **MIT_SIZES[size],
    )
    kwargs.update(overrides)
    return SegformerConfig(**kwargs)

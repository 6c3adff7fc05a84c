"""Presets of transformers' UperNet on transformers' own ResNet or ConvNeXt backbone, for the five Mars classes.

All these classes ship with transformers, so a saved checkpoint loads with
``AutoModelForSemanticSegmentation`` / ``pipeline`` and no ``trust_remote_code``. UperNet fuses the
four backbone stages (strides 4-32) through a pyramid-pooling module and an FPN and returns logits
at the input's full resolution (64×128 for a tile), unlike SegFormer's 1/4.

ResNet's stem always divides the resolution by 4 (a stride-2 convolution and a stride-2 max-pool); ConvNeXt's
patchify stem takes its stride from ``patch_size``, so the ``convnext-atto-s2`` preset keeps stages at strides
2-16 (32×64 features for a tile) with transformers' classes alone.
"""

from __future__ import annotations

from transformers import ConvNextConfig, ResNetConfig, UperNetConfig

from ..data.io import MARS_LABELS

#: ResNet shapes (basic blocks, widths 64-512) and the decoder width of each preset.
UPERNET_SIZES = {
    "r18": dict(depths=[2, 2, 2, 2], hidden_size=128),
    "r34": dict(depths=[3, 4, 6, 3], hidden_size=256),
}

#: The default preset (``upernet-r18-x1.5-h96``, issue 19): R18 on tiles upsampled x1.5 before the model (96x192
#: for a tile; the saved image processor resizes alike) with a 96-channel decode head, which keeps its training step
#: within 2x plain UperNet-R18's (1.83x in bf16 on an AVX-512 CPU,
#: ``bench/results/recipe_cost_x1.5_head96_amd_avx512_bf16.json``). At full length it lifted big rock against ``r18``
#: at 1x on three splits of five and was level on two (docs/results.md, "The switch to x1.5 with head 96").
UPERNET_R18_X15_H96 = dict(hidden_size=96, input_scale=1.5)

#: ConvNeXt shapes (timm's ``convnext_atto`` widths and depths), the stem's stride and the decoder width of each
#: preset. The stride-2 preset narrows the decoder to 64 channels, which keeps its training step within 2x
#: UperNet-R18's (``bench/recipe_cost.py``): its decoder runs on 4x the pixels.
UPERNET_CONVNEXT_SIZES = {
    "convnext-atto": dict(depths=[2, 2, 6, 2], hidden_sizes=[40, 80, 160, 320], patch_size=4, hidden_size=128),
    "convnext-atto-s2": dict(depths=[2, 2, 6, 2], hidden_sizes=[40, 80, 160, 320], patch_size=2, hidden_size=64),
}


def upernet_config(size: str = "r18", hidden_sizes=(64, 128, 256, 512), embedding_size: int = 64,
                   **overrides) -> UperNetConfig:
    """A ``UperNetConfig`` over a ``ResNetConfig`` of shape ``size`` with the Mars labels.

    Args:
        size: ``"r18"`` or ``"r34"`` (ResNet-18/34 depths with basic blocks).
        hidden_sizes: backbone stage widths.
        embedding_size: width of the backbone's stem.
        **overrides: ``UperNetConfig`` fields (``hidden_size``, ``use_auxiliary_head``, ...), ``input_scale``
            (the factor tiles are resized by before the model, stored in the config) or ``depths`` of the backbone.
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
    return _mars_upernet(backbone, **kwargs)


def upernet_convnext_config(size: str = "convnext-atto", **overrides) -> UperNetConfig:
    """A ``UperNetConfig`` over a ``ConvNextConfig`` of shape ``size`` with the Mars labels.

    Args:
        size: a key of :data:`UPERNET_CONVNEXT_SIZES`.
        **overrides: ``UperNetConfig`` fields (``hidden_size``, ...) or the backbone's ``depths``,
            ``hidden_sizes``, ``patch_size`` and ``drop_path_rate``.
    """
    if size not in UPERNET_CONVNEXT_SIZES:
        raise ValueError(f"unknown UperNet ConvNeXt size {size!r}; choose from {sorted(UPERNET_CONVNEXT_SIZES)}")
    kwargs = {**UPERNET_CONVNEXT_SIZES[size], **overrides}
    backbone = ConvNextConfig(
        num_channels=3,
        **{key: kwargs.pop(key) for key in ("depths", "hidden_sizes", "patch_size", "drop_path_rate") if key in kwargs},
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    return _mars_upernet(backbone, **kwargs)


def _mars_upernet(backbone, **kwargs) -> UperNetConfig:
    """UperNet over ``backbone`` with the Mars labels, background ignored by transformers' loss, no auxiliary head."""
    kwargs.setdefault("use_auxiliary_head", False)
    return UperNetConfig(
        backbone_config=backbone,
        id2label=dict(MARS_LABELS),
        label2id={v: k for k, v in MARS_LABELS.items()},
        loss_ignore_index=255,
        **kwargs,
    )

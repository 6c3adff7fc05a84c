"""Architecture names -> models, and registration with the transformers Auto classes."""

from __future__ import annotations

from collections.abc import Callable

from transformers import (
    AutoConfig,
    AutoModelForSemanticSegmentation,
    PretrainedConfig,
    PreTrainedModel,
    SegformerForSemanticSegmentation,
    UperNetForSemanticSegmentation,
)

from .deeplabv3plus import MarsDeepLabV3PlusConfig, MarsDeepLabV3PlusForSemanticSegmentation
from .segformer import SMALL_TILE_STRIDES, segformer_config
from .timm_segformer import MarsTimmSegformerConfig, MarsTimmSegformerForSemanticSegmentation
from .timm_unet import MarsTimmUNetConfig, MarsTimmUNetForSemanticSegmentation
from .unet import MarsUNetConfig, MarsUNetForSemanticSegmentation
from .upernet import UPERNET_CONVNEXT_SIZES, UPERNET_R18_X15_H96, upernet_config, upernet_convnext_config

CUSTOM_MODELS: dict[type[PretrainedConfig], type[PreTrainedModel]] = {
    MarsUNetConfig: MarsUNetForSemanticSegmentation,
    MarsTimmSegformerConfig: MarsTimmSegformerForSemanticSegmentation,
    MarsDeepLabV3PlusConfig: MarsDeepLabV3PlusForSemanticSegmentation,
    MarsTimmUNetConfig: MarsTimmUNetForSemanticSegmentation,
}

#: preset name -> (config factory, model class). Keyword overrides go to the config.
PRESETS: dict[str, tuple[Callable[..., PretrainedConfig], type[PreTrainedModel]]] = {
    "segformer-b0": (lambda **kw: segformer_config("b0", **kw), SegformerForSemanticSegmentation),
    "segformer-b1": (lambda **kw: segformer_config("b1", **kw), SegformerForSemanticSegmentation),
    "segformer-b2": (lambda **kw: segformer_config("b2", **kw), SegformerForSemanticSegmentation),
    "segformer-b0-s2": (lambda **kw: segformer_config("b0", **{"strides": SMALL_TILE_STRIDES, **kw}),
                        SegformerForSemanticSegmentation),
    "upernet-r18": (lambda **kw: upernet_config("r18", **kw), UperNetForSemanticSegmentation),
    "upernet-r18-x1.5-h96": (lambda **kw: upernet_config("r18", **{**UPERNET_R18_X15_H96, **kw}),
                             UperNetForSemanticSegmentation),
    "upernet-r34": (lambda **kw: upernet_config("r34", **kw), UperNetForSemanticSegmentation),
    "upernet-convnext-atto": (lambda **kw: upernet_convnext_config("convnext-atto", **kw), UperNetForSemanticSegmentation),
    "upernet-convnext-atto-s2": (lambda **kw: upernet_convnext_config("convnext-atto-s2", **kw),
                                 UperNetForSemanticSegmentation),
    "unet": (lambda **kw: MarsUNetConfig(**kw), MarsUNetForSemanticSegmentation),
    "unet-se": (lambda **kw: MarsUNetConfig(**{"use_squeeze_excite": True, **kw}), MarsUNetForSemanticSegmentation),
    "unet-residual": (lambda **kw: MarsUNetConfig(**{"block_type": "residual", **kw}), MarsUNetForSemanticSegmentation),
    "unet-attention": (lambda **kw: MarsUNetConfig(**{"use_attention": True, **kw}), MarsUNetForSemanticSegmentation),
    "unet-dual": (lambda **kw: MarsUNetConfig(**{"dual": True, **kw}), MarsUNetForSemanticSegmentation),
    "timm-segformer": (lambda **kw: MarsTimmSegformerConfig(**kw), MarsTimmSegformerForSemanticSegmentation),
    "deeplabv3plus": (lambda **kw: MarsDeepLabV3PlusConfig(**kw), MarsDeepLabV3PlusForSemanticSegmentation),
    "unet-resnet34": (lambda **kw: MarsTimmUNetConfig(**{"encoder_name": "resnet34", **kw}), MarsTimmUNetForSemanticSegmentation),
}

#: Small settings of each preset for tests and CPU demos (same code paths, few parameters).
TINY_OVERRIDES: dict[str, dict] = {
    **{f"segformer-b{i}": dict(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], decoder_hidden_size=32) for i in range(3)},
    "segformer-b0-s2": dict(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], decoder_hidden_size=32),
    **{f"upernet-r{n}": dict(hidden_sizes=[8, 16, 24, 32], embedding_size=8, depths=[1, 1, 1, 1], hidden_size=16)
       for n in ("18", "18-x1.5-h96", "34")},
    **{f"upernet-{size}": dict(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], hidden_size=16)
       for size in UPERNET_CONVNEXT_SIZES},
    **{n: dict(base_channels=4, depth=3) for n in ("unet", "unet-se", "unet-residual", "unet-attention", "unet-dual")},
    "timm-segformer": dict(encoder_name="test_resnet", decoder_hidden_size=32),
    "deeplabv3plus": dict(encoder_name="test_resnet", decoder_channels=32, low_level_channels=16),
    "unet-resnet34": dict(encoder_name="test_resnet", decoder_channels=[32, 16, 16, 8, 8]),
}

#: presets whose model class ships with transformers: they load with no ``trust_remote_code``
NATIVE_PRESETS = tuple(name for name, (_, cls) in PRESETS.items() if cls.__module__.startswith("transformers."))


def register_auto_classes() -> None:
    """Register the custom configs/models with AutoConfig/AutoModelForSemanticSegmentation, and mark them
    to be saved with their code (``auto_map``) so ``trust_remote_code`` can load them without this package."""
    for cfg_cls, model_cls in CUSTOM_MODELS.items():
        try:
            AutoConfig.register(cfg_cls.model_type, cfg_cls)
            AutoModelForSemanticSegmentation.register(cfg_cls, model_cls)
        except ValueError:  # already registered (re-import)
            pass
        cfg_cls.register_for_auto_class()
        model_cls.register_for_auto_class("AutoModelForSemanticSegmentation")


def create_model(name: str, tiny: bool = False, **overrides) -> PreTrainedModel:
    """A freshly initialised model of preset ``name``.

    Args:
        name: a key of :data:`PRESETS`.
        tiny: apply :data:`TINY_OVERRIDES` first (tests, quick demos).
        **overrides: config fields.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(PRESETS)}")
    make_config, model_cls = PRESETS[name]
    if overrides:
        fields = make_config().to_dict()
        fields.update(fields.get("backbone_config") or {})  # UperNet: the backbone's fields too
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown} for model {name!r}")
    kwargs = {**(TINY_OVERRIDES[name] if tiny else {}), **overrides}
    return model_cls(make_config(**kwargs))

"""Any backbone checkpoint -> a native UperNet with that backbone's pretrained weights.

transformers 5 has no ``use_pretrained_backbone``; this is the way to start the default architecture
from ImageNet (or any other) weights. A checkpoint of a model family with a backbone class
(``MODEL_FOR_BACKBONE_MAPPING``: ResNet, ConvNeXt, ConvNeXt V2, Swin, DINOv2, BiT, ...) is read with that
family's own backbone class, a timm checkpoint (timm's Hub layout) through transformers' ``TimmBackbone`` (``AutoBackbone``
refuses local classifier folders in 5.x), its last four stages feed transformers' own
``UperNetForSemanticSegmentation`` with the default preset's decoder width and tile scale (96 channels unless
``--model_overrides '{"hidden_size": N}'``, tiles x1.5 unless ``--input_scale``), and the result saves and loads in
plain transformers. The decoder is UperNet's (pyramid pooling + FPN) for
every family: it takes multi-scale and single-scale (ViT-style) backbones alike.

The normalisation the backbone was trained with comes from the checkpoint's image processor
(ImageNet's mean and std when it has none) and is stored in the model config (``image_mean`` /
``image_std``) and the run's image processor, so training, ``predict`` and ``pipeline`` all feed it.
"""

from __future__ import annotations

import copy

import torch
import transformers
from transformers import PretrainedConfig, UperNetConfig, UperNetForSemanticSegmentation
from transformers.models.auto.modeling_auto import MODEL_FOR_BACKBONE_MAPPING_NAMES

from ..data.dataset import scaled_shape
from ..data.io import MARS_LABELS, TILE_SHAPE
from .overrides import config_with_overrides
from .upernet import UPERNET_R18_X15_H96

#: ImageNet's statistics, what torchvision/timm/transformers classifiers are trained with by default
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: UperNet decoder width and tile scale for a backbone start: the default preset's
DECODER_WIDTH = UPERNET_R18_X15_H96["hidden_size"]
INPUT_SCALE = UPERNET_R18_X15_H96["input_scale"]


class BackboneError(ValueError):
    """A checkpoint that cannot become a UperNet backbone."""


def backbone_class(config: PretrainedConfig):
    """The family's backbone class for a checkpoint config, or None when the family has none."""
    name = MODEL_FOR_BACKBONE_MAPPING_NAMES.get(config.model_type)
    return getattr(transformers, name, None) if name else None


def _stages(config: PretrainedConfig) -> list[str]:
    names = list(getattr(config, "stage_names", []) or [])
    stages = [n for n in names if n != "stem"]
    if not stages:
        raise BackboneError(f"a {config.model_type!r} config lists no backbone stages")
    return stages[-4:]


def checkpoint_normalization(spec: str, hub: dict) -> tuple[list[float], list[float], str]:
    """(mean, std, where from) of the checkpoint's image processor, ImageNet's without one."""
    from transformers import AutoImageProcessor

    try:
        proc = AutoImageProcessor.from_pretrained(spec, **hub)
        mean, std = getattr(proc, "image_mean", None), getattr(proc, "image_std", None)
        if mean is not None and std is not None:
            mean = [float(mean)] * 3 if isinstance(mean, (int, float)) else [float(x) for x in mean]
            std = [float(std)] * 3 if isinstance(std, (int, float)) else [float(x) for x in std]
            return mean, std, "the checkpoint's image processor"
    except (OSError, ValueError, KeyError):
        pass
    return list(IMAGENET_MEAN), list(IMAGENET_STD), "ImageNet's (the checkpoint has no image processor)"


def _load_backbone_state(model: UperNetForSemanticSegmentation, source_state: dict) -> tuple[int, list[str]]:
    """Copy the checkpoint backbone's tensors into the UperNet backbone; a first convolution made for
    another channel count is adapted (summed over its channels, shared over the model's)."""
    from .pretrained import adapt_input_conv

    target = model.backbone.state_dict()
    missing = sorted(set(target) - set(source_state))
    if missing:
        raise BackboneError(f"the checkpoint's backbone lacks {len(missing)} tensors of the UperNet backbone "
                            f"(e.g. {missing[0]})")
    adapted = []
    with torch.no_grad():
        for k, t in target.items():
            src = source_state[k]
            if src.shape == t.shape:
                t.copy_(src)
            elif src.ndim == 4 and src.shape[0] == t.shape[0] and src.shape[2:] == t.shape[2:]:
                t.copy_(adapt_input_conv(src, t.shape[1]))
                adapted.append(f"backbone.{k}")
            else:
                raise BackboneError(f"backbone tensor {k}: checkpoint {tuple(src.shape)} vs model {tuple(t.shape)}")
    return len(target), adapted


def _family_parts(spec: str, config: PretrainedConfig, hub: dict, num_channels: int):
    """A transformers family's backbone: its config with the last four stages out, its tensors, the ones
    the backbone class has but the checkpoint lacks, and the checkpoint's normalisation."""
    cls = backbone_class(config)
    if cls is None:
        raise BackboneError(f"a {config.model_type!r} checkpoint is not a semantic-segmentation or SegFormer-family "
                            "model, and its family has no backbone class")
    out_features = _stages(config)
    bb_config = copy.deepcopy(config)
    bb_config.out_features = out_features
    bb_config.num_channels = num_channels
    source, info = cls.from_pretrained(spec, out_features=out_features, output_loading_info=True, **hub)
    # tensors the backbone class has and the checkpoint lacks (e.g. ConvNeXt's per-stage output norms) are new
    fresh = sorted(f"backbone.{k}" for k in info["missing_keys"])
    return bb_config, source.state_dict(), fresh, checkpoint_normalization(spec, hub)


def _timm_parts(spec: str, config: PretrainedConfig, hub: dict, num_channels: int):
    """A timm checkpoint (``timm/resnet18.a1_in1k`` layout: ``architecture`` + timm tensor names) as
    transformers' ``TimmBackbone`` over its last four feature levels; the weights are read from the
    checkpoint's file, not fetched by timm."""
    from safetensors.torch import load_file
    from transformers import TimmBackboneConfig

    if not getattr(config, "architecture", None):
        raise BackboneError("a timm checkpoint without an 'architecture' in its config.json")
    bb_config = TimmBackboneConfig(backbone=config.architecture, num_channels=num_channels, features_only=True,
                                   out_indices=[1, 2, 3, 4])
    try:
        weights = load_file(str(_checkpoint_file(spec, hub, "model.safetensors")))
    except (OSError, FileNotFoundError):  # older timm repos ship only the torch pickle (read as plain tensors)
        weights = torch.load(_checkpoint_file(spec, hub, "pytorch_model.bin"), map_location="cpu", weights_only=True)
    state = {f"_backbone.{k}": v for k, v in weights.items()}
    cfg = getattr(config, "pretrained_cfg", None) or {}
    if cfg.get("mean") and cfg.get("std"):
        norm = ([float(x) for x in cfg["mean"]], [float(x) for x in cfg["std"]], "the checkpoint's pretrained_cfg")
    else:
        norm = (list(IMAGENET_MEAN), list(IMAGENET_STD), "ImageNet's (the checkpoint names none)")
    return bb_config, state, [], norm


def _checkpoint_file(spec: str, hub: dict, name: str):
    from pathlib import Path

    if Path(spec).is_dir():
        return Path(spec) / name
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(spec, name, revision=hub.get("revision"), token=hub.get("token")))


def upernet_from_backbone(spec: str, config: PretrainedConfig, hub: dict, num_channels: int = 3,
                          overrides: dict | None = None, tile: tuple[int, int] = TILE_SHAPE,
                          input_scale: float | None = None):
    """A UperNet (Mars labels) whose backbone holds the checkpoint ``spec``'s weights, for tiles of ``tile``
    resized by ``input_scale`` (default :data:`INPUT_SCALE`, the default preset's), recorded in its config.

    Returns:
        (model, tensors loaded, tensors adapted, new tensor names, (mean, std, source of the normalisation)).

    Raises:
        BackboneError: the family has no backbone class, or its stages do not fit a tile.
    """
    parts = _timm_parts if config.model_type == "timm_wrapper" else _family_parts
    bb_config, state, fresh, norm = parts(spec, config, hub, num_channels)
    overrides = dict(overrides or {})
    up = UperNetConfig(backbone_config=bb_config, hidden_size=overrides.pop("hidden_size", DECODER_WIDTH),
                       use_auxiliary_head=overrides.pop("use_auxiliary_head", False), loss_ignore_index=255,
                       id2label=dict(MARS_LABELS), label2id={v: k for k, v in MARS_LABELS.items()},
                       input_scale=float(input_scale or INPUT_SCALE))
    try:
        up = config_with_overrides(up, overrides, "the UperNet config")
    except ValueError as err:
        raise BackboneError(str(err)) from None
    model = UperNetForSemanticSegmentation(up)
    loaded, adapted = _load_backbone_state(model, state)
    loaded -= len(fresh)
    model.eval()
    seen = scaled_shape(tile, up.input_scale)  # the tile as the model sees it
    try:  # a dry run on one tile: stages that shrink it to nothing fail here, with a clear line
        with torch.no_grad():
            out = model(pixel_values=torch.zeros(1, num_channels, *seen)).logits
    except (RuntimeError, ValueError) as err:
        raise BackboneError(f"its stages do not fit a {seen[0]}x{seen[1]} tile ({str(err).splitlines()[0]})") from None
    if tuple(out.shape[-2:]) != seen:
        raise BackboneError(f"its UperNet gives {tuple(out.shape[-2:])} logits for a {seen} tile")
    model.train()
    new = sorted(k for k in model.state_dict() if not k.startswith("backbone.")) + fresh
    return model, loaded, adapted, new, norm

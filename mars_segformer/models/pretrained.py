"""Starting a model from any checkpoint: a preset, a local folder or a Hub repo id, adapted to the Mars labels.

Where ``--model`` points (the rule, in this order):

1. a preset name (``upernet-r18``, ...) is the preset, even if a folder of that name exists: write
   ``./upernet-r18`` for the folder;
2. an existing local folder is a checkpoint folder (no network call is made);
3. ``owner/name`` is a Hub repo id (``revision`` for a branch, tag or commit; the token from
   ``HF_TOKEN`` or the saved login).

Whatever the checkpoint's labels, the model gets the five Mars classes: a classifier of another size
is initialised anew, an encoder-only checkpoint (``nvidia/mit-b0`` layout) gets a new decode head,
and a first layer made for another number of input channels is adapted (its weights summed over the
checkpoint's channels and shared over the model's), so a gray tile gives the same response.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    PretrainedConfig,
    PreTrainedModel,
    SegformerForSemanticSegmentation,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING

from ..data.io import MARS_LABELS
from ..data.sources import HUB_ID, model_source_kind
from .overrides import config_with_overrides
from .registry import PRESETS

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


class StartError(ValueError):
    """A ``--model`` / ``--encoder_weights`` source that cannot start a run; names the source."""


@dataclass
class StartReport:
    """What a run started from, for the log, ``metrics.json`` and the model card."""

    source: str
    kind: str  # "preset", "folder" or "hub"
    revision: str | None = None
    loaded: int = 0
    new: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    #: for a backbone checkpoint: its family and where the normalisation came from
    backbone: dict | None = None

    def line(self) -> str:
        if self.kind == "preset":
            return f"model: preset {self.source}, all {self.loaded} tensors newly initialised"
        where = f"{self.source}@{self.revision}" if self.revision else self.source
        adapted = f", {len(self.adapted)} adapted over input channels" if self.adapted else ""
        bb = (f" (the {self.backbone['family']} backbone in a new UperNet; normalisation mean "
              f"{_fmt3(self.backbone['image_mean'])}, std {_fmt3(self.backbone['image_std'])} from "
              f"{self.backbone['normalization_from']})") if self.backbone else ""
        return (f"model: started from {self.kind} {where}{bb}: {self.loaded} tensors loaded{adapted}, "
                f"{len(self.new)} newly initialised" + (f" ({', '.join(_short(self.new))})" if self.new else ""))

    def to_dict(self) -> dict:
        return {"source": self.source, "kind": self.kind, "revision": self.revision, "tensors_loaded": self.loaded,
                "tensors_new": len(self.new), "tensors_adapted": list(self.adapted), "backbone": self.backbone}


def _fmt3(values) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"


def _short(keys: list[str], n: int = 4) -> list[str]:
    heads = sorted({".".join(k.split(".")[:2]) for k in keys})
    return heads[:n] + ([f"... {len(heads) - n} more"] if len(heads) > n else [])


def source_kind(spec: str) -> str:
    """``"preset"``, ``"folder"`` or ``"hub"`` for a ``--model`` value (see the module docstring)."""
    try:
        return model_source_kind(spec, PRESETS)
    except ValueError as err:
        raise StartError(str(err)) from None


def input_channels(config: PretrainedConfig) -> int | None:
    """The channels a model's first layer takes: its backbone's where it has one, else its own."""
    backbone = getattr(config, "backbone_config", None)
    return getattr(backbone if backbone is not None else config, "num_channels", None)


def _set_channels(config: PretrainedConfig, n: int) -> None:
    backbone = getattr(config, "backbone_config", None)
    (backbone if backbone is not None else config).num_channels = n


def _with_mars_labels(config: PretrainedConfig, num_channels: int) -> PretrainedConfig:
    config = copy.deepcopy(config)
    config.id2label = dict(MARS_LABELS)
    config.label2id = {v: k for k, v in MARS_LABELS.items()}
    if hasattr(config, "semantic_loss_ignore_index"):
        config.semantic_loss_ignore_index = 255
    _set_channels(config, num_channels)
    return config


def segmentation_class(config: PretrainedConfig, source: str) -> type[PreTrainedModel]:
    """The semantic-segmentation class for a checkpoint's config (SegFormer encoders included)."""
    if config.model_type == "segformer":  # MiT encoders, image classifiers and segmenters alike
        return SegformerForSemanticSegmentation
    try:
        return MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING[type(config)]
    except KeyError:
        raise StartError(f"{source}: a {config.model_type!r} checkpoint is not a semantic-segmentation or "
                         "SegFormer-family model") from None


def adapt_input_conv(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """(O, C, k, k) -> (O, ``channels``, k, k): summed over C, shared evenly over the new channels, so an
    input whose channels all hold the same gray image gives the same response as before."""
    return weight.sum(1, keepdim=True).repeat(1, channels, 1, 1) / channels


def _hub_errors():
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    return RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError, EntryNotFoundError, \
        LocalEntryNotFoundError, HfHubHTTPError


def _explain(err: Exception, spec: str, revision: str | None) -> StartError:
    repo_missing, rev_missing, gated, entry_missing, _, _ = _hub_errors()
    cause = err  # transformers re-raises the Hub's error as an OSError: look down the chain
    while cause is not None and not isinstance(cause, (repo_missing, rev_missing, gated, entry_missing)):
        cause = cause.__cause__ or cause.__context__
    err = cause or err
    if isinstance(err, rev_missing):
        return StartError(f"--model_revision {revision!r}: no such branch, tag or commit in {spec}")
    if isinstance(err, repo_missing):
        return StartError(f"--model {spec}: no such Hub repo (or it is private and no token allows it)")
    if isinstance(err, gated):
        return StartError(f"--model {spec}: a gated repo; accept its terms and log in first")
    if isinstance(err, entry_missing):
        return StartError(f"--model {spec}: the repo holds no config.json or weights; not a transformers checkpoint")
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return StartError(f"--model {spec}: cannot load a checkpoint ({first})")


def _check_folder(spec: str) -> None:
    """The checkpoint folder ``spec`` holds a config and weights, else :class:`StartError` naming what is missing."""
    folder = Path(spec)
    if not (folder / "config.json").is_file():
        raise StartError(f"--model {spec}: the folder holds no config.json; expected a saved checkpoint")
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise StartError(f"--model {spec}: the folder holds no weights ({' or '.join(WEIGHT_FILES[::2])})")


def load_pretrained(spec: str, revision: str | None = None, token: str | None = None,
                    num_channels: int = 3, overrides: dict | None = None,
                    input_scale: float | None = None) -> tuple[PreTrainedModel, StartReport]:
    """A model with the Mars labels, started from the checkpoint folder or Hub repo ``spec``.

    Args:
        spec: a folder or ``owner/name``.
        revision: Hub branch, tag or commit.
        token: Hub token (default: ``HF_TOKEN`` or the saved login).
        num_channels: input channels the training path feeds.
        overrides: config fields to change (as ``--model_overrides``).
        input_scale: the tile scale a backbone checkpoint's new UperNet will see (``--input_scale``; default: the
            default preset's); a segmentation checkpoint keeps its own unless the run changes it.

    Raises:
        StartError: the source does not exist, holds no weights, or is not a segmentation model.
    """
    kind = source_kind(spec)
    if kind == "folder":
        _check_folder(spec)
        revision = None  # a folder has no revisions
    hub = {"revision": revision, "token": token} if kind == "hub" else {"local_files_only": True}
    errors = (OSError, ValueError, KeyError, *_hub_errors())
    try:
        config = AutoConfig.from_pretrained(spec, **hub)
    except errors as err:
        raise _explain(err, spec, revision) from None
    if config.model_type != "segformer" and type(config) not in MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING:
        return _from_backbone(spec, config, hub, kind, revision, num_channels, overrides, input_scale)
    cls = segmentation_class(config, spec)
    try:
        target = config_with_overrides(_with_mars_labels(config, num_channels), overrides,
                                       f"{spec}'s {config.model_type} config")
    except ValueError as err:
        raise StartError(str(err)) from None
    try:
        model, info = cls.from_pretrained(spec, config=target, ignore_mismatched_sizes=True, output_loading_info=True,
                                          **hub)
    except errors as err:
        raise _explain(err, spec, revision) from None
    except RuntimeError as err:  # e.g. a damaged weights file
        raise StartError(f"--model {spec}: cannot read the weights ({str(err).splitlines()[0]})") from None
    mismatched = {k: (tuple(a), tuple(b)) for k, a, b in info["mismatched_keys"]}
    adapted = []
    channel_keys = [k for k, (a, b) in mismatched.items()
                    if len(a) == 4 and a[0] == b[0] and a[2:] == b[2:] and a[1] != b[1]]
    if channel_keys:  # read the checkpoint's first layer as it was, then adapt it
        original = _with_mars_labels(config, input_channels(config) or mismatched[channel_keys[0]][0][1])
        ref = cls.from_pretrained(spec, config=original, ignore_mismatched_sizes=True, **hub).state_dict()
        state = model.state_dict()
        with torch.no_grad():
            for k in channel_keys:
                state[k].copy_(adapt_input_conv(ref[k], state[k].shape[1]))
                adapted.append(k)
    total = list(model.state_dict())
    new = sorted(set(info["missing_keys"]) | (set(mismatched) - set(adapted)))
    report = StartReport(source=spec, kind=kind, revision=revision, loaded=len(total) - len(new), new=new,
                         adapted=adapted)
    return model, report


def _from_backbone(spec, config, hub, kind, revision, num_channels, overrides, input_scale):
    """A backbone checkpoint (ResNet, ConvNeXt, Swin, DINOv2, timm, ...) as a new native UperNet."""
    from .backbones import BackboneError, upernet_from_backbone

    try:
        model, loaded, adapted, new, (mean, std, where) = upernet_from_backbone(spec, config, hub, num_channels,
                                                                                 overrides, input_scale=input_scale)
    except BackboneError as err:
        raise StartError(f"--model {spec}: {err}") from None
    except (OSError, ValueError, KeyError, *_hub_errors()) as err:
        raise _explain(err, spec, revision) from None
    model.config.image_mean, model.config.image_std = mean, std  # training, predict and pipeline normalise alike
    report = StartReport(source=spec, kind=kind, revision=revision, loaded=loaded, new=new, adapted=adapted,
                         backbone={"family": f"timm {config.architecture}" if config.model_type == "timm_wrapper"
                                   else config.model_type, "image_mean": mean, "image_std": std,
                                   "normalization_from": where})
    return model, report


def timm_encoder(model: torch.nn.Module) -> torch.nn.Module | None:
    """The timm feature extractor inside a custom architecture (None when it has none)."""
    for module in model.modules():
        if hasattr(module, "feature_info") and hasattr(module, "pretrained_cfg"):
            return module
    return None


def load_encoder_weights(model: PreTrainedModel, source: str, revision: str | None = None,
                         token: str | None = None) -> StartReport:
    """Load pretrained timm weights (a ``.safetensors`` file, or a Hub repo such as
    ``timm/resnet34.a1_in1k``) into the timm encoder of a custom architecture.

    Tensors are matched by name and shape; the first conv is adapted over input channels; the
    classifier of the timm checkpoint is left out.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    encoder = timm_encoder(model)
    if encoder is None:
        raise StartError(f"--encoder_weights: {type(model).__name__} has no timm encoder (custom timm architectures "
                         "only: deeplabv3plus, timm-segformer, unet-resnet34)")
    path = Path(source)
    if path.is_file():
        kind = "file"
    elif HUB_ID.fullmatch(source) and not path.exists():
        kind = "hub"
        from huggingface_hub import hf_hub_download

        try:
            path = Path(hf_hub_download(source, "model.safetensors", revision=revision, token=token))
        except _hub_errors() as err:
            raise StartError(str(_explain(err, source, revision)).replace("--model ", "--encoder_weights ")) from None
    else:
        raise StartError(f"--encoder_weights {source!r}: not a .safetensors file or a Hub repo id 'owner/name'")
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise StartError(f"--encoder_weights {source}: not a readable .safetensors file ({err})") from None
    state = encoder.state_dict()
    loaded, adapted = 0, []
    with torch.no_grad():
        for k, t in state.items():
            w = weights.get(k)
            if w is None:
                continue
            if w.shape == t.shape:
                t.copy_(w)
                loaded += 1
            elif w.ndim == 4 and w.shape[0] == t.shape[0] and w.shape[2:] == t.shape[2:]:
                t.copy_(adapt_input_conv(w, t.shape[1]))
                adapted.append(k)
                loaded += 1
    if loaded == 0:
        raise StartError(f"--encoder_weights {source}: no tensor matches the {type(encoder).__name__} encoder "
                         f"({model.config.encoder_name}); is it the same timm architecture?")
    new = [k for k in state if k not in weights]
    return StartReport(source=source, kind=kind, revision=revision, loaded=loaded, new=new, adapted=adapted)


#: attribute holding the encoder, per architecture family (SegFormer, UperNet, custom timm models)
ENCODER_ATTRIBUTES = ("segformer", "backbone", "encoder")


def encoder_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters of the model's encoder (for a lower learning rate or freezing)."""
    for name in ENCODER_ATTRIBUTES:
        module = getattr(model, name, None)
        if isinstance(module, torch.nn.Module):
            return list(module.parameters())
    raise StartError(f"{type(model).__name__} has no separate pretrained encoder; --encoder_lr_scale and "
                     "--freeze_encoder_steps apply to SegFormer, UperNet and the timm-encoder architectures")


#: how a block's depth shows in a parameter name: "encoder.layer.3.", "stages.2.", "layers.1.blocks.0."
_DEPTH = re.compile(r"(?:^|\.)(?:layer|layers|stages|blocks|block)\.(\d+)\.")


def layer_lr_scales(model: torch.nn.Module, decay: float) -> dict[int, float]:
    """Layer-wise learning-rate decay over the encoder: ``{id(param): scale}`` with scale ``decay ** (L + 1 - d)``
    for a parameter of block ``d`` of ``L`` (``d`` from 1, read from its name), ``decay ** (L + 1)`` for the
    embeddings before the first block, and 1 for what follows the last block (final norms); parameters outside
    the encoder are not listed (scale 1)."""
    encoder = next((getattr(model, n) for n in ENCODER_ATTRIBUTES if isinstance(getattr(model, n, None), torch.nn.Module)),
                   None)
    if encoder is None:
        raise StartError(f"{type(model).__name__} has no separate encoder for --layer_lr_decay")
    depth = {}
    for name, p in encoder.named_parameters():
        m = _DEPTH.search(name)
        depth[id(p)] = (int(m.group(1)) + 1) if m else (0 if "embed" in name else None)
    blocks = max((d for d in depth.values() if d), default=0)
    return {pid: 1.0 if d is None else decay ** (blocks + 1 - d) for pid, d in depth.items()}

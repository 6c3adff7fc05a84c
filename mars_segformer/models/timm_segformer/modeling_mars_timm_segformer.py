"""SegFormer-style all-MLP decoder on a timm encoder, trained from scratch.

Self-contained (torch, timm and transformers only) so that ``trust_remote_code`` can load it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SemanticSegmenterOutput

from .configuration_mars_timm_segformer import MarsTimmSegformerConfig


class MarsTimmSegformerEncoder(nn.Module):
    """timm ``features_only`` backbone; input padded to a multiple of its largest stride."""

    def __init__(self, config: MarsTimmSegformerConfig):
        super().__init__()
        import timm  # here, not at the top: a run of another model does not pay timm's import (~1 s)

        self.body = timm.create_model(
            config.encoder_name, features_only=True, pretrained=False, in_chans=config.num_channels,
            out_indices=tuple(range(config.encoder_depth)),
        )
        self.channels = self.body.feature_info.channels()
        self.reductions = self.body.feature_info.reduction()

    def forward(self, x):
        return self.body(x)  # list of (B, C_i, H / r_i, W / r_i)


class MarsTimmSegformerPreTrainedModel(PreTrainedModel):
    config_class = MarsTimmSegformerConfig
    config: MarsTimmSegformerConfig
    base_model_prefix = "encoder"
    main_input_name = "pixel_values"

    def _init_weights(self, module):
        if module is getattr(self, "classifier", None):
            # a small classifier starts every pixel near the uniform prediction (loss ~ ln 5)
            init.normal_(module.weight, std=self.config.initializer_range)
            init.zeros_(module.bias)
            return
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if module.weight is not None:
                init.ones_(module.weight)
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)


class MarsTimmSegformerForSemanticSegmentation(MarsTimmSegformerPreTrainedModel):
    """All-MLP decoder: project every level to ``decoder_hidden_size``, upsample, concatenate, fuse.

    Logits come out at the input resolution.
    """

    def __init__(self, config: MarsTimmSegformerConfig):
        super().__init__(config)
        self.encoder = MarsTimmSegformerEncoder(config)
        d = config.decoder_hidden_size
        self.proj = nn.ModuleList(nn.Conv2d(c, d, 1) for c in self.encoder.channels)
        self.fuse = nn.Sequential(
            nn.Conv2d(d * len(self.encoder.channels), d, 1, bias=False), nn.BatchNorm2d(d), nn.ReLU(inplace=True)
        )
        self.dropout = nn.Dropout2d(config.dropout)
        self.classifier = nn.Conv2d(d, config.num_labels, 1)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, return_dict: bool | None = None,
                **kwargs) -> SemanticSegmenterOutput:
        """
        Args:
            pixel_values: (B, C, H, W); any H, W.
            labels: (B, H', W') class ids; logits are upsampled to (H', W') for the loss.
        """
        h, w = pixel_values.shape[-2:]
        m = max(self.encoder.reductions)
        ph, pw = (-h) % m, (-w) % m
        x = F.pad(pixel_values, (0, pw, 0, ph), mode="replicate") if ph or pw else pixel_values
        feats = self.encoder(x)
        size = feats[0].shape[-2:]  # finest level, (H / r_0, W / r_0)
        ups = [F.interpolate(p(f), size=size, mode="bilinear", align_corners=False) if f.shape[-2:] != size else p(f)
               for p, f in zip(self.proj, feats, strict=True)]
        logits = self.classifier(self.dropout(self.fuse(torch.cat(ups, dim=1))))  # (B, L, H/r0, W/r0)
        # back to the padded input size, then crop the padding: logits line up with the input pixels
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)[..., :h, :w]
        loss = None
        if labels is not None:
            up = logits if logits.shape[-2:] == labels.shape[-2:] else F.interpolate(
                logits, size=labels.shape[-2:], mode="bilinear", align_corners=False
            )
            loss = F.cross_entropy(up, labels.long(), ignore_index=self.config.semantic_loss_ignore_index)
        return SemanticSegmenterOutput(loss=loss, logits=logits)

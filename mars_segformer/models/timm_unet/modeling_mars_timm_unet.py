"""UNet decoder on a timm encoder, trained from scratch.

Self-contained (torch, timm and transformers only) so that ``trust_remote_code`` can load it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SemanticSegmenterOutput

from .configuration_mars_timm_unet import MarsTimmUNetConfig


class MarsTimmUNetDecoderBlock(nn.Module):
    """Upsample x2, concatenate the skip, two 3x3 conv-BN-ReLU."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_ch + skip_ch, out_ch, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))

    def forward(self, x, skip=None):
        size = skip.shape[-2:] if skip is not None else (x.shape[-2] * 2, x.shape[-1] * 2)
        x = F.interpolate(x, size=size, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class MarsTimmUNetPreTrainedModel(PreTrainedModel):
    config_class = MarsTimmUNetConfig
    config: MarsTimmUNetConfig
    base_model_prefix = "encoder"
    main_input_name = "pixel_values"

    # Copied from mars_segformer.models.timm_segformer.modeling_mars_timm_segformer.MarsTimmSegformerPreTrainedModel._init_weights
    # (each modeling file stands alone so that trust_remote_code can load it without this package)
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


class MarsTimmUNetForSemanticSegmentation(MarsTimmUNetPreTrainedModel):
    """UNet decoder over the encoder's levels; the last block returns to full input resolution."""

    def __init__(self, config: MarsTimmUNetConfig):
        super().__init__(config)
        import timm  # here, not at the top: a run of another model does not pay timm's import (~1 s)

        self.encoder = timm.create_model(
            config.encoder_name, features_only=True, pretrained=False, in_chans=config.num_channels,
            out_indices=tuple(range(config.encoder_depth)),
        )
        enc = self.encoder.feature_info.channels()[::-1]  # deepest first
        self.pad_to = max(self.encoder.feature_info.reduction())
        self.first_reduction = self.encoder.feature_info.reduction()[0]
        dec = config.decoder_channels
        skips = enc[1:] + [0]
        ins = [enc[0]] + dec[:-1]
        self.blocks = nn.ModuleList(MarsTimmUNetDecoderBlock(i, s, o) for i, s, o in zip(ins, skips, dec, strict=True))
        self.dropout = nn.Dropout2d(config.dropout)
        self.classifier = nn.Conv2d(dec[-1], config.num_labels, 1)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, return_dict: bool | None = None,
                **kwargs) -> SemanticSegmenterOutput:
        """
        Args:
            pixel_values: (B, C, H, W); any H, W.
            labels: (B, H', W') class ids; logits are upsampled to (H', W') for the loss.
        """
        h, w = pixel_values.shape[-2:]
        ph, pw = (-h) % self.pad_to, (-w) % self.pad_to
        x = F.pad(pixel_values, (0, pw, 0, ph), mode="replicate") if ph or pw else pixel_values
        feats = self.encoder(x)[::-1]  # deepest first
        y = feats[0]
        for block, skip in zip(self.blocks, feats[1:] + [None], strict=True):
            y = block(y, skip)
        logits = self.classifier(self.dropout(y))
        if logits.shape[-2:] != x.shape[-2:]:
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        logits = logits[..., :h, :w]
        loss = None
        if labels is not None:
            up = logits if logits.shape[-2:] == labels.shape[-2:] else F.interpolate(
                logits, size=labels.shape[-2:], mode="bilinear", align_corners=False
            )
            loss = F.cross_entropy(up, labels.long(), ignore_index=self.config.semantic_loss_ignore_index)
        return SemanticSegmenterOutput(loss=loss, logits=logits)

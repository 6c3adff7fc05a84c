"""DeepLabV3+ (Chen et al. 2018) on a timm encoder, trained from scratch.

Self-contained (torch, timm and transformers only) so that ``trust_remote_code`` can load it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SemanticSegmenterOutput

from .configuration_mars_deeplabv3plus import MarsDeepLabV3PlusConfig


def _conv_bn_relu(in_ch, out_ch, k=1, dilation=1):
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, k, padding=dilation * (k // 2), dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
    )


class MarsDeepLabV3PlusASPP(nn.Module):
    """Atrous spatial pyramid pooling: parallel dilated 3x3 branches, a 1x1 branch and image pooling."""

    def __init__(self, in_ch: int, out_ch: int, rates):
        super().__init__()
        self.branches = nn.ModuleList([_conv_bn_relu(in_ch, out_ch)] + [_conv_bn_relu(in_ch, out_ch, 3, r) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.ReLU(inplace=True))
        self.project = _conv_bn_relu(out_ch * (len(rates) + 2), out_ch)

    def forward(self, x):
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, dim=1))


class MarsDeepLabV3PlusPreTrainedModel(PreTrainedModel):
    config_class = MarsDeepLabV3PlusConfig
    config: MarsDeepLabV3PlusConfig
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


class MarsDeepLabV3PlusForSemanticSegmentation(MarsDeepLabV3PlusPreTrainedModel):
    """ASPP on the deepest features, fused with stride-4 features; logits at the input resolution."""

    def __init__(self, config: MarsDeepLabV3PlusConfig):
        super().__init__(config)
        import timm  # here, not at the top: a run of another model does not pay timm's import (~1 s)

        self.encoder = timm.create_model(
            config.encoder_name, features_only=True, pretrained=False, in_chans=config.num_channels,
            out_indices=tuple(range(config.encoder_depth)), output_stride=config.output_stride,
        )
        channels = self.encoder.feature_info.channels()
        reductions = self.encoder.feature_info.reduction()
        self.low_index = min(range(len(reductions)), key=lambda i: abs(reductions[i] - 4))
        self.pad_to = max(32, max(reductions))
        d = config.decoder_channels
        self.aspp = MarsDeepLabV3PlusASPP(channels[-1], d, config.atrous_rates)
        self.low_proj = _conv_bn_relu(channels[self.low_index], config.low_level_channels)
        self.decoder = nn.Sequential(
            _conv_bn_relu(d + config.low_level_channels, d, 3), _conv_bn_relu(d, d, 3)
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
        ph, pw = (-h) % self.pad_to, (-w) % self.pad_to
        x = F.pad(pixel_values, (0, pw, 0, ph), mode="replicate") if ph or pw else pixel_values
        feats = self.encoder(x)
        low = self.low_proj(feats[self.low_index])  # (B, 48, H/4, W/4)
        deep = F.interpolate(self.aspp(feats[-1]), size=low.shape[-2:], mode="bilinear", align_corners=False)
        logits = self.classifier(self.dropout(self.decoder(torch.cat([deep, low], dim=1))))
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)[..., :h, :w]
        loss = None
        if labels is not None:
            up = logits if logits.shape[-2:] == labels.shape[-2:] else F.interpolate(
                logits, size=labels.shape[-2:], mode="bilinear", align_corners=False
            )
            loss = F.cross_entropy(up, labels.long(), ignore_index=self.config.semantic_loss_ignore_index)
        return SemanticSegmenterOutput(loss=loss, logits=logits)

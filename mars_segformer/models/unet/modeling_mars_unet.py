"""Mars UNet family: plain, squeeze-excite, residual, attention-gated and dual UNets.

Self-contained (torch + transformers only) so that ``trust_remote_code`` can load it from the Hub.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SemanticSegmenterOutput

from .configuration_mars_unet import MarsUNetConfig


class MarsUNetSqueezeExcite(nn.Module):
    """Channel gate: global pool -> bottleneck MLP -> sigmoid scale."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(4, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)  # (B, C, 1, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class MarsUNetBlock(nn.Module):
    """Two 3x3 conv-BN-ReLU layers, optionally residual and squeeze-excited."""

    def __init__(self, in_ch: int, out_ch: int, config: MarsUNetConfig, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.se = MarsUNetSqueezeExcite(out_ch, config.se_reduction) if config.use_squeeze_excite else None
        self.skip = None
        if config.block_type == "residual":
            self.skip = nn.Identity() if in_ch == out_ch else nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.se is not None:
            y = self.se(y)
        if self.skip is not None:
            y = y + self.skip(x)
        return F.relu(y)


class MarsUNetAttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018): the decoder signal weights the skip features."""

    def __init__(self, skip_ch: int, gate_ch: int):
        super().__init__()
        inter = max(8, skip_ch // 2)
        self.theta = nn.Conv2d(skip_ch, inter, 1, bias=False)
        self.phi = nn.Conv2d(gate_ch, inter, 1)
        self.psi = nn.Conv2d(inter, 1, 1)

    def forward(self, skip, gate):
        # skip: (B, Cs, H, W); gate: (B, Cg, H, W) already upsampled to the skip size
        a = torch.sigmoid(self.psi(F.relu(self.theta(skip) + self.phi(gate))))  # (B, 1, H, W)
        return skip * a


class MarsUNetBody(nn.Module):
    """Encoder-decoder returning full-resolution features of ``base_channels`` channels."""

    def __init__(self, config: MarsUNetConfig, dilation: int = 1):
        super().__init__()
        widths = [config.base_channels * 2**i for i in range(config.depth + 1)]
        self.down = nn.ModuleList()
        in_ch = config.num_channels
        for w in widths:
            self.down.append(MarsUNetBlock(in_ch, w, config, dilation))
            in_ch = w
        self.up = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.gates = nn.ModuleList()
        for w_skip, w_deep in zip(widths[-2::-1], widths[:0:-1], strict=True):
            self.ups.append(nn.ConvTranspose2d(w_deep, w_skip, 2, stride=2))
            self.gates.append(MarsUNetAttentionGate(w_skip, w_skip) if config.use_attention else nn.Identity())
            self.up.append(MarsUNetBlock(2 * w_skip, w_skip, config, dilation))
        self.use_attention = config.use_attention

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for up, gate, block in zip(self.ups, self.gates, self.up, strict=True):
            x = up(x)  # (B, C_skip, 2h, 2w)
            skip = skips.pop()
            if self.use_attention:
                skip = gate(skip, x)
            x = block(torch.cat([skip, x], dim=1))
        return x  # (B, base_channels, H, W)


class MarsUNetPreTrainedModel(PreTrainedModel):
    config_class = MarsUNetConfig
    config: MarsUNetConfig
    base_model_prefix = "unet"
    main_input_name = "pixel_values"

    def _init_weights(self, module):
        if module is getattr(self, "classifier", None):
            # a small classifier starts every pixel near the uniform prediction (loss ~ ln 5)
            init.normal_(module.weight, std=self.config.initializer_range)
            init.zeros_(module.bias)
            return
        # He init for ReLU convolutions; transformers' default N(0, 0.02) starves deep ReLU stacks
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class MarsUNetForSemanticSegmentation(MarsUNetPreTrainedModel):
    """UNet for semantic segmentation; logits come out at the input's full resolution."""

    def __init__(self, config: MarsUNetConfig):
        super().__init__(config)
        self.unet = MarsUNetBody(config)
        # the second UNet sees a wider context through dilated convolutions
        self.unet2 = MarsUNetBody(config, dilation=2) if config.dual else None
        feat = config.base_channels * (2 if config.dual else 1)
        self.dropout = nn.Dropout2d(config.dropout)
        self.classifier = nn.Conv2d(feat, config.num_labels, 1)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, return_dict: bool | None = None,
                **kwargs) -> SemanticSegmenterOutput:
        """
        Args:
            pixel_values: (B, C, H, W) normalised images; any H, W (padded internally to a multiple of 2**depth).
            labels: (B, H', W') class ids; logits are upsampled to (H', W') for the loss.
        """
        h, w = pixel_values.shape[-2:]
        m = 2**self.config.depth
        ph, pw = (-h) % m, (-w) % m
        x = F.pad(pixel_values, (0, pw, 0, ph), mode="replicate") if ph or pw else pixel_values
        feats = self.unet(x)
        if self.unet2 is not None:
            feats = torch.cat([feats, self.unet2(x)], dim=1)
        logits = self.classifier(self.dropout(feats))[..., :h, :w]  # (B, num_labels, H, W)
        loss = None
        if labels is not None:
            up = logits if logits.shape[-2:] == labels.shape[-2:] else F.interpolate(
                logits, size=labels.shape[-2:], mode="bilinear", align_corners=False
            )
            loss = F.cross_entropy(up, labels.long(), ignore_index=self.config.semantic_loss_ignore_index)
        return SemanticSegmenterOutput(loss=loss, logits=logits)

"""DenseCL (Wang et al., CVPR 2021, arXiv:2011.09157): dense contrastive pretraining of a ResNet backbone.

A method made for dense prediction on convolutional backbones: besides MoCo's global contrast (one
vector per view), every cell of the last feature map is contrasted with its most similar cell in the
other view, so the features a decode head reads learn to tell terrain apart locally. The heads, the
momentum update, the cell matching and the InfoNCE loss with its queue are lightly's
(``DenseCLProjectionHead``, ``update_momentum``, ``select_most_similar``, ``NTXentLoss``); only the
wiring around transformers' ``ResNetBackbone`` is here, so the pretrained backbone saves in the
plain transformers layout that ``--model`` reads (``ResNetBackbone.from_pretrained``).
"""

from __future__ import annotations

import copy

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import DenseCLProjectionHead
from lightly.models.utils import deactivate_requires_grad, select_most_similar, update_momentum
from torch import nn
from transformers import ResNetBackbone, ResNetConfig


class MarsDenseCL(nn.Module):
    """A ResNet backbone with DenseCL's global and local heads and their momentum (key) copies.

    Args:
        backbone_config: the backbone to pretrain (the UperNet preset's ResNet).
        hidden_dim: width of the heads' hidden layer.
        out_dim: width of the contrasted embeddings.
        queue_size: negatives kept in each of the two queues (global, local).
        temperature: InfoNCE temperature.
        local_weight: weight of the dense loss (DenseCL's lambda); the global loss gets the rest.
    """

    def __init__(self, backbone_config: ResNetConfig, hidden_dim: int = 512, out_dim: int = 128,
                 queue_size: int = 4096, temperature: float = 0.2, local_weight: float = 0.5):
        super().__init__()
        config = copy.deepcopy(backbone_config)
        config.out_features = [config.stage_names[-1]]
        self.backbone = ResNetBackbone(config)
        width = config.hidden_sizes[-1]
        self.head_global = DenseCLProjectionHead(width, hidden_dim, out_dim)
        self.head_local = DenseCLProjectionHead(width, hidden_dim, out_dim)
        self.backbone_momentum = copy.deepcopy(self.backbone)
        self.head_global_momentum = copy.deepcopy(self.head_global)
        self.head_local_momentum = copy.deepcopy(self.head_local)
        for module in (self.backbone_momentum, self.head_global_momentum, self.head_local_momentum):
            deactivate_requires_grad(module)
        self.loss_global = NTXentLoss(temperature=temperature, memory_bank_size=(queue_size, out_dim))
        self.loss_local = NTXentLoss(temperature=temperature, memory_bank_size=(queue_size, out_dim))
        self.local_weight = local_weight

    @staticmethod
    def _embed(backbone, head_global, head_local, pixel_values):
        fmap = backbone(pixel_values=pixel_values).feature_maps[-1]  # (B, C, h, w), stride 32
        cells = fmap.flatten(2).transpose(1, 2)  # (B, h*w, C)
        return cells, head_global(fmap.mean(dim=(2, 3))), head_local(cells)  # (B, h*w, C), (B, D), (B, h*w, D)

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> dict[str, torch.Tensor]:
        """DenseCL's loss for two views of one batch (each (B, 3, H, W)); the key side has no gradient."""
        q_cells, q_global, q_local = self._embed(self.backbone, self.head_global, self.head_local, query)
        with torch.no_grad():
            k_cells, k_global, k_local = self._embed(self.backbone_momentum, self.head_global_momentum,
                                                     self.head_local_momentum, key)
            k_local = select_most_similar(q_cells, k_cells, k_local)  # each query cell's best key cell
        loss_global = self.loss_global(q_global, k_global)
        loss_local = self.loss_local(q_local.flatten(end_dim=1), k_local.flatten(end_dim=1))
        loss = (1 - self.local_weight) * loss_global + self.local_weight * loss_local
        return {"loss": loss, "loss_global": loss_global.detach(), "loss_local": loss_local.detach()}

    @torch.no_grad()
    def update_momentum(self, momentum: float) -> None:
        """key <- momentum * key + (1 - momentum) * query, for the backbone and both heads."""
        update_momentum(self.backbone, self.backbone_momentum, momentum)
        update_momentum(self.head_global, self.head_global_momentum, momentum)
        update_momentum(self.head_local, self.head_local_momentum, momentum)

    def queue_state(self) -> dict[str, torch.Tensor]:
        """The two queues and their pointers: lightly keeps them as non-persistent buffers, outside
        ``state_dict``, so a resumable checkpoint saves them itself."""
        return {f"{name}.{part}": getattr(getattr(self, name).memory_bank, part).clone()
                for name in ("loss_global", "loss_local") for part in ("bank", "bank_ptr")}

    def load_queue_state(self, state: dict[str, torch.Tensor]) -> None:
        for key, value in state.items():
            name, part = key.split(".")
            getattr(getattr(self, name).memory_bank, part).copy_(value)

    def pretrained_backbone(self, stage_names: list[str] | None = None) -> ResNetBackbone:
        """The query backbone alone, its config listing ``stage_names`` as outputs (default: every stage),
        ready for ``save_pretrained`` and for ``--model``."""
        backbone = copy.deepcopy(self.backbone)
        backbone.config.out_features = stage_names or [n for n in backbone.config.stage_names if n != "stem"]
        backbone.config.architectures = [type(backbone).__name__]
        return backbone

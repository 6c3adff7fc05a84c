"""Deep supervision: the Trainer's own loss takes UperNet's auxiliary head as transformers' loss does."""

from __future__ import annotations

import pytest
import torch
from transformers import TrainingArguments, UperNetForSemanticSegmentation

from mars_segformer.losses.build import CombinedLoss, CrossEntropyLoss
from mars_segformer.models.upernet import upernet_config
from mars_segformer.training.trainer import MarsTrainer


def _tiny_upernet(aux: bool, weight: float = 0.4) -> UperNetForSemanticSegmentation:
    torch.manual_seed(0)
    config = upernet_config("r18", hidden_sizes=(8, 16, 32, 64), embedding_size=8, depths=[1, 1, 1, 1],
                            hidden_size=16, use_auxiliary_head=aux, auxiliary_channels=16,
                            auxiliary_loss_weight=weight)
    return UperNetForSemanticSegmentation(config).eval()


def _batch():
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 5, (2, 64, 128), generator=g)
    labels[:, :8] = 255  # ignored by both losses
    return {"pixel_values": torch.randn(2, 3, 64, 128, generator=g), "labels": labels}


def _trainer_loss(model, tmp_path) -> torch.Tensor:
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    trainer = MarsTrainer(model=model, args=args, loss_fn=CombinedLoss([(1.0, CrossEntropyLoss(ignore_index=255))]))
    with torch.no_grad():
        return trainer.compute_loss(model, _batch())


@pytest.mark.parametrize("weight", [0.4, 1.5])
def test_the_auxiliary_head_joins_the_loss_with_its_configured_weight(tmp_path, weight):
    """With cross-entropy as the Trainer's loss, its loss equals transformers' own UperNet loss, which adds
    ``auxiliary_loss_weight`` times the auxiliary head's cross-entropy (the independent oracle)."""
    model = _tiny_upernet(aux=True, weight=weight)
    with torch.no_grad():
        expected = model(**_batch()).loss
        main_only = torch.nn.functional.cross_entropy(
            torch.nn.functional.interpolate(model(pixel_values=_batch()["pixel_values"]).logits, size=(64, 128),
                                            mode="bilinear", align_corners=False),
            _batch()["labels"], ignore_index=255)
    got = _trainer_loss(model, tmp_path)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert got.item() > main_only.item() + 0.1 * weight  # the auxiliary term is really there


def test_without_an_auxiliary_head_the_loss_is_the_main_head_alone(tmp_path):
    model = _tiny_upernet(aux=False)
    with torch.no_grad():
        expected = model(**_batch()).loss  # transformers' loss: the main head's cross-entropy only
    assert _trainer_loss(model, tmp_path).item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_hook_is_removed_after_the_forward(tmp_path):
    model = _tiny_upernet(aux=True)
    _trainer_loss(model, tmp_path)
    assert not model.auxiliary_head._forward_hooks

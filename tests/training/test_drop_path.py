"""``--drop_path``: each ResNet block's residual branch dropped per sample while training at timm's linearly rising
rates, nothing changed in evaluation or in the saved model, and the flag reaching the training run."""

import json

import pytest
import torch
from transformers import UperNetForSemanticSegmentation

from mars_segformer import create_model
from mars_segformer.training.drop_path import attach_drop_path, residual_blocks
from tests.training.test_head_dropout import _first_loss, _upernet


def _branch_io(block, store):
    """Record what the block's branch made (registered first: before any drop) and what the block added it to."""
    return block.layer.register_forward_hook(lambda _m, args, out: store.append((args[0].detach().clone(),
                                                                                 out.detach().clone())))


def test_each_sample_keeps_its_whole_branch_scaled_or_loses_it_at_the_blocks_rate():
    model = _upernet().train()
    blocks = residual_blocks(model)
    assert len(blocks) == sum(model.backbone.config.depths)  # every block of every stage, none else
    last = blocks[-1]
    made, added = [], []
    _branch_io(last, made)
    attach_drop_path(model, 0.5)
    last.layer.register_forward_hook(lambda _m, _a, out: added.append(out.detach().clone()))
    torch.manual_seed(1)
    n = 256
    model(pixel_values=torch.randn(n, 3, 32, 64))
    branch, kept_out = made[0][1], added[0]  # (B, C, h, w) before and after the drop
    kept = kept_out.flatten(1).abs().amax(1) > 0  # (B,): samples whose branch reached the sum
    # the last block's rate is the flag's: a kept sample's branch is scaled by 1 / (1 - 0.5), a dropped one is zero
    torch.testing.assert_close(kept_out, branch * kept[:, None, None, None] / 0.5)
    share = 1 - kept.float().mean().item()
    assert abs(share - 0.5) < 4 * (0.25 / n) ** 0.5, share  # binomial: within 4 standard deviations


def test_rates_rise_linearly_from_zero_at_the_first_block():
    model = _upernet().train()
    blocks = residual_blocks(model)
    assert len(blocks) == 4  # the tiny preset: one block a stage
    handles = attach_drop_path(model, 0.6)
    assert len(handles) == len(blocks) - 1  # the first block's rate is 0: no hook
    assert not blocks[0].layer._forward_hooks
    # block i of 4 drops with 0.6 * i / 3: measure the share of zeroed samples of block 2 (0.4)
    dropped = []
    blocks[2].layer.register_forward_hook(lambda _m, _a, out: dropped.append(out.flatten(1).abs().amax(1) == 0))
    torch.manual_seed(2)
    n = 400
    model(pixel_values=torch.randn(n, 3, 32, 64))
    share = dropped[0].float().mean().item()
    assert abs(share - 0.4) < 4 * (0.24 / n) ** 0.5, share


def test_evaluation_and_the_saved_model_are_unchanged(tmp_path):
    model, plain = _upernet(), _upernet()
    plain.load_state_dict(model.state_dict())
    attach_drop_path(model, 0.3)
    x = torch.randn(4, 3, 64, 128)
    model.eval(), plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=x).logits, plain(pixel_values=x).logits, rtol=0, atol=0)
    model.save_pretrained(tmp_path / "saved")
    loaded = UperNetForSemanticSegmentation.from_pretrained(tmp_path / "saved").eval()
    assert not any(b.layer._forward_hooks for b in residual_blocks(loaded))
    assert set(loaded.state_dict()) == set(plain.state_dict())


def test_zero_attaches_nothing_and_models_without_resnet_blocks_are_refused():
    assert attach_drop_path(_upernet(), 0) == []
    with pytest.raises(ValueError, match="--drop_path must lie in"):
        attach_drop_path(_upernet(), 1.0)
    with pytest.raises(ValueError, match="this model is a Segformer"):
        attach_drop_path(create_model("segformer-b0", tiny=True), 0.1)


def test_the_run_trains_with_it(tmp_path):
    """The same seed's first step as a run without it: another loss (head dropout's test shows two plain runs agree)."""
    _, plain, _ = _first_loss(tmp_path, "a", [])
    metrics, dropped, stdout = _first_loss(tmp_path, "b", ["--drop_path", "0.5"])
    assert dropped != plain
    assert metrics["drop_path"] == 0.5 and json.loads((tmp_path / "a" / "metrics.json").read_text())["drop_path"] == 0
    assert "drop path: each ResNet block's residual branch dropped per sample, 0 at the first block to 0.5" in stdout

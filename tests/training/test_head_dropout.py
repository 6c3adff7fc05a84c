"""``--head_dropout``: whole channels of the classifier's input dropped while training, nothing changed in
evaluation or in the saved model, and the flag reaching the training run."""

import json
import re

import pytest
import torch
from transformers import UperNetForSemanticSegmentation

from mars_segformer import create_model
from mars_segformer.training.head_dropout import attach_head_dropout, head_classifiers
from tests.training.test_train import launch


def _upernet(**overrides):
    torch.manual_seed(0)
    return create_model("upernet-r18", tiny=True, **overrides)


def _capture(conv, store):
    return conv.register_forward_pre_hook(lambda _m, args: store.append(args[0].detach().clone()))


def test_training_mode_drops_whole_channels_at_the_share_and_rescales_the_rest():
    model = _upernet().train()
    conv = model.decode_head.classifier
    before, after = [], []
    _capture(conv, before)  # registered first: sees the features as the head made them
    attach_head_dropout(model, 0.5)
    _capture(conv, after)  # registered after the dropout: sees what the classifier gets
    torch.manual_seed(1)
    model(pixel_values=torch.randn(8, 3, 64, 128))
    x, y = before[0], after[0]  # (B, C, h, w)
    kept = y.abs().flatten(2).amax(-1) > 0  # (B, C): channels that reached the classifier
    # every channel is either zeroed entirely or the original scaled by 1 / (1 - p)
    torch.testing.assert_close(y, x * kept[..., None, None] / 0.5)
    share = 1 - kept.float().mean().item()
    n = kept.numel()
    assert abs(share - 0.5) < 4 * (0.25 / n) ** 0.5, (share, n)  # binomial: within 4 standard deviations


def test_evaluation_and_the_saved_model_are_unchanged(tmp_path):
    model = _upernet(use_auxiliary_head=True)
    plain = _upernet(use_auxiliary_head=True)
    plain.load_state_dict(model.state_dict())
    handles = attach_head_dropout(model, 0.3)
    assert len(handles) == 2 == len(head_classifiers(model))  # the decode head's and the auxiliary head's
    x = torch.randn(4, 3, 64, 128)
    model.eval(), plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=x).logits, plain(pixel_values=x).logits, rtol=0, atol=0)
    model.train()
    with torch.no_grad():
        out = model(pixel_values=x).logits
    assert not torch.equal(out, plain.train()(pixel_values=x).logits)  # the hook acts in training mode
    model.save_pretrained(tmp_path / "saved")
    loaded = UperNetForSemanticSegmentation.from_pretrained(tmp_path / "saved").eval()
    assert not loaded.decode_head.classifier._forward_pre_hooks
    assert set(loaded.state_dict()) == set(plain.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values=x).logits, plain.eval()(pixel_values=x).logits)


def test_zero_attaches_nothing_and_other_models_are_refused():
    assert attach_head_dropout(_upernet(), 0) == []
    with pytest.raises(ValueError, match="--head_dropout must lie in"):
        attach_head_dropout(_upernet(), 1.0)
    with pytest.raises(ValueError, match="this model is a Segformer"):
        attach_head_dropout(create_model("segformer-b0", tiny=True), 0.1)


def _first_loss(tmp_path, name, flags):
    """One step of tiny UperNet-R18 with ``flags``: its metrics.json, the logged loss and stdout."""
    out = tmp_path / name
    res = launch(["--model", "upernet-r18", "--max_steps", "1", "--logging_steps", "1", "--eval_strategy", "no",
                  "--save_strategy", "no", "--load_best_model_at_end", "false", "--report_to", "none", *flags], out)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    logged = re.findall(r"'loss': '([0-9.e+-]+)'", res.stdout + res.stderr)  # the Trainer's log line of step 1
    assert len(logged) == 1, res.stdout[-2000:]
    return metrics, float(logged[0]), res.stdout


def test_the_run_trains_with_it(tmp_path):
    """The same seed's first step: two runs without dropout log the same loss, one with it another."""
    _, plain, _ = _first_loss(tmp_path, "a", ["--head_dropout", "0"])
    _, again, _ = _first_loss(tmp_path, "b", [])
    metrics, dropped, stdout = _first_loss(tmp_path, "c", ["--head_dropout", "0.5"])
    assert plain == again  # the runs are deterministic, so a difference below is the dropout's
    assert dropped != plain
    assert metrics["head_dropout"] == 0.5
    assert "head dropout: 0.5 of the channels" in stdout

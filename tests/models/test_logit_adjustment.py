"""Logit adjustment folded into the classifier bias: every architecture's logits move by exactly
-tau * log(w) per class, computed here independently, and nothing else changes."""

import numpy as np
import pytest
import torch

from mars_segformer.models import PRESETS, create_model
from mars_segformer.models.logit_adjustment import (
    classifier_layer,
    fold_logit_adjustment,
    recorded_shift,
    unfold_logit_shift,
)
from mars_segformer.models.pretrained import input_channels
from tests.training.test_train import counted_task_iou

WEIGHTS = [0.0, 0.5, 1.0, 2.0, 8.0]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_folding_shifts_every_logit_by_minus_tau_log_w(name):
    torch.manual_seed(0)
    model = create_model(name, tiny=True).eval()
    x = torch.randn(2, input_channels(model.config) or 3, 64, 128)
    with torch.no_grad():
        before = model(pixel_values=x).logits.double().numpy()
    others = {k: v.clone() for k, v in model.state_dict().items()}
    fold_logit_adjustment(model, WEIGHTS, 0.5)
    with torch.no_grad():
        after = model(pixel_values=x).logits.double().numpy()
    expected = np.array([0.0, -0.5 * np.log(0.5), 0.0, -0.5 * np.log(2.0), -0.5 * np.log(8.0)])
    np.testing.assert_allclose(after - before, np.broadcast_to(expected[None, :, None, None], before.shape), atol=2e-5)
    bias = next(k for k, v in model.state_dict().items() if v.data_ptr() == classifier_layer(model).bias.data_ptr())
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, others[k])]
    assert changed == [bias]


def test_folds_are_recorded_in_the_config_summed_and_unfolding_restores_the_bias(tmp_path):
    from transformers import AutoModelForSemanticSegmentation

    torch.manual_seed(0)
    model = create_model("upernet-r18", tiny=True)
    start = classifier_layer(model).bias.detach().clone()
    assert recorded_shift(model) is None and unfold_logit_shift(model) is None  # nothing folded: nothing to undo
    fold_logit_adjustment(model, WEIGHTS, 0.5)
    fold_logit_adjustment(model, WEIGHTS, 0.25)
    total = [0.0 if w == 0 else -0.75 * np.log(w) for w in WEIGHTS]
    np.testing.assert_allclose(recorded_shift(model), total, rtol=1e-6)
    model.save_pretrained(tmp_path / "m")  # the record travels with the saved config
    reloaded = AutoModelForSemanticSegmentation.from_pretrained(tmp_path / "m")
    np.testing.assert_allclose(recorded_shift(reloaded), total, rtol=1e-6)
    np.testing.assert_allclose(unfold_logit_shift(reloaded), total, rtol=1e-6)
    torch.testing.assert_close(classifier_layer(reloaded).bias.detach(), start, atol=1e-6, rtol=0)
    assert recorded_shift(reloaded) is None
    fold_logit_adjustment(reloaded, WEIGHTS, 0.0)  # tau 0 folds nothing and records nothing
    assert recorded_shift(reloaded) is None


def test_a_model_without_one_classifier_is_refused():
    model = create_model("unet", tiny=True)
    model.extra = torch.nn.Conv2d(4, model.config.num_labels, 1)  # a second candidate
    with pytest.raises(ValueError, match="expected one classifier convolution"):
        fold_logit_adjustment(model, WEIGHTS, 1.0)


def test_auto_search_scores_every_tau_as_an_independent_count_and_picks_the_best():
    from mars_segformer.training.adjustment import search_tau

    rng = np.random.default_rng(0)
    masks = rng.integers(0, 5, (12, 8, 16)).astype(np.uint8)
    logits = rng.normal(size=(12, 5, 8, 16)).astype(np.float32)
    logits[:, 4] += 1.5  # a model tilted toward class 4
    weights = [0.0, 1.0, 1.0, 1.5, 12.0]
    taus = (0.0, 0.25, 0.5, 1.0)

    expected = {}
    for tau in taus:
        shift = np.array([0.0] + [-tau * np.log(w) for w in weights[1:]])
        expected[str(tau)] = counted_task_iou(np.argmax(logits + shift[None, :, None, None], axis=1), masks)
    chosen, table = search_tau(lambda x: torch.from_numpy(logits[x[:, 0, 0].astype(int)]),
                               np.arange(12, dtype=np.uint8)[:, None, None] * np.ones((1, 8, 16), np.uint8), masks,
                               weights, taus, batch=5)
    assert table == pytest.approx(expected, abs=1e-9)
    assert chosen == float(max(taus, key=lambda t: expected[str(t)])) and chosen > 0



@pytest.mark.parametrize(("wrong", "hard"), [(3, True), (50, True), (50, False)])
def test_auto_search_adjusts_only_when_unmemorised_training_tiles_gain_enough(wrong, hard):
    """1,000 soil and 1,000 big-rock pixels; the model calls ``wrong`` soil pixels big rock by a margin of 0.2,
    so any tau >= 0.25 corrects them and keeps every true big rock (margin 1). With ``hard``, 1,000 sand pixels
    are also called bedrock whatever tau does (sand and bedrock IoU 0: tiles not memorised). Task mIoU by
    counting, over the classes present: tau 0 gives soil (1000 - k) / 1000 and big rock 1000 / (1000 + k),
    tau 0.25 gives 1 and 1 (sand and bedrock 0 and 0 with ``hard``). ``auto`` keeps tau 0 where the gain is
    under AUTO_MIN_GAIN (k = 3) or tau 0 already scores AUTO_MAX_FIT (k = 50 without ``hard``: 0.95), and
    takes 0.25 where neither holds (k = 50 with ``hard``)."""
    from mars_segformer.training.adjustment import AUTO_MAX_FIT, AUTO_MIN_GAIN, search_tau

    n = 3 if hard else 2
    masks = np.zeros((n, 10, 100), np.uint8)
    logits = np.zeros((n, 5, 10, 100), np.float32)
    masks[0], masks[1] = 1, 4
    logits[0, 1], logits[1, 4] = 1.0, 1.0
    logits[0, 4].flat[:wrong] = 1.2
    if hard:
        masks[2], logits[2, 2] = 3, 1.0
    weights = [0.0, 1.0, 1.0, 1.0, float(np.e)]  # tau moves class 4's logit by -tau, the others' by 0
    tau, table = search_tau(lambda x: torch.from_numpy(logits[x[:, 0, 0].astype(int)]),
                            np.arange(n, dtype=np.uint8)[:, None, None] * np.ones((1, 10, 100), np.uint8), masks,
                            weights, (0.0, 0.25, 0.5))
    classes = 4 if hard else 2
    at_zero = ((1000 - wrong) / 1000 + 1000 / (1000 + wrong)) / classes
    best = 2 / classes
    assert table == pytest.approx({"0.0": at_zero, "0.25": best, "0.5": best}, abs=1e-9)
    assert tau == (0.25 if best - at_zero >= AUTO_MIN_GAIN and at_zero < AUTO_MAX_FIT else 0.0)
    assert tau == {(3, True): 0.0, (50, True): 0.25, (50, False): 0.0}[wrong, hard]  # one case per way

"""bench/logit_adjustment.py measures every tau from the unadjusted model, also for runs whose shift is
recorded only in their metrics.json (saved before the config kept it)."""

import numpy as np
import torch

from bench.logit_adjustment import unfold_recorded
from mars_segformer.models import create_model
from mars_segformer.models.logit_adjustment import SHIFT_ATTR, classifier_layer, fold_logit_adjustment

WEIGHTS = [0.0, 0.5, 1.0, 2.0, 8.0]


def test_a_shift_known_only_to_metrics_is_taken_off():
    torch.manual_seed(0)
    model = create_model("upernet-r18", tiny=True)
    start = classifier_layer(model).bias.detach().clone()
    fold_logit_adjustment(model, WEIGHTS, 0.35)
    setattr(model.config, SHIFT_ATTR, None)  # as an older run saved it: folded, not recorded
    shift = [0.0 if w == 0 else -0.35 * np.log(w) for w in WEIGHTS]
    taken = unfold_recorded(model, {"logit_shift": shift})
    np.testing.assert_allclose(taken, shift, rtol=1e-6)
    torch.testing.assert_close(classifier_layer(model).bias.detach(), start, atol=1e-6, rtol=0)


def test_a_recorded_shift_is_taken_off_once_and_an_unadjusted_run_is_left_alone():
    torch.manual_seed(0)
    model = create_model("upernet-r18", tiny=True)
    start = classifier_layer(model).bias.detach().clone()
    assert unfold_recorded(model, {"logit_shift": None}) is None
    torch.testing.assert_close(classifier_layer(model).bias.detach(), start, atol=0, rtol=0)
    fold_logit_adjustment(model, WEIGHTS, 0.2)  # recorded in the config, and metrics say the same
    unfold_recorded(model, {"logit_shift": [0.0 if w == 0 else -0.2 * np.log(w) for w in WEIGHTS]})
    torch.testing.assert_close(classifier_layer(model).bias.detach(), start, atol=1e-6, rtol=0)

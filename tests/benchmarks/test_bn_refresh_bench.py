"""bench/bn_refresh.py: the recomputed BatchNorm statistics against the statistics of the layer's own inputs, counted
directly, and its flags' errors."""

import sys

import numpy as np
import pytest
import torch

from bench.bn_refresh import batch_norms, refresh
from bench.tta import run_split
from mars_segformer.data.dataset import clean_and_split, model_pixels
from mars_segformer.inference import load_model
from tests import forked
from tests.training.test_train import ROOT, launch


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bn") / "run"
    proc = launch(["--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end",
                   "false", "--report_to", "none", "--weight_averaging", "swa:0.5"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_the_first_layer_holds_the_mean_of_its_batches_statistics(tiny_run):
    """BatchNorm with momentum None keeps the plain average of each batch's mean and (unbiased) variance: counted
    here from the first layer's inputs, which depend on no statistics, batch by batch as bn_refresh feeds them."""
    arrays, config, _ = run_split(tiny_run, None, None)
    kept, _, train_rows, _ = clean_and_split(arrays, config)
    images = kept.train_images[np.sort(train_rows)[:40]]  # a batch of 32 and one of 8
    model = load_model(str(tiny_run), device="cpu")
    seen = []  # (layer, input) in the order the forward pass calls them
    hooks = [m.register_forward_hook(lambda m, args, out: seen.append((m, args[0].detach().double())))
             for m in batch_norms(model)]
    means, variances = [], []
    for batch in (images[:32], images[32:]):
        seen.clear()
        with torch.no_grad():
            model(pixel_values=model_pixels(batch, model.config))
        first, x = seen[0]
        x = x.transpose(0, 1).reshape(first.num_features, -1)
        means.append(x.mean(1))
        variances.append(x.var(1, unbiased=True))
    for h in hooks:
        h.remove()
    change = refresh(model, images)
    assert not model.training and change > 0
    torch.testing.assert_close(first.running_mean.double(), torch.stack(means).mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(first.running_var.double(), torch.stack(variances).mean(0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("flags, expected", [(["--tiles", "8"], "--tiles must be at least 32"),
                                             (["--runs", "/nonexistent"], "--runs: /nonexistent has no config.json")])
def test_flag_errors_exit_2_with_one_line(tiny_run, flags, expected):
    argv = ["--runs", str(tiny_run), *flags] if flags[0] == "--tiles" else flags
    proc = forked.run([sys.executable, str(ROOT / "bench" / "bn_refresh.py"), *argv], capture_output=True,
                      text=True, timeout=120)
    assert proc.returncode == 2 and expected in proc.stderr and proc.stderr.strip().count("\n") <= 1, proc.stderr

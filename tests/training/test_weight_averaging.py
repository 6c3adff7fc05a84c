"""EMA / SWA of the weights: the averages against hand-computed ones, and what a run evaluates,
selects, saves and resumes with averaging on."""

import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mars_segformer.training.averaging import AveragingSpec, WeightAverager
from tests.training.test_train import launch


def _sequence(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(3, 2, generator=g) for _ in range(n)]


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, 3, bias=False), torch.nn.BatchNorm1d(3))


def test_ema_matches_the_warmed_up_recursion():
    model, weights = _model(), _sequence()
    avg = WeightAverager(model, AveragingSpec.parse("ema:0.8"))
    expected = None
    for n, w in enumerate(weights):
        with torch.no_grad():
            model[0].weight.copy_(w)
        avg.update(model, step=n + 1, max_steps=len(weights))
        d = min(0.8, (1 + n) / (10 + n))  # n = updates averaged before this one
        expected = w.clone() if expected is None else d * expected + (1 - d) * w
    torch.testing.assert_close(avg.averaged.module[0].weight, expected)
    assert avg.count == len(weights)


def test_ema_from_start_begins_at_the_starting_weights_with_the_full_decay():
    model, weights = _model(), _sequence()
    start = model[0].weight.detach().clone()
    avg = WeightAverager(model, AveragingSpec.parse("ema:0.8"), from_start=True)
    expected = start
    for n, w in enumerate(weights):
        with torch.no_grad():
            model[0].weight.copy_(w)
        avg.update(model, step=n + 1, max_steps=len(weights))
        expected = 0.8 * expected + 0.2 * w  # no ramp: the start is the average's first term
    torch.testing.assert_close(avg.averaged.module[0].weight, expected)
    assert avg.count == len(weights) + 1
    swa = WeightAverager(model, AveragingSpec.parse("swa:0.5"), from_start=True)  # SWA ignores it
    assert swa.count == 0 and swa.warmup


def test_swa_averages_uniformly_from_its_start_and_swaps_back():
    model, weights = _model(), _sequence(8)
    avg = WeightAverager(model, AveragingSpec.parse("swa:0.5"))
    for step, w in enumerate(weights, start=1):
        with torch.no_grad():
            model[0].weight.copy_(w)
        avg.update(model, step=step, max_steps=8)
    torch.testing.assert_close(avg.averaged.module[0].weight, torch.stack(weights[3:]).mean(0))  # steps 4..8
    raw = model[0].weight.detach().clone()
    with avg.swapped_in(model):
        torch.testing.assert_close(model[0].weight, torch.stack(weights[3:]).mean(0))
    torch.testing.assert_close(model[0].weight, raw)


@pytest.mark.parametrize("text", ["ema:1", "ema:0", "swa:1.5", "ema:x", "sma", "none:3", "swa:0.5:0", "swa:0.5:1",
                                  "swa:0.5:x", "ema:0.9:0.5", "none::0.5"])
def test_bad_specs(text):
    with pytest.raises(ValueError):
        AveragingSpec.parse(text)


def test_spec_text_round_trips():
    for text, held in (("swa", 0.0), ("swa:0.6", 0.0), ("swa:0.6:0.25", 0.25), ("ema:0.99", 0.0)):
        spec = AveragingSpec.parse(text)
        assert spec.lr == held and AveragingSpec.parse(str(spec)) == spec


STEPS = ["--max_steps", "6", "--eval_strategy", "steps", "--eval_steps", "3", "--save_strategy", "steps",
         "--save_steps", "3", "--save_total_limit", "3", "--report_to", "none"]


def test_a_run_with_ema_trains_as_without_and_saves_the_average(tmp_path):
    plain, ema = tmp_path / "plain", tmp_path / "ema"
    for out, extra in ((plain, ["--weight_averaging", "none"]),
                       (ema, ["--weight_averaging", "ema:0.5", "--logit_adjustment", "1"])):
        proc = launch([*STEPS, "--load_best_model_at_end", "false", *extra], out)
        assert proc.returncode == 0, proc.stderr[-3000:]
    for step in (3, 6):
        # averaging never changes training: the raw weights equal the plain run's, step for step
        raw = load_file(str(ema / f"checkpoint-{step}" / "raw_weights.safetensors"))
        ref = load_file(str(plain / f"checkpoint-{step}" / "model.safetensors"))
        assert raw.keys() == ref.keys()
        for k in ref:
            torch.testing.assert_close(raw[k], ref[k], msg=k)
        saved = load_file(str(ema / f"checkpoint-{step}" / "model.safetensors"))
        assert any(not torch.equal(saved[k], raw[k]) for k in raw if raw[k].is_floating_point())
    # without best-model loading the run's model is the final average, which is checkpoint-6's model, with the
    # logit adjustment (tau 1: applied after training, so the raw weights above still match) added to the
    # classifier's bias and nothing else
    m = json.loads((ema / "metrics.json").read_text())
    final, ck6 = load_file(str(ema / "model.safetensors")), load_file(str(ema / "checkpoint-6" / "model.safetensors"))
    w = np.array(m["class_weights"])
    shift = np.where(w > 0, -m["logit_adjustment_tau"] * np.log(np.where(w > 0, w, 1)), 0.0)
    for k in ck6:
        expected = ck6[k] + torch.tensor(shift, dtype=ck6[k].dtype) if k == "classifier.bias" else ck6[k]
        torch.testing.assert_close(final[k], expected, msg=k)
    assert m["weight_averaging"] == "ema:0.5" and m["weight_averaging_updates"] == 6 and m["logit_adjustment_tau"] == 1


@pytest.mark.parametrize(("spec", "updates"), [("ema:0.5", 6), ("swa:0.5:0.25", 4)])
def test_resume_with_averaging_continues_the_same_run(tmp_path, spec, updates):
    """A run cut after its step-3 checkpoint and resumed ends with the uninterrupted run's weights: the EMA, and
    SWA at a held rate, whose average starts at step 3 (half of 6) and whose rate the resumed schedule must hold."""
    import shutil

    full, cut = tmp_path / "full", tmp_path / "cut"
    # no augmentation: albumentations' generator restarts from its seed on a resume, the Trainer's RNGs do not
    # the copy below resumes from the finished run's checkpoint-3, which keeps its optimizer state only if asked
    flags = [*STEPS, "--load_best_model_at_end", "false", "--weight_averaging", spec, "--augmentations", "none",
             "--keep_optimizer_state", "true"]
    assert launch(flags, full).returncode == 0
    # the same run as if killed after its step-3 checkpoint
    shutil.copytree(full, cut, ignore=shutil.ignore_patterns("checkpoint-6"))
    for f in ("model.safetensors", "metrics.json"):
        (cut / f).unlink()
    proc = launch([*flags, "--resume_from_checkpoint", "true"], cut)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = load_file(str(full / "model.safetensors")), load_file(str(cut / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)
    assert json.loads((cut / "metrics.json").read_text())["weight_averaging_updates"] == updates
    scores = [json.loads((f / "metrics.json").read_text())["validation"]["task_mean_iou"] for f in (full, cut)]
    assert np.isclose(*scores)


def test_swa_with_a_held_rate_decays_linearly_to_it_then_holds_while_averaging(tmp_path):
    """``swa:0.5:0.25`` over 8 steps: the rate falls linearly from the peak to a quarter of it by step 4 (SWA's
    start), stays there, and the average gathers steps 4-8 (step s trains at the schedule's value after s - 1
    steps, the rate its log line prints)."""
    out = tmp_path / "swa"
    proc = launch(["--max_steps", "8", "--logging_steps", "1", "--eval_strategy", "no", "--save_strategy", "no",
                   "--load_best_model_at_end", "false", "--report_to", "none", "--learning_rate", "1e-3",
                   "--weight_averaging", "swa:0.5:0.25"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rates = [float(r) for r in re.findall(r"'learning_rate': '([0-9.e+-]+)'", proc.stdout + proc.stderr)]
    expected = [1e-3 * (0.25 + 0.75 * max(0.0, 1 - (s - 1) / 4)) for s in range(1, 9)]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    m = json.loads((out / "metrics.json").read_text())
    assert m["weight_averaging"] == "swa:0.5:0.25" and m["weight_averaging_updates"] == 5

"""Fine-tuning defaults (training/finetune.py): a checkpoint --model gets warm-up and slower loaded tensors.

The oracle for the rates is Adam itself: its first step moves every element by about the learning
rate whatever the gradient's size, so a tensor's median change after one step reads off the rate it
trained at, measured against the checkpoint file.
"""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import ResNetConfig, ResNetForImageClassification

from mars_segformer.models import PRESETS
from mars_segformer.training import main as train_main
from mars_segformer.training.finetune import finetune_defaults
from mars_segformer.training.run import parse_args


def test_defaults_only_for_a_checkpoint_and_explicit_flags_win():
    assert finetune_defaults(["--model", "upernet-r18"], PRESETS) == []
    assert finetune_defaults([], PRESETS) == []
    flags = finetune_defaults(["--model", "runs/x"], PRESETS)
    assert parse_args(["--model", "runs/x", *flags])[0].loaded_lr_scale == 0.1
    assert parse_args(["--model", "runs/x", *flags])[3].warmup_steps == 0.2
    given = ["--model=runs/x", "--warmup-steps", "5", "--loaded_lr_scale", "0.5"]
    assert finetune_defaults(given, PRESETS) == []
    model_args, *_, args = parse_args([*finetune_defaults(given, PRESETS), *given])
    assert (model_args.loaded_lr_scale, args.warmup_steps) == (0.5, 5)


def _resnet(folder):
    cfg = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], layer_type="basic",
                       num_labels=10)
    torch.manual_seed(0)
    ResNetForImageClassification(cfg).save_pretrained(folder)
    return {k.removeprefix("resnet."): v for k, v in load_file(folder / "model.safetensors").items()}


def _median_step(run, names, start):
    after = load_file(run / "model.safetensors")
    return float(np.median(np.concatenate([(after[n] - start[n]).abs().flatten().numpy() for n in names])))


ONE_STEP = ["--max_steps", "1", "--learning_rate", "0.01", "--warmup_steps", "0", "--weight_decay", "0",
            "--per_device_train_batch_size", "8", "--eval_strategy", "no", "--save_strategy", "no",
            "--load_best_model_at_end", "false", "--report_to", "none", "--disable_tqdm", "true",
            "--logit_adjustment", "0"]


def test_loaded_tensors_train_at_a_tenth_of_the_rate_unless_told(tmp_path, capsys):
    start = _resnet(tmp_path / "resnet")
    steps = {}
    for scale in (None, "1"):
        run = tmp_path / f"run_{scale}"
        extra = [] if scale is None else ["--loaded_lr_scale", scale]
        assert train_main(["--model", str(tmp_path / "resnet"), "--output_dir", str(run), *ONE_STEP, *extra]) == 0
        after = load_file(run / "model.safetensors")
        # the backbone's conv weights, against the checkpoint's own (batch-norm statistics are buffers)
        names = [k for k in after if k.startswith("backbone.") and k.endswith("convolution.weight")]
        assert names and all(k.removeprefix("backbone.") in start for k in names)
        steps[scale] = _median_step(run, names, {k: start[k.removeprefix("backbone.")] for k in names})
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["loaded_lr_scale"] == (0.1 if scale is None else 1.0) and metrics["warmup_steps"] == 0
    assert "fine-tuning: the loaded tensors at 0.1x the learning rate of the new ones" in capsys.readouterr().out
    assert 0.5e-3 < steps[None] < 2e-3, steps  # Adam's first step ~ lr x 0.1
    assert 5e-3 < steps["1"] < 2e-2, steps  # ~ lr
    assert 5 < steps["1"] / steps[None] < 20


def test_a_warm_start_without_warmup_flag_gets_the_default_warmup(tmp_path):
    _resnet(tmp_path / "resnet")
    run = tmp_path / "run"
    assert train_main(["--model", str(tmp_path / "resnet"), "--output_dir", str(run), "--max_steps", "1",
                       "--per_device_train_batch_size", "8", "--eval_strategy", "no", "--save_strategy", "no",
                       "--load_best_model_at_end", "false", "--report_to", "none", "--disable_tqdm", "true",
                       "--logit_adjustment", "0"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["loaded_lr_scale"] == 0.1 and metrics["warmup_steps"] == 0.2


def test_ema_warmup_false_starts_the_weight_average_at_the_checkpoint(tmp_path, capsys):
    """``--ema_warmup false`` on a warm start: after one step at decay 0.999 the saved average is 0.999 checkpoint
    + 0.001 the step's weights; by default the EMA warms up (after one step the average is that step's weights)."""
    common = ["--per_device_train_batch_size", "8", "--eval_strategy", "no", "--load_best_model_at_end", "false",
              "--report_to", "none", "--disable_tqdm", "true", "--logit_adjustment", "0", "--max_steps", "1",
              "--weight_averaging", "ema:0.999", "--save_strategy", "steps", "--save_steps", "1"]
    ckpt = tmp_path / "ckpt"
    assert train_main(["--model", "unet", "--tiny", "--output_dir", str(ckpt), *common]) == 0
    start = load_file(ckpt / "model.safetensors")
    runs = {}
    for name, extra in (("default", []), ("false", ["--ema_warmup", "false"])):
        runs[name] = tmp_path / f"run_{name}"
        capsys.readouterr()
        assert train_main(["--model", str(ckpt), "--output_dir", str(runs[name]), *extra, *common]) == 0
        said = "the weight average starting at the checkpoint (--ema_warmup false)" in capsys.readouterr().out
        assert said == (name == "false")
        assert json.loads((runs[name] / "metrics.json").read_text())["ema_warmup"] is (name == "default")
    # the raw weights after the step (kept in the checkpoint for a resume) against the saved averages
    conv = [k for k in start if k.endswith("weight") and start[k].ndim == 4]
    for name, run in runs.items():
        for k in conv:
            raw = load_file(run / "checkpoint-1" / "raw_weights.safetensors")[k]
            want = 0.999 * start[k] + 0.001 * raw if name == "false" else raw
            torch.testing.assert_close(load_file(run / "model.safetensors")[k], want)
    assert any(not torch.equal(load_file(runs["false"] / "checkpoint-1" / "raw_weights.safetensors")[k], start[k])
               for k in conv)  # the step moved the weights, so the two rules differ


def _eval_scores(stdout: str) -> list[float]:
    import ast

    return [float(ast.literal_eval(line)["eval_task_mean_iou"]) for line in stdout.splitlines()
            if line.startswith("{") and "'eval_task_mean_iou'" in line]


def test_a_warm_start_takes_the_checkpoints_logit_shift_off_for_training_and_folds_its_own_once(tmp_path, capsys):
    # a checkpoint with tau 1 folded in; fine-tuning it at a rate that cannot move a weight, tau 1 again
    quiet = ["--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16", "--save_strategy", "no",
             "--load_best_model_at_end", "false", "--report_to", "none", "--disable_tqdm", "true", "--seed", "3",
             "--weight_averaging", "none", "--logit_adjustment", "1"]
    ckpt, run = tmp_path / "ckpt", tmp_path / "run"
    assert train_main(["--model", "unet", "--tiny", "--output_dir", str(ckpt), "--max_steps", "2",
                       "--eval_strategy", "no", *quiet]) == 0
    capsys.readouterr()
    assert train_main(["--model", str(ckpt), "--output_dir", str(run), "--max_steps", "1", "--learning_rate", "1e-10",
                       "--lr_scheduler_type", "constant", "--eval_strategy", "steps", "--eval_steps", "1", *quiet]) == 0
    out = capsys.readouterr().out
    assert "the checkpoint's folded shift" in out
    m_ckpt, m_run = (json.loads((f / "metrics.json").read_text()) for f in (ckpt, run))
    # tau 1: -log(w) per class of each run's class weights (0 for an untrained class), worked out here
    shift_ckpt, shift_run = (np.array([-np.log(w) if w > 0 else 0.0 for w in m["class_weights"]])
                             for m in (m_ckpt, m_run))
    assert np.abs(shift_ckpt).max() > 0.1
    np.testing.assert_allclose(m_ckpt["logit_shift"], shift_ckpt, rtol=1e-6)
    np.testing.assert_allclose(m_run["logit_shift"], shift_run, rtol=1e-6)
    # each config records the shift folded into its own classifier, the run's once (not on top of the checkpoint's)
    for folder, shift in ((ckpt, shift_ckpt), (run, shift_run)):
        np.testing.assert_allclose(json.loads((folder / "config.json").read_text())["logit_shift"], shift, rtol=1e-6)
    # the saved bias: the checkpoint's, less its shift, plus the run's (the same data, so the same class weights)
    before, after = load_file(ckpt / "model.safetensors"), load_file(run / "model.safetensors")
    from transformers import AutoModelForSemanticSegmentation

    from mars_segformer.models.logit_adjustment import classifier_layer

    model = AutoModelForSemanticSegmentation.from_pretrained(run)
    layer = classifier_layer(model)
    bias = next(f"{n}.bias" for n, mod in model.named_modules() if mod is layer)
    np.testing.assert_allclose(after[bias].numpy(), before[bias].numpy() - shift_ckpt + shift_run, atol=1e-5)
    # the evaluation during training (the shift added to the logits) scores what the saved model scores
    # (the saved model's own predictions, counted directly: tests/training/test_train.py)
    from tests.training.test_train import independent_task_iou

    counted, during = independent_task_iou(run, seed=3), _eval_scores(out)
    assert during and during[0] == pytest.approx(counted, abs=1e-3)
    assert m_run["validation"]["task_mean_iou"] == pytest.approx(counted, abs=1e-6)

"""Defaults that follow other flags (sampling) and a resume that keeps the recipe its run started with."""

from __future__ import annotations

import json

import pytest

from mars_segformer.training.run import parse_args, parse_command_line, recipe_flags, save_run_args
from mars_segformer.training.sampling import sampling_defaults


def _recipe(argv):
    _, data_args, loss_args, args = parse_args([*argv, "--output_dir", "unused"])
    return loss_args.loss, data_args.repeat_factor_threshold, data_args.oversample_big_rock, args.weight_averaging


def test_fixed_oversampling_given_alone_turns_the_default_repeat_factor_sampling_off():
    assert _recipe([])[1:3] == (0.3, 1)
    assert _recipe(["--oversample_big_rock", "15"])[1:3] == (0.0, 15)
    assert _recipe(["--oversample_big_rock=4"])[1:3] == (0.0, 4)
    # an explicit threshold is the user's: kept as given (both together are refused by the range checks)
    assert _recipe(["--oversample_big_rock", "4", "--repeat_factor_threshold", "0.5"])[1:3] == (0.5, 4)
    assert sampling_defaults(["--oversample_big_rock", "1"]) == []


def test_a_run_folder_of_an_earlier_release_resumes_with_the_recipe_it_started_with(tmp_path):
    # a run_args.json written before issue 19 holds only the user's flags; that release's defaults were
    # focal loss, no repeat-factor sampling and no weight averaging, which the run trained with
    out = tmp_path / "old"
    out.mkdir()
    (out / "run_args.json").write_text(json.dumps({"argv": ["--output_dir", str(out), "--max_steps", "30"]}))
    _, (_, data_args, loss_args, args) = parse_command_line(["--output_dir", str(out), "--resume_from_checkpoint", "true"])
    assert (loss_args.loss, data_args.repeat_factor_threshold, args.weight_averaging) == ("focal", 0.0, "none")
    assert args.max_steps == 30
    # what it gave itself still wins over the old defaults
    (out / "run_args.json").write_text(json.dumps({"argv": ["--output_dir", str(out), "--weight_averaging", "swa"]}))
    _, (_, data_args, loss_args, args) = parse_command_line(["--output_dir", str(out), "--resume_from_checkpoint", "true"])
    assert (loss_args.loss, args.weight_averaging) == ("focal", "swa")


def test_a_run_folder_saved_before_frame_read_p_resumes_moving_half_the_reads(tmp_path):
    # a folder of the release before --frame_read_p saved the five recipe flags of its time, frame_shift
    # among them, and moved half of the reads; a new run moves every one of them
    assert parse_args(["--output_dir", "unused"])[1].frame_read_p == 1.0
    out = tmp_path / "shifted"
    out.mkdir()
    argv = ["--loss", "focal:1,lovasz:1", "--repeat_factor_threshold", "0.3", "--weight_averaging", "ema:0.999",
            "--logit_adjustment", "auto", "--augmentations", "hflip,frame_shift", "--output_dir", str(out)]
    (out / "run_args.json").write_text(json.dumps({"argv": argv}))
    _, (_, data_args, *_) = parse_command_line(["--output_dir", str(out), "--resume_from_checkpoint", "true"])
    assert (data_args.augmentations, data_args.frame_read_p) == ("hflip,frame_shift", 0.5)


@pytest.mark.parametrize("argv", [[], ["--loss", "ce", "--oversample_big_rock", "15", "--weight_averaging", "swa:0.5"]])
def test_a_new_run_folder_records_its_recipe_and_resumes_with_it(tmp_path, argv):
    out = tmp_path / "new"
    user = ["--output_dir", str(out), *argv]
    _, (_, data_args, loss_args, args) = parse_command_line(user)
    save_run_args(out, user, recipe_flags(data_args, loss_args, args))
    saved = json.loads((out / "run_args.json").read_text())["argv"]
    assert saved[-len(user):] == user  # the user's flags, last, so they win
    _, (_, d2, l2, a2) = parse_command_line(["--output_dir", str(out), "--resume_from_checkpoint", "true"])
    assert (l2.loss, d2.repeat_factor_threshold, d2.oversample_big_rock, a2.weight_averaging) == \
        (loss_args.loss, data_args.repeat_factor_threshold, data_args.oversample_big_rock, args.weight_averaging)
    # the saved recipe is what the run used, whatever the defaults of the release that reads it
    for name, value in (("loss", loss_args.loss), ("weight_averaging", args.weight_averaging)):
        assert saved[saved.index(f"--{name}") + 1] == value

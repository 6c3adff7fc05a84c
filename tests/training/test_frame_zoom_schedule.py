"""--frame_zoom_until: frame_zoom's reads zoomed for the first share of the steps, then only shifted."""

import json

import pytest
from transformers import TrainerState

from mars_segformer.data.frame_shift import FrameShift
from mars_segformer.training.callbacks import ProgressCallback
from mars_segformer.training.run import main

TINY = ["--model", "unet", "--tiny", "--per_device_train_batch_size", "8", "--disable_tqdm", "true", "--seed", "3",
        "--logit_adjustment", "0", "--drop_outliers", "false", "--eval_strategy", "no", "--save_strategy", "no",
        "--load_best_model_at_end", "false"]


def test_the_callback_reports_the_share_of_steps_taken_including_on_a_resume():
    told = []
    cb = ProgressCallback(told.append)
    state = TrainerState(max_steps=10, global_step=7)  # a resume from step 7 of 10
    cb.on_train_begin(None, state, None)
    for step in (7, 8, 9):
        state.global_step = step
        cb.on_step_begin(None, state, None)
    assert told == [0.7, 0.7, 0.8, 0.9]


def test_a_run_zooms_its_reads_until_the_share_of_steps_then_shifts_them(tmp_path, monkeypatch, capsys):
    """train_hf.py with --frame_zoom_until 0.5 over 4 steps: the reads of steps 0 and 1 are zoomed, those of steps
    2 and 3 are not (what the training process's FrameShift is told, step by step), and the run says so."""
    seen = []
    real = FrameShift.set_progress

    def spy(self, done):
        real(self, done)
        seen.append((done, self.zooming))

    monkeypatch.setattr(FrameShift, "set_progress", spy)
    out = tmp_path / "zoom"
    assert main(["--output_dir", str(out), *TINY, "--max_steps", "4", "--augmentations", "hflip,frame_zoom",
                 "--frame_zoom_until", "0.5"]) == 0
    assert seen[0] == (0.0, True)  # the start of training
    assert seen[1:] == [(0.0, True), (0.25, True), (0.5, False), (0.75, False)]
    assert json.loads((out / "metrics.json").read_text())["frame_shift"]["zoom_until"] == 0.5
    assert "(frame_zoom), zoomed for the first 50% of the steps, then shifted only" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--augmentations", "hflip,frame_zoom"], ["--augmentations", "hflip,frame_shift"]])
def test_without_an_end_the_frame_reads_are_never_told_the_progress(tmp_path, monkeypatch, argv):
    seen = []
    monkeypatch.setattr(FrameShift, "set_progress", lambda self, done: seen.append(done))
    assert main(["--output_dir", str(tmp_path / "run"), *TINY, "--max_steps", "2", *argv]) == 0
    assert seen == []

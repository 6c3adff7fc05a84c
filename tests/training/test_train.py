"""The training job end to end: script, outputs, errors, multi-process metric, resume after a kill."""

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSemanticSegmentation, pipeline

from mars_segformer.data import DataConfig, build_dataset_dict, load_arrays
from mars_segformer.training import main
from tests import forked
from tests.models.test_models import predict

ROOT = Path(__file__).resolve().parents[2]
#: the default's tau search (a pass over up to 1,024 training tiles) runs in the tests that name it: the complete
#: run, data parallel and the logit-adjustment tests below; the others test other things and skip it
TINY = ["--model", "unet", "--tiny", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16",
        "--disable_tqdm", "true", "--logging_steps", "2", "--seed", "3", "--logit_adjustment", "0"]


def launch(args, out, *, launcher=(sys.executable,), timeout=300, env=None):
    cmd = [*launcher, str(ROOT / "train_hf.py"), "--output_dir", str(out), *TINY, *args]
    return forked.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                      env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def independent_task_iou(folder, seed=3):
    """Predict the validation split with the saved model and count IoU per class directly."""
    arrays = load_arrays()
    data = build_dataset_dict(arrays, DataConfig(seed=seed))
    model = AutoModelForSemanticSegmentation.from_pretrained(folder).eval()
    imgs = data.arrays.train_images[data.val_indices]
    refs = data.arrays.train_masks[data.val_indices]
    preds = np.concatenate([predict(model, imgs[i:i + 32]) for i in range(0, len(imgs), 32)])
    return counted_task_iou(preds, refs)


def counted_task_iou(preds, refs):
    """Task mean IoU counted directly: classes 1-4 present in either, background pixels left out."""
    keep = refs != 0
    ious = []
    for c in range(1, 5):
        union = np.sum(((preds == c) | (refs == c)) & keep)
        if union:
            ious.append(np.sum((preds == c) & (refs == c) & keep) / union)
    return float(np.mean(ious))


def test_train_script_produces_a_complete_run(tmp_path):
    out = tmp_path / "run"
    proc = launch(["--max_steps", "6", "--eval_strategy", "steps", "--eval_steps", "3", "--save_strategy", "steps",
                   "--save_steps", "3", "--logit_adjustment", "auto"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "validation task mean IoU" in proc.stdout
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", "metrics.json",
                 "training_curves.png", "confusion_matrix.png", "predictions.png",
                 "plots/predictions_step000003.png", "plots/confusion_matrix_step000006.png"):
        assert (out / name).exists(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m["global_step"] == 6 and m["loss"] == "focal:1,lovasz:1" and m["class_weights"][0] == 0.0
    assert m["logit_adjustment"] == "auto" and m["logit_adjustment_search"]["tiles"] > 0
    assert np.array(m["confusion_matrix"]).shape == (5, 5)
    # the reported score is the saved (best) model's score on the validation split
    assert m["validation"]["task_mean_iou"] == pytest.approx(independent_task_iou(out), abs=1e-6)
    seg = pipeline("image-segmentation", model=str(out))(
        __import__("PIL.Image", fromlist=["Image"]).fromarray(load_arrays().test_images[0]))
    assert seg and all(s["mask"].size == (128, 64) for s in seg)


def snapshot(folder):
    return {p.relative_to(folder): p.stat().st_mtime_ns for p in Path(folder).rglob("*")}


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--model", "unet-xl"], "unknown --model 'unet-xl'"),
        (["--data", "/nonexistent/mars.npz"], "/nonexistent/mars.npz: no such file"),
        (["--class_weights", "1,2"], "needs 5 numbers"),
        (["--class_weights", "auto:strong"], "needs a number P"),
        (["--class_weights", "auto:5"], "power must be in (0, 2]"),
    ],
)
def test_bad_arguments_fail_before_writing(tmp_path, capsys, argv, needle):
    out = tmp_path / "run"
    assert main(["--output_dir", str(out), "--max_steps", "1", *argv]) == 2
    assert needle in capsys.readouterr().err
    assert not out.exists()


def test_existing_run_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    (out / "checkpoint-5").mkdir()
    before = snapshot(out)
    assert main(["--output_dir", str(out), "--max_steps", "1", *TINY]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert snapshot(out) == before and (out / "metrics.json").read_text() == "{}"


def test_two_process_data_parallel_metric_is_global(tmp_path):
    out = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29561"]
    proc = launch(["--max_steps", "4", "--eval_strategy", "steps", "--eval_steps", "4", "--save_strategy", "steps",
                   "--save_steps", "4", "--per_device_eval_batch_size", "7", "--logit_adjustment", "auto"], out,
                  launcher=torchrun, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Aborted" not in proc.stderr and "core dumped" not in proc.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["batch_size"] == 16  # 8 per process x 2 processes
    # gathered over both processes: equal to the whole validation set's score, not one half's
    assert m["validation"]["task_mean_iou"] == pytest.approx(independent_task_iou(out), abs=1e-6)


def _complete_steps(out: Path) -> list[int]:
    """Steps of the checkpoints in ``out`` whose trainer_state.json (the Trainer writes it last) reads as JSON."""
    steps = []
    for p in out.glob("checkpoint-*"):
        try:
            json.loads((p / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        steps.append(int(p.name.split("-")[1]))
    return sorted(steps)


def _kill_mid_run(cmd, out: Path, *, after_step: int, tries: int = 3) -> None:
    """Start ``cmd`` and SIGKILL it once it has a complete checkpoint at ``after_step`` or later.

    A tiny step takes ~0.1 s (2 steps in 0.23 s beside a 2-thread training), so on a loaded machine the poll can wake only after the run has finished;
    such a try shows no kill at all and is repeated in a fresh folder.
    """
    for _ in range(tries):
        shutil.rmtree(out, ignore_errors=True)
        proc = forked.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and not any(
                s >= after_step for s in _complete_steps(out)):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not (out / "metrics.json").exists() and any(s >= after_step for s in _complete_steps(out)):
            return
    pytest.fail(f"in {tries} tries the run was never killed between step {after_step} and its end")


def test_resume_after_kill(tmp_path):
    out = tmp_path / "resume"
    common = ["--max_steps", "30", "--eval_strategy", "no", "--save_strategy", "steps", "--save_steps", "4",
              "--load_best_model_at_end", "false", "--save_total_limit", "3"]
    cmd = [sys.executable, str(ROOT / "train_hf.py"), "--output_dir", str(out), *TINY, *common,
           "--hub_token", "hf_do_not_store_me"]
    _kill_mid_run(cmd, out, after_step=8)
    last = _complete_steps(out)[-1]
    assert 8 <= last < 30
    # a kill while saving leaves a newer checkpoint folder with no trainer_state.json (the Trainer writes it
    # last), or with one cut short (written with a plain open("w")); make sure there is one of each, so the
    # resume below must pass over both
    cut, partial = out / f"checkpoint-{last + 4}", out / f"checkpoint-{last + 8}"  # newer than every complete one
    for half in (cut, partial):
        half.mkdir(exist_ok=True)
        (half / "model.safetensors").write_bytes(b"half-written")
    (cut / "trainer_state.json").write_text('{"best_metric": null, "global_st')
    (partial / "trainer_state.json").unlink(missing_ok=True)
    # a flag that would change the run is refused, and leaves the folder as it was
    before = snapshot(out)
    assert main(["--output_dir", str(out), "--resume_from_checkpoint", "true", "--model", "deeplabv3plus"]) == 2
    assert snapshot(out) == before
    # the run folder alone says how to continue: no other flag is repeated
    proc2 = forked.run([sys.executable, str(ROOT / "train_hf.py"), "--output_dir", str(out),
                        "--resume_from_checkpoint", "true"], capture_output=True, text=True, timeout=300, cwd=ROOT,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    assert "model: unet (MarsUNetForSemanticSegmentation" in proc2.stdout  # the run's own tiny UNet, not the default
    assert f"{cut.name}, {partial.name} skipped" in proc2.stdout and f"resuming from checkpoint-{last}" in proc2.stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["global_step"] == 30
    state = json.loads((out / "checkpoint-30" / "trainer_state.json").read_text())
    steps = [h["step"] for h in state["log_history"] if "loss" in h]
    # the log history of the killed run was restored, and steps were not run twice
    assert steps == list(range(2, 31, 2))
    # the Hub token given to the first run is in no file of the run folder (training_args.bin included)
    leaked = [p for p in out.rglob("*") if p.is_file() and b"hf_do_not_store_me" in p.read_bytes()]
    assert not leaked and any(out.rglob("training_args.bin"))


def test_auto_class_weights_power_follows_pixel_frequency():
    from mars_segformer.training.run import _class_weights

    # soil 60 %, bedrock 30 %, sand 9 %, big rock 1 % of the counted pixels; background ignored
    masks = np.repeat(np.array([0] * 50 + [1] * 60 + [2] * 30 + [3] * 9 + [4] * 1), 4).reshape(5, -1)
    freq = np.array([60, 30, 9, 1]) / 100
    for spec, power in (("auto", 0.5), ("auto:1", 1.0), ("auto:0.75", 0.75)):
        w = np.array(_class_weights(spec, masks, ignore_index=0))
        expected = freq ** -power / (freq ** -power).mean()
        np.testing.assert_allclose(w, [0.0, *np.minimum(expected, 20.0)], rtol=1e-9)
    # a stronger power raises the rare class relative to the common one
    assert _class_weights("auto:1", masks, 0)[4] / _class_weights("auto:1", masks, 0)[1] == pytest.approx(60.0)


def test_default_model_run_folder_runs_in_plain_transformers(tmp_path):
    """The default architecture's run folder loads in ``pipeline`` in a process where this package cannot
    be imported, with no trust_remote_code, and gives the training path's masks to the pixel."""
    from mars_segformer.training import parse_args

    default_model = parse_args(["--output_dir", "unused"])[0].model
    out = tmp_path / "run"
    proc = launch(["--model", default_model, "--tiny", "--max_steps", "2", "--eval_strategy", "no",
                   "--save_strategy", "no", "--load_best_model_at_end", "false"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "auto_map" not in (out / "config.json").read_text()
    images = load_arrays().test_images[:3]
    np.save(tmp_path / "images.npy", images)
    fresh = subprocess.run([sys.executable, str(ROOT / "tests" / "fresh_pipeline.py"), str(tmp_path / "images.npy"),
                            str(out)], capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    got = np.array(json.loads(fresh.stdout.split("RESULT", 1)[1])[str(out)])
    expected = predict(AutoModelForSemanticSegmentation.from_pretrained(out).eval(), images)
    np.testing.assert_array_equal(got, expected)


def test_plot_every_draws_every_nth_evaluation_and_each_new_best_and_the_last(tmp_path):
    out = tmp_path / "run"
    proc = launch(["--max_steps", "7", "--eval_strategy", "steps", "--eval_steps", "1", "--save_strategy", "no",
                   "--load_best_model_at_end", "false", "--plot_every", "3", "--keep_plots", "-1", "--report_to",
                   "none"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    history = [ast.literal_eval(line) for line in proc.stdout.splitlines() if line.startswith("{'eval_loss'")]
    scores = [float(h["eval_task_mean_iou"]) for h in history][:7]  # the Trainer's own log, one per step
    assert len(scores) == 7
    expected = {3, 6, 7} | {i + 1 for i, s in enumerate(scores) if s > max(scores[:i], default=float("-inf"))}
    drawn = {int(p.stem.split("step")[1]) for p in (out / "plots").glob("predictions_step*.png")}
    assert drawn == expected


def test_run_folder_keeps_the_last_and_best_plots_and_drops_optimizer_state(tmp_path):
    out = tmp_path / "run"
    proc = launch(["--max_steps", "5", "--eval_strategy", "steps", "--eval_steps", "1", "--save_strategy", "steps",
                   "--save_steps", "1", "--save_total_limit", "2", "--keep_plots", "1", "--report_to", "none"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads(next(out.glob("checkpoint-5")).joinpath("trainer_state.json").read_text())
    evals = {e["step"]: e["eval_task_mean_iou"] for e in state["log_history"] if "eval_task_mean_iou" in e}
    assert sorted(evals) == [1, 2, 3, 4, 5]
    best = max(evals, key=evals.get)  # the Trainer's own record, not the callback's
    kept = {int(p.stem.split("step")[1]) for p in (out / "plots").glob("predictions_step*.png")}
    assert kept == {5, best}
    assert {int(p.stem.split("step")[1]) for p in (out / "plots").glob("confusion_matrix_step*.png")} == kept
    checkpoints = list(out.glob("checkpoint-*"))
    assert checkpoints and not any((c / "optimizer.pt").exists() for c in checkpoints)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert f"run folder: {out} ({size / 1e6:.1f} MB)" in proc.stdout
    kept_state = tmp_path / "kept"
    proc = launch(["--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "steps", "--save_steps", "2",
                   "--load_best_model_at_end", "false", "--keep_optimizer_state", "true", "--report_to", "none"], kept_state)
    assert proc.returncode == 0 and (kept_state / "checkpoint-2" / "optimizer.pt").is_file()


@pytest.mark.parametrize("keep_state", [False, True])
def test_extending_a_finished_run_continues_its_learning_rate_schedule(tmp_path, keep_state):
    # a finished run's checkpoints lose optimizer.pt / scheduler.pt (unless --keep_optimizer_state); extending
    # one with more steps restarted the schedule at its peak (found on a 60-epoch run ended early at epoch 50),
    # and a restored scheduler gave the first new step the old length's last rate (0)
    lr0, first, total = 1e-3, 4, 8
    out = tmp_path / "run"
    proc = launch(["--max_steps", str(first), "--learning_rate", str(lr0), "--lr_scheduler_type", "linear",
                   "--warmup_steps", "0", "--eval_strategy", "no", "--save_strategy", "steps", "--save_steps",
                   str(first), "--load_best_model_at_end", "false", "--logging_steps", "1", "--report_to", "none",
                   "--keep_optimizer_state", str(keep_state).lower()], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / f"checkpoint-{first}" / "scheduler.pt").is_file() == keep_state
    proc = launch(["--resume_from_checkpoint", "true", "--max_steps", str(total), "--logging_steps", "1"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = [ast.literal_eval(line) for line in proc.stdout.splitlines() if line.startswith("{'loss'")]
    assert len(logs) == total - first
    # linear decay to 0 over the new length: step k trains at lr0 * (1 - (k - 1) / total) (the rate its log line
    # shows), whether the scheduler was restored from its file or moved on to the checkpoint's step
    for k, e in zip(range(first + 1, total + 1), logs, strict=True):
        assert float(e["learning_rate"]) == pytest.approx(lr0 * (1 - (k - 1) / total), rel=2e-3, abs=1e-9), k
    assert ("holds no optimizer state" in proc.stdout) != keep_state
    assert json.loads((out / "metrics.json").read_text())["global_step"] == total


def test_a_resumed_run_keeps_early_stoppings_count_of_evaluations_without_gain(tmp_path):
    # the Trainer starts the count at 0 on a resume, so a run resumed N evaluations after its best could train up
    # to N evaluations longer than an uninterrupted one
    out = tmp_path / "run"
    flags = ["--eval_strategy", "steps", "--eval_steps", "1", "--save_strategy", "steps", "--save_steps", "1",
             "--save_total_limit", "10", "--early_stopping_patience", "100", "--learning_rate", "3e-2",
             "--report_to", "none"]
    proc = launch(["--max_steps", "5", *flags], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = launch(["--resume_from_checkpoint", "true", "--max_steps", "7"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((out / "checkpoint-7" / "trainer_state.json").read_text())
    scores = [e["eval_task_mean_iou"] for e in state["log_history"] if "eval_task_mean_iou" in e][:7]
    assert len(scores) == 7
    # the count an uninterrupted run holds after its 7th evaluation: evaluations since the last one that beat
    # every earlier score
    last_gain = max(i for i, v in enumerate(scores) if all(v > w for w in scores[:i]))
    stored = state["stateful_callbacks"]["EarlyStoppingCallback"]["attributes"]["early_stopping_patience_counter"]
    assert stored == len(scores) - 1 - last_gain, scores


def test_an_epoch_ending_in_one_tile_trains_without_a_batch_of_one(tmp_path):
    # BatchNorm cannot train on a batch of one (UperNet's pooled 1x1 maps raise); a split of k * batch + 1
    # training rows used to end every epoch in one, found when seed 5's frame-grouped split of the shared
    # file crashed the old default recipe at 200 steps
    arrays = load_arrays()
    sizes = ((seed, len(build_dataset_dict(arrays, DataConfig(seed=seed)).datasets["train"])) for seed in range(3, 40))
    seed, n, batch = next((seed, n, b) for seed, n in sizes for b in range(4, 33) if n % b == 1)
    out = tmp_path / "one"
    proc = launch(["--model", "upernet-r18", "--seed", str(seed), "--repeat_factor_threshold", "0",
                   "--per_device_train_batch_size", str(batch), "--num_train_epochs", "1", "--eval_strategy", "no",
                   "--save_strategy", "no", "--load_best_model_at_end", "false"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "metrics.json").read_text())["global_step"] == n // batch  # the lone tile's batch dropped


def test_a_run_without_evaluations_trains_with_the_default_early_stopping_and_best_model_flags(tmp_path):
    # --eval_strategy no alone used to end in EarlyStoppingCallback's AssertionError traceback (patience 10 and
    # load_best_model_at_end are the defaults): with no evaluations there is nothing to stop on or pick
    out = tmp_path / "noeval"
    proc = launch(["--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["global_step"] == 2
    assert m["validation"]["task_mean_iou"] == pytest.approx(independent_task_iou(out), abs=1e-6)


@pytest.mark.parametrize("spec", ["1", "auto"])
def test_logit_adjustment_is_folded_into_the_saved_model_and_both_scores_are_reported(tmp_path, spec):
    out = tmp_path / "run"
    proc = launch(["--max_steps", "3", "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end",
                   "false", "--logit_adjustment", spec], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    tau = m["logit_adjustment_tau"]
    if spec == "auto":  # the best of the grid on the training tiles, the smallest of equals, if it gains enough
        # on tiles not yet memorised
        from mars_segformer.training.adjustment import AUTO_MAX_FIT, AUTO_MIN_GAIN

        scores = m["logit_adjustment_search"]["scores"]
        assert len(scores) == 11
        if max(scores.values()) - scores["0.0"] >= AUTO_MIN_GAIN and scores["0.0"] < AUTO_MAX_FIT:
            assert scores[str(tau)] == max(scores.values())
            assert all(float(t) >= tau for t, v in scores.items() if v == scores[str(tau)])
        else:
            assert tau == 0.0
        assert f"logit adjustment: tau {tau}" in proc.stdout
    else:
        assert tau == 1.0
    w = np.array(m["class_weights"])
    shift = np.where(w > 0, -tau * np.log(np.where(w > 0, w, 1)), 0.0)
    np.testing.assert_allclose(m["logit_shift"], shift, rtol=1e-6)
    # the saved model is the adjusted one: its own predictions give the reported score
    assert m["validation"]["task_mean_iou"] == pytest.approx(independent_task_iou(out), abs=1e-6)
    # taking the shift back off the saved classifier's bias gives the score reported before the adjustment
    from mars_segformer.models.logit_adjustment import classifier_layer

    model = AutoModelForSemanticSegmentation.from_pretrained(out)
    if tau:  # the saved config records the folded shift (a fine-tuning run takes it back off)
        np.testing.assert_allclose(model.config.logit_shift, shift, rtol=1e-6)
    with torch.no_grad():
        classifier_layer(model).bias.sub_(torch.tensor(shift, dtype=torch.float32))
    model.save_pretrained(tmp_path / "unadjusted")
    before = (m["validation_before_logit_adjustment"] or m["validation"])["task_mean_iou"]  # tau 0: no adjustment
    # (bias + shift) - shift is the trained bias to float32 rounding only, and this 3-step model has near-ties (on an
    # Intel Xeon with AMX: 66 validation pixels with top-two logits within 1e-6, one of them flipped, 3.9e-6 off,
    # at the commit before the default's switch as after it); one pixel moves the score by 1 / (4 x its class's
    # union): a few flips stay under 1e-4, while the adjustment itself moves the score by far more (tau 1 here)
    assert before == pytest.approx(independent_task_iou(tmp_path / "unadjusted"), abs=1e-4)
    if tau:
        assert abs(m["validation"]["task_mean_iou"] - before) > 1e-3


def test_frame_shift_run_reads_the_complete_training_frames_it_reports(tmp_path):
    out = tmp_path / "shift"
    proc = launch(["--augmentations", "hflip,frame_shift", "--frame_read_p", "0.25", "--drop_outliers", "false",
                   "--max_steps", "2",
                   "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the oracle: runs of 8 stored tiles of one frame (../shared/data/README.md's layout) among the training frames
    ids = load_arrays().train_frame_ids
    held_out = set(json.loads((out / "split.json").read_text())["validation_frame_ids"])
    runs, start = [], 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or ids[i] != ids[start]:
            runs.append((ids[start], i - start))
            start = i
    expected = sum(1 for fid, n in runs if n == 8 and fid not in held_out)
    assert 0 < expected < len(runs)
    assert json.loads((out / "metrics.json").read_text())["frame_shift"]["frames"] == expected
    assert f"frame_shift: the tiles of {expected} complete training frames are read shifted" in proc.stdout
    assert "in 25% of their reads" in proc.stdout  # --frame_read_p reaches the augmentation

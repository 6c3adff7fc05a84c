"""Faults, reproduced for real: a stop signal to a training subprocess, a disk that fills while a
checkpoint is written (a small tmpfs), two trainings on one folder (two processes), a stale lock,
predict on a full disk, and the inputs that used to be accepted without a word."""

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
from PIL import Image

from mars_segformer.data import load_arrays
from mars_segformer.inference.frames import read_gray
from mars_segformer.predict import main as predict_main
from mars_segformer.self_train import main as self_train_main
from mars_segformer.training import main as train_main
from tests import forked
from tests.training.test_train import ROOT, TINY

LONG = ["--max_steps", "400", "--eval_strategy", "steps", "--eval_steps", "400", "--save_strategy", "steps",
        "--save_steps", "400", "--report_to", "none", "--logging_steps", "1"]


def start(out, *args, env=None):
    cmd = [sys.executable, str(ROOT / "train_hf.py"), "--output_dir", str(out), *TINY, *args]
    return forked.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def wait_for(pred, timeout=120, proc=None):
    t0 = time.time()
    while not pred():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended early: {proc.communicate()[1][-3000:]}")
        if time.time() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.2)


def temp_files(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if ".tmp" in p.name]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:") or line.startswith("stopped by")]


#: epoch-wise evaluation and saving, as the full-length runs use: the Trainer ends the epoch it stops in, and a
#: checkpoint at a step inside an epoch can only be the stop's
EPOCHS = [*LONG[:2], "--eval_strategy", "epoch", "--save_strategy", "epoch", *LONG[10:]]


def test_sigterm_saves_a_checkpoint_says_how_to_resume_and_resumes(tmp_path):
    out = tmp_path / "run"
    proc = start(out, *EPOCHS)
    wait_for(lambda: (out / "run_args.json").exists(), proc=proc)
    time.sleep(3)  # some steps into training
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-3000:]
    assert "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1 and lines[0].startswith("stopped by SIGTERM at step "), err[-2000:]
    step = int(lines[0].split("at step ")[1].split(":")[0])
    assert 0 < step < 400
    ck = out / f"checkpoint-{step}"
    assert (ck / "trainer_state.json").is_file() and (ck / "model.safetensors").is_file()
    state = json.loads((ck / "trainer_state.json").read_text())
    assert state["global_step"] == step
    # a stop is not an evaluation: every validation pass on record ended a whole epoch (the stop lands inside one
    # in ~42 of 43 runs; the old code evaluated there)
    evals = [h for h in state["log_history"] if "eval_loss" in h]
    assert all(float(h["epoch"]).is_integer() for h in evals), evals
    assert "--resume_from_checkpoint true" in lines[0] and not temp_files(out) and not (out / ".lock").exists()
    args_before = (out / "run_args.json").read_bytes()
    # the folder alone is enough to continue, from that step, to the end
    proc = start(out, "--resume_from_checkpoint", "true", "--max_steps", str(step + 3))
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert f"resume: continuing from {ck} (step {step} of 400)" in stdout
    assert "newly initialised" not in stdout
    assert json.loads((out / "metrics.json").read_text())["global_step"] == step + 3
    assert (out / "run_args.json").read_bytes() == args_before  # the run's arguments stay as it started


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (root can mount one here and in CI)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip() or res.returncode}); needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_while_checkpointing_is_one_line_and_resumable(small_disk, tmp_path):
    out = small_disk / "run"
    flags = ["--max_steps", "14", "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps",
             "--save_steps", "2", "--save_total_limit", "20", "--report_to", "none"]
    proc = start(out, *flags)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1 and "no space left on device" in lines[0], err[-2000:]
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda c: int(c.name.split("-")[1]))  # by step, not by name
    assert checkpoints, "the disk should hold at least one checkpoint before it fills"
    # nothing half-written stays: every checkpoint left is complete, no temporary file anywhere
    assert all((c / "trainer_state.json").is_file() for c in checkpoints)
    assert not temp_files(out)
    before = {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # resuming in place on the still-full disk: one line again, nothing changed, nothing left behind
    proc = start(out, "--resume_from_checkpoint", "true")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and len(error_lines(err)) == 1 and "Traceback" not in err, err[-3000:]
    assert {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # a copy on a roomy disk resumes from the newest complete checkpoint and finishes
    roomy = tmp_path / "roomy"
    shutil.copytree(out, roomy)
    proc = start(roomy, "--resume_from_checkpoint", "true")
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert f"resume: continuing from {roomy / checkpoints[-1].name}" in stdout
    assert json.loads((roomy / "metrics.json").read_text())["global_step"] == 14


def test_only_checkpoints_with_a_readable_trainer_state_are_kept(tmp_path):
    """The Trainer writes trainer_state.json last, with a plain open("w"): a kill can leave it missing, empty or cut
    short. Those folders and stray temporary files go; complete checkpoints and other files stay."""
    from mars_segformer.training.faults import remove_incomplete_checkpoints

    states = {"checkpoint-4": '{"global_step": 4}', "checkpoint-8": None, "checkpoint-12": "",
              "checkpoint-16": '{"global_step": 16, "log_hist', "checkpoint-20": '{"global_step": 20}\n'}
    for name, text in states.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"weights")
        if text is not None:
            (tmp_path / name / "trainer_state.json").write_text(text)
    (tmp_path / "metrics.json.tmp123").write_text("{")
    (tmp_path / "run_args.json").write_text("{}")
    removed = remove_incomplete_checkpoints(tmp_path)
    assert sorted(removed) == ["checkpoint-12", "checkpoint-16", "checkpoint-8", "metrics.json.tmp123"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-20", "checkpoint-4", "run_args.json"]


def test_two_trainings_on_one_folder(tmp_path):
    out = tmp_path / "run"
    flags = ["--max_steps", "4", "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
             "--report_to", "none"]
    # started together: one trains, the other is refused (by the lock while the first trains, or by the finished
    # run it finds there), so the first's length does not matter
    a, b = start(out, *flags), start(out, *flags)
    (_, err_a), (_, err_b) = a.communicate(timeout=300), b.communicate(timeout=300)
    assert sorted([a.returncode, b.returncode]) == [0, 2], (err_a[-2000:], err_b[-2000:])
    refused = err_a if a.returncode == 2 else err_b
    assert len(error_lines(refused)) == 1 and ("in use by another training" in refused or "already holds a run" in refused)
    assert (out / "metrics.json").exists() and not (out / ".lock").exists()
    # a second run told to reuse the folder (--overwrite) while the first still trains: the lock refuses it
    out2 = tmp_path / "run2"
    first = start(out2, *LONG)
    wait_for(lambda: (out2 / "run_args.json").exists(), proc=first)
    second = start(out2, *flags, "--overwrite", "true")
    _, err = second.communicate(timeout=300)
    assert second.returncode == 2, err[-2000:]
    assert f"output_dir {out2} is in use by another training (pid {first.pid})" in err
    assert first.poll() is None  # the first run was not disturbed
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)


def test_a_stale_lock_is_detected_and_taken_over(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(str(dead.pid))
    proc = start(out, "--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no",
                 "--load_best_model_at_end", "false", "--report_to", "none")
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert f"was left by pid {dead.pid}, which is no longer running" in stdout
    assert not (out / ".lock").exists()


def test_predict_on_a_full_disk_leaves_nothing_behind(small_disk, tmp_path, capsys):
    model = tmp_path / "model"
    assert train_main(["--output_dir", str(model), *TINY, "--max_steps", "1", "--eval_strategy", "no",
                       "--save_strategy", "no", "--load_best_model_at_end", "false", "--report_to", "none"]) == 0
    out = small_disk / "preds"
    out.mkdir()
    (out / "summary.json").write_text('{"earlier": true}')
    # the 399 training tiles' masks (3.3 MB uncompressed) do not fit on the 3 MB disk
    capsys.readouterr()
    code = predict_main(["--model", str(model), "--out", str(out), "--split", "train"])
    err = capsys.readouterr().err
    assert code == 2 and len(error_lines(err)) == 1 and "cannot write" in err, err[-2000:]
    assert (out / "summary.json").read_text() == '{"earlier": true}'
    assert not temp_files(out)


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 128).reshape(64, 128).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    got = read_gray(tmp_path / "g16.png")
    np.testing.assert_array_equal(got, np.rint(ramp / 257.0).astype(np.uint8))
    assert (got == 255).mean() < 0.01  # PIL's convert("L") made 99.6 % of it 255


def test_self_train_checks_student_flags_before_the_teacher_runs(tmp_path, capsys):
    teacher = tmp_path / "teacher"
    assert train_main(["--output_dir", str(teacher), *TINY, "--max_steps", "1", "--eval_strategy", "no",
                       "--save_strategy", "no", "--load_best_model_at_end", "false", "--report_to", "none"]) == 0
    capsys.readouterr()
    cases = [
        (["--teacher", str(teacher), "--", "--learning_rate", "-1"], "--learning_rate must be a positive number"),
        (["--teacher", str(teacher), "--", "--no_such_flag", "1"], "unknown flag --no_such_flag"),
        (["--teacher", str(tmp_path / "missing")], "cannot load a segmentation model"),
        (["--teacher", str(teacher), "--data", str(tmp_path / "none.npz")], "none.npz: no such file"),
    ]
    arrays = load_arrays()
    np.savez(tmp_path / "no_test.npz", training_set=np.stack([arrays.train_images, arrays.train_masks], 1)[:40],
             test_set=np.zeros((0, 64, 128), np.uint8))
    cases.append((["--teacher", str(teacher), "--data", str(tmp_path / "no_test.npz")], "no unlabelled tiles"))
    for argv, needle in cases:
        out = tmp_path / "rounds"
        assert self_train_main([*argv[:2], "--out", str(out), *argv[2:]]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(error_lines(err)) == 1, err[-2000:]
        assert not out.exists()  # no empty round_1/, no pseudo.npz

"""bench/noisy_student.py: the student it launches is the teacher's recipe from scratch, with the pseudo-labels as the
asked share of its rows, for as many epochs as make its samples seen the teacher's; bad values exit 2."""

import sys
from argparse import Namespace
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import bench.full_length as fl
import bench.noisy_student as ns
from mars_segformer.training.run import _parse, _value, implied_flags
from tests import forked

SPEC = "upernet-r18:combo_logit_adj_frame_shift_bf16"
ROOT = Path(__file__).resolve().parents[2]


def test_the_student_is_the_teachers_recipe_from_scratch_with_the_pseudo_labels(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ns, "OUT", tmp_path / "ns")
    monkeypatch.setattr(fl, "run_child", lambda cmd, **kw: calls.append(cmd) or 0)
    parent = tmp_path / "upernet-r18__combo_logit_adj_frame_shift_bf16_s7"
    pseudo = {"path": str(tmp_path / "pseudo.npz")}
    out = ns.student(SPEC, 7, parent, pseudo, Namespace(data="x.npz", share=0.3, threshold=0.9, quota=0.3,
                                                        patience=10, threads=1, context="tile"))
    assert out == tmp_path / "ns" / f"{parent.name}__student_share0.3_t0.9_q0.3"
    (cmd,) = calls
    user = cmd[cmd.index("--output_dir"):]
    parsed = _parse([*implied_flags(user), *user])
    value = lambda name: _value(parsed, name)  # noqa: E731
    # from scratch: the model preset, not the teacher's folder, and no fine-tuning warm-up or slowed tensors
    assert value("model") == "upernet-r18" and value("seed") == 7
    assert value("extra_data") == pseudo["path"] and value("extra_share") == pytest.approx(0.3)
    assert value("num_train_epochs") == 14
    teacher = _parse([*fl.run_flags(SPEC)[1], "--output_dir", "p"])
    for name in ("loss", "class_weights", "augmentations", "repeat_factor_threshold", "weight_averaging",
                 "logit_adjustment", "learning_rate", "bf16", "warmup_steps", "loaded_lr_scale"):
        assert value(name) == _value(teacher, name), name


@pytest.mark.parametrize("share", [0.3, 0.5])
def test_the_student_sees_as_many_samples_as_its_teacher(share):
    # the oracle is the data builder itself: a training epoch's rows with and without the extra tiles
    from mars_segformer.data import DataConfig, build_dataset_dict, load_arrays

    arrays = load_arrays(None)  # the embedded sample
    extra = replace(arrays, train_frame_ids=None, source="extra")
    plain = len(build_dataset_dict(arrays, DataConfig()).datasets["train"])
    mixed = len(build_dataset_dict(arrays, DataConfig(extra_share=share), extra).datasets["train"])
    assert mixed > plain
    teacher_samples, student_samples = fl.EPOCHS * plain, ns.student_epochs(share) * mixed
    assert abs(student_samples - teacher_samples) <= mixed / 2  # within half an epoch: the epochs are whole


@pytest.mark.parametrize("flags, named", [(["--share", "1.5"], "--share"), (["--quota", "1"], "--quota"),
                                          (["--runs", "upernet-r18:nope"], "--runs"),
                                          (["--seeds", "12345"], "--seeds 12345")])
def test_bad_values_exit_2_with_one_line(tmp_path, flags, named):
    data = tmp_path / "d.npz"
    data.write_bytes(b"")
    proc = forked.run([sys.executable, str(ROOT / "bench" / "noisy_student.py"), "--data", str(data),
                       "--full_length", str(tmp_path), *flags], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert named in last and "Traceback" not in proc.stderr
    assert not (tmp_path / "ns").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


def test_the_table_reads_the_rows(tmp_path, monkeypatch):
    v = {"task_mean_iou": 0.6, "soil": 0.8, "bedrock": 0.85, "sand": 0.6, "big_rock": 0.2,
         "big_rock_precision": 0.4, "big_rock_recall": 0.3, "logit_adjustment_tau": 0.0}
    rows = {"r": {"seed": 3, "share": 0.3, "threshold": 0.9, "quota": 0.3, "epochs": 14, "teacher": v,
                  "student": {**v, "task_mean_iou": 0.65, "curve": [0.5, 0.65], "train_samples_per_s": 28.0,
                              "torch_threads": 1, "frame_context": {"task_mean_iou": 0.71, "iou_big_rock": 0.33}},
                  "pseudo": {"tiles_kept": 2000, "tiles_labelled": 3162, "pixels_kept_share": 0.5}}}
    ns.render(rows, tmp_path / "t.md")
    text = (tmp_path / "t.md").read_text()
    student = next(line for line in text.splitlines() if "student (share 0.3" in line)
    assert "| 0.6500 | +0.0500 |" in student and "2000 of 3162 (50.0%)" in student and "0.500 → 0.650" in student
    assert np.isclose(float(student.split("|")[3]), 0.65)
    header = next(line for line in text.splitlines() if line.startswith("| seed"))
    column = [c.strip() for c in header.split("|")].index("inside their frames (big rock)")
    teacher = next(line for line in text.splitlines() if "teacher (20 epochs)" in line)
    assert [c.strip() for c in student.split("|")][column] == "0.7100 (0.330)"
    assert [c.strip() for c in teacher.split("|")][column] == "-"  # a teacher of an earlier release has none

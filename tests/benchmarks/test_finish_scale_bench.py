"""bench/finish_scale.py: the fine-tune it launches is the full-length run's recipe, from that run's model, on its
seed, at the asked scale, with train_hf.py's fine-tuning defaults; its table reads big-rock precision and recall
from the confusion matrix and checks the split against the parent's."""

import json
from argparse import Namespace

import pytest

import bench.finish_scale as fs
from bench.full_length import run_flags
from mars_segformer.training.run import _parse, _value, implied_flags

SPEC = "upernet-r18:combo_logit_adj_frame_shift_bf16"


def _launch(tmp_path, monkeypatch, scale, extra="", tag=""):
    calls = []
    monkeypatch.setattr(fs, "OUT", tmp_path / "finish")
    monkeypatch.setattr(fs, "run_child", lambda cmd, **kw: calls.append(cmd) or 0)
    parent = tmp_path / "upernet-r18__combo_logit_adj_frame_shift_bf16_s7"
    out = fs.finetune(parent, SPEC, 7, scale, Namespace(data="x.npz", epochs=2, threads=1, extra=extra,
                                                                  tag=tag))
    return parent, out, calls


def test_the_fine_tune_is_the_parent_recipe_at_the_new_scale_with_fine_tuning_defaults(tmp_path, monkeypatch):
    parent, out, (cmd,) = _launch(tmp_path, monkeypatch, 2.0)
    assert out == tmp_path / "finish" / f"{parent.name}__x2_e2"
    user = cmd[cmd.index("--output_dir"):]
    parsed = _parse([*implied_flags(user), *user])
    value = lambda name: _value(parsed, name)  # noqa: E731
    assert value("model") == str(parent) and value("input_scale") == 2.0 and value("seed") == 7
    assert value("num_train_epochs") == 2
    # the recipe of the parent's run, as bench/full_length.py trained it ...
    parent_run = _parse([*run_flags(SPEC)[1], "--output_dir", "p"])
    for name in ("loss", "class_weights", "augmentations", "repeat_factor_threshold", "weight_averaging",
                 "logit_adjustment", "learning_rate", "bf16"):
        assert value(name) == _value(parent_run, name), name
    # ... but warmed up and with the loaded tensors slowed, as train_hf.py fine-tunes a checkpoint
    assert value("warmup_steps") == pytest.approx(0.2) and value("loaded_lr_scale") == pytest.approx(0.1)
    assert _value(parent_run, "warmup_steps") == 0


def test_extra_flags_win_and_the_tag_names_the_folder(tmp_path, monkeypatch):
    parent, out, (cmd,) = _launch(tmp_path, monkeypatch, 2.0, extra="--loaded_lr_scale 1 --warmup_steps 0.1", tag="lr1")
    assert out.name == f"{parent.name}__x2_e2_lr1"
    user = cmd[cmd.index("--output_dir"):]
    parsed = _parse([*implied_flags(user), *user])
    assert _value(parsed, "loaded_lr_scale") == 1 and _value(parsed, "warmup_steps") == pytest.approx(0.1)


def test_a_finished_fine_tune_is_skipped(tmp_path, monkeypatch):
    done = tmp_path / "finish" / "upernet-r18__combo_logit_adj_frame_shift_bf16_s7__x1_e2"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text("{}")
    _, out, calls = _launch(tmp_path, monkeypatch, 1.0)
    assert out == done and calls == []


def _run(folder, cm, split):
    folder.mkdir()
    v = {"task_mean_iou": 0.5, **{f"iou_{c}": 0.5 for c in fs.CLASSES}}
    (folder / "metrics.json").write_text(json.dumps({"validation": v, "confusion_matrix": cm,
                                                     "logit_adjustment_tau": 0.0, "input_scale": 2.0}))
    (folder / "split.json").write_text(json.dumps(split))


def test_the_row_has_big_rock_precision_and_recall_and_checks_the_split(tmp_path):
    # truth x prediction: 6 big-rock pixels hit, 4 big-rock pixels called bedrock (recall 6/10), and 3 bedrock
    # pixels called big rock (precision 6/9)
    cm = [[0] * 5, [0, 9, 0, 0, 0], [0, 0, 9, 0, 3], [0, 0, 0, 9, 0], [0, 0, 4, 0, 6]]
    split = {"seed": 7, "val_fraction": 0.2, "data": "/abs/x.npz"}
    _run(tmp_path / "parent", cm, split)
    _run(tmp_path / "same", cm, {**split, "data": "x.npz"})  # the same file named relatively
    _run(tmp_path / "other", cm, {**split, "seed": 8})
    row = fs.row(tmp_path / "parent", tmp_path / "same")
    assert row["big_rock_precision"] == pytest.approx(6 / 9) and row["big_rock_recall"] == pytest.approx(6 / 10)
    assert row["split_matches_parent"] is True and row["input_scale"] == 2.0
    assert fs.row(tmp_path / "parent", tmp_path / "other")["split_matches_parent"] is False


def test_the_row_carries_the_closing_reports_frame_context_score_where_the_run_has_one(tmp_path):
    split = {"seed": 7, "val_fraction": 0.2, "data": "x.npz"}
    cm = [[0] * 5, [0, 9, 0, 0, 0], [0, 0, 9, 0, 0], [0, 0, 0, 9, 0], [0, 0, 0, 0, 9]]
    _run(tmp_path / "parent", cm, split)
    _run(tmp_path / "student", cm, split)
    metrics = json.loads((tmp_path / "student" / "metrics.json").read_text())
    framed = {"task_mean_iou": 0.71, "iou_big_rock": 0.33, "blocks": 4, "tiles_in_frames": 30, "tiles_alone": 2}
    (tmp_path / "student" / "metrics.json").write_text(json.dumps({**metrics, "validation_frame_context": framed}))
    assert fs.row(tmp_path / "parent", tmp_path / "student")["frame_context"] == framed
    assert "frame_context" not in fs.row(tmp_path / "parent", None)  # a run of an earlier release has none


def test_the_curve_is_one_score_per_epoch_from_the_log(tmp_path):
    run = tmp_path / "parent__x2_e2"
    run.mkdir()
    lines = ["frame_shift: ...", "{'loss': '0.8', 'epoch': '0.5'}",
             "{'eval_loss': '0.67', 'eval_task_mean_iou': '0.5982', 'epoch': '1'}",
             "{'eval_loss': '0.61', 'eval_task_mean_iou': '0.6202', 'epoch': '2'}",
             "{'eval_loss': '0.61', 'eval_task_mean_iou': '0.6202', 'epoch': '2'}",  # the best model, evaluated again
             "{'eval_loss': '0.62', 'eval_task_mean_iou': '0.635', 'epoch': '2'}"]  # after the logit adjustment
    (tmp_path / "parent__x2_e2.log").write_text("\n".join(lines) + "\n")
    assert fs.curve(run) == [0.5982, 0.6202]


def test_the_untrained_score_at_the_runs_own_scale_is_its_own_validation_score(tmp_path):
    # the training's evaluator and the bench's prediction path are independent: at the scale the model trained at,
    # the "untrained at the new scale" score must be the run's own saved score
    from tests.training.test_train import launch

    out = tmp_path / "run"
    proc = launch(["--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no", "--input_scale", "1.5"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((out / "metrics.json").read_text())["validation"]
    assert fs.own_scale(out) == json.loads((out / "config.json").read_text())["input_scale"] == 1.5
    got = fs.untrained(out, 1.5, None)  # an --input_scale: the run's own (prediction's factor is 1 on top of it)
    assert got["task_mean_iou"] == pytest.approx(saved["task_mean_iou"], abs=1e-6)
    assert got["big_rock"] == pytest.approx(saved["iou_big_rock"], abs=1e-6)


def test_the_untrained_score_is_read_back_for_the_same_parent_only(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(fs, "untrained", lambda parent, scale, data: calls.append(scale) or {"task_mean_iou": 0.09})
    cm = [[0] * 5, [0, 9, 0, 0, 0], [0, 0, 9, 0, 3], [0, 0, 0, 9, 0], [0, 0, 4, 0, 6]]
    _run(tmp_path / "parent", cm, {"seed": 7})
    stored = {"earlier": {"parent": fs.row(tmp_path / "parent", None), "finish": {"x2": {"untrained": {"task_mean_iou": 0.1}}}}}
    assert fs.start_at(tmp_path / "parent", 2.0, None, stored) == {"task_mean_iou": 0.1} and calls == []
    assert fs.start_at(tmp_path / "parent", 1.5, None, stored) == {"task_mean_iou": 0.09} and calls == [1.5]
    cm[4][4] = 7  # another parent model: its scores differ, so the stored start is not its own
    (tmp_path / "parent" / "metrics.json").unlink()
    (tmp_path / "parent" / "split.json").unlink()
    (tmp_path / "parent").rmdir()
    _run(tmp_path / "parent", cm, {"seed": 7})
    assert fs.start_at(tmp_path / "parent", 2.0, None, stored) == {"task_mean_iou": 0.09} and calls == [1.5, 2.0]


def test_the_table_names_an_extra_path_by_its_file_name(tmp_path):
    r = {"task_mean_iou": 0.6, **{c: 0.5 for c in fs.CLASSES}, "big_rock_precision": 0.4, "big_rock_recall": 0.3,
         "logit_adjustment_tau": 0.0}
    rows = {"k": {"spec": "s", "seed": 0, "epochs": 2, "parent": r, "finish": {"x1": r},
                  "extra": "--extra_data /some/where/pseudo_s0.npz --extra_share 0.5"}}
    fs.render(rows, tmp_path / "t.md", None)
    text = (tmp_path / "t.md").read_text()
    assert "(`--extra_data pseudo_s0.npz --extra_share 0.5`)" in text and "/some/where" not in text

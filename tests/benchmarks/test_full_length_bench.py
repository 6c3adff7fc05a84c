"""bench/full_length.py: a longer schedule of a recipe trains into its own folder, so a finished 20-epoch run
neither makes it skip nor is resumed by it, and the table reads it back as its own row."""

import json
from argparse import Namespace

import bench.full_length as fl


def test_a_longer_schedule_is_its_own_run(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(fl.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or Namespace(returncode=0))
    done = tmp_path / "upernet-r18__combo_logit_adj_s0"
    done.mkdir()
    (done / "metrics.json").write_text("{}")
    args = Namespace(data="x.npz", epochs=20, patience=10, threads=1)
    fl.train("upernet-r18:combo_logit_adj", 0, args, tmp_path)
    assert calls == []  # the finished 20-epoch run is skipped
    fl.train("upernet-r18:combo_logit_adj", 0, Namespace(**{**vars(args), "epochs": 60}), tmp_path)
    (cmd,) = calls
    out = cmd[cmd.index("--output_dir") + 1]
    assert out == str(tmp_path / "upernet-r18__combo_logit_adj_e60_s0")
    assert cmd[cmd.index("--num_train_epochs") + 1] == "60" and "--overwrite" in cmd


def test_the_table_reads_a_longer_run_as_its_own_row(tmp_path):
    for name, score in (("upernet-r18__combo_logit_adj_s0", 0.6), ("upernet-r18__combo_logit_adj_e60_s0", 0.7)):
        ck = tmp_path / name / "checkpoint-162"
        ck.mkdir(parents=True)
        ev = {"epoch": 1.0, "step": 162, "eval_task_mean_iou": score,
              **{f"eval_iou_{c}": score for c in fl.CLASSES}}
        (ck / "trainer_state.json").write_text(json.dumps({"log_history": [ev]}))
    rows = fl.summarize(tmp_path)["rows"]
    long = rows["upernet-r18__combo_logit_adj_e60_s0"]
    assert (long["recipe"], long["seed"], long["best"]["task_mean_iou"]) == ("combo_logit_adj_e60", 0, 0.7)
    assert rows["upernet-r18__combo_logit_adj_s0"]["recipe"] == "combo_logit_adj"

"""bench/full_length.py: a longer schedule of a recipe trains into its own folder, so a finished 20-epoch run
neither makes it skip nor is resumed by it, and the table reads it back as its own row."""

import json
from argparse import Namespace

import pytest

import bench.full_length as fl
from bench.ablation import _without
from tests import forked


def test_a_longer_schedule_is_its_own_run(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(fl, "run_child", lambda cmd, **kw: calls.append(cmd) or 0)
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


def test_a_training_run_is_read_from_its_newest_complete_checkpoint(tmp_path):
    """A run stopped while saving (a time limit, a kill) leaves its newest checkpoint without trainer_state.json or
    with it cut short: the table reads the newest complete one instead of failing."""
    run = tmp_path / "upernet-r18__combo_logit_adj_s0"
    scores = (0.5, 0.6)  # epochs 1 and 2; each checkpoint holds the history up to it
    for epochs in (1, 2):
        ev = [{"epoch": e + 1.0, "step": 162 * (e + 1), "eval_task_mean_iou": s, **{f"eval_iou_{c}": s for c in fl.CLASSES}}
              for e, s in enumerate(scores[:epochs])]
        step = 162 * epochs
        (run / f"checkpoint-{step}").mkdir(parents=True)
        (run / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"log_history": ev}))
    (run / "checkpoint-486").mkdir()
    (run / "checkpoint-486" / "trainer_state.json").write_text('{"log_history": [{"epoch": 3.0, "ev')
    (run / "checkpoint-648").mkdir()  # stopped before its trainer_state.json
    row = fl.summarize(tmp_path)["rows"]["upernet-r18__combo_logit_adj_s0"]
    assert row["epochs_reached"] == 2.0 and row["best"]["task_mean_iou"] == 0.6 and not row["finished"]


def test_stored_recipes_train_in_float32_unless_named_bf16(tmp_path, monkeypatch):
    """bf16 is train_hf.py's default on CPUs with bf16 instructions; the bench's recipes keep the precision their
    stored rows were measured in on every machine, and the bf16 recipes ask for it. Read back through train_hf.py's
    own parser with the machine defaults in front, as a run on a bf16 CPU would parse them."""
    from mars_segformer.training.devices import device_defaults
    from mars_segformer.training.run import _parse

    calls = []
    monkeypatch.setattr(fl, "run_child", lambda cmd, **kw: calls.append(cmd) or 0)
    args = Namespace(data="x.npz", epochs=20, patience=10, threads=1)
    for spec in ("upernet-r18:combo_logit_adj", "upernet-r18:default", "upernet-r18:combo_logit_adj_bf16",
                 "upernet-r18:combo_logit_adj_ohem_bf16", "upernet-r18:reference", "upernet-r18:reference_bf16"):
        fl.train(spec, 0, args, tmp_path)
    bf16 = []
    for cmd in calls:
        user = cmd[cmd.index("--data") + 2:]  # (a fresh run each: --overwrite true, no resume)
        parsed = _parse([*device_defaults(user, cuda=False, cpu_bf16=True), *user, "--output_dir", "u"])[3]
        bf16.append(parsed.bf16)
    assert bf16 == [False, False, True, True, False, True]
    # the reference recipe in bf16 is the reference recipe otherwise: the same flags but the precision
    ref, ref_bf16 = (c[c.index("--data") + 2:] for c in calls[4:])
    assert _without(ref_bf16, "--bf16") == _without(ref, "--bf16") and ref_bf16 != ref


def test_a_rerun_with_another_data_order_is_its_own_run(tmp_path, monkeypatch):
    """--data_seed N: the same recipe, seed and split read in another order, trained into RECIPE_dsN beside the
    finished run (not skipped as it), and read back as its own row."""
    calls = []
    monkeypatch.setattr(fl, "run_child", lambda cmd, **kw: calls.append(cmd) or 0)
    monkeypatch.setattr(fl, "machine", lambda: {"cpu": "test", "cpu_capability": "test"})  # it runs subprocesses too
    (tmp_path / "upernet-r18__combo_logit_adj_s0").mkdir()
    (tmp_path / "upernet-r18__combo_logit_adj_s0" / "metrics.json").write_text("{}")
    args = Namespace(data="x.npz", epochs=20, patience=10, threads=1)
    fl.train("upernet-r18:combo_logit_adj", 0, args, tmp_path, data_seed=1)
    (cmd,) = calls
    assert cmd[cmd.index("--output_dir") + 1] == str(tmp_path / "upernet-r18__combo_logit_adj_ds1_s0")
    assert cmd[cmd.index("--data_seed") + 1] == "1" and cmd[cmd.index("--seed") + 1] == "0"
    ck = tmp_path / "upernet-r18__combo_logit_adj_ds1_s0" / "checkpoint-162"
    ck.mkdir(parents=True)
    ev = {"epoch": 1.0, "step": 162, "eval_task_mean_iou": 0.5, **{f"eval_iou_{c}": 0.5 for c in fl.CLASSES}}
    (ck / "trainer_state.json").write_text(json.dumps({"log_history": [ev]}))
    row = fl.summarize(tmp_path)["rows"]["upernet-r18__combo_logit_adj_ds1_s0"]
    assert (row["recipe"], row["seed"]) == ("combo_logit_adj_ds1", 0)


def test_the_frame_read_figure_has_a_panel_per_split_of_the_family_runs(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def row(model, recipe, seed):
        return {"model": model, "recipe": recipe, "seed": seed, "finished": True,
                "curve": [[5760, 0.4], [11520, 0.5 + seed / 1000]]}

    family = {f"r{k}": row(*spec) for k, spec in enumerate([
        ("upernet-r18", "combo_logit_adj_frame_shift_bf16", 0), ("upernet-r18", "combo_logit_adj_frame_shift_p1_bf16", 0),
        ("upernet-r18", "combo_logit_adj_frame_shift_bf16", 42), ("upernet-r18", "combo_logit_adj_frame_shift_bf16_e60", 1),
        ("segformer-b0", "combo_logit_adj_frame_shift_bf16", 1), ("upernet-r18", "combo", 1)])}
    # seeds 0 and 42 only: the 60-epoch run, the other model and the other recipe family draw no panel of seed 1
    drawn = fl.render_frame_reads(family, tmp_path, plt)
    assert drawn == {0: ["shift_bf16", "shift_p1_bf16"], 42: ["shift_bf16"]}
    assert (tmp_path / "full_length_frame_reads.png").stat().st_size > 10_000
    (tmp_path / "full_length_frame_reads.png").unlink()
    assert fl.render_frame_reads({k: family[k] for k in ("r3", "r4", "r5")}, tmp_path, plt) == {}
    assert not (tmp_path / "full_length_frame_reads.png").exists()


def test_a_data_seed_equal_to_the_run_seed_is_refused():
    """The Trainer orders a run's reads by --seed when no data seed is given, so --data_seed 1 beside --seeds 1
    would replay that run step for step (seen once: the 'rerun' matched seed 1's curve to 3 decimals)."""
    import sys

    proc = forked.run([sys.executable, str(fl.ROOT / "bench" / "full_length.py"), "--seeds", "0", "1",
                       "--data_seed", "1", "--render-only"], cwd=fl.ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--data_seed 1: that is the order of the run with --seeds 1 itself" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_student_learns_from_the_same_seeds_finished_teachers(tmp_path, monkeypatch):
    """--teachers NAME: each seed's student gets that seed's finished run of NAME and is named RECIPE_kdN."""
    calls = []
    monkeypatch.setattr(fl, "run_child", lambda cmd, **kw: calls.append(cmd) or 0)
    for seed in (0, 1):
        for name in ("upernet-r18__a", "upernet-r18__b"):
            (tmp_path / f"{name}_s{seed}").mkdir()
            (tmp_path / f"{name}_s{seed}" / "metrics.json").write_text("{}")
    monkeypatch.setattr(fl, "summarize", lambda root: {"rows": {}, "machine": {"cpu": "test"}})
    monkeypatch.setattr(fl, "RESULTS", tmp_path)
    monkeypatch.setattr("sys.argv", ["full_length.py", "--runs", "upernet-r18:combo_logit_adj", "--seeds", "0", "1",
                                     "--teachers", "upernet-r18__a", "upernet-r18__b", "--out", str(tmp_path),
                                     "--data", __file__])
    fl.main()
    assert len(calls) == 2
    for cmd, seed in zip(calls, (0, 1), strict=True):
        assert cmd[cmd.index("--output_dir") + 1] == str(tmp_path / f"upernet-r18__combo_logit_adj_kd2_s{seed}")
        assert cmd[cmd.index("--teachers") + 1] == f"{tmp_path}/upernet-r18__a_s{seed},{tmp_path}/upernet-r18__b_s{seed}"


def _student_folder(root, name, teachers):
    """A started student run: its run_args.json as train_hf.py writes it (the command line)."""
    run = root / name
    run.mkdir(parents=True)
    argv = ["train_hf.py", "--output_dir", str(run), "--teachers", ",".join(str(root / t) for t in teachers)]
    (run / "run_args.json").write_text(json.dumps({"argv": argv}))
    return run


def test_a_student_folder_of_other_teachers_is_refused_before_anything_trains(tmp_path, monkeypatch, capsys):
    """Students are named by their teachers' count: a finished ``_kd1`` of teacher A must not be skipped as the
    student of teacher B (nor a started one resumed as it)."""
    calls = []
    monkeypatch.setattr(fl, "run_child", lambda cmd, **kw: calls.append(cmd) or 0)
    for teacher in ("upernet-r18__a_s0", "upernet-r18__b_s0"):
        (tmp_path / teacher).mkdir()
        (tmp_path / teacher / "metrics.json").write_text("{}")
    student = _student_folder(tmp_path, "upernet-r18__combo_logit_adj_kd1_s0", ["upernet-r18__a_s0"])
    (student / "metrics.json").write_text("{}")
    argv = ["full_length.py", "--runs", "upernet-r18:combo_logit_adj", "--seeds", "0", "--out", str(tmp_path),
            "--data", __file__, "--teachers"]
    monkeypatch.setattr("sys.argv", [*argv, "upernet-r18__b"])
    with pytest.raises(SystemExit) as stop:
        fl.main()
    assert stop.value.code == 2 and calls == []
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--teachers:" in err and "upernet-r18__a_s0, not upernet-r18__b_s0" in err
    # the same teacher: the finished student is skipped as before
    monkeypatch.setattr(fl, "summarize", lambda root: {"rows": {}, "machine": {"cpu": "test"}})
    monkeypatch.setattr(fl, "RESULTS", tmp_path)
    monkeypatch.setattr("sys.argv", [*argv, "upernet-r18__a"])
    fl.main()
    assert calls == []


def test_the_table_names_a_students_teachers(tmp_path):
    ev = {"epoch": 1.0, "step": 162, "eval_task_mean_iou": 0.6, **{f"eval_iou_{c}": 0.6 for c in fl.CLASSES}}
    for name, teachers in (("upernet-r18__r_kd2_s0", ["upernet-r18__x2_s0", "upernet-r18__d_s0"]),
                           ("upernet-r18__r_s0", [])):
        run = _student_folder(tmp_path, name, teachers) if teachers else tmp_path / name
        (run / "checkpoint-162").mkdir(parents=True)
        (run / "checkpoint-162" / "trainer_state.json").write_text(json.dumps({"log_history": [ev]}))
    rows = fl.summarize(tmp_path)["rows"]
    assert rows["upernet-r18__r_kd2_s0"]["teachers"] == ["upernet-r18__x2_s0", "upernet-r18__d_s0"]
    assert "teachers" not in rows["upernet-r18__r_s0"]


def test_a_finished_row_carries_big_rock_precision_and_recall_of_its_confusion_matrix(tmp_path):
    ev = {"epoch": 1.0, "step": 162, "eval_task_mean_iou": 0.6, **{f"eval_iou_{c}": 0.6 for c in fl.CLASSES}}
    for name in ("upernet-r18__r_s0", "upernet-r18__r_s1"):
        (tmp_path / name / "checkpoint-162").mkdir(parents=True)
        (tmp_path / name / "checkpoint-162" / "trainer_state.json").write_text(json.dumps({"log_history": [ev]}))
    # truth x prediction over classes 0-4: 6 big-rock pixels predicted right; 2 soil and 1 sand pixels predicted as
    # big rock (precision 6 / 9); 4 big-rock pixels predicted as bedrock (recall 6 / 10)
    cm = [[0] * 5, [0, 50, 0, 0, 2], [0, 0, 40, 0, 0], [0, 0, 0, 30, 1], [0, 0, 4, 0, 6]]
    (tmp_path / "upernet-r18__r_s0" / "metrics.json").write_text(json.dumps(
        {"train_samples_per_s": 1.0, "confusion_matrix": cm}))
    rows = fl.summarize(tmp_path)["rows"]
    assert rows["upernet-r18__r_s0"]["big_rock_precision_recall"] == [round(6 / 9, 4), 0.6]
    assert rows["upernet-r18__r_s1"]["big_rock_precision_recall"] is None  # not finished: no confusion matrix
    docs = tmp_path / "docs"
    docs.mkdir()
    fl.render(fl.summarize(tmp_path), docs)
    row = {line.split(" | ")[2]: line for line in (docs / "full_length.md").read_text().splitlines()
           if line.startswith("| upernet-r18 | r |")}  # seed -> its table line
    # big rock, then P / R, then train samples/s: the unfinished run has neither of the last two
    assert "| 0.600 | 0.67 / 0.60 | 1.0 |" in row["0"] and "| 0.600 | - | - |" in row["1"]

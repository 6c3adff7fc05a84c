"""The one-shot GPU sweep, end to end on the CPU with tiny settings, so one try on a lent GPU is enough."""

import json
import sys
from pathlib import Path

import pytest

from tests import forked

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_sweep_trains_reports_and_respects_the_budget(tmp_path):
    out = tmp_path / "sweep"
    proc = forked.run([sys.executable, str(ROOT / "bench" / "gpu_sweep.py"), "--smoke", "--out", str(out),
                       "--runs", "upernet-r18:combo_logit_adj", "upernet-r18:default", "segformer-b0:default",
                       "--budget_s", "240"], capture_output=True, text=True, timeout=900, cwd=ROOT,
                      env={"OMP_NUM_THREADS": "1", **{k: v for k, v in __import__("os").environ.items()}})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_sweep.json").read_text())
    rows = {r["run"]: r for r in report["rows"]}
    # --smoke keeps the first two runs, 2 epochs, one seed
    assert set(rows) == {"upernet-r18__combo_logit_adj", "upernet-r18__default"}
    for name, r in rows.items():
        assert r["state"] == "finished" and r["epochs"] == 2, r
        metrics = json.loads((out / f"{name}_s0" / "metrics.json").read_text())
        # the row's best is the best of the run's own per-epoch evaluations
        state = json.loads(sorted((out / f"{name}_s0").glob("checkpoint-*/trainer_state.json"),
                                  key=lambda f: int(f.parent.name.split("-")[1]))[-1].read_text())
        evals = [e["eval_task_mean_iou"] for e in state["log_history"] if "eval_task_mean_iou" in e]
        assert r["best"]["task_mean_iou"] == max(evals)
        # the run's steps over its training time, as the run itself records it (not the planned samples)
        assert r["train_samples_per_s"] == metrics["train_samples_per_s"]
        assert metrics["train_samples_per_s"] == pytest.approx(state["global_step"] * 8 / metrics["train_runtime_s"], rel=1e-3)
        # the closing score is the run's own, after its logit adjustment
        assert r["final"]["task_mean_iou"] == metrics["validation"]["task_mean_iou"]
        assert r["final"]["tau"] == metrics["logit_adjustment_tau"]
        # wall throughput: the checkpoint's steps x batch 8 over the run's whole time, below the steps' own rate
        assert r["wall_samples_per_s"] == pytest.approx(state["global_step"] * 8 / r["seconds"], rel=0.01)
        assert 0 < r["wall_samples_per_s"] < r["train_samples_per_s"]
    default = json.loads((out / "upernet-r18__combo_logit_adj_s0" / "metrics.json").read_text())
    assert default["weight_averaging"] == "ema:0.999" and default["logit_adjustment"] == "auto"
    md = (out / "gpu_sweep.md").read_text()
    assert "upernet-r18__combo_logit_adj" in md and "no GPU" in md


def test_a_run_past_the_budget_is_stopped_and_reported(tmp_path):
    out = tmp_path / "sweep"
    proc = forked.run([sys.executable, str(ROOT / "bench" / "gpu_sweep.py"), "--smoke", "--out", str(out),
                       "--runs", "upernet-r18:default", "--budget_s", "3"], capture_output=True, text=True,
                      timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (row,) = json.loads((out / "gpu_sweep.json").read_text())["rows"]
    assert row["state"] == "stopped (budget)"  # start-up alone takes longer than 3 s
    assert row["seconds"] < 200


def test_gpu_runs_drop_the_cpu_precision_pin_and_keep_every_other_flag():
    sys.path.insert(0, str(ROOT))
    from bench.full_length import run_flags
    from bench.gpu_sweep import gpu_flags, loader_settings

    _, flags = run_flags("upernet-r18:combo_logit_adj")  # a float32-pinned CPU recipe
    i = flags.index("--bf16")
    assert flags[i + 1] == "false"
    assert gpu_flags(flags) == flags[:i] + flags[i + 2:]
    _, bf16 = run_flags("upernet-r18:combo_logit_adj_bf16")
    assert "--bf16" not in gpu_flags(bf16) and len(gpu_flags(bf16)) == len(bf16) - 2
    # 8 runs on 16 cores: one core drives each run, one more reads its data; never fewer than one worker
    assert loader_settings(8, cores=16)[:2] == ["--dataloader_num_workers", "1"]
    assert loader_settings(2, cores=16)[:2] == ["--dataloader_num_workers", "7"]
    assert loader_settings(8, cores=4)[:2] == ["--dataloader_num_workers", "1"]


@pytest.mark.parametrize("args, names", [
    (["--runs", "upernet-r18:nope"], "--runs 'upernet-r18:nope'"),
    (["--data", "/nonexistent/mars.npz"], "--data /nonexistent/mars.npz: no such file"),
    (["--rerender", "/nonexistent/sweep.json", "--out", "/nonexistent"], "--rerender /nonexistent/sweep.json"),
])
def test_a_user_mistake_is_one_line_and_exit_2(tmp_path, args, names):
    out = tmp_path / "sweep"
    proc = forked.run([sys.executable, str(ROOT / "bench" / "gpu_sweep.py"), *args, *(["--out", str(out)]
                       if "--out" not in args else [])], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert names in proc.stderr and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not out.exists()


def test_the_sweep_trains_the_default_model_and_recipe_first():
    # a GPU session is rare: its first run must be what train_hf.py runs with no flags
    from bench.ablation import CONFIGS, DEFAULT_CONFIG
    from bench.full_length import run_flags
    from bench.gpu_sweep import DEFAULT_RUNS
    from mars_segformer.training.run import parse_args

    default_model = parse_args(["--output_dir", "unused"])[0].model
    flags = [run_flags(spec)[1] for spec in DEFAULT_RUNS]  # each one resolves
    assert flags[0][flags[0].index("--model") + 1] == default_model
    recipe = CONFIGS[DEFAULT_CONFIG][1]
    for name in ("--loss", "--augmentations", "--frame_read_p", "--logit_adjustment", "--weight_averaging"):
        assert flags[0][flags[0].index(name) + 1] == recipe[recipe.index(name) + 1], name

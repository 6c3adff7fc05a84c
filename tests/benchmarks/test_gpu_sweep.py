"""The one-shot GPU sweep, end to end on the CPU with tiny settings, so one try on a lent GPU is enough."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_sweep_trains_reports_and_respects_the_budget(tmp_path):
    out = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_sweep.py"), "--smoke", "--out", str(out),
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
        state = json.loads(sorted((out / f"{name}_s0").glob("checkpoint-*/trainer_state.json"))[-1].read_text())
        evals = [e["eval_task_mean_iou"] for e in state["log_history"] if "eval_task_mean_iou" in e]
        assert r["best"]["task_mean_iou"] == max(evals)
        assert r["train_samples_per_s"] == metrics["train_samples_per_s"] > 0
    default = json.loads((out / "upernet-r18__combo_logit_adj_s0" / "metrics.json").read_text())
    assert default["weight_averaging"] == "ema:0.999" and default["logit_adjustment"] == "auto"
    md = (out / "gpu_sweep.md").read_text()
    assert "upernet-r18__combo_logit_adj" in md and "no GPU" in md


def test_a_run_past_the_budget_is_stopped_and_reported(tmp_path):
    out = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_sweep.py"), "--smoke", "--out", str(out),
                           "--runs", "upernet-r18:default", "--budget_s", "3"], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (row,) = json.loads((out / "gpu_sweep.json").read_text())["rows"]
    assert row["state"] == "stopped (budget)"  # start-up alone takes longer than 3 s
    assert row["seconds"] < 200

"""Warm start versus scratch at equal steps: does starting from a checkpoint of this project help?

    python bench/warm_start.py --seeds 0 1 --pretrain_steps 200 --steps 150 --threads 1

Per seed, on the frame-grouped split of the shared AI4Mars file: a model is trained on one half of the
training frames (``--train_frames 0:0.5``); then, on the other half (``0.5:1``), the same architecture
is trained from scratch and fine-tuned from that checkpoint (``--model FOLDER``), with equal steps and
the same recipe, evaluated on the same validation tiles every ``--eval_every`` steps. Reports the final
validation task mIoU of both arms, the gain, and the steps the warm start needed to reach the scratch
model's final score. Runs live in ``bench/results/warm_start/`` (finished ones are reused);
results: ``bench/results/warm_start.json`` and ``docs/warm_start.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import RESULTS, machine  # noqa: E402

CLASSES = ("soil", "bedrock", "sand", "big_rock")


def train(out: Path, args, seed: int, model: str, frames: str, steps: int) -> dict:
    if not (out / "metrics.json").exists():
        cmd = [sys.executable, str(ROOT / "train_hf.py"), "--output_dir", str(out), "--overwrite", "true",
               "--data", args.data, "--model", model, "--train_frames", frames, "--max_steps", str(steps),
               "--seed", str(seed), "--eval_strategy", "steps", "--eval_steps", str(args.eval_every),
               "--save_strategy", "no", "--load_best_model_at_end", "false", "--early_stopping_patience", "0",
               "--disable_tqdm", "true", "--logging_steps", "50", "--report_to", "none",
               "--torch_threads", str(args.threads)]
        print(f"[warm-start] {out.name}: {model} on frames {frames}, {steps} steps", flush=True)
        with open(out.with_suffix(".log"), "w") as log:
            proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        if proc.returncode != 0:
            raise SystemExit(f"{out.name} failed; see {out.with_suffix('.log')}")
    return json.loads((out / "metrics.json").read_text())


def curve(out: Path) -> list[tuple[int, float]]:
    """(step, validation task mIoU) of every evaluation, read from the run's log."""
    import ast

    points = []
    for line in out.with_suffix(".log").read_text().splitlines():
        if line.startswith("{") and "'eval_task_mean_iou'" in line:
            d = ast.literal_eval(line)
            points.append(float(d["eval_task_mean_iou"]))
    return points


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ai4mars_msl_64x128.npz"))
    p.add_argument("--model", default="upernet-r18")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--pretrain_steps", type=int, default=200)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--eval_every", type=int, default=25)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    root = RESULTS / "warm_start"
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        pre = root / f"pretrain_A_s{seed}"
        train(pre, args, seed, args.model, "0:0.5", args.pretrain_steps)
        scratch = train(root / f"scratch_B_s{seed}", args, seed, args.model, "0.5:1", args.steps)
        warm = train(root / f"warm_B_s{seed}", args, seed, str(pre), "0.5:1", args.steps)
        n = args.steps // args.eval_every  # the log's last evaluation repeats the final one
        s_curve, w_curve = curve(root / f"scratch_B_s{seed}")[:n], curve(root / f"warm_B_s{seed}")[:n]
        target = s_curve[-1]
        reach = next(((i + 1) * args.eval_every for i, v in enumerate(w_curve) if v >= target), None)
        rows.append({
            "seed": seed, "train_tiles_B": scratch["train_tiles"], "pretrain_tiles_A": json.loads(
                (pre / "metrics.json").read_text())["train_tiles"],
            "scratch": {"task_mean_iou": scratch["validation"]["task_mean_iou"],
                        **{c: scratch["validation"][f"iou_{c}"] for c in CLASSES}, "curve": s_curve},
            "warm": {"task_mean_iou": warm["validation"]["task_mean_iou"],
                     **{c: warm["validation"][f"iou_{c}"] for c in CLASSES}, "curve": w_curve},
            "gain": warm["validation"]["task_mean_iou"] - scratch["validation"]["task_mean_iou"],
            "warm_steps_to_scratch_final": reach,
        })
        print(f"[warm-start] seed {seed}: scratch {rows[-1]['scratch']['task_mean_iou']:.4f}, "
              f"warm {rows[-1]['warm']['task_mean_iou']:.4f}, warm reached scratch's final at step {reach}", flush=True)
    result = {"model": args.model, "pretrain_steps": args.pretrain_steps, "steps": args.steps, "batch_size": 32,
              "eval_every": args.eval_every, "machine": machine(), "rows": rows}
    tmp = RESULTS / "warm_start.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, RESULTS / "warm_start.json")
    m = result["machine"]
    lines = [f"`python bench/warm_start.py --seeds {' '.join(map(str, args.seeds))} --pretrain_steps "
             f"{args.pretrain_steps} --steps {args.steps}` on {m['cpu']} ({m['cores']} cores, no GPU), model "
             f"`{args.model}`, batch 32, frame-grouped validation split of the shared AI4Mars file. Checkpoint: "
             f"{args.pretrain_steps} steps on training frames 0:0.5; both arms then train {args.steps} steps on "
             "frames 0.5:1 with the default recipe (same validation tiles).",
             "", "| seed | scratch task mIoU | warm start task mIoU | gain | warm steps to reach scratch's final "
             "| big rock scratch / warm |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['scratch']['task_mean_iou']:.4f} | {r['warm']['task_mean_iou']:.4f} | "
                     f"{r['gain']:+.4f} | {r['warm_steps_to_scratch_final'] or 'not reached'} of {args.steps} | "
                     f"{r['scratch']['big_rock']:.3f} / {r['warm']['big_rock']:.3f} |")
    (ROOT / "docs" / "warm_start.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

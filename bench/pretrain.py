"""Self-supervised pretraining (DenseCL) against scratch, at equal fine-tuning samples and 10/25/100 % of the labels.

    python bench/pretrain.py --seeds 0 1 --pretrain_steps 800 --steps 150 --threads 1

Per seed, on the frame-grouped split of the shared AI4Mars file: ``python -m mars_segformer.pretrain``
pretrains the default model's backbone on every image the split allows (labelled training tiles and
unlabelled tiles, never a validation frame's), then for each share of the labelled training frames
(``--train_frames 0:F``) the default model is trained ``--steps`` steps from scratch and from that
backbone (``--model FOLDER``, the fine-tuning defaults), same recipe, same validation tiles. Arm
``pretrained_lr1`` (``--arms``) also fine-tunes with every tensor at the full rate. Runs live in
``bench/results/pretrain/`` (finished ones are reused, so the script continues where it stopped);
results: ``bench/results/pretrain.json`` (written after every run) and ``docs/pretrain.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.ablation import CONFIGS  # noqa: E402
from bench.common import RESULTS, SHARED_DATA, machine, result_name, run_child  # noqa: E402
from bench.warm_start import CLASSES, curve, train  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.outputs import atomic_write_json  # noqa: E402

#: arm -> (uses the pretrained backbone, extra train_hf.py flags)
ARMS = {"scratch": (False, ()), "pretrained": (True, ()),
        "pretrained_lr1": (True, ("--loaded_lr_scale", "1"))}


def pretrain(out: Path, args, seed: int) -> dict:
    """The seed's pretraining run (reused when finished, continued when not)."""
    if not (out / "pretrain.json").exists():
        cmd = [sys.executable, "-m", "mars_segformer.pretrain", "--data", args.data, "--output_dir", str(out),
               "--seed", str(seed), "--max_steps", str(args.pretrain_steps), "--batch_size", str(args.pretrain_batch),
               "--logging_steps", "50", "--torch_threads", str(args.threads)]
        print(f"[pretrain-bench] {out.name}: DenseCL, {args.pretrain_steps} steps x {args.pretrain_batch}", flush=True)
        with open(out.with_suffix(".log"), "a") as log:
            code = run_child(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        if code != 0:
            raise SystemExit(f"{out.name} failed; see {out.with_suffix('.log')}")
    return json.loads((out / "pretrain.json").read_text())


def row_of(run: Path, metrics: dict) -> dict:
    v = metrics["validation"]
    return {"task_mean_iou": v["task_mean_iou"], **{c: v[f"iou_{c}"] for c in CLASSES}, "curve": curve(run),
            "train_samples_per_s": metrics.get("train_samples_per_s")}


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 1.0])
    p.add_argument("--pretrain_steps", type=int, default=800)
    p.add_argument("--pretrain_batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=150, help="fine-tuning steps of every arm (batch 32)")
    p.add_argument("--eval_every", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--arms", nargs="+", default=["scratch", "pretrained"], choices=sorted(ARMS))
    p.add_argument("--name", type=result_name, default="pretrain", help="results name: bench/results/NAME.json and docs/NAME.md "
                   "(e.g. for an extra arm measured on its own)")
    p.add_argument("--recipe", default="7_upernet_r18", choices=sorted(CONFIGS),
                   help="bench/ablation.py config every arm trains with (its --model is replaced)")
    args = p.parse_args()
    root = RESULTS / "pretrain"
    root.mkdir(parents=True, exist_ok=True)
    result = {"method": "DenseCL", "recipe": args.recipe, "pretrain_steps": args.pretrain_steps,
              "pretrain_batch": args.pretrain_batch, "steps": args.steps, "batch_size": 32, "eval_every": args.eval_every,
              "machine": machine(), "pretraining": {}, "rows": []}
    for seed in args.seeds:
        folder = root / f"densecl_s{seed}"
        record = pretrain(folder, args, seed)
        result["pretraining"][str(seed)] = {k: record[k] for k in ("seconds", "images_per_s", "images_seen", "steps",
                                                                    "loss_first", "loss_last", "data", "machine")}
        for fraction in args.fractions:
            frames = f"0:{fraction:g}"
            row = {"seed": seed, "fraction": fraction}
            for name in args.arms:
                use, extra = ARMS[name]
                run = root / f"{name}_f{round(fraction * 100)}_s{seed}"  # no dot: the log is run.with_suffix(".log")
                row[name] = row_of(run, train(run, args, seed, str(folder) if use else "upernet-r18", frames,
                                              args.steps, extra))
            for name in args.arms[1:]:
                row[name]["gain"] = row[name]["task_mean_iou"] - row[args.arms[0]]["task_mean_iou"]
            result["rows"].append(row)
            print(f"[pretrain-bench] seed {seed}, {fraction:.0%} of the labels: " + ", ".join(
                f"{n} {row[n]['task_mean_iou']:.4f}" for n in args.arms), flush=True)
            atomic_write_json(RESULTS / f"{args.name}.json", result)
            write_table(result, args)


def write_table(result: dict, args) -> None:
    m = result["machine"]
    arms = list(args.arms)
    header = ["seed", "labels (share of training frames)", *arms, *(f"{a} - {arms[0]}" for a in arms[1:]),
              "big rock " + " / ".join(arms)]
    lines = [f"`python bench/pretrain.py --seeds {' '.join(map(str, args.seeds))} --pretrain_steps {args.pretrain_steps} "
             f"--steps {args.steps} --threads {args.threads} --arms {' '.join(args.arms)}` on {m['cpu']} ({m['cpu_capability']}, {m['cores']} cores, "
             f"no GPU), `bench/results/{args.name}.json`. Pretraining: DenseCL, {args.pretrain_steps} steps x "
             f"{args.pretrain_batch} tiles (two views each) on the split's allowed images; fine-tuning: the default "
             f"model (`{args.recipe}`), {args.steps} steps x 32 on the first F of the seed's training frames, "
             "validation task mIoU on the seed's frame-grouped validation tiles (same for every arm).", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for r in result["rows"]:
        cells = [str(r["seed"]), f"{r['fraction']:.0%}", *(f"{r[a]['task_mean_iou']:.4f}" for a in arms),
                 *(f"{r[a]['gain']:+.4f}" for a in arms[1:]), " / ".join(f"{r[a]['big_rock']:.3f}" for a in arms)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| seed | pretraining images (labelled + unlabelled) | kept out (validation tiles) | steps x batch | "
              "seconds | images/s | loss first -> last |", "|---|---|---|---|---|---|---|"]
    for seed, pr in result["pretraining"].items():
        d = pr["data"]
        lines.append(f"| {seed} | {d['labelled_tiles']} + {d['unlabelled_tiles']} | {d['validation_tiles_excluded']} + "
                     f"{d['unlabelled_tiles_excluded']} | {pr['steps']} x {result['pretrain_batch']} | {pr['seconds']:.0f} | "
                     f"{pr['images_per_s']:.1f} | {pr['loss_first']:.3f} -> {pr['loss_last']:.3f} |")
    (ROOT / "docs" / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

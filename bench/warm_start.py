"""Warm start versus scratch at equal steps: does starting from a checkpoint of this project help?

    python bench/warm_start.py --seeds 0 1 --pretrain_steps 200 --steps 150 --threads 1

Per seed, on the frame-grouped split of the shared AI4Mars file: a model is trained on one half of the
training frames (``--train_frames 0:0.5``); then, on the other half (``0.5:1``), the same architecture
is trained from scratch and fine-tuned from that checkpoint (``--model FOLDER``), with equal steps and
the same recipe, evaluated on the same validation tiles every ``--eval_every`` steps. Reports the final
validation task mIoU of both arms, the gain, and the steps the warm start needed to reach the scratch
model's final score. Runs live in ``bench/results/warm_start/RECIPE/`` (finished ones are reused, so
seeds run apart, side by side, are tabled together by a last call with every seed); results:
``bench/results/NAME.json`` and ``docs/NAME.md`` (``--name``, default ``warm_start``). The recipe is
``bench/ablation.py``'s default unless ``--recipe`` says otherwise.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.ablation import CONFIGS, DEFAULT_CONFIG, _without  # noqa: E402
from bench.common import RESULTS, SHARED_DATA, logged_evals, machine, result_name, run_child  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.outputs import atomic_write_json  # noqa: E402

CLASSES = ("soil", "bedrock", "sand", "big_rock")


def recipe_flags(name: str) -> list[str]:
    """The config's flags without ``--warmup_steps`` (0 there, train_hf.py's own default), so a warm start
    gets the fine-tuning default and the old-settings arm says its own."""
    return _without(CONFIGS[name][1], "--warmup_steps")


def train(out: Path, args, seed: int, model: str, frames: str, steps: int, extra=()) -> dict:
    if not (out / "metrics.json").exists():
        cmd = [sys.executable, str(ROOT / "train_hf.py"), "--output_dir", str(out), "--overwrite", "true",
               *recipe_flags(args.recipe), "--data", args.data, "--model", model, "--train_frames", frames, "--max_steps", str(steps),
               "--seed", str(seed), "--eval_strategy", "steps", "--eval_steps", str(args.eval_every),
               "--save_strategy", "no", "--load_best_model_at_end", "false", "--early_stopping_patience", "0",
               "--disable_tqdm", "true", "--logging_steps", "50", "--report_to", "none",
               "--torch_threads", str(args.threads), *extra]
        print(f"[warm-start] {out.name}: {model} on frames {frames}, {steps} steps", flush=True)
        with open(out.with_suffix(".log"), "w") as log:
            code = run_child(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        if code != 0:
            raise SystemExit(f"{out.name} failed; see {out.with_suffix('.log')}")
    return json.loads((out / "metrics.json").read_text())


def curve(out: Path) -> list[tuple[int, float]]:
    """(step, validation task mIoU) of every evaluation, read from the run's log."""
    return [float(d["eval_task_mean_iou"]) for d in logged_evals(out.with_suffix(".log"))]


#: the fine-tuning settings before training/finetune.py: every tensor at the full rate from step 1
OLD_SETTINGS = ["--loaded_lr_scale", "1", "--warmup_steps", "0"]
#: what trains on the second half of the frames: from scratch, warm with the defaults, warm with OLD_SETTINGS
ARMS = ("scratch", "warm", "warm_old_settings")


def arm(run: Path, metrics: dict, n: int) -> dict:
    v = metrics["validation"]
    return {"task_mean_iou": v["task_mean_iou"], **{c: v[f"iou_{c}"] for c in CLASSES}, "curve": curve(run)[:n],
            "settings": {k: metrics.get(k) for k in ("warmup_steps", "loaded_lr_scale", "ema_warmup")}}  # what the run used


def compare(seed: int, checkpoint: dict, arms: dict, eval_every: int) -> dict:
    """One seed's row: the checkpoint's score, each arm, and for each warm arm how its first evaluation
    compares with the checkpoint and (where scratch ran) how it compares with scratch."""
    ckpt = checkpoint["validation"]["task_mean_iou"]
    row = {"seed": seed, "checkpoint": {"task_mean_iou": ckpt, "big_rock": checkpoint["validation"]["iou_big_rock"]},
           **arms}
    scratch = arms.get("scratch")
    for name in ("warm", "warm_old_settings"):
        if name not in arms:
            continue
        c = arms[name]["curve"]
        row[name].update(first_eval_minus_checkpoint=c[0] - ckpt, never_below_checkpoint=min(c) >= ckpt)
        if scratch is not None:
            row[name].update(
                gain=arms[name]["task_mean_iou"] - scratch["task_mean_iou"],
                steps_to_scratch_final=next(((i + 1) * eval_every for i, v in enumerate(c)
                                             if v >= scratch["curve"][-1]), None))
    return row


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--model", default="upernet-r18",
                   help="the preset every arm trains (default: the stored results' model, the default before issue 19's "
                        "switch; train_hf.py's default is now upernet-r18-x1.5-h96)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--pretrain_steps", type=int, default=200)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--eval_every", type=int, default=25)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--recipe", default=DEFAULT_CONFIG, choices=sorted(CONFIGS),
                   help="bench/ablation.py config every arm trains with (its --model is replaced)")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS,
                   help="which arms train on the second half (warm is always among them)")
    p.add_argument("--warm_flags", default="",
                   help="train_hf.py flags added to the warm arm (e.g. '--warmup_steps 0.2'), to try other "
                        "fine-tuning settings; its runs are kept apart under warm_TAG_B_sSEED")
    p.add_argument("--tag", default="", help="names the warm arm's runs when --warm_flags is given")
    p.add_argument("--name", type=result_name, default="warm_start",
                   help="bench/results/NAME.json and docs/NAME.md (runs under bench/results/warm_start/RECIPE/)")
    args = p.parse_args()
    args.arms = [a for a in ARMS if a in set(args.arms) | {"warm"}]
    if args.warm_flags and not args.tag:
        p.error("--warm_flags needs --tag (a name for those runs' folders)")
    root = RESULTS / "warm_start" / args.recipe  # the runs of one recipe; seeds run apart share the folder
    root.mkdir(parents=True, exist_ok=True)
    n = args.steps // args.eval_every  # the log's last evaluation repeats the final one
    rows = []
    for seed in args.seeds:
        pre = root / f"pretrain_A_s{seed}"
        checkpoint = train(pre, args, seed, args.model, "0:0.5", args.pretrain_steps)
        runs = {"scratch": (args.model, ()), "warm": (str(pre), shlex.split(args.warm_flags)),
                "warm_old_settings": (str(pre), OLD_SETTINGS)}
        arms = {}
        for name in args.arms:
            model, extra = runs[name]
            folder = root / (f"warm_{args.tag}_B_s{seed}" if name == "warm" and args.tag else f"{name}_B_s{seed}")
            arms[name] = arm(folder, train(folder, args, seed, model, "0.5:1", args.steps, extra), n)
        rows.append(compare(seed, checkpoint, arms, args.eval_every))
        print(f"[warm-start] seed {seed}: checkpoint {rows[-1]['checkpoint']['task_mean_iou']:.4f}, "
              + ", ".join(f"{name} {a['task_mean_iou']:.4f} (first eval {a['curve'][0]:.4f})" for name, a in arms.items()),
              flush=True)
    result = {"model": args.model, "recipe": args.recipe, "arms": list(args.arms), "pretrain_steps": args.pretrain_steps, "steps": args.steps, "batch_size": 32,
              "eval_every": args.eval_every, "old_settings": OLD_SETTINGS,
              "warm_flags": args.warm_flags, "machine": machine(), "rows": rows}
    atomic_write_json(RESULTS / f"{args.name}.json", result)
    write_table(result, args)


def write_table(result: dict, args) -> None:
    m = result["machine"]
    used = result["rows"][0]["warm"]["settings"]  # every run's metrics.json records them
    lines = [f"`python bench/warm_start.py --seeds {' '.join(map(str, args.seeds))} --pretrain_steps "
             f"{args.pretrain_steps} --steps {args.steps}` on {m['cpu']} ({m['cpu_capability']}, {m['cores']} cores, "
             f"no GPU), model `{args.model}`, batch 32, frame-grouped validation split of the shared AI4Mars file, "
             f"evaluated every {args.eval_every} steps. Checkpoint: {args.pretrain_steps} steps on training frames "
             f"0:0.5; every arm then trains {args.steps} steps on frames 0.5:1 with the default recipe (same "
             f"validation tiles), recipe `{args.recipe}` of bench/ablation.py. `warm`: the fine-tuning defaults (loaded tensors at "
             f"{used['loaded_lr_scale']}x, warm-up {used['warmup_steps']} of the steps, "
             f"{'EMA warm-up ramp' if used.get('ema_warmup') else 'the weight average starting at the checkpoint'}, as seed "
             f"{result['rows'][0]['seed']}'s run recorded them)"
             + (f" with `{args.warm_flags}`" if args.warm_flags else "") + "; "
             f"`old settings`: `{' '.join(OLD_SETTINGS)}` (every tensor at 6e-4 from the first step).",
             "", "| seed | checkpoint | scratch | warm: first eval / final | old settings: first eval / final | "
             "warm never below the checkpoint | big rock scratch / warm / old |", "|---|---|---|---|---|---|---|"]
    def score(a):
        return "-" if a is None else f"{a['task_mean_iou']:.4f}"

    def curve_ends(a):
        return "-" if a is None else f"{a['curve'][0]:.4f} / {a['task_mean_iou']:.4f}"

    def rock(a):
        return "-" if a is None else f"{a['big_rock']:.3f}"

    for r in result["rows"]:
        s, w, o = r.get("scratch"), r["warm"], r.get("warm_old_settings")
        lines.append(f"| {r['seed']} | {r['checkpoint']['task_mean_iou']:.4f} | {score(s)} | {curve_ends(w)} | "
                     f"{curve_ends(o)} | {'yes' if w['never_below_checkpoint'] else 'no'} | "
                     f"{rock(s)} / {rock(w)} / {rock(o)} |")
    (ROOT / "docs" / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Self-training against supervised-only at equal training compute, in a low-label regime.

    python bench/self_training.py --seeds 0 1 --label_frames 0:0.25 --steps 100 --rounds 2 --threads 1

Per seed, on the frame-grouped split of the shared AI4Mars file: a teacher trains ``--steps`` steps on
a share of the labelled training frames. Then each round continues two chains by ``--steps`` steps,
starting from the previous model of the chain: the **student** also gets the previous student's
pseudo-labels of the unlabelled tiles (``--extra_data``, half of each batch in expectation), the
**control** sees the labelled tiles only. Both chains train the same number of steps from the same
start, so the difference is what the pseudo-labels add (labelling itself is inference and is not
counted). Validation: the labelled validation frames only. Runs under ``bench/results/self_training/``
(finished ones are reused); results: ``bench/results/self_training_<share>.json``, ``docs/self_training_<share>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import RESULTS, SHARED_DATA, machine  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402

CLASSES = ("soil", "bedrock", "sand", "big_rock")


def _train(out: Path, argv: list[str]) -> dict:
    from mars_segformer.training import main as train_main

    if not (out / "metrics.json").exists():
        print(f"[self-training] {out.name}", flush=True)
        if train_main(["--output_dir", str(out), "--overwrite", "true", *argv]) != 0:
            raise SystemExit(f"{out.name} failed")
    return json.loads((out / "metrics.json").read_text())["validation"]


def _parse() -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--model", default="upernet-r18")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--label_frames", default="0:0.25", help="share of the labelled training frames used")
    p.add_argument("--steps", type=int, default=100, help="steps of the teacher and of every round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--quota", type=float, default=0.3)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args()


def _seed_chain(seed: int, args: argparse.Namespace, root: Path, common: list[str]) -> dict:
    """One seed: the teacher, then per round a student (+ its pseudo-labels) and a control (labelled only)."""
    from mars_segformer.data import DataConfig
    from mars_segformer.self_train import label_round
    from mars_segformer.training.pseudo_labels import PseudoLabelConfig

    config = PseudoLabelConfig(threshold=args.threshold, quota=args.quota)
    s = ["--seed", str(seed)]
    teacher = root / f"s{seed}_teacher"
    row = {"seed": seed, "teacher": _train(teacher, ["--model", args.model, *common, *s]), "rounds": []}
    student, control = teacher, teacher
    for k in range(1, args.rounds + 1):
        pseudo = root / f"s{seed}_round{k}_pseudo.npz"
        if not pseudo.with_suffix(".json").exists():
            label_round(str(student), args.data, pseudo, config, DataConfig(seed=seed))
        record = json.loads(pseudo.with_suffix(".json").read_text())
        new_student, new_control = root / f"s{seed}_round{k}_student", root / f"s{seed}_round{k}_control"
        v_s = _train(new_student, ["--model", str(student), "--extra_data", str(pseudo), *common, *s])
        v_c = _train(new_control, ["--model", str(control), *common, *s])
        row["rounds"].append({"round": k, "student": v_s, "control": v_c, "steps_total": (k + 1) * args.steps,
                              "pseudo": {"tiles_kept": record["tiles_kept"],
                                         "pixels_kept_share": record["pixels_kept_share"],
                                         "thresholds_used": record["thresholds_used"],
                                         "excluded_validation_frame_tiles": record["leakage_guard"].get("excluded_tiles")}})
        student, control = new_student, new_control
    return row


def _table(result: dict, args: argparse.Namespace) -> list[str]:
    m = result["machine"]
    lines = [f"`python bench/self_training.py --seeds {' '.join(map(str, args.seeds))} --label_frames {args.label_frames} "
             f"--steps {args.steps} --rounds {args.rounds}` on {m['cpu']} ({m['cores']} cores, no GPU): `{args.model}`, "
             f"labelled frames {args.label_frames} of the training split, pseudo-labels of the file's unlabelled "
             f"tiles (threshold {args.threshold}, quota {args.quota}, hflip TTA); each round {args.steps} steps "
             "from the previous model of its chain; validation task mIoU on the labelled validation frames.",
             "", "| seed | round | steps in all | control (labelled only) | student (+ pseudo-labels) | gain | "
             "big rock control / student | pseudo tiles kept |", "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['seed']} | teacher | {args.steps} | {r['teacher']['task_mean_iou']:.4f} | | | "
                     f"{r['teacher']['iou_big_rock']:.3f} | |")
        for k in r["rounds"]:
            c, st = k["control"], k["student"]
            lines.append(f"| {r['seed']} | {k['round']} | {k['steps_total']} | {c['task_mean_iou']:.4f} | "
                         f"{st['task_mean_iou']:.4f} | {st['task_mean_iou'] - c['task_mean_iou']:+.4f} | "
                         f"{c['iou_big_rock']:.3f} / {st['iou_big_rock']:.3f} | {k['pseudo']['tiles_kept']} |")
    return lines


def main():
    args = _parse()
    import torch

    torch.set_num_threads(args.threads)
    tag = args.label_frames.replace(":", "-")  # one result per labelled share
    root = RESULTS / "self_training" / tag
    root.mkdir(parents=True, exist_ok=True)
    common = ["--data", args.data, "--train_frames", args.label_frames, "--max_steps", str(args.steps),
              "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
              "--disable_tqdm", "true", "--logging_steps", "50", "--report_to", "none",
              "--torch_threads", str(args.threads)]
    rows = [_seed_chain(seed, args, root, common) for seed in args.seeds]
    result = {"model": args.model, "label_frames": args.label_frames, "steps_per_stage": args.steps,
              "rounds": args.rounds, "threshold": args.threshold, "quota": args.quota, "batch_size": 32,
              "machine": machine(), "rows": rows}
    tmp = RESULTS / f"self_training_{tag}.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, RESULTS / f"self_training_{tag}.json")
    lines = _table(result, args)
    (ROOT / "docs" / f"self_training_{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""How far averaging several trained models goes on one validation split: each run alone, then the mean of the
first k runs' class probabilities, k = 2..n.

    python bench/ensemble.py --runs RUN_A RUN_B ... --name ensemble_full_length_s0

Every run must have been trained on the same split (the same ``split.json`` seed and data); its validation tiles
are rebuilt as ``bench/tta.py`` does and predicted tile by tile, without TTA. It measures the run-to-run part of the
distance to issue 19's bar: what a single training would gain if it had several runs' variance taken out (by
distillation, or by averaging the predictions at k times the inference cost). Saves ``bench/results/NAME.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, result_name, run_folders, save  # noqa: E402
from bench.tta import score, validation_tiles  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data import CLASS_NAMES  # noqa: E402

BIG_ROCK = CLASS_NAMES.index("big_rock")


def big_rock_precision_recall(preds: np.ndarray, truths: np.ndarray) -> tuple[float, float]:
    """Pixel shares over the labelled pixels (truth > 0): predicted big rock that is big rock, and the reverse."""
    labelled = truths > 0
    p, t = (preds == BIG_ROCK) & labelled, truths == BIG_ROCK
    hit = float((p & t).sum())
    return hit / max(float(p.sum()), 1.0), hit / max(float(t.sum()), 1.0)


def scores_of(probs: np.ndarray, truths: np.ndarray) -> dict:
    """Task mIoU, per-class IoU and big-rock precision / recall of the argmax of (N, C, H, W) ``probs``."""
    preds = probs.argmax(axis=1).astype(np.uint8)
    precision, recall = big_rock_precision_recall(preds, truths)
    return {**score(preds, truths), "big_rock_precision": precision, "big_rock_recall": recall}


def ensemble_rows(probs: list[np.ndarray], truths: np.ndarray) -> list[dict]:
    """Row k (k = 1..n): the mean of the first k runs' probabilities, scored."""
    total, rows = np.zeros_like(probs[0], dtype=np.float64), []
    for k, p in enumerate(probs, start=1):
        total += p
        rows.append({"runs": k, **scores_of(total / k, truths)})
    return rows


def run_probs(run: Path, images: np.ndarray, batch: int = 128, unshift: bool = False) -> np.ndarray:
    """(N, C, H, W) float32 class probabilities of ``run``'s model on ``images``, tile by tile; ``unshift``: with
    the logit adjustment its config records taken back off the classifier (the model as trained, tau 0)."""
    from bench.logit_adjustment import unfold_recorded
    from mars_segformer.inference import load_model
    from mars_segformer.inference.predictor import predict_probs

    model = load_model(str(run), "cpu")
    if unshift:  # also a shift that only an older run's metrics.json records
        metrics = run / "metrics.json"
        unfold_recorded(model, json.loads(metrics.read_text()) if metrics.is_file() else {})
    return np.concatenate([predict_probs(model, images[i:i + batch]).numpy() for i in range(0, len(images), batch)])


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="run folders trained on one split (two at least)")
    p.add_argument("--name", type=result_name, default="ensemble", help="bench/results/NAME.json")
    p.add_argument("--unshift", action="store_true",
                   help="take each model's folded logit adjustment back off (every run at tau 0)")
    args = p.parse_args()
    runs = run_folders(p, args.runs, need=("config.json", "split.json"), what="a run folder with its split.json")
    if len(runs) < 2:
        p.error(f"--runs: got {len(runs)} run folder; expected two or more trained on one split")
    images, truths, seed = validation_tiles(runs[0], None, None)
    probs, single = [], []
    for run in runs:
        t0 = time.perf_counter()
        _, their_truths, their_seed = validation_tiles(run, None, None)
        if their_seed != seed or their_truths.shape != truths.shape or not np.array_equal(their_truths, truths):
            p.error(f"--runs: {run} was trained on another validation split than {runs[0]} (seed {their_seed} vs "
                    f"{seed}); expected runs of one split")
        probs.append(run_probs(run, images, unshift=args.unshift))
        single.append({"run": run.name, **scores_of(probs[-1], truths), "seconds": round(time.perf_counter() - t0, 1)})
        print(f"{run.name}: task mIoU {single[-1]['task_mean_iou']:.4f}, big rock {single[-1]['big_rock']:.3f}",
              flush=True)
    rows = ensemble_rows(probs, truths)
    for r in rows:
        print(f"mean of the first {r['runs']}: task mIoU {r['task_mean_iou']:.4f}, big rock {r['big_rock']:.3f}")
    save(args.name, {"machine": machine(), "split_seed": seed, "validation_tiles": int(len(images)),
                     "runs": [str(r) for r in runs], "unshift": args.unshift, "single": single, "ensemble": rows,
                     "command": "python bench/ensemble.py --runs " + " ".join(args.runs) + f" --name {args.name}"
                                + (" --unshift" if args.unshift else "")})


if __name__ == "__main__":
    main()

"""Post-hoc logit adjustment of a trained run: each class's logit shifted by -tau * log(its loss weight).

    python bench/logit_adjustment.py --runs RUN [RUN ...] [--taus 0 0.25 0.5 0.75 1]

Training weights the loss per class (``--class_weights auto``: big rock ~7x soil), which is the same as
training on a prior tilted toward the rare classes; the model then over-predicts them (the default's
big-rock recall is ~4x its precision at 200 steps). Shifting the logits by ``-tau * log(w_c)`` undoes
the tilt (tau = 1: Menon et al., "Long-tail learning via logit adjustment", ICLR 2021). The shift is a
constant per class, so it folds exactly into the classifier's bias (``--logit_adjustment``) and a saved
model runs in ``pipeline`` unchanged. Scores the validation split of each run (from its ``split.json``)
at every tau, and also the training split's tiles, where tau can be chosen without the validation
tiles. Saves ``bench/results/logit_adjustment.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, result_name, save  # noqa: E402
from bench.tta import score, validation_tiles  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402


def logits_of(model, images, batch=128):
    """(N, C, H, W) float32 logits at the tile size (the plain prediction path, no TTA)."""
    from mars_segformer.inference import tile_logits

    return np.concatenate([tile_logits(model, images[i:i + batch]).cpu().numpy() for i in range(0, len(images), batch)])


def adjusted_predictions(logits, weights, tau) -> np.ndarray:
    """(N, H, W) uint8 argmax of the logits plus the shift tau folds in (models.logit_adjustment.logit_shift)."""
    from mars_segformer.models.logit_adjustment import logit_shift

    shift = np.asarray(logit_shift(weights, tau), np.float64)
    return np.argmax(logits + shift[None, :, None, None], axis=1).astype(np.uint8)


def adjusted_scores(logits, truths, weights, taus) -> dict:
    """Scores per tau of :func:`adjusted_predictions`."""
    out = {}
    for tau in taus:
        preds = adjusted_predictions(logits, weights, tau)
        res = score(preds, truths)
        scored = truths != 0
        res["big_rock_predicted_to_true"] = float(((preds == 4) & scored).sum() / max((truths == 4).sum(), 1))
        out[str(tau)] = res
    return out


def predicted_shares(logits, taus, weights) -> dict:
    """Share of each task class (1-4) among the pixels predicted as one, per tau: no labels needed."""
    out = {}
    for tau in taus:
        counts = np.bincount(adjusted_predictions(logits, weights, tau).ravel(), minlength=5)[1:].astype(np.float64)
        out[str(tau)] = (counts / max(counts.sum(), 1)).tolist()
    return out


def prior_match(shares: dict, prior) -> dict:
    """Total-variation distance of each tau's predicted shares from the training labels' class shares, and
    the tau that comes closest (a label-free choice: with the class weights' tilt taken back, a calibrated
    model predicts each class about as often as the training labels hold it)."""
    tv = {tau: 0.5 * float(np.abs(np.asarray(s) - np.asarray(prior)).sum()) for tau, s in shares.items()}
    return {"total_variation": tv, "tau": float(min(tv, key=lambda t: (tv[t], float(t))))}


def unfold_recorded(model, metrics: dict) -> list[float] | None:
    """Take a shift the run folded into its classifier (``--logit_adjustment``) back off, so every tau here is
    measured from the unadjusted model; returns it. Runs saved before the config recorded the shift
    (``models.logit_adjustment.SHIFT_ATTR``) have it in their ``metrics.json`` only."""
    from mars_segformer.models.logit_adjustment import SHIFT_ATTR, recorded_shift, unfold_logit_shift

    if recorded_shift(model) is None and metrics.get("logit_shift"):
        setattr(model.config, SHIFT_ATTR, metrics["logit_shift"])
    return unfold_logit_shift(model)


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True)
    p.add_argument("--taus", nargs="+", type=float, default=[0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--train_tiles", type=int, default=1500, help="training tiles scored (a seeded sample)")
    p.add_argument("--unlabelled_tiles", type=int, default=0,
                   help="also pick tau by matching the predicted class shares on this many of the file's unlabelled "
                        "tiles (and on the validation images, labels unused) to the training labels' shares")
    p.add_argument("--name", type=result_name, default="logit_adjustment")
    args = p.parse_args()
    from mars_segformer.data import DataConfig, load_arrays
    from mars_segformer.data.dataset import clean_and_split
    from mars_segformer.inference import load_model

    rows = {}
    for run in map(Path, args.runs):
        metrics = json.loads((run / "metrics.json").read_text())
        weights = metrics["class_weights"]
        images, truths, seed = validation_tiles(run, None, None)
        model = load_model(str(run), "cpu")
        taken_off = unfold_recorded(model, metrics)
        val_logits = logits_of(model, images)
        row = {"seed": seed, "class_weights": weights, "shift_taken_off": taken_off,
               "validation": adjusted_scores(val_logits, truths, weights, args.taus)}
        data = metrics.get("data")
        arrays = load_arrays(None if data in (None, "embedded AI4Mars sample") else data)
        kept, _, tr, _ = clean_and_split(arrays, DataConfig(seed=seed))
        pick = np.random.default_rng(0).permutation(tr)[: args.train_tiles]
        row["train_sample"] = adjusted_scores(logits_of(model, kept.train_images[pick]), kept.train_masks[pick],
                                              weights, args.taus)
        if args.unlabelled_tiles:
            prior = np.bincount(kept.train_masks[tr].ravel(), minlength=5)[1:].astype(np.float64)
            prior = (prior / prior.sum()).tolist()
            unl = arrays.test_images[np.random.default_rng(0).permutation(len(arrays.test_images))[: args.unlabelled_tiles]]
            row["prior"] = prior
            row["prior_match_unlabelled"] = prior_match(predicted_shares(logits_of(model, unl), args.taus, weights), prior)
            row["prior_match_validation_images"] = prior_match(
                predicted_shares(val_logits, args.taus, weights), prior)
            print(f"{run.name} prior-matching tau: unlabelled {row['prior_match_unlabelled']['tau']}, validation "
                  f"images {row['prior_match_validation_images']['tau']}", flush=True)
        for split in ("validation", "train_sample"):
            for tau, r in row[split].items():
                print(f"{run.name} {split:<12} tau {tau:<5} task mIoU {r['task_mean_iou']:.4f} "
                      f"big rock {r['big_rock']:.3f} (predicted/true {r['big_rock_predicted_to_true']:.2f})", flush=True)
        rows[run.name] = row
    save(args.name, {"machine": machine(), "taus": args.taus, "rows": rows})


if __name__ == "__main__":
    main()

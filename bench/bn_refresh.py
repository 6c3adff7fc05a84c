"""BatchNorm statistics of a finished run recomputed: what averaging them with the weights costs an averaged model.

    python bench/bn_refresh.py --runs bench/results/full_length/RUN ... [--tiles 2048] --name bn_refresh --threads 1

The default's EMA and the SWA of ``--weight_averaging`` average BatchNorm's running statistics with the weights
(``training/averaging.py``: ``AveragedModel(use_buffers=True)``), so the saved model's statistics are an average
of statistics gathered under other weights. SWA's paper recomputes them for the averaged weights instead (one pass
over training data, ``torch.optim.swa_utils.update_bn``); with a learning rate held up while SWA averages, the
weights it averages lie further apart, and the difference may matter more. For each run folder the saved model is
scored on its validation tiles tile by tile as saved, then with its statistics recomputed from ``--tiles`` of its
own training tiles (N drawn at random with seed 0, un-augmented, at the model's input scale), and each BatchNorm layer's
largest relative change of running variance is kept. Writes ``bench/results/NAME.json``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import command_line, machine, result_name, run_folders, save  # noqa: E402
from bench.tta import run_error, run_split, score  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data import MarsDataError  # noqa: E402
from mars_segformer.data.dataset import clean_and_split, model_pixels  # noqa: E402
from mars_segformer.data.split import check_split  # noqa: E402
from mars_segformer.inference import load_model, predict_masks  # noqa: E402

#: tiles per forward pass while the statistics are gathered
BATCH = 32


def batch_norms(model) -> list:
    import torch

    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def refresh(model, images: np.ndarray) -> float:
    """Recompute ``model``'s BatchNorm statistics from ``images`` (uint8 tiles, the model's own preprocessing, in
    batches of :data:`BATCH`): each layer's running mean and variance become the plain average of its batches'
    (``update_bn``: momentum None); returns the largest relative change of any running variance. The model ends in eval mode."""
    from torch.optim.swa_utils import update_bn

    before = [m.running_var.clone() for m in batch_norms(model)]
    device = next(model.parameters()).device
    update_bn((model_pixels(images[i:i + BATCH], model.config).to(device) for i in range(0, len(images), BATCH)),
              model)
    model.eval()
    changes = [float(((m.running_var - b).abs() / b.clamp_min(1e-8)).max()) for m, b in zip(batch_norms(model), before, strict=True)]
    return max(changes, default=0.0)


def measure(run: Path, tiles: int) -> dict:
    arrays, config, record = run_split(run, None, None)
    kept, _, train_rows, val_rows = clean_and_split(arrays, config)
    if record is not None:  # the tiles the run validated on, as predict --split validation checks them
        try:
            check_split(record, kept, val_rows, "its split.json")
        except MarsDataError as err:
            run_error(run, err)
    images, truths = kept.train_images[val_rows], kept.train_masks[val_rows]
    model = load_model(str(run), device="cpu")
    as_saved = score(predict_masks(model, images, 128, progress=False), truths)
    start = time.perf_counter()
    rows = np.random.default_rng(0).permutation(train_rows)[:tiles]  # the file is in frame order: a sample of all
    change = refresh(model, kept.train_images[rows])
    seconds = time.perf_counter() - start
    refreshed = score(predict_masks(model, images, 128, progress=False), truths)
    return {"validation_tiles": int(len(val_rows)), "refresh_tiles": len(rows),
            "batch_norm_layers": len(batch_norms(model)), "largest_relative_variance_change": change,
            "refresh_seconds": seconds, "as_saved": as_saved, "refreshed": refreshed,
            "difference": {k: refreshed[k] - as_saved[k] for k in as_saved}}


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="finished run folders with split.json")
    p.add_argument("--tiles", type=int, default=2048, help="training tiles the statistics are recomputed from")
    p.add_argument("--name", type=result_name, default="bn_refresh", help="bench/results/NAME.json")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args()
    if args.tiles < BATCH:
        p.error(f"--tiles must be at least {BATCH} (one batch), got {args.tiles}")
    runs = run_folders(p, args.runs, need=("config.json", "split.json"), what="a finished run folder")
    import torch

    torch.set_num_threads(args.threads)
    results = {r.name: measure(r, args.tiles) for r in runs}
    save(args.name, {"command": command_line(), "machine": machine(), "threads": args.threads, "tiles": args.tiles,
                     "runs": results})
    print("| run | as saved (big rock) | statistics recomputed (big rock) | difference | largest variance change |\n"
          "|---|---|---|---|---|")
    for name, r in results.items():
        a, b = r["as_saved"], r["refreshed"]
        print(f"| {name} | {a['task_mean_iou']:.4f} ({a['big_rock']:.3f}) | {b['task_mean_iou']:.4f} "
              f"({b['big_rock']:.3f}) | {b['task_mean_iou'] - a['task_mean_iou']:+.4f} | "
              f"{r['largest_relative_variance_change']:.2f} |")


if __name__ == "__main__":
    main()

"""Does context beyond the tile help? A tile-trained run predicts its validation frames whole, against tile by tile.

    python bench/frame_context.py --runs bench/results/full_length/upernet-r18__combo_logit_adj_s0 ... --name frame_context

The shared file stores a frame's tiles next to each other, row-major, 4 rows × 2 columns of a 256×256 frame
(``../shared/data/README.md``); a frame with all 8 tiles can be put back together exactly. For each run, the
complete frames among its validation frames (``split.json``) are predicted three ways with no retraining: tile by
tile (what training and evaluation do); as whole 256×256 frames (the model sees the frame at once); and by the
package's frame path (``predict --images``: tile-sized windows on the tile grid and on the grid shifted by half a
tile, blended), the predictions then cut back into the same tiles.
Both are scored on the same pixels: task mIoU, per-class IoU, and big-rock instances by size
(``mars_segformer.metrics.instances``). Writes ``bench/results/NAME.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, result_name, run_folders, save  # noqa: E402
from bench.tta import score  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data import load_arrays  # noqa: E402
from mars_segformer.data.ai4mars import cut_tiles, join_tiles  # noqa: E402
from mars_segformer.data.frame_shift import TILES_PER_FRAME, complete_frames  # noqa: E402
from mars_segformer.data.io import CLASS_NAMES  # noqa: E402
from mars_segformer.inference import load_model, predict_masks  # noqa: E402
from mars_segformer.inference.frames import predict_frame_probs  # noqa: E402
from mars_segformer.metrics.instances import instance_scores  # noqa: E402


def measure(run: Path) -> dict:
    split = json.loads((run / "split.json").read_text())
    arrays = load_arrays(split["data"])
    rows = complete_frames(arrays.train_frame_ids, set(split["validation_frame_ids"]))
    images, truths = arrays.train_images[rows], arrays.train_masks[rows]
    print(f"[frame context] {run.name}: {len(rows) // TILES_PER_FRAME} complete validation frames ({len(rows)} tiles)",
          flush=True)
    model = load_model(str(run), "cpu")
    by_tile = predict_masks(model, images, batch_size=128)
    frames = join_tiles(images)
    by_frame = cut_tiles(predict_masks(model, frames, batch_size=16))
    by_window = cut_tiles(np.stack([predict_frame_probs(model, f, batch_size=64).argmax(0)
                                   for f in tqdm(frames, desc="windows", unit="frame")]).astype(np.uint8))
    return {"frames": len(rows) // TILES_PER_FRAME, "tiles": len(rows),
            **{name: {**score(pred, truths), "big_rock_instances": instance_scores(truths, pred, 4, CLASS_NAMES)}
               for name, pred in (("tile_by_tile", by_tile), ("whole_frame", by_frame), ("windows", by_window))}}


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="run folders with split.json, trained on the shared file")
    p.add_argument("--name", type=result_name, default="frame_context", help="bench/results/NAME.json")
    args = p.parse_args()
    runs = run_folders(p, args.runs, need=("config.json", "split.json"), what="a finished run folder")
    results = {r.name: measure(r) for r in runs}
    save(args.name, {"machine": machine(), "runs": results})
    print("| run | frames | way | task mIoU | soil | bedrock | sand | big rock |\n|---|---|---|---|---|---|---|---|")
    for name, res in results.items():
        for way in ("tile_by_tile", "whole_frame", "windows"):
            s = res[way]
            print(f"| {name} | {res['frames']} | {way.replace('_', ' ')} | {s['task_mean_iou']:.4f} | "
                  + " | ".join(f"{s[c]:.4f}" for c in CLASS_NAMES[1:]) + " |")


if __name__ == "__main__":
    main()

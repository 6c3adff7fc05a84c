"""A PNG of whole validation frames, their tiles' big rock predicted one by one and inside the frame.

    python bench/frame_context_gallery.py --run bench/results/full_length/upernet-r18__combo_logit_adj_frame_shift_p1_x1.5_head96_bf16_s3 \
        --out docs/frame_context_gallery.png

The run's validation split is rebuilt as ``bench/tta.py`` does; its tiles are predicted tile by tile and inside
their frames (``predict --context frame``), and the complete frames holding the most big-rock pixels (the truth's,
so the pick does not depend on either prediction) are drawn whole: frame, truth, and big-rock hits (green) / misses
(red) / false alarms (yellow) of each way. The title gives both ways' big-rock IoU over the drawn frames and over all
the complete validation frames.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import command_line, machine, result_name, save  # noqa: E402
from bench.tta import score, validation_split  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data.ai4mars import join_tiles  # noqa: E402
from mars_segformer.data.frame_layout import frame_blocks  # noqa: E402
from mars_segformer.data.frame_shift import TILES_PER_FRAME  # noqa: E402
from mars_segformer.inference import load_model, predict_masks, predict_masks_in_context  # noqa: E402
from mars_segformer.outputs import atomic_path  # noqa: E402
from mars_segformer.visualization import save_context_gallery  # noqa: E402

BIG_ROCK = 4


def big_rock_iou(truths: np.ndarray, preds: np.ndarray) -> float:
    """Big-rock IoU of the task's metric (background truth not scored)."""
    return score(preds, truths)["big_rock"]


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="run folder or one of its checkpoints")
    p.add_argument("--out", default=str(ROOT / "docs" / "frame_context_gallery.png"))
    p.add_argument("--frames", type=int, default=4, help="complete frames to draw")
    p.add_argument("--seed", type=int, default=None, help="split seed of a run without split.json")
    p.add_argument("--data", default=None, help="default: the run's own data")
    p.add_argument("--name", type=result_name, default="frame_context_gallery", help="bench/results/NAME.json")
    args = p.parse_args()
    if args.frames < 1:
        p.error(f"--frames {args.frames}: expected 1 or more")
    images, truths, frame_ids, _ = validation_split(Path(args.run), args.seed, args.data)
    if frame_ids is None:
        p.error(f"--run {args.run}: its data has no frame ids; expected a file with frames (the shared file)")
    complete = [b.rows for b in frame_blocks(images, frame_ids) if len(b.rows) == TILES_PER_FRAME]
    if not complete:
        p.error(f"--run {args.run}: no complete frame in its validation split; expected at least one")
    rows = np.stack(complete)  # (F, 8) tile rows, row by row
    pick = rows[np.argsort(-(truths[rows] == BIG_ROCK).sum(axis=(1, 2, 3)), kind="stable")[:args.frames]]
    model = load_model(args.run, "cpu")
    tile_preds = predict_masks(model, images, batch_size=128, progress=False)
    context_preds, _ = predict_masks_in_context(model, images, frame_ids, 128, progress=False)
    frames, t, a, b = (join_tiles(x[pick.ravel()]) for x in (images, truths, tile_preds, context_preds))
    every = rows.ravel()
    drawn = {"tile_by_tile": big_rock_iou(t, a), "inside_the_frame": big_rock_iou(t, b)}
    complete_iou = {"tile_by_tile": big_rock_iou(truths[every], tile_preds[every]),
                    "inside_the_frame": big_rock_iou(truths[every], context_preds[every])}
    title = (f"{Path(args.run).name}\nthe {len(pick)} complete validation frames with the most big rock; big-rock IoU "
             f"over them: tile by tile {drawn['tile_by_tile']:.3f}, inside the frame {drawn['inside_the_frame']:.3f}\n"
             f"(over all {len(rows)} complete validation frames: {complete_iou['tile_by_tile']:.3f} "
             f"and {complete_iou['inside_the_frame']:.3f})")
    save_context_gallery(frames, t, a, b, args.out, title)
    with Image.open(args.out) as im:  # 256 colours: 0.8 MB instead of 1.4 for six frames, no visible change
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    with atomic_path(args.out) as tmp:
        small.save(tmp, format="PNG", optimize=True)
    print(f"saved {args.out}")
    save(args.name, {"machine": machine(), "run": args.run, "png": args.out, "frames_drawn": int(len(pick)),
                     "big_rock_iou_drawn": drawn, "complete_frames": int(len(rows)),
                     "big_rock_iou_complete_frames": complete_iou, "command": command_line()})


if __name__ == "__main__":
    main()

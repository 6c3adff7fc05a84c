"""How much big rock each seed's validation split holds, and how few frames hold it.

    python bench/split_composition.py --seeds 0 1 2 3 42

For each seed the frame-grouped split the runs use (``data.split.train_val_split``, the package's validation
share) is rebuilt from the shared file, and its validation tiles are counted: big rock's share of the labelled
pixels, its connected components (instances) and their median size, the tiles and frames with any, and the share of
the split's big-rock pixels in its three richest frames. Big-rock IoU is a ratio of pixel counts summed over the
split, so where three frames hold half the pixels, they set most of the score. Saves ``bench/results/NAME.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import SHARED_DATA, load_data, machine, result_name, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data.split import BIG_ROCK, VAL_FRACTION, train_val_split  # noqa: E402


def composition(masks: np.ndarray, frames: np.ndarray, top: int = 3) -> dict:
    """Big rock in (N, H, W) ``masks`` (0: unlabelled) whose tiles come from ``frames``."""
    big = masks == BIG_ROCK
    sizes = [s for tile in big for s in np.bincount(ndimage.label(tile)[0].ravel())[1:]]
    per_frame = {}
    for fr, n in zip(frames, big.sum(axis=(1, 2)), strict=True):
        if n:
            per_frame[fr] = per_frame.get(fr, 0) + int(n)
    richest = sorted(per_frame.values(), reverse=True)
    total = int(big.sum())
    return {"tiles": int(len(masks)), "frames": int(len(set(frames.tolist()))),
            "big_rock_share_of_labelled": total / max(int((masks > 0).sum()), 1), "big_rock_pixels": total,
            "instances": len(sizes), "median_instance_pixels": float(np.median(sizes)) if sizes else 0.0,
            "tiles_with_big_rock": int(big.any(axis=(1, 2)).sum()), "frames_with_big_rock": len(per_frame),
            f"top{top}_frames_share": sum(richest[:top]) / max(total, 1)}


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 42])
    p.add_argument("--data", default=str(SHARED_DATA), help="the labelled .npz (the shared file)")
    p.add_argument("--name", type=result_name, default="split_composition", help="bench/results/NAME.json")
    args = p.parse_args()
    if not Path(args.data).is_file():
        p.error(f"--data {args.data}: no such file; expected the shared .npz (../shared/data/README.md)")
    arrays = load_data(p, args.data)
    rows = {}
    for seed in args.seeds:
        _, val = train_val_split(arrays.train_masks, arrays.train_frame_ids, VAL_FRACTION, seed)
        rows[str(seed)] = composition(arrays.train_masks[val], arrays.train_frame_ids[val])
        r = rows[str(seed)]
        print(f"seed {seed}: {r['tiles']} tiles, big rock {r['big_rock_share_of_labelled']:.4f} of labelled pixels, "
              f"{r['instances']} instances (median {r['median_instance_pixels']:.0f} px), "
              f"{r['frames_with_big_rock']} of {r['frames']} frames, top 3 frames {r['top3_frames_share']:.2f}")
    save(args.name, {"machine": machine(), "data": args.data, "val_fraction": VAL_FRACTION, "seeds": rows,
                     "command": "python bench/split_composition.py --seeds " + " ".join(map(str, args.seeds))})


if __name__ == "__main__":
    main()

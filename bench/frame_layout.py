"""How often the layout of a frame that lost tiles is put back right (``data.frame_layout.place_tiles``).

    python bench/frame_layout.py [--data ../shared/data/ai4mars_msl_64x128.npz] [--priors 1.5 2] [--join_max 2.5 3]
                                 [--near 8 1 2 4 63]

The truth comes from the complete frames: from each, ``k`` of its 8 tiles are kept (a seeded random choice, for k
from 2 to 7; the stored order kept, as the file keeps it), placed again by ``place_tiles``, and the joins the chosen
layout makes (two tiles put next to each other) are compared with the joins of the tiles' true places. Precision:
the share of made joins that are true (a wrong one shows the model two tiles as one image that were not);
recall: the share of true joins made. A layout whose worst join is above the join bound is not used, as in
``frame_blocks``. ``--near``: the rows (columns) next to a join whose steps a join's step is compared with
(``data.frame_layout.NEAR``; 63, the whole tile, was the first version). Also counts the file's frames by stored tiles. Writes ``bench/results/frame_layout.json``.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import SHARED_DATA, load_data, machine, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data import frame_layout  # noqa: E402
from mars_segformer.data.frame_layout import (  # noqa: E402
    JOIN_MAX,
    JOIN_PRIOR,
    MIN_TILES,
    NEAR,
    _joins,
    frame_blocks,
    frame_runs,
    place_tiles,
)
from mars_segformer.data.frame_shift import TILES_PER_FRAME, complete_frames  # noqa: E402

KEPT = range(2, TILES_PER_FRAME)


def frames_by_tiles(frame_ids) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(e - s for s, e in frame_runs(frame_ids)).items())}


def in_block_share(images, frame_ids) -> dict:
    """How many tiles ``predict --context frame`` predicts inside a block of their frame (the package's settings)."""
    blocks = frame_blocks(images, frame_ids)
    n = sum(int(b.owned.sum()) for b in blocks)
    return {"tiles": len(images), "in_blocks": n, "share": round(n / max(len(images), 1), 4), "blocks": len(blocks)}


def score(images, frames, prior: float, join_max: float) -> dict[str, dict]:
    rng = np.random.default_rng(0)  # the same kept tiles for every setting
    out = {}
    for k in KEPT:
        true_n = made_n = right_n = used = 0
        for f in frames:
            keep = tuple(np.sort(rng.choice(TILES_PER_FRAME, k, replace=False)).tolist())
            true = set(_joins(keep))
            placed = place_tiles(images[f[list(keep)]], prior)
            true_n += len(true)
            if placed is None or placed[1] > join_max:
                continue
            made = set(_joins(placed[0]))
            made_n, right_n, used = made_n + len(made), right_n + len(made & true), used + 1
        out[str(k)] = {"frames": len(frames), "layouts_used": used, "true_joins": true_n, "made_joins": made_n,
                       "precision": round(right_n / max(made_n, 1), 4), "recall": round(right_n / max(true_n, 1), 4)}
    return out


def main() -> None:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--priors", type=float, nargs="+", default=[1.5, 2.0])
    p.add_argument("--join_max", type=float, nargs="+", default=[2.5, 3.0])
    p.add_argument("--near", type=int, nargs="+", default=[NEAR], help="each run with the package's prior and join "
                   "bound (the first value: the --priors x --join_max grid)")
    args = p.parse_args()
    arrays = load_data(p, args.data)
    frames = complete_frames(arrays.train_frame_ids).reshape(-1, TILES_PER_FRAME)
    rows = []
    print("| near | prior | join max | " + " | ".join(f"k {k}: precision / recall" for k in KEPT) + " |")
    print("|---|---|---|" + "---|" * len(KEPT))
    grid = [(args.near[0], prior, join_max) for prior in args.priors for join_max in args.join_max]
    for near, prior, join_max in grid + [(n, JOIN_PRIOR, JOIN_MAX) for n in args.near[1:]]:
        frame_layout.NEAR = near  # join_ratio reads it at each call
        res = score(arrays.train_images, frames, prior, join_max)
        rows.append({"near": near, "prior": prior, "join_max": join_max, "by_kept_tiles": res})
        print(f"| {near} | {prior} | {join_max} | " + " | ".join(
            f"{res[str(k)]['precision']:.3f} / {res[str(k)]['recall']:.3f}" for k in KEPT) + " |")
    frame_layout.NEAR = NEAR
    stored = {"training": frames_by_tiles(arrays.train_frame_ids), "test": frames_by_tiles(arrays.test_frame_ids)}
    print(f"frames by stored tiles: {stored}")
    in_blocks = {name: in_block_share(images, ids) for name, images, ids in
                 (("training", arrays.train_images, arrays.train_frame_ids),
                  ("test", arrays.test_images, arrays.test_frame_ids))}
    print(f"tiles predicted inside a block of their frame (predict --context frame): {in_blocks}")
    save("frame_layout", {"what": __doc__.splitlines()[0], "data": args.data, "complete_frames": len(frames),
                          "package_settings": {"join_prior": JOIN_PRIOR, "join_max": JOIN_MAX, "min_tiles": MIN_TILES,
                                               "near": NEAR},
                          "frames_by_stored_tiles": stored,
                          "tiles_in_blocks": in_blocks, "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()

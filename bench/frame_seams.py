"""How well frame_shift's layout check separates a file's true frame layout from wrong ones.

    python bench/frame_seams.py [--data ../shared/data/ai4mars_msl_64x128.npz]

Every complete frame of the file is joined in the stored order, with each frame's two tile columns swapped, and in
a seeded shuffled order; ``data.frame_shift.seam_ratio`` of each. Writes ``bench/results/frame_seams.json``
(percentiles per order, and how many frames each order would pass under ``SEAM_FRAME_MAX``) and prints a table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import SHARED_DATA, load_data, machine, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data.ai4mars import join_tiles  # noqa: E402
from mars_segformer.data.frame_shift import (  # noqa: E402
    SEAM_FRAME_MAX,
    SEAM_MEDIAN_MAX,
    TILES_PER_FRAME,
    complete_frames,
    seam_ratio,
)

PERCENTILES = (0, 5, 50, 95, 100)


def main() -> None:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA))
    args = p.parse_args()
    arrays = load_data(p, args.data)
    frames = complete_frames(arrays.train_frame_ids).reshape(-1, TILES_PER_FRAME)
    rng = np.random.default_rng(0)
    orders = {"stored": lambda f: f, "columns swapped": lambda f: f[[1, 0, 3, 2, 5, 4, 7, 6]],
              "shuffled": lambda f: f[rng.permutation(8)]}
    rows = {}
    print("| order | frames | min | 5 % | median | 95 % | max | frames <= SEAM_FRAME_MAX |\n|---|---|---|---|---|---|---|---|")
    for name, order in orders.items():
        ratios = np.array([seam_ratio(join_tiles(arrays.train_images[order(f)])[0]) for f in frames])
        pct = np.percentile(ratios, PERCENTILES)
        rows[name] = {"frames": len(ratios), "percentiles": dict(zip(map(str, PERCENTILES), np.round(pct, 3).tolist(), strict=True)),
                      "median": round(float(np.median(ratios)), 3), "passing_frames": int((ratios <= SEAM_FRAME_MAX).sum())}
        print(f"| {name} | {len(ratios)} | " + " | ".join(f"{v:.2f}" for v in pct) + f" | {rows[name]['passing_frames']} |")
    save("frame_seams", {"what": __doc__.splitlines()[0], "data": args.data, "seam_median_max": SEAM_MEDIAN_MAX,
                         "seam_frame_max": SEAM_FRAME_MAX, "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()

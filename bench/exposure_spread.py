"""How far the photometric augmentations move a tile's brightness, against the data's own spread.

    python bench/exposure_spread.py [--data ../shared/data/ai4mars_msl_64x128.npz] [--tiles 400]

The data's side: the median grey level of each class's pixels over the labelled tiles, and the standard deviation of
the frames' mean brightness (where the file has frame ids). The augmentations' side: for each photometric name of
``data.augment.AUGMENTATIONS``, applied with p 1 to the first ``--tiles`` tiles (seed 0), the absolute change of the
tile's mean grey level (median and 90th percentile). Writes ``bench/results/exposure_spread.json`` and prints a table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import SHARED_DATA, load_data, machine, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data import build_augmentation  # noqa: E402
from mars_segformer.data.io import CLASS_NAMES  # noqa: E402

#: the augmentations that change grey levels without moving pixels
PHOTOMETRIC = ("brightness_contrast", "exposure")


def data_spread(images: np.ndarray, masks: np.ndarray, frame_ids: np.ndarray | None) -> dict:
    """Median grey level per class and the sd of the frames' mean brightness (None without frame ids)."""
    medians = {name: float(np.median(images[masks == c])) for c, name in enumerate(CLASS_NAMES) if (masks == c).any()}
    frame_sd = None
    if frame_ids is not None:
        _, inv = np.unique(frame_ids, return_inverse=True)
        means = np.bincount(inv, images.mean((1, 2))) / np.bincount(inv)
        frame_sd = round(float(means.std()), 2)
    return {"class_median_grey": medians, "frame_mean_brightness_sd": frame_sd}


def tile_mean_shift(name: str, images: np.ndarray) -> dict:
    """|change of the tile mean| under augmentation ``name`` at p 1, seed 0: median and 90th percentile."""
    aug = build_augmentation([name], seed=0)
    aug.transforms[0].p = 1.0
    shifts = np.abs([aug(image=img)["image"].mean() - img.mean() for img in images])
    return {"median": round(float(np.median(shifts)), 2), "p90": round(float(np.percentile(shifts, 90)), 2)}


def main() -> None:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--tiles", type=int, default=400, help="tiles to augment (the first N)")
    args = p.parse_args()
    if args.tiles < 1:
        p.error(f"--tiles: expected a positive number of tiles, got {args.tiles}")
    arrays = load_data(p, args.data)
    spread = data_spread(arrays.train_images, arrays.train_masks, arrays.train_frame_ids)
    shifts = {name: tile_mean_shift(name, arrays.train_images[: args.tiles]) for name in PHOTOMETRIC}
    print("class median grey level: " + ", ".join(f"{k} {v:g}" for k, v in spread["class_median_grey"].items()))
    print(f"sd of the frames' mean brightness: {spread['frame_mean_brightness_sd']}")
    print("| augmentation | tile mean moved, median | 90th percentile |\n|---|---|---|")
    for name, s in shifts.items():
        print(f"| {name} | {s['median']:.1f} | {s['p90']:.1f} |")
    save("exposure_spread", {"what": __doc__.splitlines()[0], "data": args.data, "tiles": min(args.tiles, len(arrays.train_images)),
                             "machine": machine(), **spread, "tile_mean_shift": shifts})


if __name__ == "__main__":
    main()

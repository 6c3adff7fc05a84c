"""Exploratory data analysis of a Mars tile file: class shares, sample grid, outliers.

Usage::

    python -m mars_segformer.eda [DATA.npz | AI4MARS_FOLDER] --out eda/
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .argparsing import ArgumentParser
from .data import CLASS_NAMES, NUM_CLASSES, MarsDataError, find_outliers, load_arrays
from .outputs import OutputPathError, atomic_write_json, check_output_folder
from .visualization import save_class_share_chart, save_sample_grid


def class_statistics(masks: np.ndarray) -> dict:
    """Pixel share of each class and the share of tiles in which it appears."""
    n = len(masks)
    counts = np.bincount(masks.ravel(), minlength=NUM_CLASSES)[:NUM_CLASSES]
    present = np.stack([(masks.reshape(n, -1) == c).any(axis=1) for c in range(NUM_CLASSES)], axis=1)
    return {
        "pixel_share": (counts / counts.sum()).tolist(),
        "tile_presence": present.mean(axis=0).tolist(),
        "tiles_with_class": present.sum(axis=0).astype(int).tolist(),
    }


def format_table(stats: dict, n_tiles: int) -> str:
    lines = [f"{'class':<12}{'pixel share':>12}{'tiles present':>15}{'tiles':>8}"]
    for c, name in enumerate(CLASS_NAMES):
        lines.append(
            f"{c} {name:<10}{stats['pixel_share'][c]:>12.2%}{stats['tile_presence'][c]:>15.2%}{stats['tiles_with_class'][c]:>8}"
        )
    lines.append(f"{n_tiles} labelled tiles")
    return "\n".join(lines)


def run_eda(data: str | None, out: str | os.PathLike, min_count: int = 20, grid: int = 16, seed: int = 0) -> dict:
    """Write ``eda.json``, ``class_shares.png``, ``samples.png`` and ``outliers.png`` (if any) into ``out``."""
    if min_count < 2:
        raise MarsDataError(f"--min-count must be at least 2 (tiles sharing one mask), got {min_count}")
    out = Path(out)
    check_output_folder(out, "--out")
    arrays = load_arrays(data)
    out.mkdir(parents=True, exist_ok=True)
    stats = class_statistics(arrays.train_masks)
    report = find_outliers(arrays.train_masks, arrays.train_images, min_count=min_count)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(arrays), min(grid, len(arrays)), replace=False))
    save_sample_grid(arrays.train_images[pick], arrays.train_masks[pick], out / "samples.png", f"{arrays.source}: random tiles")
    save_class_share_chart(stats["pixel_share"], stats["tile_presence"], out / "class_shares.png", "class shares")
    if len(report.outlier_indices):
        o = report.outlier_indices[:grid]
        save_sample_grid(arrays.train_images[o], arrays.train_masks[o], out / "outliers.png", "outliers (shared masks)")
    result = {
        "source": arrays.source,
        "tiles": len(arrays),
        "test_tiles": len(arrays.test_images),
        "frames": None if arrays.train_frame_ids is None else int(len(np.unique(arrays.train_frame_ids))),
        "classes": list(CLASS_NAMES),
        **stats,
        "outliers": {
            "indices": report.outlier_indices.tolist(),
            "groups": report.groups,
            "near_duplicate_groups": report.near_duplicate_groups,
            "min_count": min_count,
        },
    }
    atomic_write_json(out / "eda.json", result)
    print(format_table(stats, len(arrays)))
    print(report.summary())
    print(f"figures and eda.json written to {out}")
    return result


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m mars_segformer.eda", description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=None, help="course-layout .npz or AI4Mars folder (default: embedded sample)")
    parser.add_argument("--out", default="eda", help="output folder")
    parser.add_argument("--min-count", type=int, default=20, help="tiles sharing one multi-class mask to call them outliers")
    args = parser.parse_args(argv)
    try:
        run_eda(args.data, args.out, args.min_count)
    except (MarsDataError, OutputPathError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # disk full, permissions
        print(f"error: {err.filename or args.out}: cannot write ({err.strerror or err})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

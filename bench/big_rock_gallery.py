"""A PNG of big-rock hits and misses on validation tiles of a run, and its big-rock precision/recall.

    python bench/big_rock_gallery.py --run bench/results/full_length/upernet-r18__default_s42 --out docs/big_rock_hits.png

The run's own split is rebuilt from its ``metrics.json`` seed (and the data file it names), the
validation tiles holding the most big-rock pixels are predicted (plain, no TTA) and drawn: image,
truth, prediction, and hits (green) / misses (red) / false alarms (yellow).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.tta import validation_tiles  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.inference import load_model, predict_masks  # noqa: E402
from mars_segformer.visualization import big_rock_outcomes, save_big_rock_gallery  # noqa: E402


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="run folder or one of its checkpoints (model.safetensors)")
    p.add_argument("--out", default=str(ROOT / "docs" / "big_rock_hits.png"))
    p.add_argument("--tiles", type=int, default=8)
    p.add_argument("--seed", type=int, default=None, help="split seed of a run without split.json")
    p.add_argument("--data", default=None, help="default: the run's own data")
    args = p.parse_args()
    images, truths, _ = validation_tiles(Path(args.run), args.seed, args.data)
    va = np.arange(len(images))
    preds = predict_masks(load_model(args.run, "cpu"), images, batch_size=128)
    codes = np.stack([big_rock_outcomes(t, q) for t, q in zip(truths, preds, strict=True)])
    hits, misses, alarms = ((codes == k).sum() for k in (1, 2, 3))
    pick = np.argsort(-(truths == 4).reshape(len(truths), -1).sum(1), kind="stable")[:args.tiles]
    title = (f"{Path(args.run).name}: validation big rock over {len(va)} tiles: precision {hits / max(hits + alarms, 1):.2f}, "
             f"recall {hits / max(hits + misses, 1):.2f} (tiles with the most big rock)")
    save_big_rock_gallery(images[pick], truths[pick], preds[pick], args.out, title)
    print(title)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

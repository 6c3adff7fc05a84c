"""Test-time augmentation on a run's validation split, reported beside the plain score.

    python bench/tta.py --runs bench/results/full_length/upernet-r18__default_s42 [--seed 42]

For every run folder (or checkpoint folder: give ``--seed``) the validation split of its seed is
rebuilt from the data file its ``metrics.json`` names (default: the shared file), then predicted
plain, with horizontal flips, with all four flips, and with horizontal flips at three scales
(0.75, 1, 1.25 of the tile, probabilities averaged). Saves ``bench/results/tta.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import SHARED_DATA, command_line, machine, result_name, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data import CLASS_NAMES, DataConfig, load_arrays  # noqa: E402
from mars_segformer.inference import load_model, predict_masks  # noqa: E402
from mars_segformer.metrics import StreamingMeanIoU  # noqa: E402

#: name -> (flips, scales)
MODES = {"plain": ("none", (1.0,)), "hflip": ("hflip", (1.0,)), "flips": ("flips", (1.0,)),
         "hflip_multiscale": ("hflip", (0.75, 1.0, 1.25))}


def validation_tiles(run: Path, seed: int | None, data: str | None):
    """The run's validation tiles: from its ``split.json`` (a run folder, or the run folder above a
    checkpoint), else rebuilt with ``seed``; the data is the run's own unless ``data`` is given."""
    from mars_segformer.predict import PredictError, run_split_record, select_split, validation_config

    home = run if (run / "split.json").exists() or not (run.parent / "split.json").exists() else run.parent
    record = run_split_record(str(home))
    metrics = json.loads((home / "metrics.json").read_text()) if (home / "metrics.json").exists() else {}
    data = data or (record or {}).get("data") or metrics.get("data") or str(SHARED_DATA)
    arrays = load_arrays(None if data in ("embedded AI4Mars sample", "embedded sample") else data)
    try:
        config, record = validation_config(str(home), None if record else DataConfig.val_fraction,
                                           None if record else (seed if seed is not None else metrics.get("seed")))
    except PredictError as err:
        raise SystemExit(f"{run}: {err}") from None
    images, truths = select_split(arrays, "validation", config, record, str(home))
    return images, truths, config.seed


def score(preds, truths) -> dict:
    stream = StreamingMeanIoU(len(CLASS_NAMES), ignore_index=0)
    stream.update(preds, truths)
    res = stream.compute()
    return {"task_mean_iou": float(res["task_mean_iou"]),
            **{n: float(v) for n, v in zip(CLASS_NAMES[1:], res["per_category_iou"][1:], strict=True)}}


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True)
    p.add_argument("--seed", type=int, default=None, help="split seed for folders without metrics.json")
    p.add_argument("--data", default=None, help="default: the data the run names, else the shared file")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--name", type=result_name, default="tta", help="bench/results/NAME.json")
    args = p.parse_args()
    rows = {}
    for run in map(Path, args.runs):
        images, truths, seed = validation_tiles(run, args.seed, args.data)
        model = load_model(str(run), "cpu")
        row = {"seed": seed, "validation_tiles": int(len(images))}
        for mode in args.modes:
            flips, scales = MODES[mode]
            t0 = time.perf_counter()
            preds = predict_masks(model, images, 128, flips, progress=False, scales=scales)
            row[mode] = {**score(preds, truths), "seconds": round(time.perf_counter() - t0, 1)}
            print(f"{run.name} {mode:<17} task mIoU {row[mode]['task_mean_iou']:.4f} big rock {row[mode]['big_rock']:.3f}",
                  flush=True)
        rows[run.name] = row
    save(args.name, {"machine": machine(), "modes": {k: {"flips": f, "scales": list(s)} for k, (f, s) in MODES.items()},
                     "rows": rows, "command": command_line()})


if __name__ == "__main__":
    main()

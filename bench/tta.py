"""Test-time augmentation on a run's validation split, reported beside the plain score.

    python bench/tta.py --runs bench/results/full_length/upernet-r18__default_s42 [--seed 42]

For every run folder (or checkpoint folder: give ``--seed``) the validation split of its seed is
rebuilt from the data file its ``metrics.json`` names (default: the shared file), then predicted
plain, with horizontal flips, with all four flips, and with horizontal flips at three scales
(0.75, 1, 1.25 of the tile, probabilities averaged); with each tile's borders mirrored outwards by 16 or 32 pixels
before the model and cut off after it (``reflect16``, ``reflect32``, ``symmetric16``: context of a kind, invented from
the tile itself); and inside their frames (``predict --context frame``:
``frame``, and ``frame_hflip`` with flips), where the tiles' frames can be put back together, with the tiles that
were and were not scored apart too. Saves ``bench/results/tta.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import NoReturn

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import SHARED_DATA, command_line, machine, result_name, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data import CLASS_NAMES, DataConfig, MarsDataError, load_arrays  # noqa: E402
from mars_segformer.data.frame_layout import frame_blocks  # noqa: E402
from mars_segformer.data.frame_shift import TILES_PER_FRAME  # noqa: E402
from mars_segformer.inference import load_model, predict_masks, predict_masks_in_context  # noqa: E402
from mars_segformer.metrics import StreamingMeanIoU  # noqa: E402

#: mode -> (numpy.pad mode, pixels added on every side) for the modes that predict a padded tile and crop it back
PADS = {"reflect16": ("reflect", 16), "reflect32": ("reflect", 32), "symmetric16": ("symmetric", 16)}
#: name -> (flips, scales, context); the :data:`PADS` modes are plain tile modes on the padded tile
MODES = {"plain": ("none", (1.0,), "tile"), "hflip": ("hflip", (1.0,), "tile"), "flips": ("flips", (1.0,), "tile"),
         "hflip_multiscale": ("hflip", (0.75, 1.0, 1.25), "tile"), "frame": ("none", (1.0,), "frame"),
         "frame_hflip": ("hflip", (1.0,), "frame"), **{name: ("none", (1.0,), "tile") for name in PADS}}
#: the modes run unless --modes names others
DEFAULT_MODES = ["plain", "hflip", "flips", "hflip_multiscale"]


def validation_tiles(run: Path, seed: int | None, data: str | None):
    """The run's validation tiles and masks and its split's seed (:func:`validation_split` without frame ids)."""
    images, truths, _, seed = validation_split(run, seed, data)
    return images, truths, seed


def validation_split(run: Path, seed: int | None, data: str | None):
    """The run's validation tiles, masks and frame ids (None without) and its split's seed: from its ``split.json``
    (a run folder, or the run folder above a checkpoint), else rebuilt with ``seed``; the data is the run's own
    unless ``data`` is given."""
    from mars_segformer.predict import select_split

    arrays, config, record = run_split(run, seed, data)
    try:  # the rebuilt split checked against the run's record: other data is named, not scored
        images, truths, frame_ids = select_split(arrays, "validation", config, record, "its split.json")
    except MarsDataError as err:
        run_error(run, err)
    return images, truths, frame_ids, config.seed


def run_split(run: Path, seed: int | None, data: str | None):
    """The data a run trained on, its split's ``DataConfig`` and record (from the run's folder, or the run folder
    above a checkpoint; see :func:`validation_split`); a folder that is no run, or data that is gone, ends in one
    line and exit 2."""
    from mars_segformer.predict import PredictError, run_split_record, validation_config

    home = run if (run / "split.json").exists() or not (run.parent / "split.json").exists() else run.parent
    record = run_split_record(str(home))
    metrics = json.loads((home / "metrics.json").read_text()) if (home / "metrics.json").exists() else {}
    data = data or (record or {}).get("data") or metrics.get("data") or str(SHARED_DATA)
    try:  # the split first: a folder that is no run is named before any data is read
        config, record = validation_config(str(home), None if record else DataConfig.val_fraction,
                                           None if record else (seed if seed is not None else metrics.get("seed")))
        arrays = load_arrays(None if data in ("embedded AI4Mars sample", "embedded sample") else data)
    except (PredictError, MarsDataError) as err:
        run_error(run, err)
    return arrays, config, record


def run_error(run: Path, err: Exception) -> NoReturn:
    """A user's mistake about ``run`` (a folder that is no run, data that is gone or changed): one line naming the
    run, and exit 2, as the package's commands."""
    sys.stderr.write(f"error: {run}: {err}\n")
    raise SystemExit(2) from None


def score(preds, truths) -> dict:
    stream = StreamingMeanIoU(len(CLASS_NAMES), ignore_index=0)
    stream.update(preds, truths)
    res = stream.compute()
    return {"task_mean_iou": float(res["task_mean_iou"]),
            **{n: float(v) for n, v in zip(CLASS_NAMES[1:], res["per_category_iou"][1:], strict=True)}}


def predict_mode(model, images, frame_ids, mode: str):
    """Predicted masks of ``mode`` (:data:`MODES`), and for a frame mode how many frames and tiles were joined
    (None for the others)."""
    flips, scales, context = MODES[mode]
    if mode in PADS:
        how, pad = PADS[mode]
        padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)), mode=how)
        return predict_masks(model, padded, 128, flips, progress=False, scales=scales)[:, pad:-pad, pad:-pad], None
    if context == "tile":
        return predict_masks(model, images, 128, flips, progress=False, scales=scales), None
    return predict_masks_in_context(model, images, frame_ids, 128, flips, False, scales)


def tile_groups(images, frame_ids) -> dict[str, np.ndarray]:
    """(N,) bool masks of the tiles a frame mode predicts inside a complete frame, inside part of a frame that lost
    tiles (placed by ``data.frame_layout``), and alone."""
    complete, partial = np.zeros(len(images), bool), np.zeros(len(images), bool)
    for block in frame_blocks(images, frame_ids):
        (complete if len(block.rows) == TILES_PER_FRAME else partial)[block.rows[block.owned]] = True
    return {"complete_frames": complete, "partial_frames": partial, "alone": ~(complete | partial)}


def by_group(preds: dict, truths, groups: dict) -> dict:
    """Each frame mode's score and its tile mode's (``frame`` → ``plain``, ``frame_hflip`` → ``hflip``) on each
    group of :func:`tile_groups`, where both ran."""
    out = {}
    for mode, tile_mode in (("frame", "plain"), ("frame_hflip", "hflip")):
        if mode in preds and tile_mode in preds:
            out[mode] = {name: {"tiles": int(rows.sum()), mode: score(preds[mode][rows], truths[rows]),
                                tile_mode: score(preds[tile_mode][rows], truths[rows])}
                         for name, rows in groups.items() if rows.any()}
    return out


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True)
    p.add_argument("--seed", type=int, default=None, help="split seed for folders without metrics.json")
    p.add_argument("--data", default=None, help="default: the data the run names, else the shared file")
    p.add_argument("--modes", nargs="+", default=DEFAULT_MODES, choices=list(MODES))
    p.add_argument("--name", type=result_name, default="tta", help="bench/results/NAME.json")
    args = p.parse_args()
    rows = {}
    for run in map(Path, args.runs):
        images, truths, frame_ids, seed = validation_split(run, args.seed, args.data)
        model = load_model(str(run), "cpu")
        row, preds = {"seed": seed, "validation_tiles": int(len(images))}, {}
        for mode in args.modes:
            t0 = time.perf_counter()
            preds[mode], joined = predict_mode(model, images, frame_ids, mode)
            row[mode] = {**score(preds[mode], truths), "seconds": round(time.perf_counter() - t0, 1),
                         **({} if joined is None else {"frame_context": joined})}
            print(f"{run.name} {mode:<17} task mIoU {row[mode]['task_mean_iou']:.4f} big rock {row[mode]['big_rock']:.3f}",
                  flush=True)
        if any(MODES[m][2] == "frame" for m in args.modes):
            row["by_group"] = by_group(preds, truths, tile_groups(images, frame_ids))
        rows[run.name] = row
    save(args.name, {"machine": machine(), "modes": {k: {"flips": f, "scales": list(s), "context": c,
                                                         **({"pad": list(PADS[k])} if k in PADS else {})}
                                                     for k, (f, s, c) in MODES.items()},
                     "rows": rows, "command": command_line()})


if __name__ == "__main__":
    main()

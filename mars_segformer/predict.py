"""Predict masks for a tile file with a trained model (run folder or Hub repo id).

    python -m mars_segformer.predict --model runs/mars-segformer --data mars.npz --out preds/ --csv
    python -m mars_segformer.predict --model user/repo --data mars.npz --split train --tta hflip --out eval/
    python -m mars_segformer.predict --model runs/x --split validation --out val/   # the run's own held-out tiles
    python -m mars_segformer.predict --model runs/x --images "frames/*.JPG" --out masks/        # whole frames

Writes ``predictions.npz`` (masks), ``submission.csv`` (with --csv), overlay PNGs of the first N
tiles, and, when labels are available (``--split train``), ``scores.json`` and
``confusion_matrix.png``. Every file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .argparsing import ArgumentParser
from .data.errors import MarsDataError
from .data.io import CLASS_NAMES
from .data.sources import load_arrays
from .inference.options import (
    CONTEXTS,
    FRAME_MODES,
    TTA_MODES,
    PredictError,
    check_context,
    check_frame_mode,
    check_scales,
)
from .outputs import OutputPathError, atomic_path, atomic_write_json, check_output_folder

# torch, the model code, evaluate and matplotlib are imported where they are used, after the flags
# and files are checked, so that a wrong flag is answered in well under a second


def _atomic_npz(path: Path, **arrays) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)  # uncompressed: 26 MB for 3,162 tiles, written in a fraction of zlib's time


def save_overlays(images, preds, truths, folder: Path, n: int) -> None:
    from .visualization import colorize, overlay

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(min(n, len(images))):
        parts = [np.repeat(images[i][..., None], 3, -1), overlay(images[i], preds[i])]
        if truths is not None:
            parts.append(colorize(truths[i]))
        sep = np.full((images.shape[1], 4, 3), 255, np.uint8)
        row = np.concatenate([p for part in parts for p in (part, sep)][:-1], axis=1)
        with atomic_path(folder / f"overlay_{i:05d}.png") as tmp:
            Image.fromarray(row).save(tmp)


def run_split_record(model: str) -> dict | None:
    """The ``split.json`` a run folder (or a Hub repo pushed from one) keeps, or None without one."""
    from .data.split import SPLIT_FILE

    folder = Path(model)
    if folder.is_dir():
        path = folder / SPLIT_FILE
    else:
        from huggingface_hub import hf_hub_download

        try:
            path = Path(hf_hub_download(model, SPLIT_FILE))
        except Exception:  # no such file in the repo (or no Hub): the caller asks for the flags
            return None
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PredictError(f"{path}: not a split record ({err})") from None


def validation_config(model: str, val_fraction: float | None, seed: int | None):
    """The split ``--split validation`` rebuilds: the run's own record, or the flags where it has none."""
    from .data import DataConfig
    from .data.split import SPLIT_FILE

    record = run_split_record(model)
    if record is None:
        if val_fraction is None or seed is None:
            raise PredictError(f"--split validation: {model} has no {SPLIT_FILE} (it was trained before runs recorded "
                               "their split); give --seed and --val-fraction as in its training")
        return DataConfig(val_fraction=val_fraction, seed=seed), None
    for flag, given, own in (("--seed", seed, record["seed"]), ("--val-fraction", val_fraction, record["val_fraction"])):
        if given is not None and given != own:
            raise PredictError(f"{flag} {given} differs from the run's own {own} ({SPLIT_FILE} of {model}); "
                               "leave it out to score the tiles the run validated on")
    return DataConfig(val_fraction=record["val_fraction"], seed=record["seed"], drop_outliers=record["drop_outliers"],
                      outlier_min_count=record["outlier_min_count"]), record


def select_split(arrays, split: str, config=None, record: dict | None = None, where: str = "--model"):
    """Images, masks (None for test) and frame ids (None where the data has none) of ``split``; ``validation``
    rebuilds training's held-out split with ``config`` (outliers dropped, then the seeded frame-grouped split) and
    checks it against the run's ``record``, so a run is scored on exactly the tiles it validated on."""
    if split == "test":
        return arrays.test_images, None, arrays.test_frame_ids
    if split == "train":
        return arrays.train_images, arrays.train_masks, arrays.train_frame_ids
    if split == "validation":
        from .data.dataset import clean_and_split
        from .data.split import check_split

        kept, _, _, va = clean_and_split(arrays, config)
        if record is not None:
            check_split(record, kept, va, where)
        ids = None if kept.train_frame_ids is None else kept.train_frame_ids[va]
        return kept.train_images[va], kept.train_masks[va], ids
    raise PredictError(f"--split must be 'test', 'train' or 'validation', got {split!r}")


def parse_scales(text) -> tuple[float, ...]:
    """``--tta-scales`` ("1", "0.75,1,1.25") as factors, checked."""
    if not isinstance(text, str):
        return check_scales(text)
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise PredictError(f"--tta-scales must be comma-separated numbers such as '1' or '0.75,1,1.25', got {text!r}") from None
    try:
        return check_scales(values)
    except PredictError:
        raise PredictError(f"--tta-scales must be numbers in [0.25, 4], got {text!r}") from None


def _check_common(tta: str, batch_size: int, out, tta_scales="1") -> Path:
    """Options of both predict paths, checked before anything is read or written; returns ``out`` as a Path."""
    if tta not in TTA_MODES:
        raise PredictError(f"unknown --tta {tta!r}; choose from {sorted(TTA_MODES)}")
    parse_scales(tta_scales)
    if batch_size < 1:
        raise PredictError(f"--batch-size must be at least 1, got {batch_size}")
    out = Path(out)
    check_output_folder(out, "--out")
    return out


def run_predict(model: str, data: str | None, out: str | os.PathLike, split: str = "test", batch_size: int = 64,
                tta: str = "none", csv: bool = False, overlays: int = 8, onnx: bool = False,
                trust_remote_code: bool = False, device: str | None = None, progress: bool = True,
                val_fraction: float | None = None, seed: int | None = None, data_revision: str | None = None,
                tta_scales="1", context: str = "tile") -> dict:
    """Everything the CLI does; returns the summary written to ``summary.json``."""
    out = _check_common(tta, batch_size, out, tta_scales)
    scales = parse_scales(tta_scales)
    check_context(context)
    if overlays < 0:
        raise PredictError(f"--overlays must be >= 0 (0: none), got {overlays}")
    if val_fraction is not None and not 0 < val_fraction < 1:
        raise PredictError(f"--val-fraction must lie in (0, 1), got {val_fraction}")
    config, record = validation_config(model, val_fraction, seed) if split == "validation" else (None, None)
    arrays = load_arrays(data, data_revision)  # validates shapes, dtypes, masks-in-test-set
    images, truths, frame_ids = select_split(arrays, split, config, record, str(model))
    if len(images) == 0:
        raise PredictError(f"{arrays.source}: the {split} split holds no images")
    if context == "frame" and frame_ids is None:
        raise PredictError(f"--context frame: {arrays.source} has no frame ids for its {split} tiles "
                           "(the course file's layout has none); use --context tile")
    from .inference.predictor import load_model

    net = load_model(model, device, trust_remote_code)
    try:
        return _predict_and_write(net, model, arrays, images, truths, out, split, batch_size, tta, csv, overlays,
                                  onnx, progress, scales, frame_ids if context == "frame" else None)
    except OSError as err:  # disk full, permissions, a path component that is a file
        raise PredictError(f"{err.filename or out}: cannot write ({err.strerror or err})") from None


def _scores(preds, truths, out: Path | None = None) -> dict:
    """Task and per-class IoU of ``preds``; with ``out``, also its confusion matrix PNG there."""
    from .metrics import StreamingMeanIoU
    from .visualization import save_confusion_matrix

    stream = StreamingMeanIoU(len(CLASS_NAMES), ignore_index=0)
    stream.update(preds, truths)
    res = stream.compute()
    if out is not None:
        save_confusion_matrix(res["confusion_matrix"], out / "confusion_matrix.png")
    return {"task_mean_iou": res["task_mean_iou"], "mean_iou": res["mean_iou"],
            "per_class_iou": {n: float(v) for n, v in zip(CLASS_NAMES, res["per_category_iou"], strict=True)}}


def _predict_and_write(net, model, arrays, images, truths, out: Path, split, batch_size, tta, csv, overlays, onnx,
                       progress, scales=(1.0,), frame_ids=None) -> dict:
    """Predicts ``images`` (inside their frames where ``frame_ids`` is given: ``--context frame``) and writes the
    outputs; with labels, the scores, and with frame ids also the tile-by-tile scores beside them."""
    from .inference.predictor import predict_masks
    from .inference.submission import write_submission
    from .inference.tile_context import predict_masks_in_context

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if frame_ids is None:
        preds, joined = predict_masks(net, images, batch_size, tta, progress, scales), None
    else:
        preds, joined = predict_masks_in_context(net, images, frame_ids, batch_size, tta, progress, scales)
    seconds = time.perf_counter() - t0
    _atomic_npz(out / "predictions.npz", masks=preds, split=np.array(split), model=np.array(str(model)))
    summary = {"model": str(model), "data": arrays.source, "split": split, "tiles": int(len(images)), "tta": tta,
               "tta_scales": list(scales), "context": "tile" if frame_ids is None else "frame",
               **({} if joined is None else {"frame_context": joined}),
               "predict_seconds": round(seconds, 3), "tiles_per_second": round(len(images) / max(seconds, 1e-9), 1)}
    if csv:
        write_submission(preds, out / "submission.csv")
    if overlays:
        save_overlays(images, preds, truths, out / "overlays", overlays)
    if truths is not None:
        summary["scores"] = _scores(preds, truths, out)
        if frame_ids is not None:  # the plain number beside the one with context, never instead of it
            plain = predict_masks(net, images, batch_size, tta, progress, scales)
            summary["scores"]["tile_by_tile"] = _scores(plain, truths)
        atomic_write_json(out / "scores.json", summary["scores"])
    if onnx:
        from .inference.onnx_export import check_onnx, export_onnx

        export_onnx(net, out / "model.onnx", images.shape[1:])
        summary["onnx"] = check_onnx(net, out / "model.onnx", images[:16])
    atomic_write_json(out / "summary.json", summary)
    return summary


def run_predict_images(model: str, images: str, out: str | os.PathLike, image_scale: float = 1.0,
                       batch_size: int = 32, tta: str = "none", trust_remote_code: bool = False,
                       device: str | None = None, progress: bool = True, frame_mode: str = "whole") -> dict:
    """Whole images (a file, a folder or a glob; any size) -> a mask PNG, an overlay PNG with a legend and the
    class area shares per image (``frame_mode``: one of ``inference.options.FRAME_MODES``); returns the summary written
    to ``summary.json``."""
    from tqdm.auto import tqdm

    from .inference.frames import image_paths, predict_image, read_gray, write_image_outputs
    from .inference.predictor import load_model

    out = _check_common(tta, batch_size, out)
    check_frame_mode(frame_mode)
    if not (math.isfinite(image_scale) and image_scale > 0):
        raise PredictError(f"--image-scale must be a positive number (1: native NAVCAM pixels), got {image_scale}")
    paths = image_paths(images)
    frames = [read_gray(p) for p in paths]  # every image is readable before anything is written
    stems = [p.stem for p in paths]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise PredictError(f"--images {images}: several images are named {twice[0]!r}; their outputs would collide")
    net = load_model(model, device, trust_remote_code)
    results = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path, frame in tqdm(list(zip(paths, frames, strict=True)), desc="images", unit="image",
                                disable=not progress):
            mask = predict_image(net, frame, image_scale, batch_size, tta, frame_mode)
            results.append(write_image_outputs(path, frame, mask, out))
        summary = {"model": str(model), "images": len(results), "image_scale": image_scale, "tta": tta,
                   "frame_mode": frame_mode, "results": results}
        atomic_write_json(out / "summary.json", summary)
    except OSError as err:
        raise PredictError(f"{err.filename or out}: cannot write ({err.strerror or err})") from None
    return summary


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m mars_segformer.predict", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="run folder or Hub repo id")
    p.add_argument("--data", default=None, help="course-layout .npz, AI4Mars folder or Hub dataset owner/name "
                   "(default: embedded sample)")
    p.add_argument("--data-revision", default=None, help="branch, tag or commit of a Hub dataset --data")
    p.add_argument("--images", default=None, help="whole images instead of tiles: a file, a folder or a glob "
                   "(PNG/JPG, gray or RGB, any size); writes a mask PNG, an overlay PNG and class shares per image")
    p.add_argument("--image-scale", type=float, default=1.0, help="with --images: pixel scale of the images "
                   "relative to native NAVCAM frames (1: a 1024x1024 frame; 0.25: already at the tiles' scale)")
    p.add_argument("--frame-mode", default="whole", choices=FRAME_MODES, help="with --images: the model "
                   "sees each image at once (whole; better for a tile-trained model, docs/results.md), or tile-sized "
                   "blended windows (windows)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", default="test", choices=["test", "train", "validation"],
                   help="test_set; training_set images (scored); or training's held-out validation split (scored)")
    p.add_argument("--val-fraction", "--val_fraction", type=float, default=None,
                   help="with --split validation: only for a model without the run's split.json (as in its training)")
    p.add_argument("--seed", type=int, default=None,
                   help="with --split validation: only for a model without the run's split.json (training's --seed)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--tta", default="none", choices=sorted(TTA_MODES), help="flip test-time augmentation")
    p.add_argument("--tta-scales", default="1", help="multi-scale TTA: comma-separated resize factors whose "
                   "probabilities are averaged (with --tta's flips at each), e.g. 0.75,1,1.25")
    p.add_argument("--context", default="tile", choices=CONTEXTS, help="with --data: predict each tile "
                   "alone (tile; what training and the task's metric do), or inside its frame where the data's frame "
                   "ids let the frame's tiles be put back together (frame; scored beside the tile-by-tile number)")
    p.add_argument("--csv", action="store_true", help="also write the Kaggle submission.csv")
    p.add_argument("--overlays", type=int, default=8, help="overlay PNGs of the first N tiles (0: none)")
    p.add_argument("--onnx", action="store_true", help="export model.onnx and check it with onnxruntime")
    p.add_argument("--trust-remote-code", action="store_true", help="allow modeling code from a Hub repo")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    args = p.parse_args(argv)
    try:
        if args.images and args.context != "tile":
            raise PredictError("--context frame: only with --data (tiles with frame ids); --images predicts each "
                               "image at once already (--frame-mode)")
        if args.images:
            s = run_predict_images(args.model, args.images, args.out, args.image_scale, args.batch_size, args.tta,
                                   args.trust_remote_code, args.device, frame_mode=args.frame_mode)
            print(f"{s['images']} image(s) predicted; masks, overlays and class shares written to {args.out}")
            return 0
        s = run_predict(args.model, args.data, args.out, args.split, args.batch_size, args.tta, args.csv,
                        args.overlays, args.onnx, args.trust_remote_code, args.device, True, args.val_fraction, args.seed,
                        args.data_revision, args.tta_scales, args.context)
    except (PredictError, MarsDataError, OutputPathError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{s['tiles']} tiles in {s['predict_seconds']} s ({s['tiles_per_second']} tiles/s); written to {args.out}")
    if "scores" in s:
        sc = s["scores"]
        for what, part in (("", sc), (" tile by tile", sc.get("tile_by_tile"))):
            if part is not None:
                print(f"task mean IoU (classes 1-4){what}: {part['task_mean_iou']:.4f}; per class: "
                      + ", ".join(f"{k} {v:.3f}" for k, v in list(part["per_class_iou"].items())[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

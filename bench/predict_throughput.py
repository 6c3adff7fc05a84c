"""Batched prediction (the CLI, end to end) against two references on the same tiles, in one run:
``pipeline(...)`` image by image (masks must be identical) and the bare model's batched forward pass.

    python bench/predict_throughput.py [--data ../shared/data/ai4mars_msl_64x128.npz] [--model FOLDER]

Without --model, an untrained SegFormer-b0 (seed 0) is used: speed does not depend on the weights.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import SHARED_DATA, machine, save  # noqa: E402
from mars_segformer import create_model, processor_for  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data import load_arrays, normalize  # noqa: E402
from mars_segformer.predict import run_predict  # noqa: E402


def pipeline_masks(folder, images):
    from PIL import Image
    from transformers import pipeline

    pipe = pipeline("image-segmentation", model=str(folder))
    label2id = pipe.model.config.label2id
    out = np.zeros(images.shape, np.uint8)
    t0 = time.perf_counter()
    for i, img in enumerate(images):
        for seg in pipe(Image.fromarray(img)):
            out[i][np.asarray(seg["mask"]) > 0] = label2id[seg["label"]]
    return out, time.perf_counter() - t0


@torch.no_grad()
def bare_forward(model, images, batch):
    t0 = time.perf_counter()
    for i in range(0, len(images), batch):
        logits = model(pixel_values=normalize(images[i:i + batch])).logits
        torch.nn.functional.interpolate(logits, size=images.shape[1:], mode="bilinear", align_corners=False).argmax(1)
    return time.perf_counter() - t0


def main():
    p = ArgumentParser()
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--model", default=None)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--limit", type=int, default=None, help="first N test tiles only")
    args = p.parse_args()
    data = args.data if Path(args.data).exists() else None
    images = load_arrays(data).test_images[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.model) if args.model else Path(tmp) / "model"
        if not args.model:
            torch.manual_seed(0)
            model = create_model("segformer-b0")
            model.save_pretrained(folder)
            processor_for(model.config).save_pretrained(folder)
        from transformers import AutoModelForSemanticSegmentation

        model = AutoModelForSemanticSegmentation.from_pretrained(folder).eval()
        # the bare pass runs before and after the CLI and the mean is used: drift on a shared
        # machine then hits both sides
        bare_before = bare_forward(model, images, args.batch)
        t0 = time.perf_counter()
        summary = run_predict(str(folder), data, Path(tmp) / "out", batch_size=args.batch, overlays=0, progress=False)
        cli_s = time.perf_counter() - t0
        bare_after = bare_forward(model, images, args.batch)
        bare_s = (bare_before + bare_after) / 2
        cli_masks = np.load(Path(tmp) / "out" / "predictions.npz")["masks"][: len(images)]
        pipe_masks, pipe_s = pipeline_masks(folder, images)
    if args.limit is not None:  # the CLI always predicts the whole test set
        cli_s *= len(images) / summary["tiles"]
    n = len(images)
    save("predict_throughput", {
        "machine": machine(), "data": data or "embedded sample", "tiles": n, "model": args.model or "segformer-b0 (untrained)",
        "batch": args.batch,
        "cli_end_to_end_tiles_per_s": round(n / cli_s, 2), "cli_predict_only_tiles_per_s": summary["tiles_per_second"],
        "bare_batched_forward_tiles_per_s": round(n / bare_s, 2),
        "bare_before_after_tiles_per_s": [round(n / bare_before, 2), round(n / bare_after, 2)], "pipeline_one_by_one_tiles_per_s": round(n / pipe_s, 2),
        "cli_vs_pipeline_speedup": round(pipe_s / cli_s, 2), "cli_vs_bare_throughput_ratio": round(bare_s / cli_s, 3),
        "masks_identical_to_pipeline": bool(np.array_equal(cli_masks, pipe_masks)),
        "pixel_agreement_with_pipeline": float((cli_masks == pipe_masks).mean()),
        "pixels_differing_from_pipeline": int((cli_masks != pipe_masks).sum()),
        "targets": {"cli_vs_pipeline_speedup": 2.0, "cli_vs_bare_throughput_ratio": 0.9},
    })


if __name__ == "__main__":
    main()

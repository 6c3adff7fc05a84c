"""--input_scale: the model sees tiles resized by the saved image processor's own filter, its logits
come back at the tile's size, and ``pipeline`` in a fresh process gives the training path's masks."""

import json
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

from mars_segformer.data import IMAGE_MEAN, IMAGE_STD, DataConfig, build_dataset_dict, load_arrays
from mars_segformer.inference import predict_masks
from tests.training.test_train import ROOT, launch


def test_training_reads_what_the_saved_processor_makes(tmp_path):
    out = tmp_path / "run"
    proc = launch(["--model", "upernet-r18", "--tiny", "--input_scale", "2", "--max_steps", "2", "--eval_strategy", "no",
                   "--save_strategy", "no", "--load_best_model_at_end", "false", "--report_to", "none"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tiles resized x2 before it" in proc.stdout
    assert json.loads((out / "config.json").read_text())["input_scale"] == 2.0
    processor = AutoImageProcessor.from_pretrained(out)
    data = build_dataset_dict(load_arrays(), DataConfig(seed=3, input_scale=2.0))
    tiles = data.arrays.train_images[data.val_indices[:4]]
    # the saved processor's pixel values (its own resize to 128x256, rescale, normalise) ...
    ref = processor(images=[Image.fromarray(t).convert("RGB") for t in tiles], return_tensors="pt")["pixel_values"]
    assert ref.shape == (4, 3, 128, 256)
    # ... are exactly what the training path's transform feeds the model (validation: no augmentation)
    torch.testing.assert_close(data.datasets["validation"][:4]["pixel_values"], ref, rtol=0, atol=1e-6)
    # and differ from a plain upsampling of the normalised tile only by the 8-bit rounding of the resize
    plain = F.interpolate((torch.from_numpy(tiles).float()[:, None] / 255 - IMAGE_MEAN) / IMAGE_STD, size=(128, 256),
                          mode="bilinear", align_corners=False)
    assert (plain[:, 0] - ref[:, 0]).abs().max() <= 1 / 255 / IMAGE_STD + 1e-5
    # a fresh process, no mars_segformer, no remote code: pipeline masks at the tile size = predict's masks
    np.save(tmp_path / "images.npy", tiles)
    fresh = subprocess.run([sys.executable, str(ROOT / "tests" / "fresh_pipeline.py"), str(tmp_path / "images.npy"),
                            str(out)], capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    got = np.array(json.loads(fresh.stdout.split("RESULT", 1)[1])[str(out)])
    model = AutoModelForSemanticSegmentation.from_pretrained(out).eval()
    with torch.no_grad():
        logits = model(pixel_values=ref).logits
    assert logits.shape[-2:] == (128, 256)
    expected = F.interpolate(logits, size=(64, 128), mode="bilinear", align_corners=False).argmax(1).numpy()
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(predict_masks(model, tiles, progress=False), expected)

"""bench/teacher_views.py: a run's probabilities of its own training tiles in both teacher views, scored."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mars_segformer.training.run import main

TINY = ["--model", "unet", "--tiny", "--per_device_train_batch_size", "8", "--disable_tqdm", "true",
        "--logit_adjustment", "0", "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false"]


def test_the_tile_view_scores_the_models_own_argmax_on_its_training_tiles(tmp_path):
    from transformers import AutoModelForSemanticSegmentation

    from bench.teacher_views import measure
    from mars_segformer.data import DataConfig, build_dataset_dict, load_arrays
    from mars_segformer.data.dataset import model_pixels

    run = tmp_path / "run"
    assert main(["--output_dir", str(run), *TINY, "--seed", "3", "--max_steps", "3", "--learning_rate", "1e-2"]) == 0
    res = measure(run)
    data = build_dataset_dict(load_arrays(None), DataConfig(seed=3))
    rows = data.train_indices
    assert res["training_tiles"] == len(rows)
    model = AutoModelForSemanticSegmentation.from_pretrained(run).eval()
    images, truths = data.arrays.train_images[rows], data.arrays.train_masks[rows]
    with torch.no_grad():
        logits = F.interpolate(model(pixel_values=model_pixels(images, model.config)).logits, size=images.shape[1:],
                               mode="bilinear", align_corners=False)
    # the soft labels are probabilities rounded to 1/255 (a barely trained model's are near ties): the same here
    preds = torch.round(logits.softmax(1) * 255).numpy().argmax(1)
    keep = truths > 0
    ious = [np.sum((preds == c) & (truths == c) & keep) / np.sum(((preds == c) | (truths == c)) & keep)
            for c in range(1, 5)]
    assert res["tile"]["task_mean_iou"] == pytest.approx(np.nanmean(ious), abs=1e-3)
    assert 0 <= res["argmax_differs_unlabelled"] <= 1 and 0 <= res["argmax_differs_labelled"] <= 1
    assert res["frame"]["task_mean_iou"] != res["tile"]["task_mean_iou"]  # the sample's complete frames are seen whole

"""Tiles predicted inside their frame (``predict --context frame``): against the frame predicted whole and cut up."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mars_segformer.data import save_npz
from mars_segformer.data.frame_shift import TILES_PER_FRAME, complete_frames
from mars_segformer.inference import predict_masks, predict_masks_in_context
from mars_segformer.predict import main as predict_main
from tests.inference.test_frames import PointwiseModel
from tests.inference.test_predict import save_tiny


class NeighbourModel(PointwiseModel):
    """A fixed 5x5 convolution (zero padding): a pixel's class depends on its neighbours, so a tile's border
    pixels are predicted differently alone than inside its frame."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv2d(3, 5, 5, padding=2)


def block_of(tiles: np.ndarray, rows: int) -> np.ndarray:
    """The last ``rows`` rows of 4 × 2 tiles of a frame joined (written out here apart from the package's join)."""
    return np.block([[tiles[2 * r], tiles[2 * r + 1]] for r in range(len(tiles) // 2 - rows, len(tiles) // 2)])


def cut(mask: np.ndarray) -> np.ndarray:
    return np.stack([mask[r * 64:(r + 1) * 64, c * 128:(c + 1) * 128]
                     for r in range(mask.shape[0] // 64) for c in range(2)])


def frames_and_ids(arrays, n=4, drop_top=0):
    """The first ``n`` complete frames of the sample, each without its first ``drop_top`` rows of tiles."""
    rows = complete_frames(arrays.train_frame_ids).reshape(-1, TILES_PER_FRAME)[:n][:, 2 * drop_top:].ravel()
    return arrays.train_images[rows], arrays.train_frame_ids[rows]


@pytest.mark.parametrize("drop_top", [0, 1])
def test_each_tile_is_cut_from_its_frame_predicted_whole(sample_arrays, drop_top):
    model = NeighbourModel()
    images, ids = frames_and_ids(sample_arrays, drop_top=drop_top)
    got, info = predict_masks_in_context(model, images, ids, batch_size=16, progress=False)
    per = TILES_PER_FRAME - 2 * drop_top
    want = np.concatenate([cut(predict_masks(model, block_of(images[i:i + per], per // 2)[None], progress=False)[0])
                           for i in range(0, len(images), per)])
    np.testing.assert_array_equal(got, want)
    assert info == {"blocks": 4, "tiles_in_frames": len(images), "tiles_alone": 0}
    alone = predict_masks(model, images, progress=False)
    assert (got != alone).any()  # the neighbours changed the tiles' borders
    inner = np.zeros(images.shape[1:], bool)
    inner[2:-2, 2:-2] = True
    np.testing.assert_array_equal(got[:, inner], alone[:, inner])  # and only what a 5x5 window reaches


def test_without_context_to_use_every_tile_is_predicted_alone(sample_arrays):
    model = NeighbourModel()
    images, ids = frames_and_ids(sample_arrays, n=2)
    alone = predict_masks(model, images, progress=False)
    for frame_ids in (None, np.arange(len(images)).astype(str)):  # no ids; every tile its own frame
        got, info = predict_masks_in_context(model, images, frame_ids, progress=False)
        np.testing.assert_array_equal(got, alone)
        assert info == {"blocks": 0, "tiles_in_frames": 0, "tiles_alone": len(images)}


def test_a_model_without_spatial_context_gives_the_same_masks_either_way(sample_arrays):
    model = PointwiseModel()
    images, ids = sample_arrays.train_images, sample_arrays.train_frame_ids
    got, info = predict_masks_in_context(model, images, ids, batch_size=32, progress=False)
    np.testing.assert_array_equal(got, predict_masks(model, images, progress=False))
    assert info["tiles_in_frames"] + info["tiles_alone"] == len(images) and info["blocks"] >= 20


def test_cli_scores_both_ways_and_refuses_what_it_cannot_do(tmp_path, sample_arrays, capsys):
    model = save_tiny(tmp_path / "m", "upernet-r18")
    common = ["--model", str(tmp_path / "m"), "--split", "train", "--overlays", "0"]
    assert predict_main([*common, "--out", str(tmp_path / "tile")]) == 0
    assert predict_main([*common, "--out", str(tmp_path / "frame"), "--context", "frame"]) == 0
    out = capsys.readouterr().out
    assert "task mean IoU (classes 1-4) tile by tile" in out
    plain = json.loads((tmp_path / "tile" / "scores.json").read_text())
    both = json.loads((tmp_path / "frame" / "scores.json").read_text())
    assert both["tile_by_tile"] == plain  # the plain number stands beside the one with context
    summary = json.loads((tmp_path / "frame" / "summary.json").read_text())
    want, info = predict_masks_in_context(model, sample_arrays.train_images, sample_arrays.train_frame_ids,
                                          progress=False)
    np.testing.assert_array_equal(np.load(tmp_path / "frame" / "predictions.npz")["masks"], want)
    assert summary["context"] == "frame" and summary["frame_context"] == info
    # data without frame ids, and whole images, are refused before anything is written
    course = sample_arrays.subset(np.arange(20))
    course.train_frame_ids = course.test_frame_ids = None
    save_npz(course, tmp_path / "course.npz")
    assert predict_main([*common, "--data", str(tmp_path / "course.npz"), "--out", str(tmp_path / "o1"),
                         "--context", "frame"]) == 2
    err = capsys.readouterr().err
    assert "--context frame" in err and "no frame ids" in err and len(err.strip().splitlines()) == 1
    assert predict_main(["--model", str(tmp_path / "m"), "--images", str(tmp_path), "--out", str(tmp_path / "o2"),
                         "--context", "frame"]) == 2
    assert "--context frame: only with --data" in capsys.readouterr().err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_predictions_inside_frames_match_a_real_models_whole_frames(sample_arrays):
    """The package's UperNet (its ×1.5 preset included): its input scale and logit resizing apply to joined
    frames as to tiles, so the tiles inside frames are the frame's prediction cut up."""
    from mars_segformer import create_model

    torch.manual_seed(0)
    model = create_model("upernet-r18-x1.5-h96", tiny=True).eval()
    images, ids = frames_and_ids(sample_arrays, n=2)
    got, _ = predict_masks_in_context(model, images, ids, progress=False)
    want = np.concatenate([cut(predict_masks(model, block_of(images[i:i + 8], 4)[None], progress=False)[0])
                           for i in (0, 8)])
    assert (got == want).mean() > 0.999  # batch of 2 frames against 1: BLAS may flip a near-tie


def test_a_runs_closing_report_has_its_validation_inside_frames_beside_the_tile_score(tmp_path, capsys):
    """``metrics.json``'s ``validation_frame_context`` is what ``predict --split validation --context frame`` gets
    from the run folder, which rebuilds the split on its own; the tile-by-tile score stays ``validation``."""
    from mars_segformer.training import main as train_main

    run = tmp_path / "run"
    assert train_main(["--output_dir", str(run), "--model", "upernet-r18", "--tiny", "--max_steps", "2",
                       "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
                       "--report_to", "none", "--disable_tqdm", "true"]) == 0
    assert "with frame context (predict --context frame;" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    context = metrics["validation_frame_context"]
    out = tmp_path / "val"
    assert predict_main(["--model", str(run), "--out", str(out), "--split", "validation", "--context", "frame",
                         "--overlays", "0"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scores"]["task_mean_iou"] == pytest.approx(context["task_mean_iou"], abs=1e-6)
    assert summary["frame_context"]["tiles_in_frames"] == context["tiles_in_frames"] > 0
    tile = summary["scores"]["tile_by_tile"]
    assert tile["task_mean_iou"] == pytest.approx(metrics["validation"]["task_mean_iou"], abs=1e-6)
    from mars_segformer.hub.card import render_card

    card = str(render_card(run, "user/mars"))
    assert f"score **{context['task_mean_iou']:.4f}**" in card and f"**{metrics['validation']['task_mean_iou']:.4f}**" in card

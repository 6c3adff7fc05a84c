"""Whole frames: the frame at once, windows and blending, and scale, on real frames rebuilt from their tiles."""

from __future__ import annotations

import collections
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from mars_segformer import create_model, make_image_processor
from mars_segformer.data import IMAGE_MEAN, IMAGE_STD, load_npz
from mars_segformer.inference import predict_masks
from mars_segformer.inference.frames import predict_frame_probs, predict_image, predict_whole_probs
from mars_segformer.predict import main as predict_main
from tests.conftest import SHARED_NPZ


class PointwiseModel(torch.nn.Module):
    """A fixed 1x1 convolution: its prediction at a pixel depends on that pixel only, so any window
    that holds the pixel must give the same probabilities there, and blending must change nothing."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 5, 1)
        self.config = SimpleNamespace(num_channels=3, tile_scale=0.25)

    def forward(self, pixel_values):
        return SimpleNamespace(logits=self.conv(pixel_values) * 4)


def rebuild_frames(arrays, n=3):
    """Frames with all 8 tiles (4 rows x 2 columns, row-major, as the data README says) -> (frame, tiles)."""
    ids = arrays.train_frame_ids
    complete = [f for f, k in collections.Counter(ids.tolist()).items() if k == 8][:n]
    out = []
    for f in complete:
        tiles = arrays.train_images[ids == f]
        out.append((np.block([[tiles[2 * r], tiles[2 * r + 1]] for r in range(4)]), tiles))
    return out


def stitch(tile_masks):
    return np.block([[tile_masks[2 * r], tile_masks[2 * r + 1]] for r in range(4)])


def central(shape=(256, 256)):
    keep = np.zeros(shape, bool)
    for r in range(4):
        for c in range(2):
            keep[r * 64 + 16:r * 64 + 48, c * 128 + 32:c * 128 + 96] = True
    return keep


def frames_of(request, source):
    if source == "sample":
        return rebuild_frames(request.getfixturevalue("sample_arrays"))
    if not SHARED_NPZ.exists():
        pytest.skip(f"{SHARED_NPZ} not present (users' clones have no ../shared)")
    return rebuild_frames(load_npz(SHARED_NPZ))


@pytest.mark.parametrize("source", ["sample", "shared"])
def test_frame_equals_its_tiles_for_a_pointwise_model(request, source):
    """Windows, tent weights and stitching are exact: with a model without spatial context the whole
    frame's mask equals its tiles' masks everywhere."""
    model = PointwiseModel()
    for frame, tiles in frames_of(request, source):
        assert frame.shape == (256, 256)
        whole = predict_frame_probs(model, frame).argmax(0)
        np.testing.assert_array_equal(whole, stitch(predict_masks(model, tiles, progress=False)))


@pytest.mark.parametrize("source", ["sample", "shared"])
def test_frame_matches_its_tiles_away_from_the_blending_margin(request, source):
    """A real architecture sees context, so windows disagree near their borders; in the middle of each
    tile the tile-aligned window carries most of the weight. (An untrained model's near-tied logits make
    this a lower bound: the model trained by the main job agrees on 97 % of a frame, 99.4 % of tile centres.)"""
    torch.manual_seed(0)
    model = create_model("unet", tiny=True).eval()
    keep = central()
    for frame, tiles in frames_of(request, source):
        agree = predict_frame_probs(model, frame).argmax(0) == stitch(predict_masks(model, tiles, progress=False))
        assert agree[keep].mean() >= 0.9 and agree.mean() >= 0.85, (agree[keep].mean(), agree.mean())
        assert agree[keep].mean() > agree[~keep].mean()  # disagreement sits in the blending margin


def test_a_native_resolution_frame_is_brought_to_the_tile_scale(sample_arrays):
    """A 1024x1024 frame (native NAVCAM scale) is reduced to the model's 1/4 scale, predicted, and its
    mask returned at 1024x1024: the reduced frame's prediction, upsampled."""
    frame, _ = rebuild_frames(sample_arrays, 1)[0]
    big = np.asarray(Image.fromarray(frame).resize((1024, 1024), Image.BICUBIC))
    model = PointwiseModel()
    mask = predict_image(model, big, image_scale=1.0)
    assert mask.shape == (1024, 1024)
    reduced = np.asarray(Image.fromarray(big).resize((256, 256), Image.BILINEAR))
    small = predict_frame_probs(model, reduced).argmax(0)
    assert (mask == np.kron(small, np.ones((4, 4), np.uint8))).mean() >= 0.97
    # an image already at the tile scale is not resized at all: by default the model sees it at once, as the
    # tile path would a 256x256 tile; in windows mode it is the blended windows
    np.testing.assert_array_equal(predict_image(model, frame, image_scale=0.25),
                                  predict_masks(model, frame[None], progress=False)[0])
    np.testing.assert_array_equal(predict_image(model, frame, image_scale=0.25, mode="windows"),
                                  predict_frame_probs(model, frame).argmax(0))


def test_the_whole_frame_is_what_a_real_model_sees_at_once(sample_arrays):
    """A real architecture with context: the whole-frame mask is the model's output on the frame (here the
    tile path on a 256x256 input, which needs no padding), not the windows' blend; odd sizes are padded and
    cropped back, and the padding changes nothing at a pointwise model's pixels."""
    torch.manual_seed(0)
    model = create_model("upernet-r18", tiny=True).eval()
    frame, _ = rebuild_frames(sample_arrays, 1)[0]
    whole = predict_whole_probs(model, frame).argmax(0)
    np.testing.assert_array_equal(whole, predict_masks(model, frame[None], progress=False)[0])
    assert (whole != predict_frame_probs(model, frame).argmax(0)).any()  # context differs from the windows'
    for shape in [(1, 1), (40, 50), (100, 333)]:
        img = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
        assert predict_whole_probs(model, img).shape == (5, *shape)
        pointwise = PointwiseModel()
        np.testing.assert_allclose(predict_whole_probs(pointwise, img),
                                   predict_probs_of_pixels(pointwise, img), atol=1e-5)


def predict_probs_of_pixels(model: PointwiseModel, img: np.ndarray) -> np.ndarray:
    """A pointwise model's probabilities at each pixel: its softmax there, computed straight from the 1x1
    convolution's weights in float64, whatever windows, padding and blending a prediction used."""
    w = model.conv.weight.detach().double().numpy()[:, :, 0, 0].sum(1)  # the gray level feeds all 3 channels
    b = model.conv.bias.detach().double().numpy()
    x = (img.astype(np.float64) / 255 - IMAGE_MEAN) / IMAGE_STD
    logits = 4 * (w[:, None, None] * x[None] + b[:, None, None])
    expected = np.exp(logits - logits.max(0))
    return expected / expected.sum(0)


def test_smaller_than_a_tile_and_odd_sizes():
    model = PointwiseModel()
    for shape in [(40, 50), (64, 128), (100, 333)]:
        img = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
        probs = predict_frame_probs(model, img)
        assert probs.shape == (5, *shape)
        np.testing.assert_allclose(probs, predict_probs_of_pixels(model, img), atol=1e-5)


def test_predict_cli_on_image_files(tmp_path, sample_arrays):
    torch.manual_seed(0)
    folder = tmp_path / "model"
    model = create_model("upernet-r18", tiny=True)
    model.config.tile_scale = 0.25
    model.save_pretrained(folder)
    make_image_processor().save_pretrained(folder)
    frame, _ = rebuild_frames(sample_arrays, 1)[0]
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(frame).save(images / "frame_gray.png")
    Image.fromarray(np.stack([frame] * 3, -1)).resize((1024, 1024)).save(images / "frame_rgb.jpg")
    out = tmp_path / "out"
    assert predict_main(["--model", str(folder), "--images", str(images / "*.*"), "--out", str(out)]) == 0
    for stem, size in (("frame_gray", (256, 256)), ("frame_rgb", (1024, 1024))):
        mask = np.asarray(Image.open(out / f"{stem}_mask.png"))
        assert mask.shape == size and mask.max() <= 4
        over = Image.open(out / f"{stem}_overlay.png")
        assert over.size[1] == size[0] + 22  # the legend strip under the overlay
        info = json.loads((out / f"{stem}.json").read_text())
        assert sum(info["area_share"].values()) == pytest.approx(1.0, abs=1e-4)
        shares = np.bincount(mask.ravel(), minlength=5) / mask.size
        assert info["area_share"]["soil"] == pytest.approx(shares[1], abs=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 2
    # a gray PNG at the tile scale (--image-scale 0.25) is predicted without resizing
    out2 = tmp_path / "out2"
    assert predict_main(["--model", str(folder), "--images", str(images / "frame_gray.png"), "--out", str(out2),
                         "--image-scale", "0.25"]) == 0
    from mars_segformer.inference import load_model

    net = load_model(str(folder), "cpu")
    np.testing.assert_array_equal(np.asarray(Image.open(out2 / "frame_gray_mask.png")),
                                  predict_masks(net, frame[None], progress=False)[0])
    assert json.loads((out2 / "summary.json").read_text())["frame_mode"] == "whole"
    # --frame-mode windows: the blended tile-sized windows
    out3 = tmp_path / "out3"
    assert predict_main(["--model", str(folder), "--images", str(images / "frame_gray.png"), "--out", str(out3),
                         "--image-scale", "0.25", "--frame-mode", "windows"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out3 / "frame_gray_mask.png")),
                                  predict_frame_probs(net, frame).argmax(0))

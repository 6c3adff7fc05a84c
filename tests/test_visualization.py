"""Big-rock outcome codes, the hits/misses gallery and the frame-context gallery."""

import numpy as np
from PIL import Image

from mars_segformer.visualization import (
    big_rock_outcomes,
    hit_miss_image,
    save_big_rock_gallery,
    save_context_gallery,
)


def test_outcome_codes_count_hits_misses_and_false_alarms():
    truth = np.array([[4, 4, 1, 0], [4, 2, 2, 0]])
    pred = np.array([[4, 1, 4, 4], [3, 2, 4, 1]])
    codes = big_rock_outcomes(truth, pred)
    # hit where both are big rock; miss where only truth is; false alarm where only the prediction is
    # (on scored pixels: background truth pixels are never counted, whatever is predicted there)
    np.testing.assert_array_equal(codes, [[1, 2, 3, 0], [2, 0, 3, 0]])


def test_gallery_is_a_png_with_one_row_per_tile(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 64, 128)).astype(np.uint8)
    truths = rng.integers(0, 5, (3, 64, 128)).astype(np.uint8)
    path = save_big_rock_gallery(images, truths, truths[::-1], tmp_path / "g.png", "t")
    with Image.open(path) as im:
        w, h = im.size
    assert im.format == "PNG" and h > w * 0.3


def test_hit_miss_image_blends_each_outcome_colour_over_the_gray():
    image = np.full((1, 4), 100, np.uint8)
    truth, pred = np.array([[4, 4, 1, 2]]), np.array([[4, 1, 4, 2]])
    rgb, caption = hit_miss_image(image, truth, pred)
    # 30 % gray 100 + 70 % of green (40, 200, 60), red (230, 40, 40), yellow (250, 200, 30); the last pixel untouched
    np.testing.assert_array_equal(rgb[0], [[58, 170, 72], [191, 58, 58], [205, 170, 51], [100, 100, 100]])
    assert caption == "hit 1 / miss 1 / false 1 px"


def test_context_gallery_is_a_png_with_one_row_per_frame(tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (2, 256, 256)).astype(np.uint8)
    truths = rng.integers(0, 5, (2, 256, 256)).astype(np.uint8)
    one = save_context_gallery(frames[:1], truths[:1], truths[:1], truths[:1], tmp_path / "one.png", "t")
    two = save_context_gallery(frames, truths, truths[::-1], truths, tmp_path / "two.png", "t")
    with Image.open(one) as a, Image.open(two) as b:
        assert a.format == b.format == "PNG" and a.size[0] == b.size[0] and b.size[1] > 1.6 * a.size[1]

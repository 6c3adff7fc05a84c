"""Big-rock outcome codes and the hits/misses gallery."""

import numpy as np
from PIL import Image

from mars_segformer.visualization import big_rock_outcomes, save_big_rock_gallery


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

"""bench/exposure_spread.py against arrays whose brightness is known by construction."""

from __future__ import annotations

import numpy as np

from bench.exposure_spread import data_spread, tile_mean_shift


def test_data_spread_reads_class_medians_and_the_frames_brightness_sd():
    # four tiles in two frames: frame a's tiles average 20 and 40 (frame mean 30), frame b's 70 and 90 (80)
    images = np.stack([np.full((4, 8), v, np.uint8) for v in (20, 40, 70, 90)])
    masks = np.zeros_like(images)
    masks[0], masks[1], masks[2, :, :4], masks[2, :, 4:], masks[3] = 1, 1, 2, 4, 3
    out = data_spread(images, masks, np.array(["a", "a", "b", "b"]))
    assert out["class_median_grey"] == {"soil": 30.0, "bedrock": 70.0, "sand": 90.0, "big_rock": 70.0}
    assert out["frame_mean_brightness_sd"] == 25.0  # sd of (30, 80)
    assert data_spread(images, masks, None)["frame_mean_brightness_sd"] is None


def test_tile_mean_shift_stays_inside_exposures_limit_and_brightness_contrast_goes_past_it():
    # flat mid-grey tiles never clip: exposure moves the mean by |(alpha - 1) * 100 + beta * 255| <= 10 + 12.75
    images = np.full((200, 8, 16), 100, np.uint8)
    narrow, wide = tile_mean_shift("exposure", images), tile_mean_shift("brightness_contrast", images)
    assert 0 < narrow["median"] <= narrow["p90"] <= 0.1 * 100 + 0.05 * 255 + 1
    assert wide["p90"] > 0.1 * 100 + 0.05 * 255 + 1

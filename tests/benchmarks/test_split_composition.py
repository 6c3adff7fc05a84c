"""bench/split_composition.py: big rock in a split's tiles, counted by hand here."""

import numpy as np
import pytest

from bench.split_composition import composition


def test_counts_instances_frames_and_the_richest_frames_share():
    masks = np.ones((4, 8, 8), np.uint8)  # soil everywhere, then big rock painted in
    masks[0, 0:2, 0:2] = 4  # frame "a": one 4-px rock and one 1-px rock
    masks[0, 5, 5] = 4
    masks[1, 0:3, 0:3] = 4  # frame "b": one 9-px rock
    masks[3, :, :] = 0  # frame "c": an unlabelled tile, no rock
    masks[3, 0, 0:2] = 4  # ... but a 2-px rock
    frames = np.array(["a", "b", "b", "c"])
    r = composition(masks, frames, top=1)
    assert r["big_rock_pixels"] == 4 + 1 + 9 + 2
    assert r["big_rock_share_of_labelled"] == pytest.approx(16 / (3 * 64 + 2))
    assert (r["instances"], r["median_instance_pixels"]) == (4, 3.0)  # sizes 4, 1, 9, 2
    assert (r["tiles_with_big_rock"], r["frames_with_big_rock"], r["frames"]) == (3, 3, 3)
    assert r["top1_frames_share"] == pytest.approx(9 / 16)

"""Repeat-factor sampling and big-rock copy-paste, against hand-built tiles whose answer is known."""

import numpy as np
import pytest

from mars_segformer.data import DataConfig, build_dataset_dict
from mars_segformer.data.copy_paste import CopyPaste, find_instances
from mars_segformer.data.sampling import repeat_factor_indices, repeat_factors


def tiles(classes_per_tile, h=8, w=8):
    """One tile per entry: column block k of the tile holds the k-th listed class."""
    masks = np.zeros((len(classes_per_tile), h, w), np.uint8)
    for i, cls in enumerate(classes_per_tile):
        for k, c in enumerate(cls):
            masks[i, :, k::len(cls)] = c
    return masks


def test_repeat_factors_follow_the_rarest_class():
    # 10 tiles: soil in all, bedrock in 5, big rock in 1 (f = 1, 0.5, 0.1); background never counts
    spec = [(1, 4)] + [(1, 2)] * 4 + [(1, 0, 2)] + [(1,)] * 4
    masks = tiles(spec)
    r = repeat_factors(masks, threshold=0.4)
    # LVIS: r_c = max(1, sqrt(t / f_c)); soil 1, bedrock sqrt(0.8) -> 1, big rock sqrt(4) = 2
    np.testing.assert_allclose(r, [2.0] + [1.0] * 9)
    r = repeat_factors(masks, threshold=0.9)
    np.testing.assert_allclose(r, [3.0] + [np.sqrt(1.8)] * 5 + [1.0] * 4)


def test_repeat_factor_indices_round_stochastically_to_the_expected_count():
    masks = tiles([(1, 4)] + [(1, 2)] * 99 + [(1,)] * 100)  # big rock 0.5 %, bedrock 49.5 %
    r = repeat_factors(masks, threshold=0.5)
    idx = repeat_factor_indices(masks, 0.5, seed=3)
    counts = np.bincount(idx, minlength=len(masks))
    assert counts[0] == 10  # sqrt(0.5 / 0.005) = 10 exactly
    assert set(np.unique(counts[1:100])) <= {1, 2}  # r = sqrt(0.5 / 0.495) = 1.005
    assert (counts[100:] == 1).all()
    assert abs(counts.sum() - r.sum()) < 4 * np.sqrt(100 * 0.005)  # expected total within 4 sigma
    np.testing.assert_array_equal(idx, repeat_factor_indices(masks, 0.5, seed=3))  # seeded
    with pytest.raises(ValueError, match="threshold"):
        repeat_factors(masks, 0.0)


def test_find_instances_are_the_connected_components():
    masks = np.zeros((2, 16, 16), np.uint8)
    masks[0, 2:5, 2:6] = 4      # 12 pixels
    masks[0, 10:12, 10:11] = 4  # 2 pixels: below min_area
    masks[1, 8:14, 1:3] = 4     # 12 pixels
    masks[1, 0, 15] = 2
    images = np.arange(2 * 16 * 16, dtype=np.int64).reshape(2, 16, 16).astype(np.uint8)
    inst = find_instances(masks, images, min_area=4)
    assert sorted((i.tile, i.shape.shape, int(i.shape.sum())) for i in inst) == [(0, (3, 4), 12), (1, (6, 2), 12)]
    first = next(i for i in inst if i.tile == 0)
    np.testing.assert_array_equal(first.image, images[0, 2:5, 2:6])


def test_copy_paste_writes_rock_pixels_and_class_together():
    rng = np.random.default_rng(0)
    pool_masks = np.ones((3, 32, 64), np.uint8)
    pool_masks[0, 5:15, 10:20] = 4
    pool_images = np.full((3, 32, 64), 200, np.uint8)  # the rock's pixels are all 200
    target_img = rng.integers(0, 100, (32, 64)).astype(np.uint8)  # never 200
    target_msk = np.full((32, 64), 3, np.uint8)
    cp = CopyPaste(pool_images, pool_masks, p=1.0, max_instances=3, scale=(0.5, 1.5), seed=1)
    pasted = 0
    for _ in range(20):
        img, msk = cp(target_img, target_msk)
        rock = msk == 4
        assert rock.any()
        # exactly where the class became big rock the image became the rock's pixels, and nowhere else
        np.testing.assert_array_equal(img == 200, rock)
        np.testing.assert_array_equal(img[~rock], target_img[~rock])
        assert set(np.unique(msk[~rock])) == {3}
        pasted += int(rock.sum())
    assert 0 < pasted / 20 < 3 * 1.5 ** 2 * 100 + 1  # at most 3 instances of at most (1.5 * 10)^2 pixels
    np.testing.assert_array_equal(target_msk, 3)  # the input is not modified
    cp_off = CopyPaste(pool_images, pool_masks, p=0.0, seed=1)
    assert cp_off(target_img, target_msk)[0] is target_img


def test_copy_paste_and_repeat_factor_in_the_dataset(sample_arrays):
    plain = build_dataset_dict(sample_arrays, DataConfig(augmentations=["hflip"], seed=0))
    data = build_dataset_dict(sample_arrays, DataConfig(augmentations=["hflip", "copy_paste"],
                                                        repeat_factor_threshold=0.5, seed=0))
    tr = plain.train_indices
    expected_rows = len(repeat_factor_indices(plain.arrays.train_masks[tr], 0.5, seed=0))
    assert len(data.datasets["train"]) == expected_rows > len(tr)
    n = len(data.datasets["train"])
    got = np.concatenate([data.datasets["train"][i:i + 64]["labels"].numpy() for i in range(0, n, 64)])
    ref = np.concatenate([plain.datasets["train"][i:i + 64]["labels"].numpy() for i in range(0, len(tr), 64)])
    # pasting raises the big-rock share of the training reads well above the data's own
    assert (got == 4).mean() > 3 * (ref == 4).mean() > 0
    # validation is never touched
    v_plain = plain.datasets["validation"][:]["labels"].numpy()
    np.testing.assert_array_equal(data.datasets["validation"][:]["labels"].numpy(), v_plain)


@pytest.mark.parametrize("p", [0.25, 1.0])
def test_copy_paste_p_is_the_share_of_reads_given_rocks(sample_arrays, p):
    """``copy_paste_p`` (``--copy_paste_p``): of the reads of training tiles without big rock, the share that
    come back with big-rock pixels is p (within 4 binomial standard deviations; every read at p = 1)."""
    plain = build_dataset_dict(sample_arrays, DataConfig(augmentations=["hflip"], seed=0))
    data = build_dataset_dict(sample_arrays, DataConfig(augmentations=["hflip", "copy_paste"], copy_paste_p=p, seed=0))
    n = len(plain.datasets["train"])
    ref = np.concatenate([plain.datasets["train"][i:i + 64]["labels"].numpy() for i in range(0, n, 64)])
    rows = np.flatnonzero(~(ref == 4).any(axis=(1, 2)))  # reads that hold no big rock of their own
    reads = np.concatenate([data.datasets["train"][i:i + 64]["labels"].numpy() for i in range(0, n, 64)])
    share = (reads[rows] == 4).any(axis=(1, 2)).mean()
    if p == 1:
        assert share == 1
    else:
        assert abs(share - p) < 4 * (p * (1 - p) / len(rows)) ** 0.5, (share, len(rows))

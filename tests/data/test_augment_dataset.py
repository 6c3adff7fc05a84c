import numpy as np
import pytest
import torch

from mars_segformer.data import (
    AUGMENTATIONS,
    IMAGE_MEAN,
    IMAGE_STD,
    CutMix,
    DataConfig,
    build_augmentation,
    build_dataset_dict,
    oversample_indices,
)


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_each_augmentation_keeps_masks_exact(name, sample_arrays):
    aug = build_augmentation([name])
    aug.transforms[0].p = 1.0
    changed = 0
    for i in range(0, 60, 3):
        img, msk = sample_arrays.train_images[i], sample_arrays.train_masks[i]
        out = aug(image=img, mask=msk)
        assert out["image"].shape == img.shape and out["image"].dtype == np.uint8
        assert out["mask"].shape == msk.shape
        # no interpolated label values: every output value is a class the input had, or fill 0
        assert set(np.unique(out["mask"])) <= set(np.unique(msk)) | {0}
        changed += int(not np.array_equal(out["image"], img))
    assert changed > 0


def test_geometric_transforms_move_masks_with_pixels(sample_arrays):
    """hflip applied to image and mask together: flipping back restores both exactly."""
    aug = build_augmentation(["hflip"])
    aug.transforms[0].p = 1.0
    img, msk = sample_arrays.train_images[0], sample_arrays.train_masks[0]
    out = aug(image=img, mask=msk)
    np.testing.assert_array_equal(out["image"][:, ::-1], img)
    np.testing.assert_array_equal(out["mask"][:, ::-1], msk)


def _linear_fit(img: np.ndarray, out: np.ndarray) -> tuple[float, float, float]:
    """Slope, intercept (grey levels) and worst residual of out ~ img over the pixels that did not clip."""
    x, y = img.astype(np.float64).ravel(), out.astype(np.float64).ravel()
    keep = (y > 0) & (y < 255)
    slope, intercept = np.polyfit(x[keep], y[keep], 1)
    return slope, intercept, np.abs(y[keep] - (slope * x[keep] + intercept)).max()


def test_exposure_is_a_linear_change_inside_its_limits(sample_arrays):
    """out = alpha * tile + beta * 255 (rounded, clipped), alpha within 1 +- 0.1 and |beta * 255| <= 12.75, read
    back from each output by a least-squares line; brightness_contrast, its +-0.2 sibling, goes past those limits."""
    fits = {}
    for name in ("exposure", "brightness_contrast"):
        aug = build_augmentation([name], seed=0)
        aug.transforms[0].p = 1.0
        fits[name] = []
        for i in range(40):
            img, msk = sample_arrays.train_images[i], sample_arrays.train_masks[i]
            out = aug(image=img, mask=msk)
            np.testing.assert_array_equal(out["mask"], msk)
            fits[name].append(_linear_fit(img, out["image"]))
    slopes, intercepts, residuals = np.array(fits["exposure"]).T
    assert slopes.min() >= 0.9 - 0.01 and slopes.max() <= 1.1 + 0.01
    assert np.abs(intercepts).max() <= 0.05 * 255 + 1.5
    assert residuals.max() <= 1.01  # rounding to uint8 only
    wide_slopes, wide_intercepts, _ = np.array(fits["brightness_contrast"]).T
    assert np.abs(wide_intercepts).max() > 0.05 * 255 + 1.5 or np.abs(wide_slopes - 1).max() > 0.11


def test_unknown_augmentation_name():
    with pytest.raises(ValueError, match=r"unknown augmentation\(s\) \['twirl'\]"):
        build_augmentation(["hflip", "twirl"])


def test_cutmix_pastes_from_two_to_four_sources():
    pool_i = np.stack([np.full((64, 128), 10 * (k + 1), np.uint8) for k in range(6)])
    pool_m = np.stack([np.full((64, 128), k % 5, np.uint8) for k in range(6)])
    cm = CutMix(pool_i, pool_m, p=1.0, seed=0)
    target_i, target_m = np.zeros((64, 128), np.uint8), np.full((64, 128), 4, np.uint8)
    for _ in range(20):
        img, msk = cm(target_i, target_m)
        pasted = img != 0
        assert pasted.any()
        # labels move with their pixels: each pasted pixel's class is its source tile's class
        np.testing.assert_array_equal(msk[pasted], (img[pasted] // 10 - 1) % 5)
        np.testing.assert_array_equal(msk[~pasted], 4)
        assert 1 <= len(np.unique(img[pasted])) <= 4
    assert (target_i == 0).all()  # input untouched


def test_oversampling_repeats_big_rock_tiles():
    masks = np.ones((10, 8, 8), np.uint8)
    masks[[2, 5], 0, 0] = 4
    idx = oversample_indices(masks, 15)
    assert len(idx) == 10 + 2 * 14
    assert (idx == 2).sum() == 15 and (idx == 5).sum() == 15 and (idx == 0).sum() == 1


def test_dataset_dict_reads_augmented_batches(sample_arrays):
    data = build_dataset_dict(sample_arrays, DataConfig.reference(seed=1))
    dd = data.datasets
    assert set(dd) == {"train", "validation", "test"}
    assert dd["train"].features["image"].dtype == "binary"
    n_rock = (sample_arrays.train_masks[data.train_indices] == 4).any(axis=(1, 2)).sum()
    assert len(dd["train"]) == len(data.train_indices) + 14 * n_rock
    b = dd["train"][:16]
    assert b["pixel_values"].shape == (16, 3, 64, 128) and b["pixel_values"].dtype == torch.float32
    assert b["labels"].shape == (16, 64, 128) and b["labels"].dtype == torch.int64
    assert int(b["labels"].max()) <= 4 and int(b["labels"].min()) >= 0
    # on the fly: two reads of the same rows differ
    assert not torch.equal(dd["train"][:16]["pixel_values"], b["pixel_values"])
    # validation is deterministic and exactly the normalised source tiles
    v = dd["validation"][:4]
    src = sample_arrays.train_images[data.val_indices[:4]]
    expect = (torch.from_numpy(src).float() / 255 - IMAGE_MEAN) / IMAGE_STD
    torch.testing.assert_close(v["pixel_values"][:, 0], expect)
    torch.testing.assert_close(v["pixel_values"][:, 2], expect)
    np.testing.assert_array_equal(v["labels"].numpy(), sample_arrays.train_masks[data.val_indices[:4]])
    assert len(dd["test"]) == len(sample_arrays.test_images)


def test_dataset_drops_outliers(sample_arrays):
    a = sample_arrays.subset(np.arange(len(sample_arrays)))
    a.train_masks = a.train_masks.copy()
    alien = a.train_masks[0].copy()
    alien[:8] = 4
    a.train_masks[100:130] = alien
    data = build_dataset_dict(a, DataConfig(outlier_min_count=20))
    # exactly the 30 planted copies go (the sample itself has no multi-class mask shared by 20 tiles)
    np.testing.assert_array_equal(np.sort(data.outliers.outlier_indices), np.arange(100, 130))
    keep = np.setdiff1d(np.arange(len(a)), np.arange(100, 130))
    assert len(data.arrays) == len(a) - 30
    np.testing.assert_array_equal(data.arrays.train_images, a.train_images[keep])
    np.testing.assert_array_equal(data.arrays.train_masks, a.train_masks[keep])
    assert len(data.train_indices) + len(data.val_indices) == len(a) - 30

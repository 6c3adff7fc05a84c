import numpy as np
import pytest

from mars_segformer.data import MarsDataError, find_outliers, train_val_split
from mars_segformer.data.clean import find_near_duplicates


def with_aliens(n=300, aliens=110, seed=0):
    rng = np.random.default_rng(seed)
    masks = rng.integers(0, 5, (n, 64, 128)).astype(np.uint8)
    alien = rng.integers(0, 5, (64, 128)).astype(np.uint8)
    idx = rng.choice(n, aliens, replace=False)
    masks[idx] = alien
    # trivial shared masks (one class) are ordinary in real AI4Mars tiles and must be kept
    uniform = np.setdiff1d(np.arange(n), idx)[:30]
    masks[uniform] = 1
    return masks, np.sort(idx), uniform


def test_alien_masks_found_and_trivial_masks_kept():
    masks, aliens, uniform = with_aliens()
    rep = find_outliers(masks, min_count=20)
    np.testing.assert_array_equal(rep.outlier_indices, aliens)
    assert len(rep.groups) == 1 and rep.groups[0]["count"] == 110
    assert not np.isin(uniform, rep.outlier_indices).any()
    assert "110 tiles share one mask" in rep.summary()


def test_threshold_is_configurable():
    masks, aliens, _ = with_aliens(aliens=15)
    assert len(find_outliers(masks, min_count=20).outlier_indices) == 0
    assert len(find_outliers(masks, min_count=10).outlier_indices) == 15
    # with min_classes=1 the 30 uniform tiles form a group too
    assert len(find_outliers(masks, min_count=10, min_classes=1).outlier_indices) == 45


def test_near_duplicates_reported():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 64, 128)).astype(np.uint8)
    images[7] = images[2]
    images[7, 0, 0] ^= 1  # a one-pixel change is still a near duplicate
    assert [2, 7] in find_near_duplicates(images)


def test_split_by_frame_has_no_shared_frame(sample_arrays):
    a = sample_arrays
    tr, va = train_val_split(a.train_masks, a.train_frame_ids, 0.2, seed=3)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(a)
    assert not set(a.train_frame_ids[tr]) & set(a.train_frame_ids[va])
    rock = (a.train_masks == 4).any(axis=(1, 2))
    assert rock[tr].any() and rock[va].any()
    tr2, va2 = train_val_split(a.train_masks, a.train_frame_ids, 0.2, seed=3)
    np.testing.assert_array_equal(va, va2)
    _, va3 = train_val_split(a.train_masks, a.train_frame_ids, 0.2, seed=4)
    assert not np.array_equal(va, va3)


def test_split_without_ids_is_stratified():
    masks = np.ones((100, 8, 8), np.uint8)
    masks[:6, 0, 0] = 4
    tr, va = train_val_split(masks, None, 0.2, seed=0)
    assert len(va) == 20
    assert (masks[va] == 4).any(axis=(1, 2)).sum() == 1 and (masks[tr] == 4).any(axis=(1, 2)).sum() == 5


def test_split_rejects_bad_input():
    with pytest.raises(MarsDataError, match="val_fraction"):
        train_val_split(np.zeros((4, 8, 8)), None, 1.5)
    with pytest.raises(MarsDataError, match="2 frames"):
        train_val_split(np.zeros((4, 8, 8)), np.array(["a"] * 4), 0.5)


def test_train_frames_halves_are_disjoint_whole_frames_and_leave_validation_alone(sample_arrays):
    from mars_segformer.data import DataConfig
    from mars_segformer.data.dataset import clean_and_split

    _, _, tr, va = clean_and_split(sample_arrays, DataConfig(seed=3))
    _, _, a, va_a = clean_and_split(sample_arrays, DataConfig(seed=3, train_frames=(0.0, 0.5)))
    _, _, b, va_b = clean_and_split(sample_arrays, DataConfig(seed=3, train_frames=(0.5, 1.0)))
    np.testing.assert_array_equal(va_a, va)
    np.testing.assert_array_equal(va_b, va)
    assert not set(a) & set(b) and sorted(set(a) | set(b)) == sorted(tr)
    ids = sample_arrays.train_frame_ids
    assert not set(ids[a]) & set(ids[b])  # no frame is cut in two
    n_frames = len(set(ids[tr]))
    assert abs(len(set(ids[a])) - n_frames / 2) <= 1

"""Checks on the full AI4Mars file (../shared/data); skipped with a reason where it is absent."""

import numpy as np
import pytest

from mars_segformer.data import find_outliers, load_npz, train_val_split

#: one xdist worker runs this module (`--dist loadgroup`), so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group(__name__)


@pytest.fixture(scope="module")
def full(request):
    from tests.conftest import SHARED_NPZ

    if not SHARED_NPZ.exists():
        pytest.skip(f"full AI4Mars file not found at {SHARED_NPZ} (only CI and developers have ../shared)")
    return load_npz(SHARED_NPZ)


def test_layout_and_class_shares(full):
    assert full.train_images.shape == (6485, 64, 128) and full.test_images.shape == (3162, 64, 128)
    shares = np.bincount(full.train_masks.ravel(), minlength=5) / full.train_masks.size
    # the file's README: background 30.4 %, soil 25.9 %, bedrock 35.8 %, sand 7.4 %, big rock 0.55 %
    np.testing.assert_allclose(shares, [0.304, 0.259, 0.358, 0.074, 0.0055], atol=0.001)
    assert int((full.train_masks == 4).any(axis=(1, 2)).sum()) == 271
    assert not set(full.train_frame_ids) & set(full.test_frame_ids)


def test_no_alien_groups_but_trivial_duplicates_exist(full):
    rep = find_outliers(full.train_masks, min_count=20)
    assert len(rep.outlier_indices) == 0
    # identical one-class masks are common in real tiles: counted with min_classes=1 they are hundreds
    assert len(find_outliers(full.train_masks, min_count=20, min_classes=1).outlier_indices) > 400


def test_frame_grouped_split_of_the_full_file(full):
    tr, va = train_val_split(full.train_masks, full.train_frame_ids, 0.2, seed=42)
    assert not set(full.train_frame_ids[tr]) & set(full.train_frame_ids[va])
    assert 0.15 < len(va) / len(full) < 0.25
    assert (full.train_masks[va] == 4).any() and (full.train_masks[tr] == 4).any()

import numpy as np
import pytest
from PIL import Image

from mars_segformer.data import MarsDataError, load_ai4mars_folder, load_arrays
from mars_segformer.data.ai4mars import cut_tiles, join_tiles, tile_frame


def build_release(root, n_train=3, n_test=1, size=512, bad_value=None):
    """A tiny AI4Mars MSL folder: frames with left/right halves of known classes."""
    edr = root / "msl" / "images" / "edr"
    tr = root / "msl" / "labels" / "train"
    te = root / "msl" / "labels" / "test" / "masked-gold-min3-100agree"
    for d in (edr, tr, te):
        d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n_train + n_test):
        name = f"NLA_{i:09d}EDR_F0000000AUT_04096M1"
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(edr / f"{name}.JPG")
        label = np.full((size, size), 255, np.uint8)
        label[:, : size // 2] = i % 4  # AI4Mars class ids 0-3
        label[: size // 4, size // 2:] = 3
        if bad_value is not None and i == 0:
            label[0, 0] = bad_value
        if i < n_train:
            Image.fromarray(label).save(tr / f"{name}.png")
        else:
            Image.fromarray(label).save(te / f"{name}_merged.png")


def test_release_folder_to_tiles(tmp_path):
    build_release(tmp_path)
    a = load_ai4mars_folder(tmp_path)
    # 256x256 frame -> 4 rows x 2 columns of 64x128 tiles; the right column of the lower three rows
    # is all null (0 after mapping) and dropped
    assert a.train_images.shape == (3 * 5, 64, 128)
    assert len(a.test_images) == 8 and a.test_frame_ids[0].endswith("M1")
    assert set(np.unique(a.train_masks)) <= {0, 1, 2, 3, 4}
    first = a.train_masks[a.train_frame_ids == a.train_frame_ids[0]]
    assert (first[0] == 1).all()  # top-left tile of frame 0: AI4Mars soil 0 -> class 1
    assert set(np.unique(first[1])) == {4}  # top-right: AI4Mars big rock 3 -> class 4
    assert len(np.unique(a.train_frame_ids)) == 3
    # the same folder is accepted by the generic loader
    assert len(load_arrays(tmp_path)) == 15


def test_tiles_keep_mask_values_exact():
    img = np.random.default_rng(1).integers(0, 256, (1024, 1024), dtype=np.uint8)
    mask = np.random.default_rng(2).integers(0, 5, (1024, 1024), dtype=np.uint8)
    ti, tm = tile_frame(img, mask)
    assert ti.shape == (8, 64, 128) and tm.shape == (8, 64, 128)
    assert set(np.unique(tm)) <= set(range(5))
    # nearest neighbour of a 4x reduction takes the pixel at the centre of each 4x4 block (offset 2)
    np.testing.assert_array_equal(tm[1], mask[2::4, 2::4][0:64, 128:256])
    np.testing.assert_array_equal(tm[7], mask[2::4, 2::4][192:256, 128:256])


def test_unknown_label_value(tmp_path):
    build_release(tmp_path, bad_value=9)
    with pytest.raises(MarsDataError, match=r"label values \[9\]"):
        load_ai4mars_folder(tmp_path)


def test_folder_without_layout(tmp_path):
    with pytest.raises(MarsDataError, match="no AI4Mars layout"):
        load_ai4mars_folder(tmp_path)


def test_a_broken_release_names_what_is_missing(tmp_path):
    build_release(tmp_path, n_train=2, size=256)
    msl = tmp_path / "msl"
    # an unknown test subset
    with pytest.raises(MarsDataError, match=r"labels/test: no test subset folder 'nope'"):
        load_ai4mars_folder(tmp_path, test_subset="nope")
    # a label whose frame is missing names the label file and the image folder
    orphan = msl / "labels" / "train" / "NLA_999999999EDR_F0000000AUT_04096M1.png"
    Image.fromarray(np.zeros((256, 256), np.uint8)).save(orphan)
    with pytest.raises(MarsDataError, match=r"NLA_999999999EDR_F0000000AUT_04096M1\.png: no matching image .* in .*images/edr"):
        load_ai4mars_folder(tmp_path)
    orphan.unlink()
    # labels that leave no tile with enough labelled pixels
    for lab in (msl / "labels" / "train").glob("*.png"):
        Image.fromarray(np.full((256, 256), 255, np.uint8)).save(lab)  # 255: unlabelled
    with pytest.raises(MarsDataError, match="every tile has under 10% labelled pixels"):
        load_ai4mars_folder(tmp_path)
    for lab in (msl / "labels" / "train").glob("*.png"):
        lab.unlink()
    with pytest.raises(MarsDataError, match="labels/train: no label .png files found"):
        load_ai4mars_folder(tmp_path)


def test_tiles_go_back_to_their_places_in_the_frame():
    frames = np.random.default_rng(0).integers(0, 256, (2, 256, 256), dtype=np.uint8)
    # the file's layout: 4 rows x 2 columns of 64x128 tiles, row-major
    tiles = np.stack([f[r * 64:(r + 1) * 64, c * 128:(c + 1) * 128] for f in frames for r in range(4) for c in range(2)])
    np.testing.assert_array_equal(cut_tiles(frames), tiles)
    np.testing.assert_array_equal(join_tiles(tiles), frames)
    np.testing.assert_array_equal(cut_tiles(frames[0]), tiles[:8])  # one frame, as tile_frame passes it

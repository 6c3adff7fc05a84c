import numpy as np
import pytest

from mars_segformer.data import MarsDataError, arrays_from_course_layout, load_arrays, load_npz, save_npz
from mars_segformer.data.io import to_uint8_images
from tests.conftest import make_course_arrays


def write(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_embedded_sample_is_real_data():
    a = load_arrays()
    assert a.train_images.shape[1:] == (64, 128) and a.train_images.dtype == np.uint8
    assert 300 <= len(a) <= 500 and len(a.test_images) > 0
    assert set(np.unique(a.train_masks)) == {0, 1, 2, 3, 4}
    assert a.train_frame_ids is not None and len(np.unique(a.train_frame_ids)) == 60


def test_roundtrip_keeps_frame_ids(tmp_path):
    a = load_arrays()
    save_npz(a, tmp_path / "s.npz")
    b = load_npz(tmp_path / "s.npz")
    np.testing.assert_array_equal(a.train_images, b.train_images)
    np.testing.assert_array_equal(a.train_frame_ids, b.train_frame_ids)


def test_course_file_without_frame_ids(tmp_path):
    train, test = make_course_arrays()
    a = load_npz(write(tmp_path, training_set=train, test_set=test))
    assert a.train_frame_ids is None and len(a) == 40 and len(a.test_images) == 6


@pytest.mark.parametrize(
    "dtype,scale", [(np.uint8, 1), (np.float32, 1 / 255), (np.float64, 1.0), (np.uint16, 257), (np.int32, 1)]
)
def test_image_dtypes_normalised_consistently(dtype, scale):
    ref = np.arange(256, dtype=np.uint8).reshape(1, 16, 16).repeat(2, 0)
    img = (ref.astype(np.float64) * scale).astype(dtype)
    np.testing.assert_array_equal(to_uint8_images(img, "x"), ref)


@pytest.mark.parametrize(
    "arrays,needle",
    [
        ({"test_set": np.zeros((2, 64, 128))}, "missing key 'training_set'"),
        ({"training_set": np.zeros((3, 64, 128))}, "(N, 2, H, W)"),
        ({"training_set": np.zeros((3, 3, 64, 128))}, "(N, 2, H, W)"),
        ({"training_set": np.zeros((0, 2, 64, 128))}, "empty"),
        ({"training_set": np.full((2, 2, 64, 128), 7, np.uint8)}, "found [7]"),
        ({"training_set": np.zeros((2, 2, 64, 128)), "test_set": np.zeros((2, 2, 64, 128))}, "holds masks"),
        ({"training_set": np.zeros((2, 2, 64, 128)), "test_set": np.zeros((2, 32, 32))}, "'test_set' tiles are"),
        ({"training_set": np.zeros((2, 2, 64, 128)), "training_frame_ids": np.array(["a"])}, "expected 2 frame ids"),
        ({"training_set": np.zeros((2, 2, 4, 4))}, "too small"),
    ],
)
def test_bad_arrays_name_the_problem(tmp_path, arrays, needle):
    path = write(tmp_path, **arrays)
    with pytest.raises(MarsDataError) as err:
        load_npz(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_nan_images_rejected(tmp_path):
    train = np.zeros((2, 2, 64, 128), np.float32)
    train[1, 0, 5, 7] = np.nan
    with pytest.raises(MarsDataError, match=r"NaN or inf .*index \(1, 5, 7\)"):
        load_npz(write(tmp_path, training_set=train))


def test_inf_images_rejected():
    train = np.zeros((2, 2, 64, 128), np.float32)
    train[0, 0, 0, 0] = np.inf
    with pytest.raises(MarsDataError, match="NaN or inf"):
        arrays_from_course_layout(train)


def test_missing_file_and_not_npz(tmp_path):
    with pytest.raises(MarsDataError, match="no such file"):
        load_npz(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(MarsDataError, match="not a readable .npz"):
        load_npz(bad)
    single = tmp_path / "one.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(MarsDataError, match="single array"):
        load_npz(single)


def test_image_mask_count_mismatch_via_ids():
    train, _ = make_course_arrays(n=5)
    with pytest.raises(MarsDataError, match="expected 5 frame ids"):
        arrays_from_course_layout(train, training_frame_ids=np.array(["a"] * 4))


def test_non_integer_mask_values():
    train = np.zeros((2, 2, 64, 128), np.float32)
    train[0, 1, 0, 0] = 1.5
    with pytest.raises(MarsDataError, match="non-integer"):
        arrays_from_course_layout(train)

"""frame_shift: training tiles of complete frames read at a shifted place inside their own frame."""

import numpy as np
import pytest

from mars_segformer.data import DataConfig, build_dataset_dict
from mars_segformer.data.dataset import IMAGE_MEAN, IMAGE_STD, decode_tiles
from mars_segformer.data.frame_shift import (
    SEAM_MEDIAN_MAX,
    ZOOM_SCALE,
    FrameShift,
    complete_frames,
    seam_ratio,
)
from mars_segformer.data.io import FRAME_SIZE, TILE_SHAPE

TH, TW = TILE_SHAPE


def test_only_whole_wanted_frames_are_taken():
    ids = np.array(["a"] * 8 + ["b"] * 7 + ["c"] * 8 + ["d"] * 8)
    np.testing.assert_array_equal(complete_frames(ids, {"a", "b", "d"}), [*range(0, 8), *range(23, 31)])
    np.testing.assert_array_equal(complete_frames(ids), [*range(0, 8), *range(15, 31)])


def _coordinate_frames(n_frames: int):
    """Frames whose pixels say where they are: image = row, mask = column (both < 256), cut into the file's
    row-major 4 x 2 tiles by plain slicing (the layout ../shared/data/README.md describes)."""
    ys, xs = np.mgrid[0:FRAME_SIZE, 0:FRAME_SIZE].astype(np.uint8)
    images, masks = [], []
    for _ in range(n_frames):
        for r in range(FRAME_SIZE // TH):
            for c in range(FRAME_SIZE // TW):
                images.append(ys[r * TH:(r + 1) * TH, c * TW:(c + 1) * TW])
                masks.append(xs[r * TH:(r + 1) * TH, c * TW:(c + 1) * TW])
    return np.stack(images), np.stack(masks)


def test_a_shifted_read_is_the_frame_window_near_its_tile():
    images, masks = _coordinate_frames(2)
    ids = np.array(["f0"] * 8 + ["f1"] * 8)
    shift = FrameShift(images, masks, ids, np.arange(16), p=1.0, seed=0)
    assert shift.num_frames == 2
    offsets = set()
    for row in range(16):
        r, c = (row % 8) // 2, row % 2
        for _ in range(40):
            img, msk = shift(images[row], masks[row], row)
            y0, x0 = int(img[0, 0]), int(msk[0, 0])
            # a contiguous window of the frame: rows y0.., columns x0..
            np.testing.assert_array_equal(img, np.broadcast_to(np.arange(y0, y0 + TH)[:, None], (TH, TW)))
            np.testing.assert_array_equal(msk, np.broadcast_to(np.arange(x0, x0 + TW)[None, :], (TH, TW)))
            assert 0 <= y0 <= FRAME_SIZE - TH and 0 <= x0 <= FRAME_SIZE - TW
            dy, dx = y0 - r * TH, x0 - c * TW
            assert abs(dy) <= TH // 2 and abs(dx) <= TW // 2
            offsets.add((np.sign(dy), np.sign(dx)))
    # shifts go both ways on both axes (tiles inside the frame can move up, down, left and right)
    assert {-1, 1} <= {o[0] for o in offsets} and {-1, 1} <= {o[1] for o in offsets}


def test_frames_with_a_tile_outside_the_training_rows_are_never_shifted():
    images, masks = _coordinate_frames(2)
    ids = np.array(["f0"] * 8 + ["f1"] * 8)
    allowed = np.r_[0:8, 8:15]  # frame f1 lost one tile to validation
    shift = FrameShift(images, masks, ids, allowed, p=1.0, seed=0)
    assert shift.num_frames == 1
    for row in range(8, 16):
        for _ in range(20):
            img, msk = shift(images[row], masks[row], row)
            np.testing.assert_array_equal(img, images[row])
            np.testing.assert_array_equal(msk, masks[row])
    # an incomplete frame (7 tiles) and a file without frame ids give nothing to shift
    assert FrameShift(images[:7], masks[:7], ids[:7], np.arange(7), p=1.0).num_frames == 0
    assert FrameShift(images, masks, None, np.arange(16), p=1.0).num_frames == 0


def test_p_sets_the_share_of_shifted_reads():
    images, masks = _coordinate_frames(1)
    shift = FrameShift(images, masks, np.array(["f"] * 8), np.arange(8), p=0.5, seed=1)
    tile = images[3]
    moved = sum(shift(tile, masks[3], 3)[0] is not tile for _ in range(2000))
    assert 900 < moved < 1100


def _window_in(frame_img, frame_msk, img, msk) -> bool:
    """Brute force: is (img, msk) some tile-sized window of the frame?"""
    for y in range(FRAME_SIZE - TH + 1):
        for x in range(FRAME_SIZE - TW + 1):
            if np.array_equal(frame_img[y:y + TH, x:x + TW], img) and np.array_equal(frame_msk[y:y + TH, x:x + TW], msk):
                return True
    return False


def test_training_reads_show_only_their_own_training_frame(sample_arrays):
    from mars_segformer.data.ai4mars import join_tiles

    data = build_dataset_dict(sample_arrays, DataConfig(augmentations=["frame_shift"]))
    assert data.frame_shift["frames"] > 0
    arrays, train = data.arrays, data.datasets["train"]
    frames = {}
    for s in complete_frames(arrays.train_frame_ids).reshape(-1, 8):
        frames[arrays.train_frame_ids[s[0]]] = (join_tiles(arrays.train_images[s])[0], join_tiles(arrays.train_masks[s])[0])
    val_frames = set(arrays.train_frame_ids[data.val_indices])
    raw = train.with_format(None)[:]
    stored_i, stored_m = decode_tiles(raw)
    out = train[:]
    shifted = 0
    for k, (row, fid) in enumerate(zip(raw["index"], raw["frame_id"], strict=True)):
        img = ((out["pixel_values"][k, 0].numpy() * IMAGE_STD + IMAGE_MEAN) * 255).round().astype(np.uint8)
        msk = out["labels"][k].numpy().astype(np.uint8)
        if np.array_equal(msk, stored_m[k]) and np.array_equal(img, stored_i[k]):
            continue
        shifted += 1
        assert fid in frames and fid not in val_frames, f"row {row} ({fid}) was changed but its frame is not eligible"
        assert _window_in(*frames[fid], img, msk)
        if shifted == 12:
            break
    assert shifted == 12



def test_dataloader_workers_draw_their_own_shifts():
    """Two workers reading copies of one eligible tile: with their own seeds their shifts differ."""
    import torch

    from mars_segformer.data.dataset import MarsTransform, tiles_to_dataset

    images, masks = _coordinate_frames(1)
    shift = FrameShift(images, masks, np.array(["f"] * 8), np.arange(8), p=1.0, seed=0)
    ds = tiles_to_dataset(images[[3] * 64], masks[[3] * 64], ["f"] * 64, [3] * 64)
    ds.set_transform(MarsTransform(None, frame_shift=shift))
    loader = torch.utils.data.DataLoader(ds, batch_size=32, num_workers=2, shuffle=False)
    first, second = (b["labels"][:, 0, 0] for b in loader)  # batch k comes from worker k; label = frame column
    assert not torch.equal(first, second)


def test_tiles_stored_in_another_order_are_not_joined(sample_arrays):
    """The shared file's frames join with seams like the rows inside a tile; the same tiles with each frame's two
    columns swapped (a file whose frame ids group tiles in another layout) give no shifted reads."""
    rows = complete_frames(sample_arrays.train_frame_ids).reshape(-1, 8)
    args = (sample_arrays.train_frame_ids, np.arange(len(sample_arrays.train_images)))
    right = FrameShift(sample_arrays.train_images, sample_arrays.train_masks, *args)
    assert right.num_frames == len(rows) and right.seam_median < SEAM_MEDIAN_MAX
    swapped = sample_arrays.train_images.copy()
    swapped[rows.ravel()] = sample_arrays.train_images[rows[:, [1, 0, 3, 2, 5, 4, 7, 6]].ravel()]
    wrong = FrameShift(swapped, sample_arrays.train_masks, *args, p=1.0)
    assert wrong.num_frames == 0 and wrong.seam_median > SEAM_MEDIAN_MAX
    r = int(rows[0, 0])
    np.testing.assert_array_equal(wrong(swapped[r], sample_arrays.train_masks[r], r)[0], swapped[r])


def test_seam_ratio_is_one_for_a_smooth_frame_and_large_where_unrelated_tiles_meet():
    ramp = np.tile(np.arange(FRAME_SIZE, dtype=np.uint8)[:, None], (1, FRAME_SIZE))  # +1 per row everywhere
    assert seam_ratio(ramp) == 1.0
    step = ramp.copy()
    step[TH:2 * TH] += 40  # tile row 1 brighter: the joins above and below it step by 41 and 39
    assert seam_ratio(step) == 41.0


def test_the_default_on_a_file_without_frame_ids_reads_tiles_as_stored():
    from mars_segformer.data.io import arrays_from_course_layout
    from mars_segformer.training.run import _frame_shift_line
    from tests.conftest import make_course_arrays

    arrays = arrays_from_course_layout(*make_course_arrays(n=40))
    data = build_dataset_dict(arrays, DataConfig())  # the default augmentations hold frame_shift
    # every eligible read is moved by default (there are none here)
    assert data.frame_shift == {"frames": 0, "seam_median": None, "p": 1.0, "scale": (1.0, 1.0), "zoom_until": 1.0}
    assert "off here: the data has no complete frames" in _frame_shift_line(data.frame_shift)
    assert "off here: the tiles do not join" in _frame_shift_line({"frames": 0, "seam_median": 3.9})


def test_every_window_is_cut_from_the_stored_tiles_without_a_frame_copy():
    # every top-left position of the frame (the <= 2 x 2 tiles a window crosses), against slicing the whole frame
    images, masks = _coordinate_frames(1)
    shift = FrameShift(images, masks, np.array(["f"] * 8), np.arange(8), p=1.0)
    ys, xs = np.mgrid[0:FRAME_SIZE, 0:FRAME_SIZE]
    for y in range(0, FRAME_SIZE - TH + 1, 7):
        for x in range(0, FRAME_SIZE - TW + 1, 5):
            img, msk = shift.window(0, y, x)
            np.testing.assert_array_equal(img, ys[y:y + TH, x:x + TW])
            np.testing.assert_array_equal(msk, xs[y:y + TH, x:x + TW])
    assert shift.images is images and shift.masks is masks  # the tiles themselves, not a joined copy


def test_fingerprinting_the_training_transform_does_not_pickle_the_tiles():
    # datasets hashes set_transform's callable by pickling it; the tiles must not go into that pickle
    from datasets.fingerprint import Hasher
    from datasets.utils._dill import dumps

    images, masks = _coordinate_frames(40)
    ids = np.repeat([f"f{k}" for k in range(40)], 8)
    shift = FrameShift(images, masks, ids, np.arange(len(ids)), p=1.0)
    assert shift.num_frames == 40
    assert len(dumps(shift)) < 0.05 * images.nbytes
    # ... and the fingerprint still tells different frames or settings apart
    other = FrameShift(images, masks, ids, np.arange(8 * 39), p=1.0)
    assert Hasher.hash(shift) != Hasher.hash(other)
    assert Hasher.hash(shift) != Hasher.hash(FrameShift(images, masks, ids, np.arange(len(ids)), p=0.5))
    assert Hasher.hash(shift) == Hasher.hash(FrameShift(images, masks, ids, np.arange(len(ids)), p=1.0))
    assert Hasher.hash(shift) != Hasher.hash(FrameShift(images, masks, ids, np.arange(len(ids)), p=1.0,
                                                        scale=ZOOM_SCALE))


def test_a_zoomed_read_is_a_scaled_frame_window_around_its_tile():
    """frame_zoom: the window read has sides s times the tile's (s log-uniform in ZOOM_SCALE, the same s on both
    axes), lies inside the frame around the tile, and is resized to the tile's shape. On coordinate frames the
    mask (resized nearest) names the window's columns and the image (row numbers, resized smoothly) its rows."""
    images, masks = _coordinate_frames(1)
    zoom = FrameShift(images, masks, np.array(["f"] * 8), np.arange(8), p=1.0, scale=ZOOM_SCALE, seed=0)
    scales = []
    for row in range(8):
        r, c = row // 2, row % 2
        for _ in range(40):
            img, msk = zoom(images[row], masks[row], row)
            assert img.shape == msk.shape == TILE_SHAPE and img.dtype == msk.dtype == np.uint8
            cols, rows = msk[0].astype(int), img[:, 0].astype(int)
            # every mask row is the same run of columns, non-decreasing: a window, not a mix of classes
            assert (msk == msk[0]).all() and (np.diff(cols) >= 0).all()
            assert (np.diff(rows) >= 0).all() and (img == img[:, :1]).all()
            sx = (cols[-1] - cols[0] + 1) / TW
            sy = (rows[-1] - rows[0] + 1) / TH
            assert ZOOM_SCALE[0] - 0.03 <= sx <= ZOOM_SCALE[1] + 0.03
            assert abs(sy - sx) < 0.1  # one scale for both sides: the aspect is kept
            # the window's centre is within half a tile of the tile's centre (unless the frame's edge stops it)
            cy, cx = (rows[0] + rows[-1]) / 2, (cols[0] + cols[-1]) / 2
            assert abs(cx - (c * TW + TW / 2)) <= TW / 2 + 1 or cols[0] == 0 or cols[-1] == FRAME_SIZE - 1
            assert abs(cy - (r * TH + TH / 2)) <= TH / 2 + 1 or rows[0] <= 1 or rows[-1] >= FRAME_SIZE - 2
            scales.append(sx)
    scales = np.array(scales)
    # both ways: zoomed in (windows smaller than the tile, upsampled) and out (larger, downsampled)
    assert (scales < 0.8).mean() > 0.15 and (scales > 1.25).mean() > 0.15


def test_a_zoomed_mask_holds_only_the_frame_classes_of_its_window():
    """Nearest resizing: a zoomed label map never blends two classes into a third id."""
    images, _ = _coordinate_frames(1)
    classes = np.zeros((FRAME_SIZE, FRAME_SIZE), np.uint8)
    classes[:, ::2] = 4  # stripes of class 0 and 4: any blending would give ids 1-3
    masks = np.stack([classes[r * TH:(r + 1) * TH, c * TW:(c + 1) * TW] for r in range(4) for c in range(2)])
    zoom = FrameShift(images, masks, np.array(["f"] * 8), np.arange(8), p=1.0, scale=ZOOM_SCALE, seed=1)
    for row in range(8):
        for _ in range(10):
            assert set(np.unique(zoom(images[row], masks[row], row)[1])) <= {0, 4}


def test_zoom_settings_outside_the_frame_are_refused():
    images, masks = _coordinate_frames(1)
    ids = np.array(["f"] * 8)
    for bad in ((0.0, 1.0), (1.5, 1.0), (1.0, 2.5)):  # the last: windows wider than the 256-pixel frame
        with pytest.raises(ValueError, match="frame_zoom: scale"):
            FrameShift(images, masks, ids, np.arange(8), scale=bad)


def test_frame_zoom_in_the_dataset_and_not_beside_frame_shift(sample_arrays):
    data = build_dataset_dict(sample_arrays, DataConfig(augmentations=["hflip", "frame_zoom"]))
    assert data.frame_shift["frames"] > 0 and data.frame_shift["scale"] == ZOOM_SCALE
    with pytest.raises(ValueError, match="name one of frame_shift and frame_zoom"):
        build_dataset_dict(sample_arrays, DataConfig(augmentations=["frame_shift", "frame_zoom"]))


def test_frame_read_p_sets_the_share_of_moved_training_reads(sample_arrays):
    """DataConfig.frame_read_p (train_hf.py --frame_read_p): 0 leaves every read as stored, 1 moves nearly all
    reads of eligible tiles (a shift of 0 on both axes, drawn now and then, gives the tile back)."""
    changed = {}
    for p in (0.0, 1.0):
        data = build_dataset_dict(sample_arrays, DataConfig(augmentations=["frame_zoom"], frame_read_p=p))
        train, shift = data.datasets["train"], data.frame_shift
        assert shift["p"] == p
        raw = train.with_format(None)[:]
        _, stored_m = decode_tiles(raw)
        labels = train[:]["labels"].numpy()
        eligible = [k for k, fid in enumerate(raw["frame_id"])
                    if (np.asarray(data.arrays.train_frame_ids) == fid).sum() == 8 and fid not in
                    set(data.arrays.train_frame_ids[data.val_indices])]
        assert eligible
        changed[p] = np.mean([not np.array_equal(labels[k], stored_m[k]) for k in eligible])
    assert changed[0.0] == 0 and changed[1.0] > 0.8


def _window_span(msk: np.ndarray) -> int:
    """Columns of the frame a coordinate-frame mask read covers (the tile's width for an unzoomed read)."""
    cols = msk[0].astype(int)
    return cols[-1] - cols[0] + 1


def test_the_zoom_ends_at_zoom_until_and_reads_are_only_shifted_after():
    """frame_zoom with zoom_until 0.5: before half the training's steps reads are windows of many sizes; from
    then on every read is a tile-sized window of the frame (the coordinate mask spans exactly the tile's width)."""
    images, masks = _coordinate_frames(1)
    zoom = FrameShift(images, masks, np.array(["f"] * 8), np.arange(8), p=1.0, scale=ZOOM_SCALE, seed=0,
                      zoom_until=0.5)
    spans = {}
    for done in (0.0, 0.49, 0.5, 0.9):
        zoom.set_progress(done)
        spans[done] = [_window_span(zoom(images[row], masks[row], row)[1]) for row in range(8) for _ in range(10)]
    for done in (0.0, 0.49):
        assert np.mean(np.array(spans[done]) != TW) > 0.5, done
    for done in (0.5, 0.9):
        assert set(spans[done]) == {TW}, done
    # frame_shift's reads (no zoom) are tile-sized whatever the progress
    shift = FrameShift(images, masks, np.array(["f"] * 8), np.arange(8), p=1.0, seed=0)
    shift.set_progress(0.0)
    assert {_window_span(shift(images[r], masks[r], r)[1]) for r in range(8)} == {TW}


def test_persistent_dataloader_workers_see_the_end_of_the_zoom():
    """The switch is made in the training process after the workers have started; persistent workers (the
    default on a GPU) must read tile-sized windows from then on."""
    import torch

    from mars_segformer.data.dataset import MarsTransform, tiles_to_dataset

    images, masks = _coordinate_frames(1)
    zoom = FrameShift(images, masks, np.array(["f"] * 8), np.arange(8), p=1.0, scale=ZOOM_SCALE, seed=0,
                      zoom_until=0.5)
    ds = tiles_to_dataset(images[[2] * 64], masks[[2] * 64], ["f"] * 64, [2] * 64)
    ds.set_transform(MarsTransform(None, frame_shift=zoom))
    loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=2, persistent_workers=True)

    def spans():
        # labels are the frame's columns, normalisation leaves them as they are
        return [_window_span(m.numpy()) for batch in loader for m in batch["labels"]]

    zoom.set_progress(0.1)
    before = spans()
    zoom.set_progress(0.6)
    after = spans()
    assert np.mean(np.array(before) != TW) > 0.5 and set(after) == {TW}


def test_zoom_until_outside_the_steps_is_refused():
    images, masks = _coordinate_frames(1)
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="zoom_until"):
            FrameShift(images, masks, np.array(["f"] * 8), np.arange(8), scale=ZOOM_SCALE, zoom_until=bad)

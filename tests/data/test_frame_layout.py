"""Putting a frame's stored tiles back in their places, for whole frames and for frames that lost tiles.

The oracle is where the tiles were cut: from a smooth synthetic frame, and from real frames stored whole (their 8
tiles in the data README's 4 × 2 row-major order), of which some tiles are then dropped as the shared file drops them.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from mars_segformer.data.frame_layout import MIN_TILES, frame_blocks, join_block, place_tiles
from mars_segformer.data.frame_shift import TILES_PER_FRAME, complete_frames
from tests.conftest import SHARED_NPZ


def smooth_frame(seed: int) -> np.ndarray:
    """A 256 × 256 image of blurred noise: neighbouring rows and columns differ little everywhere."""
    noise = np.random.default_rng(seed).uniform(0, 255, (256, 256)).astype(np.float32)
    img = cv2.GaussianBlur(noise, (0, 0), 6)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return img.astype(np.uint8)


def tiles_of(frame: np.ndarray) -> np.ndarray:
    """The frame cut row by row into 64 × 128 tiles, written out here apart from the package's cut_tiles."""
    return np.stack([frame[r * 64:(r + 1) * 64, c * 128:(c + 1) * 128] for r in range(4) for c in range(2)])


def relative(cells) -> list[tuple[int, int]]:
    rc = np.array([divmod(c, 2) for c in cells])
    return [tuple(x) for x in (rc - rc.min(axis=0)).tolist()]


@pytest.mark.parametrize("keep", [tuple(range(8)), (2, 3, 4, 5, 6, 7), (0, 1, 2, 3, 4, 5), (0, 2, 3, 4, 5, 6, 7),
                                  (1, 2, 3, 4, 6), (0, 1, 3, 5)])
def test_a_smooth_frame_is_put_back_as_it_was_cut(keep):
    tiles = tiles_of(smooth_frame(sum(keep)))
    placed = place_tiles(tiles[list(keep)])
    assert placed is not None and relative(placed[0]) == relative(keep)
    assert placed[1] < 2  # its joins look like the joins inside an image (a wrong one: 3 and more)


def test_a_complete_frame_is_one_block_in_the_stored_order_and_joins_back_exactly():
    frames = [smooth_frame(s) for s in range(3)]
    images = np.concatenate([tiles_of(f) for f in frames])
    blocks = frame_blocks(images, np.repeat(["a", "b", "c"], 8))
    assert [b.shape for b in blocks] == [(4, 2)] * 3
    for b, frame in zip(blocks, frames, strict=True):
        assert [tuple(x) for x in b.cells.tolist()] == [(r, c) for r in range(4) for c in range(2)]
        np.testing.assert_array_equal(join_block(images, b), frame)


def test_a_frame_missing_its_top_row_is_a_three_row_block_with_its_tiles_in_place():
    frame = smooth_frame(5)
    images = tiles_of(frame)[2:]
    (block,) = frame_blocks(images, ["f"] * 6)
    assert block.shape == (3, 2)
    np.testing.assert_array_equal(join_block(images, block), frame[64:])


def test_a_frame_with_a_hole_is_cut_into_the_largest_full_rectangles_each_tile_owned_once():
    frame = smooth_frame(9)
    kept = [0, 1, 2, 4, 5, 6, 7]  # cell (1, 1) lost: the left column and the bottom two rows are full
    images = tiles_of(frame)[kept]
    blocks = frame_blocks(images, ["f"] * 7)
    owned = np.concatenate([b.rows[b.owned] for b in blocks])
    assert sorted(owned.tolist()) == list(range(7))  # every tile takes its prediction from exactly one block
    for b in blocks:
        assert b.shape[0] * b.shape[1] == len(b.rows)  # no cell without a tile
        (r0, c0), (h, w) = divmod(kept[b.rows[0]], 2), b.shape
        np.testing.assert_array_equal(join_block(images, b), frame[r0 * 64:(r0 + h) * 64, c0 * 128:(c0 + w) * 128])
    sizes = {tuple(b.rows.tolist()): b.shape for b in blocks}
    assert sizes[(0, 2, 3, 5)] == (4, 1)  # the left column is the largest rectangle of its tiles


def test_unrelated_tiles_under_one_id_small_frames_and_no_ids_give_no_block():
    unrelated = np.stack([tiles_of(smooth_frame(100 + i))[i] for i in range(8)])  # each from another frame
    assert frame_blocks(unrelated, ["x"] * 8) == []
    few = tiles_of(smooth_frame(1))[:MIN_TILES - 1]
    assert frame_blocks(few, ["y"] * len(few)) == []
    assert frame_blocks(tiles_of(smooth_frame(2)), None) == []


def test_frames_are_found_by_their_runs_of_ids_and_rows_index_the_input():
    a, b = tiles_of(smooth_frame(3)), tiles_of(smooth_frame(4))[2:]
    images = np.concatenate([a, b, a[:1]])  # a lone tile of a third frame at the end
    blocks = frame_blocks(images, ["a"] * 8 + ["b"] * 6 + ["c"])
    assert [b_.rows.tolist() for b_ in blocks] == [list(range(8)), list(range(8, 14))]


def _join_precision(images, frames, keeps) -> tuple[float, int]:
    right = made = 0
    for f, keep in zip(frames, keeps, strict=True):
        placed = place_tiles(images[f[list(keep)]])
        if placed is None or placed[1] > 3.0:
            continue
        true = {(i, j) for i, j in itertools.combinations(range(len(keep)), 2)
                if abs(np.subtract(divmod(keep[i], 2), divmod(keep[j], 2))).sum() == 1}
        got = {(i, j) for i, j in itertools.combinations(range(len(keep)), 2)
               if abs(np.subtract(divmod(placed[0][i], 2), divmod(placed[0][j], 2))).sum() == 1}
        right, made = right + len(got & true), made + len(got)
    return right / max(made, 1), made


@pytest.mark.parametrize("source", ["sample", "shared"])
def test_real_frames_that_lose_tiles_are_joined_where_they_met(request, source):
    """Real complete frames with their top row dropped, with one tile dropped, and with two: almost every pair of
    tiles the layout puts side by side did meet in the frame (``bench/frame_layout.py`` measures it by tiles kept)."""
    if source == "sample":
        arrays = request.getfixturevalue("sample_arrays")
    else:
        if not SHARED_NPZ.exists():
            pytest.skip(f"{SHARED_NPZ} not present (users' clones have no ../shared)")
        from mars_segformer.data import load_npz

        arrays = load_npz(SHARED_NPZ)
    frames = complete_frames(arrays.train_frame_ids).reshape(-1, TILES_PER_FRAME)[:150]
    assert len(frames) >= 15
    rng = np.random.default_rng(0)
    for keeps in ([tuple(range(2, 8))] * len(frames),
                  [tuple(np.delete(np.arange(8), rng.integers(8)).tolist()) for _ in frames],
                  [tuple(np.sort(rng.choice(8, 6, replace=False)).tolist()) for _ in frames]):
        precision, made = _join_precision(arrays.train_images, frames, keeps)
        assert made >= 4 * len(frames) and precision >= 0.95


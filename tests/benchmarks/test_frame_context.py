"""bench/frame_context.py puts a frame back together from its tiles exactly as the shared file cut it."""

import numpy as np

from bench.frame_context import complete_frames, to_frames, to_tiles


def test_tiles_go_back_to_their_places_in_the_frame():
    frames = np.random.default_rng(0).integers(0, 256, (2, 256, 256), dtype=np.uint8)
    # the file's layout: 4 rows x 2 columns of 64x128 tiles, row-major
    tiles = np.stack([f[r * 64:(r + 1) * 64, c * 128:(c + 1) * 128] for f in frames for r in range(4) for c in range(2)])
    np.testing.assert_array_equal(to_frames(tiles), frames)
    np.testing.assert_array_equal(to_tiles(frames), tiles)


def test_only_whole_wanted_frames_are_taken():
    ids = np.array(["a"] * 8 + ["b"] * 7 + ["c"] * 8 + ["d"] * 8)
    np.testing.assert_array_equal(complete_frames(ids, {"a", "b", "d"}), [*range(0, 8), *range(23, 31)])

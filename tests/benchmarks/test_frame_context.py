"""bench/frame_context.py takes only the frames stored with all their tiles."""

import numpy as np

from bench.frame_context import complete_frames


def test_only_whole_wanted_frames_are_taken():
    ids = np.array(["a"] * 8 + ["b"] * 7 + ["c"] * 8 + ["d"] * 8)
    np.testing.assert_array_equal(complete_frames(ids, {"a", "b", "d"}), [*range(0, 8), *range(23, 31)])

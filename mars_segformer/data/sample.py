"""The small real sample embedded in the package: default demo data and test fixture.

``sample/ai4mars_msl_sample.npz`` holds whole rover frames drawn from ``ai4mars_msl_64x128.npz``
(NASA/JPL-Caltech AI4Mars, Swan et al. 2021; see ``sample/README.md``). Whole frames are drawn so
that the frame-grouped split still works on the sample.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .io import MarsArrays, load_npz, save_npz

SAMPLE_FILE = Path(__file__).parent / "sample" / "ai4mars_msl_sample.npz"


def sample_path() -> Path:
    """Path of the embedded sample ``.npz``."""
    return SAMPLE_FILE


def make_sample(
    source: str | os.PathLike, out: str | os.PathLike, train_frames: int = 60, test_frames: int = 12,
    big_rock_frames: int = 20, seed: int = 0,
) -> MarsArrays:
    """Draw whole frames from a full file into a small sample (how the embedded sample was made).

    Args:
        source: a course-layout npz with frame ids.
        out: where to write the sample.
        train_frames: number of labelled frames drawn.
        test_frames: number of unlabelled frames drawn.
        big_rock_frames: how many of ``train_frames`` are drawn among frames holding big rock, so the
            rare class is present in the sample.
        seed: random seed.
    """
    full = load_npz(source)
    if full.train_frame_ids is None:
        raise ValueError(f"{source}: a sample needs 'training_frame_ids' to draw whole frames")
    rng = np.random.default_rng(seed)
    frames = np.unique(full.train_frame_ids)
    has_rock = np.array([(full.train_masks[full.train_frame_ids == f] == 4).any() for f in frames])
    rock = rng.choice(frames[has_rock], min(big_rock_frames, int(has_rock.sum())), replace=False)
    other = rng.choice(frames[~has_rock], train_frames - len(rock), replace=False)
    keep = np.isin(full.train_frame_ids, np.concatenate([rock, other]))
    sample = full.subset(np.flatnonzero(keep))
    if full.test_frame_ids is not None and len(full.test_images):
        tf = rng.choice(np.unique(full.test_frame_ids), test_frames, replace=False)
        tkeep = np.isin(full.test_frame_ids, tf)
        sample.test_images, sample.test_frame_ids = full.test_images[tkeep], full.test_frame_ids[tkeep]
    save_npz(sample, out)
    return sample

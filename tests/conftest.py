"""Shared fixtures: the embedded sample, synthetic course-layout files, and the full shared file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_NPZ = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ai4mars_msl_64x128.npz"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # with `-n N` the N worker processes share the cores: one torch thread each (and in the subprocesses
    # they start), or N x all-cores threads oversubscribe the machine
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def sample_arrays():
    from mars_segformer.data import load_arrays

    return load_arrays()


def make_course_arrays(n=40, m=6, seed=0, dtype=np.uint8):
    """Random course-layout arrays with a few big-rock tiles."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 64, 128)).astype(dtype)
    masks = rng.integers(0, 4, (n, 64, 128)).astype(np.uint8)
    masks[: max(2, n // 8), 10:20, 10:30] = 4
    train = np.stack([images, masks.astype(dtype)], axis=1)
    test = rng.integers(0, 256, (m, 64, 128)).astype(dtype)
    return train, test

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


#: the tests and module groups that take 15-70 s of one worker each, longest first (``python bench/suite_time.py``,
#: AMD EPYC AVX2, 2 workers: bench/results/suite_time_amd_avx2_7b7fb73.json). Started first, the workers end
#: together instead of one idling while the other runs a long test it drew last.
FIRST = ("tests/hub/test_hub.py", "tests/test_wheel.py",
         "tests/training/test_train.py::test_two_process_data_parallel_metric_is_global",
         "tests/training/test_threads.py::test_accelerate_launch_trains_on_every_core",
         "tests/benchmarks/test_gpu_sweep.py::test_smoke_sweep_trains_reports_and_respects_the_budget",
         "tests/models/test_backbones.py", "tests/models/test_pretrained.py",
         "tests/training/test_finetune.py::test_loaded_tensors_train_at_a_tenth_of_the_rate_unless_told",
         "tests/hub/test_hub_dataset.py", "tests/demo/test_app.py")


def _rank(nodeid: str) -> int:
    """Position of the test in :data:`FIRST` (a module, a test or a parametrized test), else after them all."""
    for i, prefix in enumerate(FIRST):
        if nodeid == prefix or nodeid.startswith((prefix + "::", prefix + "[")):
            return i
    return len(FIRST)


def pytest_collection_modifyitems(config, items):
    # a stable sort: the heavy tests first, everything else in its collected order (xdist hands out work in
    # this order; a module group goes where its first test is)
    items.sort(key=lambda item: _rank(item.nodeid))


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

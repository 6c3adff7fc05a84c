"""Files larger than memory: the memory-mapped path (``data/mapped.py``), taken above a size, gives the
in-memory loader's arrays and the same training, without reading the tiles into memory."""

from __future__ import annotations

import json
import os
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from mars_segformer.data import chunks, mapped
from mars_segformer.data.dataset import DataConfig, build_dataset_dict
from mars_segformer.data.errors import MarsDataError
from mars_segformer.data.io import load_npz
from mars_segformer.data.sources import load_arrays
from tests import forked
from tests.conftest import make_course_arrays

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def mapping(tmp_path, monkeypatch):
    """Every file mapped (threshold 0), a fresh cache, and chunks of 7 tiles, so passes cross chunk borders."""
    monkeypatch.setenv(mapped.MAP_ENV, "0")
    monkeypatch.setenv(mapped.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(mapped, "CHUNK_TILES", 7)
    monkeypatch.setattr(chunks, "CHUNK_TILES", 7)
    return tmp_path / "cache"


def course_file(path, dtype=np.uint8, scale=1.0, n=40, m=9, ids=True):
    train, test = make_course_arrays(n=n, m=m, seed=1)
    train = train.astype(dtype)
    train[:, 0] = (train[:, 0] * scale).astype(dtype)
    test = (test * scale).astype(dtype)
    extra = {"training_frame_ids": np.array([f"f{i % 6}" for i in range(n)]),
             "test_frame_ids": np.array([f"g{i % 3}" for i in range(m)])} if ids else {}
    np.savez(path, training_set=train, test_set=test, **extra)
    return path


@pytest.mark.parametrize("dtype,scale", [(np.uint8, 1.0), (np.float32, 1.0), (np.float32, 1 / 255), (np.uint16, 257.0)])
def test_mapped_arrays_equal_the_in_memory_loader(tmp_path, mapping, dtype, scale):
    path = course_file(tmp_path / "tiles.npz", dtype, scale)
    got, want = load_arrays(path), load_npz(path)
    assert isinstance(got.train_images, np.memmap) and got.meta["mapped"].startswith(str(mapping))
    for key in ("train_images", "train_masks", "test_images", "train_frame_ids", "test_frame_ids"):
        a, b = getattr(got, key), getattr(want, key)
        assert a.dtype == b.dtype and np.array_equal(a, b), key


def test_the_cache_is_reused_until_the_file_changes(tmp_path, mapping):
    path = course_file(tmp_path / "tiles.npz")
    first = Path(load_arrays(path).meta["mapped"])
    stamp = (first / "train_images.npy").stat().st_mtime_ns
    assert Path(load_arrays(path).meta["mapped"]) == first
    assert (first / "train_images.npy").stat().st_mtime_ns == stamp
    course_file(path, n=30)  # rewritten: new size and time
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    assert len(load_arrays(path)) == 30


def test_outliers_of_a_mapped_file_are_dropped_on_disk(tmp_path, mapping):
    train, test = make_course_arrays(n=60, m=4, seed=2)
    alien = np.zeros((64, 128), np.uint8)
    alien[:32], alien[32:] = 1, 2
    train[10:35, 1] = alien  # 25 tiles share one two-class mask: outliers
    np.savez(tmp_path / "aliens.npz", training_set=train, test_set=test)
    a, b = load_arrays(tmp_path / "aliens.npz"), load_npz(tmp_path / "aliens.npz")
    da, db = build_dataset_dict(a, DataConfig(seed=3)), build_dataset_dict(b, DataConfig(seed=3))
    assert len(da.outliers.outlier_indices) == 25 and isinstance(da.arrays.train_images, np.memmap)
    assert np.array_equal(da.arrays.train_images, db.arrays.train_images)
    assert np.array_equal(da.val_indices, db.val_indices) and np.array_equal(da.train_indices, db.train_indices)


def test_building_on_mapped_tiles_allocates_a_small_share_of_them(tmp_path, mapping, monkeypatch):
    """numpy reports its allocations to tracemalloc; memory-mapped pages are not allocations."""
    monkeypatch.setattr(mapped, "CHUNK_TILES", 64)
    monkeypatch.setattr(chunks, "CHUNK_TILES", 64)
    path = course_file(tmp_path / "big.npz", n=1500, m=2)
    arrays = load_arrays(path)
    raw = arrays.train_images.nbytes + arrays.train_masks.nbytes
    tracemalloc.start()
    data = build_dataset_dict(arrays, DataConfig(repeat_factor_threshold=0.3))
    data.datasets["train"][:8]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.1 * raw, (peak, raw)
    tracemalloc.start()  # the same build over the tiles in memory (the copy the loader makes not counted)
    build_dataset_dict(load_npz(path), DataConfig(repeat_factor_threshold=0.3))
    _, peak_in_memory = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak_in_memory > 2 * peak  # the oracle sees the difference it is meant to see


def test_bad_files_are_one_line(tmp_path, mapping):
    np.savez(tmp_path / "nokey.npz", images=np.zeros((2, 64, 128), np.uint8))
    with pytest.raises(MarsDataError, match="missing key 'training_set'"):
        load_arrays(tmp_path / "nokey.npz")
    train, _ = make_course_arrays(n=8, m=1)
    train[0, 1, 0, 0] = 9
    np.savez(tmp_path / "badmask.npz", training_set=train)
    with pytest.raises(MarsDataError, match="mask values must be class ids 0-4"):
        load_arrays(tmp_path / "badmask.npz")
    assert not list(mapping.glob("**/*.tmp"))  # a refused file leaves no half-written cache


def test_training_on_a_mapped_file_equals_the_in_memory_run(tmp_path):
    path = course_file(tmp_path / "tiles.npz", n=48, m=4)
    results = {}
    for name, env in (("memory", {mapped.MAP_ENV: str(1 << 30)}), ("mapped", {mapped.MAP_ENV: "0"})):
        out = tmp_path / name
        proc = forked.run(
            [sys.executable, str(ROOT / "train_hf.py"), "--output_dir", str(out), "--data", str(path), "--tiny",
             "--max_steps", "2", "--per_device_train_batch_size", "8", "--eval_strategy", "steps", "--eval_steps", "2",
             "--save_strategy", "steps", "--save_steps", "2", "--disable_tqdm", "true", "--report_to", "none",
             "--repeat_factor_threshold", "0.3", "--logit_adjustment", "0"],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
            env={**os.environ, **env, mapped.CACHE_ENV: str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert ("memory-mapped from" in proc.stdout) == (name == "mapped")
        results[name] = json.loads((out / "metrics.json").read_text())
    timing = ("runtime", "samples_per_second", "steps_per_second")
    for key in ("validation", "train_tiles", "train_rows_after_oversampling", "class_weights"):
        a, b = results["mapped"][key], results["memory"][key]
        if isinstance(a, dict):
            a, b = ({k: v for k, v in d.items() if k not in timing} for d in (a, b))
        assert a == b, key

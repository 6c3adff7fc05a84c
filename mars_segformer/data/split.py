"""Seeded train/validation splits that do not leak.

Tiles cut from one rover frame overlap in content, so with frame ids the split is by frame: no
frame on both sides. Without ids (the course file) it is stratified on big-rock presence so the
rare class lands on both sides.
"""

from __future__ import annotations

import numpy as np

from .chunks import class_presence
from .errors import MarsDataError

BIG_ROCK = 4
#: the split defaults, one place: the share of frames held out, and the seed (the Trainer's default --seed,
#: which also seeds the split in train_hf.py)
VAL_FRACTION = 0.2
SPLIT_SEED = 42
#: the file in a run folder that records the split the run validated on (see ``split_record``)
SPLIT_FILE = "split.json"


def train_val_split(
    masks: np.ndarray, frame_ids: np.ndarray | None = None, val_fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation tiles.

    Args:
        masks: (N, H, W) class ids, for stratification.
        frame_ids: (N,) frame of each tile, or None.
        val_fraction: share of frames (or tiles) in validation.
        seed: random seed; the same seed gives the same split.
    """
    n = len(masks)
    if not 0.0 < val_fraction < 1.0:
        raise MarsDataError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    if n < 2:
        raise MarsDataError(f"need at least 2 tiles to split, got {n}")
    rng = np.random.default_rng(seed)
    has_rock = class_presence(masks)[:, BIG_ROCK]
    if frame_ids is not None:
        frames, inverse = np.unique(frame_ids, return_inverse=True)
        if len(frames) < 2:
            raise MarsDataError(f"need at least 2 frames to split by frame, got {len(frames)}")
        frame_rock = np.zeros(len(frames), bool)
        np.logical_or.at(frame_rock, inverse, has_rock)
        val_frames = _stratified_pick(frame_rock, val_fraction, rng)
        is_val = np.isin(inverse, val_frames)
    else:
        is_val = np.zeros(n, bool)
        is_val[_stratified_pick(has_rock, val_fraction, rng)] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _stratified_pick(flag: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Pick ``fraction`` of the items of each stratum, at least one of each side where possible."""
    picked = []
    for stratum in (np.flatnonzero(flag), np.flatnonzero(~flag)):
        if len(stratum) == 0:
            continue
        k = int(round(fraction * len(stratum)))
        if len(stratum) >= 2:
            k = min(max(k, 1), len(stratum) - 1)
        picked.append(rng.choice(stratum, k, replace=False))
    out = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    if len(out) == 0 or len(out) == len(flag):
        raise MarsDataError(f"split of {len(flag)} items with fraction {fraction} leaves one side empty")
    return np.sort(out)


def split_record(config, arrays, val_indices: np.ndarray) -> dict:
    """What a run folder keeps of its split (``split.json``): the settings that rebuild it and the
    validation frames (or tile rows, without frame ids) that check the rebuild.

    Args:
        config: the run's ``DataConfig``.
        arrays: the arrays the split was drawn from, outliers already dropped.
        val_indices: rows of ``arrays`` held out.
    """
    rec = {"data": arrays.source, "val_fraction": config.val_fraction, "seed": config.seed,
           "drop_outliers": config.drop_outliers, "outlier_min_count": config.outlier_min_count,
           "validation_tiles": int(len(val_indices))}
    if arrays.train_frame_ids is not None:
        rec["validation_frame_ids"] = sorted(map(str, np.unique(arrays.train_frame_ids[val_indices])))
    else:
        rec["validation_rows"] = [int(i) for i in val_indices]
    return rec


def check_split(record: dict, arrays, val_indices: np.ndarray, where: str) -> None:
    """Raise :class:`MarsDataError` unless ``val_indices`` of ``arrays`` are the recorded split's."""
    if "validation_frame_ids" in record and arrays.train_frame_ids is not None:
        same = sorted(map(str, np.unique(arrays.train_frame_ids[val_indices]))) == record["validation_frame_ids"]
    else:
        same = [int(i) for i in val_indices] == record.get("validation_rows")
    if not same or len(val_indices) != record["validation_tiles"]:
        raise MarsDataError(f"{where}: this data does not give the run's validation split ({record['validation_tiles']} "
                            f"tiles of {record['data']}); pass the data the run was trained on")


def leakage_guard(arrays, val_indices: np.ndarray) -> tuple[np.ndarray, dict]:
    """Indices of ``arrays``' unlabelled tiles that training may use (pseudo-labelling, pretraining) under a
    split whose validation tiles are ``val_indices``: none from a validation frame. Returns them and a
    record of what the guard could check."""
    n = len(arrays.test_images)
    if arrays.train_frame_ids is None or arrays.test_frame_ids is None:
        return np.arange(n), {"frame_ids": False, "excluded_tiles": 0, "note": (
            "no frame ids: unlabelled tiles cannot be matched to validation frames; only the validation "
            "tiles themselves are kept out of training")}
    val_frames = set(arrays.train_frame_ids[val_indices].tolist())
    blocked = np.isin(arrays.test_frame_ids, list(val_frames))
    return np.flatnonzero(~blocked), {"frame_ids": True, "excluded_tiles": int(blocked.sum()),
                                      "validation_frames": len(val_frames)}

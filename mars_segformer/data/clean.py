"""Outlier ("alien") detection: tiles whose mask is shared byte for byte by many other tiles.

The course data holds ~110 pasted "alien" images that all carry one identical mask. In real AI4Mars
tiles identical masks are common too, but they are trivial ones (a whole tile of soil with one
unlabelled row), so only masks with at least ``min_classes`` labelled classes count as outliers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


@dataclass
class OutlierReport:
    """What :func:`find_outliers` found.

    Attributes:
        outlier_indices: training tiles to drop, sorted.
        groups: one entry per shared mask: its tile count, classes present and first tile index.
        near_duplicate_groups: lists of tile indices whose images are near-identical.
    """

    outlier_indices: np.ndarray
    groups: list[dict] = field(default_factory=list)
    near_duplicate_groups: list[list[int]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"outliers: {len(self.outlier_indices)} tiles in {len(self.groups)} shared-mask group(s)"]
        for g in self.groups:
            lines.append(f"  {g['count']} tiles share one mask with classes {g['classes']} (first tile {g['first']})")
        lines.append(f"near-duplicate image groups: {len(self.near_duplicate_groups)}")
        return "\n".join(lines)


def find_outliers(
    masks: np.ndarray, images: np.ndarray | None = None, min_count: int = 20, min_classes: int = 2,
    near_duplicate_levels: int = 16,
) -> OutlierReport:
    """Find tiles whose mask is identical to the mask of many others.

    Args:
        masks: (N, H, W) class ids.
        images: (N, H, W) uint8 images, for the near-duplicate report (optional).
        min_count: a mask shared by at least this many tiles marks them all as outliers.
        min_classes: only masks with at least this many labelled (non-zero) classes count.
        near_duplicate_levels: images reduced to 8x8 blocks and this many gray levels; equal reductions
            are reported as near duplicates (reported only, never dropped).
    """
    # one 64-bit digest per mask (np.unique over the masks' raw bytes sorted a copy of them all: +145 MB at the
    # shared file's size); equality inside a group is then checked byte for byte, so a collision cannot merge masks
    keys = np.array([int.from_bytes(hashlib.blake2b(np.ascontiguousarray(m).data, digest_size=8).digest(), "little")
                     for m in masks], dtype=np.uint64)
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    outliers, groups = [], []
    for g in np.flatnonzero(counts >= min_count):
        members = np.flatnonzero(inverse == g)
        members = members[[np.array_equal(masks[i], masks[members[0]]) for i in members]]
        if len(members) < min_count:
            continue
        classes = sorted(int(c) for c in np.unique(masks[members[0]]) if c != 0)
        if len(classes) >= min_classes:
            outliers.append(members)
            groups.append({"count": int(len(members)), "classes": classes, "first": int(members[0])})
    idx = np.sort(np.concatenate(outliers)) if outliers else np.zeros(0, np.int64)
    near = find_near_duplicates(images, near_duplicate_levels) if images is not None else []
    return OutlierReport(idx, groups, near)


def find_near_duplicates(images: np.ndarray, levels: int = 16, block: int = 8) -> list[list[int]]:
    """Groups of tiles whose block-averaged, quantised images are equal."""
    n, h, w = images.shape
    hb, wb = h // block * block, w // block * block
    small = images[:, :hb, :wb].reshape(n, hb // block, block, wb // block, block).mean(axis=(2, 4))
    q = np.ascontiguousarray((small * levels / 256.0).astype(np.uint8).reshape(n, -1))
    keys = q.view(np.dtype((np.void, q.shape[1]))).ravel()
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return [np.flatnonzero(inverse == g).tolist() for g in np.flatnonzero(counts > 1)]


def drop_outliers(arrays, report: OutlierReport):
    """``arrays`` without the outlier tiles (the same object when there are none: no copy)."""
    if len(report.outlier_indices) == 0:
        return arrays
    keep = np.setdiff1d(np.arange(len(arrays)), report.outlier_indices)
    if arrays.meta.get("mapped"):  # memory-mapped tiles stay on disk
        from .mapped import subset_mapped

        return subset_mapped(arrays, keep)
    return arrays.subset(keep)

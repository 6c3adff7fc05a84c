"""Passes over every tile, a chunk of tiles at a time.

A whole-array expression such as ``(masks == 4).reshape(n, -1).any(1)`` or ``np.bincount(masks.ravel())``
makes temporaries as large as the masks (8x for ``bincount``, which casts to intp), and
``masks[indices]`` copies them. Over memory-mapped tiles (files larger than memory, ``data/mapped.py``)
either would read the whole file into memory; in chunks, a pass holds one chunk's temporaries.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .io import NUM_CLASSES

#: tiles per chunk: 1,024 tiles of 64x128 are 8 MiB of uint8
CHUNK_TILES = 1024


def chunked(masks: np.ndarray, indices=None) -> Iterator[np.ndarray]:
    """``masks`` (or ``masks[indices]``, in that order) as consecutive chunks of tiles."""
    if indices is None:
        for lo in range(0, len(masks), CHUNK_TILES):
            yield np.asarray(masks[lo:lo + CHUNK_TILES])
        return
    indices = np.asarray(indices)
    for lo in range(0, len(indices), CHUNK_TILES):
        yield np.asarray(masks[indices[lo:lo + CHUNK_TILES]])


def class_presence(masks: np.ndarray, indices=None, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(N, C) bool: tile ``i`` (of ``masks``, or of ``masks[indices]``) holds class ``c``."""
    parts = []
    for chunk in chunked(masks, indices):
        flat = chunk.reshape(len(chunk), -1)
        parts.append(np.stack([(flat == c).any(axis=1) for c in range(num_classes)], axis=1))
    return np.concatenate(parts) if parts else np.zeros((0, num_classes), bool)


def class_pixel_counts(masks: np.ndarray, indices=None, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(C,) int64 pixels of each class over ``masks`` (or ``masks[indices]``)."""
    counts = np.zeros(num_classes, np.int64)
    for chunk in chunked(masks, indices):
        counts += [np.count_nonzero(chunk == c) for c in range(num_classes)]  # no intp copy, as bincount makes
    return counts

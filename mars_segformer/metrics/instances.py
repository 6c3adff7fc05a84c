"""Per-instance scores of one class: which of its objects a model finds, by object size.

Pixel IoU says how much of a class is found, not which objects: a big rock of 400 pixels weighs as much as
a hundred of 4. Here an instance is one connected component (8-connectivity) of the class in a truth mask;
it is *found* when at least ``found_share`` of its pixels are predicted as the class. The pixels it loses
are counted by the class they were predicted as, so a miss reads as "rock face taken for bedrock" or
"pebble taken for soil".
"""

from __future__ import annotations

import itertools

import numpy as np

#: instance-size bins in pixels of the tile (64×128 = 8,192 pixels): lower edges, the last bin open
SIZE_BINS = (1, 16, 64, 256, 1024)


def instance_outcomes(truths: np.ndarray, preds: np.ndarray, cls: int = 4) -> list[tuple[int, np.ndarray]]:
    """Every true instance of ``cls``: its size and the classes its pixels were predicted as.

    Args:
        truths: (N, H, W) true class ids.
        preds: (N, H, W) predicted class ids.
        cls: the class whose instances are scored.

    Returns:
        One ``(pixels, predicted class ids of those pixels, whether it touches the tile's border)`` per connected
        component of ``cls``: a component on the border may be part of an object the tile cuts.
    """
    import cv2

    out = []
    for t, p in zip(truths, preds, strict=True):
        n, comp = cv2.connectedComponents((t == cls).astype(np.uint8), connectivity=8)
        for k in range(1, n):
            sel = comp == k
            edge = bool(sel[0].any() or sel[-1].any() or sel[:, 0].any() or sel[:, -1].any())
            out.append((int(sel.sum()), p[sel], edge))
    return out


def _bin_label(lo: int, hi: int | None) -> str:
    return f"{lo}+" if hi is None else f"{lo}-{hi - 1}"


def instance_scores(truths: np.ndarray, preds: np.ndarray, cls: int = 4, class_names=None,
                    bins=SIZE_BINS, found_share: float = 0.5, by_edge: bool = False) -> list[dict]:
    """Per size bin: instances, how many were found, the share of their pixels predicted as ``cls``
    (pixel recall), and where the rest of their pixels went.

    Args:
        truths: (N, H, W) true class ids.
        preds: (N, H, W) predicted class ids.
        cls: the class whose instances are scored.
        class_names: names of the class ids (default: the ids as text).
        bins: ascending lower edges of the size bins, in pixels; the last bin is open.
        found_share: the share of an instance's pixels that must be predicted as ``cls`` for it to count as found.
        by_edge: two rows per size bin, ``"edge": True`` for the instances that touch the tile's border (an object
            the tile may cut) and ``False`` for those inside it.
    """
    n_classes = int(max(truths.max(initial=0), preds.max(initial=0), cls)) + 1
    names = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
    sides = (True, False) if by_edge else (None,)
    rows = [{"size": _bin_label(lo, hi), **({} if side is None else {"edge": side}), "instances": 0, "found": 0,
             "pixels": 0, "predicted_as": np.zeros(max(n_classes, len(names)), np.int64)}
            for lo, hi in itertools.pairwise([*bins, None]) for side in sides]
    for size, got, edge in instance_outcomes(truths, preds, cls):
        b = int(np.searchsorted(bins, size, side="right")) - 1
        if b < 0:
            continue
        r = rows[2 * b + (not edge)] if by_edge else rows[b]
        counts = np.bincount(got, minlength=len(r["predicted_as"]))
        r["instances"] += 1
        r["pixels"] += size
        r["found"] += int(counts[cls] >= found_share * size)
        r["predicted_as"] += counts
    for r in rows:
        px = max(r["pixels"], 1)
        r["found_share"] = r["found"] / r["instances"] if r["instances"] else None
        r["pixel_recall"] = float(r["predicted_as"][cls] / px) if r["pixels"] else None
        r["predicted_as"] = {names[i]: int(v) for i, v in enumerate(r["predicted_as"]) if v}
    return rows

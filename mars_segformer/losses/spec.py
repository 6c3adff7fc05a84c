"""The loss-spec grammar (``"focal:1,dice:0.5"``), without torch, so a command checks it before importing it."""

from __future__ import annotations

#: the loss names ``--loss`` accepts, alone or in weighted sums
LOSSES = ("ce", "focal", "dice", "jaccard", "lovasz", "ohem")


def parse_loss_spec(spec: str) -> list[tuple[str, float]]:
    """``"name[:weight],..."`` -> [(name, weight)], names from :data:`LOSSES`, weights finite and >= 0.

    Raises:
        ValueError: an unknown name or a weight that is not such a number.
    """
    parts = []
    for item in spec.split(","):
        name, _, w = item.strip().partition(":")
        if name not in LOSSES:
            raise ValueError(f"unknown loss {name!r} in {spec!r}; choose from {LOSSES}")
        weight = float(w) if w else 1.0
        if not weight >= 0 or weight == float("inf"):
            raise ValueError(f"loss weight of {name!r} must be a finite number >= 0, got {w!r}")
        parts.append((name, weight))
    return parts

"""What a prediction may be asked for: TTA modes and scales, and the error of a request that cannot run.

Light (no torch), so ``predict`` checks its flags before the model code is imported.
"""

from __future__ import annotations

#: TTA name -> flips averaged (dims of a (B, C, H, W) tensor); probabilities are averaged.
TTA_MODES = {"none": [()], "hflip": [(), (3,)], "flips": [(), (3,), (2,), (2, 3)]}
#: how a whole image is predicted: at once, or in blended tile-sized windows (``inference.frames``)
FRAME_MODES = ("whole", "windows")
#: how tiles of a tile file are predicted: each alone (what training and the task's metric do), or inside its frame
#: where the file's frame ids let the frame be put back together (``inference.tile_context``)
CONTEXTS = ("tile", "frame")


class PredictError(ValueError):
    """A model or input that cannot be used for prediction."""


def check_scales(scales) -> tuple[float, ...]:
    """Multi-scale TTA factors: positive finite numbers, at most 4 (a tile is resized by each)."""
    scales = tuple(float(x) for x in scales)
    if not scales or not all(0.25 <= x <= 4 for x in scales):
        raise PredictError(f"TTA scales must be numbers in [0.25, 4], got {list(scales)}")
    return scales


def check_frame_mode(mode: str) -> str:
    """A whole-image prediction mode: one of ``FRAME_MODES``."""
    if mode not in FRAME_MODES:
        raise PredictError(f"--frame-mode must be one of {', '.join(FRAME_MODES)}, got {mode!r}")
    return mode


def check_context(context: str) -> str:
    """A tile file's prediction context: one of ``CONTEXTS``."""
    if context not in CONTEXTS:
        raise PredictError(f"--context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    return context

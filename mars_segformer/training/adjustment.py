"""``--logit_adjustment``: how much of the class weights' tilt to take back off a trained model's logits.

The shift itself (``-tau * log(w_c)`` folded into the classifier bias) is :mod:`..models.logit_adjustment`.
How large ``tau`` should be depends on how far the loss tilted the model, which the class weights alone do
not say (the focal and Lovász terms tilt it too): on the default recipe at 200 steps, tau = 1 removed
every big-rock prediction while tau = 0.15-0.2 brought the predicted big-rock area to the true one
(``bench/results/logit_adjustment.json``). ``auto`` therefore picks ``tau`` from a grid by the task
mean IoU on a seeded sample of the *training* tiles, un-augmented, so the validation split stays out of
every choice the run makes.

Where the model has memorised its training tiles (long runs, small data) they cannot say how much tilt to
take back: their score barely moves with ``tau``, or moves where validation does not follow. ``auto`` then
keeps ``tau = 0``: unless the best ``tau`` gains at least ``AUTO_MIN_GAIN`` there, and whenever the training
tiles already score ``AUTO_MAX_FIT`` or more at ``tau = 0`` (docs/results.md, "Logit adjustment at full
length": every run measured with a smaller gain lost validation score to the adjustment; of the full-length runs
it let through under the first line, 0.8, those fitted 0.75-0.79 lost 0.012 in sum, so the line became 0.75; the
six full-length runs fitted 0.62-0.74 under that line then lost 0.007 in sum, the two SegFormer-b0 runs of
0.62-0.67 both losing, while every 200-step run with a stored fit is at 0.54 or less and gained, so it is 0.6).
"""

from __future__ import annotations

import numpy as np
import torch

from ..inference.predictor import class_ids
from ..metrics import StreamingMeanIoU
from ..models.logit_adjustment import logit_shift, unfold_logit_shift
from .ranges import parse_logit_adjustment

#: the grid ``auto`` searches (tau = 0 included: the adjustment never makes the training tiles' score worse)
AUTO_TAUS = tuple(round(0.05 * i, 2) for i in range(11))
#: training tiles ``auto`` scores (a seeded sample; all of them when there are fewer)
AUTO_TILES = 1024
#: the least gain in training-tile task mean IoU over tau = 0 for which ``auto`` adjusts at all
AUTO_MIN_GAIN = 0.01
#: training-tile task mean IoU at tau = 0 from which ``auto`` takes the tiles as memorised and does not adjust
#: (0.8, then 0.75 when the full-length runs fitted 0.75-0.8 were seen to lose validation score to the adjustment,
#: then 0.6 when those fitted 0.62-0.75 had lost in sum too: ``python bench/logit_adjustment_rule.py``,
#: docs/results.md)
AUTO_MAX_FIT = 0.6


def training_sample(n: int, seed: int, size: int = AUTO_TILES) -> np.ndarray:
    """Positions (sorted) of at most ``size`` of ``n`` training tiles, drawn with ``seed``."""
    pick = np.random.default_rng(seed).permutation(n)[:size]
    return np.sort(pick)


@torch.no_grad()
def search_tau(logits_of, images: np.ndarray, masks: np.ndarray, weights, taus=AUTO_TAUS,
               batch: int = 64, min_gain: float = AUTO_MIN_GAIN,
               max_fit: float = AUTO_MAX_FIT) -> tuple[float, dict[str, float]]:
    """The ``tau`` of ``taus`` whose adjusted predictions score the highest task mean IoU on ``images``.

    Args:
        logits_of: (B, H, W) uint8 tiles -> (B, C, H, W) logits at the tiles' size.
        images, masks: (N, H, W) tiles and their class ids (0: not scored).
        weights: the loss's class weights.
        min_gain: with 0 among ``taus``, the best ``tau`` is taken only if it beats 0 by this much...
        max_fit: ...and only if ``tau = 0`` scores below this (above it the tiles are memorised).

    Returns:
        The chosen ``tau`` (the smallest of equal scores) and each ``tau``'s score.
    """
    k = len(weights)
    streams = {tau: StreamingMeanIoU(k, ignore_index=0) for tau in taus}
    shifts = {tau: torch.tensor(logit_shift(weights, tau), dtype=torch.float32) for tau in taus}
    for i in range(0, len(images), batch):
        ref = torch.from_numpy(np.asarray(masks[i:i + batch], dtype=np.int64))
        keep = (ref > 0) & (ref < k)  # only scored pixels count (0 is ignored): argmax over those alone
        logits = logits_of(images[i:i + batch]).float().cpu()
        scored, truth = logits.permute(0, 2, 3, 1)[keep], ref[keep]  # (N, C) logits of the N scored pixels, (N,)
        for tau in taus:
            streams[tau].update(class_ids(scored + shifts[tau]), truth)
    scores = {tau: float(s.compute()["task_mean_iou"]) for tau, s in streams.items()}
    table = {str(tau): v if np.isfinite(v) else 0.0 for tau, v in scores.items()}  # NaN: no scored pixel
    return auto_tau(table, min_gain, max_fit), table


def auto_tau(table: dict[str, float], min_gain: float = AUTO_MIN_GAIN, max_fit: float = AUTO_MAX_FIT) -> float:
    """``auto``'s pick from a search table (``str(tau)`` -> training-tile task mean IoU): the best ``tau`` (the
    smallest of equal scores), unless ``tau = 0`` is in the table and the best beats it by less than ``min_gain``
    or it already scores ``max_fit`` or more (memorised tiles: 0 then)."""
    best = max(table, key=lambda t: (table[t], -float(t)))
    zero = next((t for t in table if float(t) == 0), None)
    if zero is not None and (table[best] - table[zero] < min_gain or table[zero] >= max_fit):
        best = zero  # memorised training tiles: a gain this small, or a fit this close, says nothing of validation
    return float(best)


def inherited_shift(model, logit_adjustment: str, weights) -> torch.Tensor | None:
    """A fine-tuning start whose checkpoint folded a logit adjustment into its classifier, in a run that
    adjusts again at its end (``--logit_adjustment`` not 0, class weights on): the recorded shift comes off
    the bias (in place), so training continues the logits the checkpoint's loss trained and the end folds the
    run's own shift instead of adding a second one; it is returned, (C,), to be added to the logits of every
    evaluation meanwhile, so that what is scored during training is what the checkpoint's users get.

    Returns None, and changes nothing, where there is no recorded shift or the run will not adjust.
    """
    if weights is None or parse_logit_adjustment(logit_adjustment) == 0:
        return None
    shift = unfold_logit_shift(model)
    return None if shift is None else torch.tensor(shift, dtype=torch.float32)

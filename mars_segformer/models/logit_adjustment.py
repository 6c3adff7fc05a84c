"""Post-hoc logit adjustment folded into a model's classifier bias.

A loss weighted per class (``--class_weights``) trains the model as if the rare classes were more
common, so it over-predicts them. Adding ``-tau * log(w_c)`` to class ``c``'s logit undoes that tilt
(tau = 1: Menon et al., *Long-tail learning via logit adjustment*, ICLR 2021). The shift is one
constant per class, and every architecture here ends in a convolution whose outputs are the class
logits (upsampled bilinearly afterwards, which keeps a constant), so it is added to that
convolution's bias: the saved model, in ``pipeline`` or anywhere else, predicts the adjusted classes
with no code of this package.

The folded shift is recorded in the config (:data:`SHIFT_ATTR`), so a run that fine-tunes the model can
take it back off (:func:`unfold_logit_shift`) and train the logits the loss trained, not the adjusted ones.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: config attribute: the shift per class folded into the classifier's bias so far (summed over folds)
SHIFT_ATTR = "logit_shift"


def classifier_layer(model: nn.Module) -> nn.Conv2d:
    """The convolution that outputs the class logits: the one ``Conv2d`` with ``num_labels`` output
    channels and a bias, outside an auxiliary head.

    Raises:
        ValueError: the model has none, or more than one.
    """
    k = model.config.num_labels
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.Conv2d) and m.out_channels == k and m.bias is not None and "auxiliary" not in name]
    if len(found) != 1:
        names = [n for n, _ in found] or "none"
        raise ValueError(f"{type(model).__name__}: expected one classifier convolution with {k} outputs and a bias, "
                         f"found {names}")
    return found[0][1]


def logit_shift(weights, tau: float) -> list[float]:
    """``-tau * log(w_c)`` per class; 0 for a class of weight 0 (not trained, e.g. an ignored background)."""
    return [-tau * math.log(w) if w > 0 else 0.0 for w in weights]


@torch.no_grad()
def fold_logit_adjustment(model: nn.Module, weights, tau: float) -> list[float]:
    """Add :func:`logit_shift` of ``weights`` to the classifier's bias (in place); returns the shift."""
    layer = classifier_layer(model)
    shift = logit_shift(weights, tau)
    if len(shift) != layer.out_channels:
        raise ValueError(f"{len(shift)} class weights for a classifier of {layer.out_channels} classes")
    layer.bias.add_(torch.tensor(shift, dtype=layer.bias.dtype, device=layer.bias.device))
    if any(shift):
        before = recorded_shift(model) or [0.0] * len(shift)
        setattr(model.config, SHIFT_ATTR, [a + b for a, b in zip(before, shift, strict=True)])
    return shift


def add_shift(logits: torch.Tensor, shift: torch.Tensor | None) -> torch.Tensor:
    """(B, C, H, W) ``logits`` plus a (C,) ``shift`` per class (unchanged when ``shift`` is None): what the
    folded bias does, for logits of a model whose shift is kept outside it."""
    if shift is None:
        return logits
    return logits + shift.to(logits.device, logits.dtype).view(1, -1, 1, 1)


def recorded_shift(model: nn.Module) -> list[float] | None:
    """The shift folded into ``model``'s classifier bias, as its config records it (None: none recorded)."""
    shift = getattr(model.config, SHIFT_ATTR, None)
    return None if not shift or not any(shift) else [float(v) for v in shift]


@torch.no_grad()
def unfold_logit_shift(model: nn.Module) -> list[float] | None:
    """Take the recorded shift back off the classifier's bias (in place) and clear the record; returns the
    shift taken off, or None when the config records none."""
    shift = recorded_shift(model)
    if shift is None:
        return None
    layer = classifier_layer(model)
    if len(shift) != layer.out_channels:
        raise ValueError(f"the config records a logit shift of {len(shift)} classes for a classifier of "
                         f"{layer.out_channels}")
    layer.bias.sub_(torch.tensor(shift, dtype=layer.bias.dtype, device=layer.bias.device))
    setattr(model.config, SHIFT_ATTR, None)
    return shift

"""Checks of ``train_hf.py``'s arguments that must pass before anything is written.

Each failure is a :class:`RunError` whose message names the flag (or config key) and what was
expected; ``main`` prints it as one line and exits with code 2.
"""

from __future__ import annotations

import math

from ..data.augment import AUGMENTATION_NAMES
from .averaging import AveragingSpec
from .errors import RunError
from .ranges import check_loss_spec, check_values, need, parse_overrides
from .ranges import parse_augmentations as _parse_augmentations
from .threads import parse_threads


def parse_augmentations(text: str) -> list[str]:
    """``--augmentations`` as a list of known names (``none`` or empty: no augmentation)."""
    return _parse_augmentations(text, AUGMENTATION_NAMES)


def parse_weight_averaging(text: str) -> AveragingSpec:
    """``--weight_averaging`` as an :class:`AveragingSpec`."""
    try:
        return AveragingSpec.parse(text)
    except ValueError as err:
        raise RunError(f"--weight_averaging: {err}") from None


def parse_train_frames(text: str) -> tuple[float, float]:
    """``--train_frames START:STOP`` with 0 <= START < STOP <= 1."""
    try:
        start, stop = (float(x) for x in text.split(":"))
    except ValueError:
        raise RunError(f"--train_frames must be 'START:STOP' (shares of the training frames), got {text!r}") from None
    need(0 <= start < stop <= 1, f"--train_frames needs 0 <= START < STOP <= 1, got {text!r}")
    return start, stop


def check_arguments(model_args, data_args, loss_args, args) -> None:
    """Raise :class:`RunError` for the first argument that cannot start a run."""
    try:
        parse_threads(args.torch_threads)
    except ValueError as err:
        raise RunError(str(err)) from None
    check_values(model_args, data_args, loss_args, args)
    held = parse_weight_averaging(args.weight_averaging).lr
    schedule = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    need(not held or schedule in ("linear", "polynomial"),
         f"--weight_averaging {args.weight_averaging}: a held SWA learning rate replaces a linear or polynomial "
         f"schedule, got --lr_scheduler_type {schedule}")
    parse_augmentations(data_args.augmentations)
    parse_train_frames(data_args.train_frames)
    parse_overrides(model_args.model_overrides)
    check_loss_spec(loss_args.loss)


def check_class_weights(weights: list[float], spec: str) -> list[float]:
    """Explicit ``--class_weights``: finite, non-negative, not all zero."""
    need(all(math.isfinite(w) and w >= 0 for w in weights),
          f"--class_weights must be non-negative finite numbers, got {spec!r}")
    need(any(w > 0 for w in weights), f"--class_weights must not all be 0, got {spec!r}")
    return weights

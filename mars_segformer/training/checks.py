"""Checks of ``train_hf.py``'s arguments that must pass before anything is written.

Each failure is a :class:`RunError` whose message names the flag (or config key) and what was
expected; ``main`` prints it as one line and exits with code 2.
"""

from __future__ import annotations

import json
import math

from ..data.augment import AUGMENTATION_NAMES
from ..losses import build_loss
from .averaging import AveragingSpec
from .errors import RunError
from .ranges import check_values, need
from .threads import parse_threads


def parse_overrides(text: str | None) -> dict:
    """``--model_overrides`` as a dict of config fields."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunError(f"--model_overrides is not valid JSON ({err.msg} at character {err.pos}): {text!r}") from None
    need(isinstance(value, dict), f"--model_overrides must be a JSON object of config fields, got {text!r}")
    return value


def parse_augmentations(text: str) -> list[str]:
    """``--augmentations`` as a list of known names (``none`` or empty: no augmentation)."""
    names = [] if text.strip() in ("", "none") else [a.strip() for a in text.split(",")]
    unknown = [n for n in names if n not in AUGMENTATION_NAMES]
    need(not unknown, f"--augmentations: unknown name(s) {unknown}; choose from {', '.join(sorted(AUGMENTATION_NAMES))} "
                       "or 'none'")
    return names


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
    parse_weight_averaging(args.weight_averaging)
    parse_augmentations(data_args.augmentations)
    parse_train_frames(data_args.train_frames)
    parse_overrides(model_args.model_overrides)
    if loss_args.loss != "model":
        try:
            build_loss(loss_args.loss, loss_args.focal_gamma, None, 0)
        except ValueError as err:  # unknown name, or a weight that is not a number
            raise RunError(f"--loss {loss_args.loss!r}: {err}; expected e.g. 'focal', 'focal:1,dice:0.5' or 'focal:1,lovasz:0.5' "
                           "(weights are numbers), or 'model'") from None


def check_class_weights(weights: list[float], spec: str) -> list[float]:
    """Explicit ``--class_weights``: finite, non-negative, not all zero."""
    need(all(math.isfinite(w) and w >= 0 for w in weights),
          f"--class_weights must be non-negative finite numbers, got {spec!r}")
    need(any(w > 0 for w in weights), f"--class_weights must not all be 0, got {spec!r}")
    return weights

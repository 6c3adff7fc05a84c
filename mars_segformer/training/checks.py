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
from .threads import parse_threads


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise RunError(message)


def parse_overrides(text: str | None) -> dict:
    """``--model_overrides`` as a dict of config fields."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunError(f"--model_overrides is not valid JSON ({err.msg} at character {err.pos}): {text!r}") from None
    _need(isinstance(value, dict), f"--model_overrides must be a JSON object of config fields, got {text!r}")
    return value


def parse_augmentations(text: str) -> list[str]:
    """``--augmentations`` as a list of known names (``none`` or empty: no augmentation)."""
    names = [] if text.strip() in ("", "none") else [a.strip() for a in text.split(",")]
    unknown = [n for n in names if n not in AUGMENTATION_NAMES]
    _need(not unknown, f"--augmentations: unknown name(s) {unknown}; choose from {', '.join(sorted(AUGMENTATION_NAMES))} "
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
    _need(0 <= start < stop <= 1, f"--train_frames needs 0 <= START < STOP <= 1, got {text!r}")
    return start, stop


def check_arguments(model_args, data_args, loss_args, args) -> None:
    """Raise :class:`RunError` for the first argument that cannot start a run."""
    finite = math.isfinite
    try:
        parse_threads(args.torch_threads)
    except ValueError as err:
        raise RunError(str(err)) from None
    _need(finite(args.learning_rate) and args.learning_rate > 0,
          f"--learning_rate must be a positive number, got {args.learning_rate}")
    if str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)) == "polynomial":
        lr_end = (args.lr_scheduler_kwargs or {}).get("lr_end", 1e-7)
        _need(args.learning_rate > lr_end, f"--learning_rate {args.learning_rate} must exceed the polynomial schedule's "
                                           f"final rate {lr_end} (or pick another --lr_scheduler_type)")
    _need(args.per_device_train_batch_size >= 1,
          f"--per_device_train_batch_size must be at least 1, got {args.per_device_train_batch_size}")
    _need(args.per_device_eval_batch_size >= 1,
          f"--per_device_eval_batch_size must be at least 1, got {args.per_device_eval_batch_size}")
    _need(args.max_steps == -1 or args.max_steps >= 1, f"--max_steps must be -1 (use epochs) or at least 1, got {args.max_steps}")
    _need(args.max_steps >= 1 or (finite(args.num_train_epochs) and args.num_train_epochs > 0),
          f"--num_train_epochs must be a positive number, got {args.num_train_epochs}")
    _need(finite(args.weight_decay) and args.weight_decay >= 0, f"--weight_decay must be >= 0, got {args.weight_decay}")
    _need(finite(args.max_grad_norm) and args.max_grad_norm >= 0, f"--max_grad_norm must be >= 0, got {args.max_grad_norm}")
    _need(finite(model_args.encoder_lr_scale) and model_args.encoder_lr_scale > 0,
          f"--encoder_lr_scale must be a positive number, got {model_args.encoder_lr_scale}")
    _need(finite(model_args.loaded_lr_scale) and model_args.loaded_lr_scale > 0,
          f"--loaded_lr_scale must be a positive number, got {model_args.loaded_lr_scale}")
    _need(finite(model_args.layer_lr_decay) and 0 < model_args.layer_lr_decay <= 1,
          f"--layer_lr_decay must lie in (0, 1] (1: off), got {model_args.layer_lr_decay}")
    _need(model_args.freeze_encoder_steps >= 0, f"--freeze_encoder_steps must be >= 0, got {model_args.freeze_encoder_steps}")
    _need(args.early_stopping_patience >= 0, f"--early_stopping_patience must be >= 0, got {args.early_stopping_patience}")
    _need(0 < data_args.val_fraction < 1, f"--val_fraction must lie in (0, 1), got {data_args.val_fraction}")
    _need(0 <= data_args.cutmix_p <= 1, f"--cutmix_p is a probability in [0, 1], got {data_args.cutmix_p}")
    _need(data_args.oversample_big_rock >= 1,
          f"--oversample_big_rock is a number of copies, at least 1 (1: off), got {data_args.oversample_big_rock}")
    _need(finite(data_args.repeat_factor_threshold) and 0 <= data_args.repeat_factor_threshold <= 1,
          f"--repeat_factor_threshold is a share of tiles in [0, 1] (0: off), got {data_args.repeat_factor_threshold}")
    _need(data_args.repeat_factor_threshold == 0 or data_args.oversample_big_rock == 1,
          "--repeat_factor_threshold and --oversample_big_rock both repeat tiles; use one of them")
    _need(data_args.extra_share is None or data_args.extra_data is not None,
          f"--extra_share {data_args.extra_share} needs --extra_data (the tiles it is a share of)")
    _need(data_args.extra_share is None or 0 < data_args.extra_share < 1,
          f"--extra_share must lie in (0, 1), got {data_args.extra_share}")
    _need(data_args.outlier_min_count >= 2, f"--outlier_min_count must be at least 2, got {data_args.outlier_min_count}")
    _need(args.keep_plots >= -1, f"--keep_plots is a number of evaluations (-1: all), got {args.keep_plots}")
    _need(args.plot_every >= 1, f"--plot_every is a number of evaluations, at least 1, got {args.plot_every}")
    _need(data_args.num_preview >= 0, f"--num_preview must be >= 0, got {data_args.num_preview}")
    _need(finite(loss_args.focal_gamma) and loss_args.focal_gamma >= 0,
          f"--focal_gamma must be >= 0, got {loss_args.focal_gamma}")
    _need(model_args.input_scale is None or (finite(model_args.input_scale) and 0.25 <= model_args.input_scale <= 4),
          f"--input_scale is the factor tiles are resized by, in [0.25, 4], got {model_args.input_scale}")
    _need(finite(loss_args.ohem_keep) and 0 < loss_args.ohem_keep <= 1,
          f"--ohem_keep is the share of pixels the 'ohem' loss keeps, in (0, 1], got {loss_args.ohem_keep}")
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
    _need(all(math.isfinite(w) and w >= 0 for w in weights),
          f"--class_weights must be non-negative finite numbers, got {spec!r}")
    _need(any(w > 0 for w in weights), f"--class_weights must not all be 0, got {spec!r}")
    return weights

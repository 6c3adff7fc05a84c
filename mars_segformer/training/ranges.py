"""The value rules of ``train_hf.py``'s arguments: ranges and combinations of numbers and settings.

Light (no torch): :func:`check_values` runs on the parsed dataclasses (through
:func:`.checks.check_arguments`) and, before the heavy imports, on the values a command line gives
over the defaults read from source (:func:`.flags.quick_values`), so a value out of range is
answered at once. One set of rules serves both.
"""

from __future__ import annotations

import json
import math

from ..losses.spec import parse_loss_spec
from .errors import RunError

#: what distillation's teachers see of a training tile (``--teacher_view``; ``distillation.py``): the tile alone, or
#: its whole frame where the frame is complete (else the tile)
TEACHER_VIEWS = ("tile", "frame")


def need(ok: bool, message: str) -> None:
    """Raise :class:`RunError` with ``message`` unless ``ok``."""
    if not ok:
        raise RunError(message)


def _check_distillation(data_args, loss_args, augmentations: list[str]) -> None:
    """The rules of ``--teachers``, ``--self_distill``, ``--teacher_view`` and ``--distill_weight``."""
    finite = math.isfinite
    need(finite(loss_args.distill_weight) and loss_args.distill_weight >= 0,
         f"--distill_weight must be a number >= 0, got {loss_args.distill_weight}")
    need(loss_args.teacher_view in TEACHER_VIEWS,
         f"--teacher_view must be one of {', '.join(TEACHER_VIEWS)}, got {loss_args.teacher_view!r}")
    self_distill = loss_args.self_distill
    need(self_distill is None or (finite(self_distill) and 0 <= self_distill < 1),
         f"--self_distill is the share of the training steps before the run teaches itself, in [0, 1), got "
         f"{self_distill}")
    need(not (loss_args.teachers and self_distill is not None),
         "--teachers and --self_distill both give the soft labels; use one of them")
    if loss_args.teachers or self_distill is not None:
        source = "--teachers" if loss_args.teachers else "--self_distill"
        mixing = [f for f, on in (("--cutmix_p", data_args.cutmix_p > 0), ("--extra_data", data_args.extra_data),
                                  ("copy_paste", "copy_paste" in augmentations)) if on]
        need(not mixing, f"{source}: {', '.join(mixing)} brings pixels without teacher probabilities; "
                         "distil without it")


def check_values(model_args, data_args, loss_args, args) -> None:
    """Raise :class:`RunError` for the first value out of its range or combination that cannot run."""
    _check_optimisation(model_args, args)
    _check_data(data_args, loss_args)
    _check_output(data_args, args)
    _check_loss(model_args, loss_args)


def _check_optimisation(model_args, args) -> None:
    """The learning rate and its schedule, batch sizes, length, regularisation and the encoder's rates."""
    finite = math.isfinite
    need(finite(args.learning_rate) and args.learning_rate > 0,
         f"--learning_rate must be a positive number, got {args.learning_rate}")
    if str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)) == "polynomial":
        lr_end = (args.lr_scheduler_kwargs or {}).get("lr_end", 1e-7)
        need(args.learning_rate > lr_end, f"--learning_rate {args.learning_rate} must exceed the polynomial schedule's "
                                           f"final rate {lr_end} (or pick another --lr_scheduler_type)")
    need(args.per_device_train_batch_size >= 1,
         f"--per_device_train_batch_size must be at least 1, got {args.per_device_train_batch_size}")
    need(args.per_device_eval_batch_size >= 1,
         f"--per_device_eval_batch_size must be at least 1, got {args.per_device_eval_batch_size}")
    need(args.max_steps == -1 or args.max_steps >= 1, f"--max_steps must be -1 (use epochs) or at least 1, got {args.max_steps}")
    need(args.max_steps >= 1 or (finite(args.num_train_epochs) and args.num_train_epochs > 0),
         f"--num_train_epochs must be a positive number, got {args.num_train_epochs}")
    need(finite(args.weight_decay) and args.weight_decay >= 0, f"--weight_decay must be >= 0, got {args.weight_decay}")
    need(finite(args.max_grad_norm) and args.max_grad_norm >= 0, f"--max_grad_norm must be >= 0, got {args.max_grad_norm}")
    need(finite(model_args.encoder_lr_scale) and model_args.encoder_lr_scale > 0,
         f"--encoder_lr_scale must be a positive number, got {model_args.encoder_lr_scale}")
    need(finite(model_args.loaded_lr_scale) and model_args.loaded_lr_scale > 0,
         f"--loaded_lr_scale must be a positive number, got {model_args.loaded_lr_scale}")
    need(finite(model_args.layer_lr_decay) and 0 < model_args.layer_lr_decay <= 1,
         f"--layer_lr_decay must lie in (0, 1] (1: off), got {model_args.layer_lr_decay}")
    need(model_args.freeze_encoder_steps >= 0, f"--freeze_encoder_steps must be >= 0, got {model_args.freeze_encoder_steps}")
    need(finite(model_args.drop_path) and 0 <= model_args.drop_path < 1,
         f"--drop_path must lie in [0, 1) (the last block's drop probability), got {model_args.drop_path}")
    need(finite(model_args.head_dropout) and 0 <= model_args.head_dropout < 1,
         f"--head_dropout must lie in [0, 1) (a share of channels), got {model_args.head_dropout}")
    need(args.early_stopping_patience >= 0, f"--early_stopping_patience must be >= 0, got {args.early_stopping_patience}")


def _check_data(data_args, loss_args) -> None:
    """The split, frame reads, augmentations, distillation's soft labels, repetition and extra data."""
    finite = math.isfinite
    need(0 < data_args.val_fraction < 1, f"--val_fraction must lie in (0, 1), got {data_args.val_fraction}")
    need(finite(data_args.frame_read_p) and 0 <= data_args.frame_read_p <= 1,
         f"--frame_read_p is a probability in [0, 1], got {data_args.frame_read_p}")
    need(finite(data_args.frame_zoom_until) and 0 < data_args.frame_zoom_until <= 1,
         f"--frame_zoom_until is a share of the training steps in (0, 1], got {data_args.frame_zoom_until}")
    augmentations = augmentation_names(data_args.augmentations)
    need(data_args.frame_zoom_until == 1 or "frame_zoom" in augmentations,
         f"--frame_zoom_until {data_args.frame_zoom_until} ends frame_zoom's zoom, but --augmentations "
         f"{data_args.augmentations!r} does not name frame_zoom")
    _check_distillation(data_args, loss_args, augmentations)
    need(0 <= data_args.cutmix_p <= 1, f"--cutmix_p is a probability in [0, 1], got {data_args.cutmix_p}")
    need(0 < data_args.copy_paste_p <= 1, f"--copy_paste_p is a probability in (0, 1], got {data_args.copy_paste_p}")
    need(data_args.oversample_big_rock >= 1,
         f"--oversample_big_rock is a number of copies, at least 1 (1: off), got {data_args.oversample_big_rock}")
    need(finite(data_args.repeat_factor_threshold) and 0 <= data_args.repeat_factor_threshold <= 1,
         f"--repeat_factor_threshold is a share of tiles in [0, 1] (0: off), got {data_args.repeat_factor_threshold}")
    need(data_args.repeat_factor_threshold == 0 or data_args.oversample_big_rock == 1,
         "--repeat_factor_threshold and --oversample_big_rock both repeat tiles; use one of them")
    need(data_args.extra_share is None or data_args.extra_data is not None,
         f"--extra_share {data_args.extra_share} needs --extra_data (the tiles it is a share of)")
    need(data_args.extra_share is None or 0 < data_args.extra_share < 1,
         f"--extra_share must lie in (0, 1), got {data_args.extra_share}")
    need(data_args.outlier_min_count >= 2, f"--outlier_min_count must be at least 2, got {data_args.outlier_min_count}")


def _check_output(data_args, args) -> None:
    """What a run writes beside its model: plots, previews, and the weights' memory format."""
    need(args.keep_plots >= -1, f"--keep_plots is a number of evaluations (-1: all), got {args.keep_plots}")
    need(str(args.channels_last) in ("auto", "true", "false"),
         f"--channels_last must be 'auto', 'true' or 'false', got {args.channels_last!r}")
    need(args.plot_every >= 1, f"--plot_every is a number of evaluations, at least 1, got {args.plot_every}")
    need(data_args.num_preview >= 0, f"--num_preview must be >= 0, got {data_args.num_preview}")


def _check_loss(model_args, loss_args) -> None:
    """The loss's settings, the tile scale and the logit adjustment."""
    finite = math.isfinite
    need(finite(loss_args.focal_gamma) and loss_args.focal_gamma >= 0,
         f"--focal_gamma must be >= 0, got {loss_args.focal_gamma}")
    need(model_args.input_scale is None or (finite(model_args.input_scale) and 0.25 <= model_args.input_scale <= 4),
         f"--input_scale is the factor tiles are resized by, in [0.25, 4], got {model_args.input_scale}")
    need(finite(loss_args.ohem_keep) and 0 < loss_args.ohem_keep <= 1,
         f"--ohem_keep is the share of pixels the 'ohem' loss keeps, in (0, 1], got {loss_args.ohem_keep}")
    try:
        tau = parse_logit_adjustment(loss_args.logit_adjustment)
    except ValueError:
        tau = None
    need(tau is not None, "--logit_adjustment is 'auto' or the share of log(class weight) taken off each logit, "
                          f"a number in [0, 2], got {loss_args.logit_adjustment!r}")
    need(tau in (0, "auto") or loss_args.class_weights != "none",
         "--logit_adjustment undoes the class weights; with --class_weights none there is nothing to undo "
         "(give 0, or 'auto', which then adjusts nothing)")


def parse_logit_adjustment(text) -> float | str:
    """``--logit_adjustment``: ``auto``, or a number tau in [0, 2] (0: off). Raises ValueError."""
    text = str(text).strip()
    if text == "auto":
        return "auto"
    tau = float(text)  # ValueError for text that is not a number
    if not (math.isfinite(tau) and 0 <= tau <= 2):
        raise ValueError(f"tau must lie in [0, 2], got {tau}")
    return tau


def augmentation_names(text: str) -> list[str]:
    """The names ``--augmentations`` gives, unchecked (``none`` or empty: none)."""
    return [] if text.strip() in ("", "none") else [a.strip() for a in text.split(",")]


def parse_augmentations(text: str, names) -> list[str]:
    """``--augmentations`` as a list of ``names`` (``none`` or empty: no augmentation)."""
    given = augmentation_names(text)
    unknown = [n for n in given if n not in names]
    need(not unknown, f"--augmentations: unknown name(s) {unknown}; choose from {', '.join(sorted(names))} or 'none'")
    need(not {"frame_shift", "frame_zoom"} <= set(given),
         "--augmentations: name one of frame_shift and frame_zoom (frame_zoom shifts its windows too)")
    return given


def check_loss_spec(spec: str) -> None:
    """``--loss``: ``model`` or a spec of :func:`..losses.spec.parse_loss_spec`."""
    if spec == "model":
        return
    try:
        parse_loss_spec(spec)
    except ValueError as err:  # unknown name, or a weight that is not a number
        raise RunError(f"--loss {spec!r}: {err}; expected e.g. 'focal', 'focal:1,dice:0.5' or 'focal:1,lovasz:0.5' "
                       "(weights are numbers), or 'model'") from None


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

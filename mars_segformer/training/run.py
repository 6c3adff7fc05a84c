"""The training job behind ``train_hf.py``: arguments -> data -> model -> Trainer -> run folder."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import numpy as np
import torch
from transformers import EarlyStoppingCallback, HfArgumentParser, IntervalStrategy, set_seed
from transformers.integrations import TensorBoardCallback

from ..argparsing import one_line_error
from ..data import CLASS_NAMES, DataConfig, build_dataset_dict, load_arrays
from ..data.dataset import config_scale
from ..data.frame_shift import EARLIER_SHIFT_P, MAX_SHIFT, SEAM_MEDIAN_MAX, until_text, zoom_text
from ..data.io import TILE_SCALE, TILE_SHAPE
from ..data.split import SPLIT_FILE, split_record
from ..losses import build_loss, class_weights_from_masks
from ..models import PRESETS, create_model, processor_for
from ..models.logit_adjustment import fold_logit_adjustment
from ..models.pretrained import (
    StartError,
    StartReport,
    encoder_parameters,
    layer_lr_scales,
    load_encoder_weights,
    load_pretrained,
    source_kind,
)
from ..outputs import OutputPathError, atomic_write_json, check_output_folder
from ..visualization import save_confusion_matrix, save_curves, save_prediction_grid
from .adjustment import inherited_shift, search_tau, training_sample
from .arguments import DataArguments, LossArguments, MarsTrainingArguments, ModelArguments
from .averaging import WeightAverager, WeightAveragingCallback
from .callbacks import (
    FreezeEncoderCallback,
    PredictionPlotCallback,
    ProgressCallback,
    SelfDistillationCallback,
)
from .checks import (
    RunError,
    check_arguments,
    check_class_weights,
    parse_augmentations,
    parse_overrides,
    parse_train_frames,
    parse_weight_averaging,
)
from .devices import describe, device_defaults, float32_forward, training_precision, use_channels_last
from .distillation import SelfTeacher, teacher_list, teacher_soft_labels
from .drop_path import attach_drop_path
from .faults import (
    LOCK_FILE,
    STOPPED_EXIT_CODE,
    GracefulStop,
    RunFault,
    RunLock,
    RunLocked,
    RunStopped,
    check_room_to_resume,
    disk_faults,
    is_complete_checkpoint,
    numbered_checkpoints,
)
from .finetune import finetune_defaults
from .flags import expand_config, given_flags
from .head_dropout import attach_head_dropout
from .ranges import parse_logit_adjustment
from .sampling import sampling_defaults
from .threads import apply_threads
from .trainer import OPTIMIZER_STATE, MarsTrainer, StreamingMetrics, argmax_at_label_size

#: run_args.json: the arguments a run was started with, so that a resume needs only --output_dir
RUN_ARGS = "run_args.json"
RUN_MARKERS = ("trainer_state.json", "config.json", "metrics.json", "model.safetensors", RUN_ARGS)


#: flags a resume may change; any other flag given again must keep the run's own value
SAFE_ON_RESUME = {
    "output_dir", "resume_from_checkpoint", "max_steps", "num_train_epochs", "early_stopping_patience",
    "logging_steps", "disable_tqdm", "torch_threads", "keep_plots", "plot_every", "keep_optimizer_state", "dataloader_num_workers", "per_device_eval_batch_size",
    "save_total_limit", "report_to", "push_to_hub", "hub_model_id", "hub_token", "hub_private_repo", "overwrite",
}
#: never written to any file of the run folder
SECRET_FLAGS = {"hub_token"}
#: the recipe flags whose defaults a release may change (issue 19 changed each of them): run_args.json holds
#: the run's values of them, so that a resume trains on with the recipe it started with
RECIPE_FLAGS = ("loss", "repeat_factor_threshold", "weight_averaging", "logit_adjustment", "augmentations",
                "frame_read_p", "frame_zoom_until")
#: their defaults until issue 19 made the combined recipe (bench/ablation.py's 9_combo) the default (logit
#: adjustment and frame_shift came later, off until then); a folder saved before --frame_read_p existed moved
#: EARLIER_SHIFT_P of the reads whenever it named frame_shift, and one saved before --frame_zoom_until zoomed
#: throughout
RECIPE_BEFORE_ISSUE19 = {"loss": "focal", "repeat_factor_threshold": "0", "weight_averaging": "none",
                         "logit_adjustment": "0", "augmentations": "hflip", "frame_read_p": str(EARLIER_SHIFT_P),
                         "frame_zoom_until": "1.0"}
#: left out of run_args.json: secrets, and what only concerns one invocation
NOT_SAVED = SECRET_FLAGS | {"resume_from_checkpoint", "overwrite"}
DATACLASSES = (ModelArguments, DataArguments, LossArguments, MarsTrainingArguments)


class _Parser(HfArgumentParser):
    """transformers' parser with one-line usage errors (a bad value named, not 127 lines of usage)."""

    def error(self, message: str):
        one_line_error(self, message)


def _parse(argv: list[str]):
    parser = _Parser(DATACLASSES, prog="train_hf.py")
    try:
        return parser.parse_args_into_dataclasses(args=argv)
    except ValueError as err:  # an unknown flag, or TrainingArguments.__post_init__ rejects a combination
        # transformers lists what it found on further lines ("- Evaluation strategy: ..."): one line keeps them
        msg = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        if "not used by the HfArgumentParser" in msg:
            raise RunError(f"unknown flag(s) {msg.split(':', 1)[1].strip()}; `python train_hf.py --help` lists them") from None
        raise RunError(f"invalid training arguments: {msg}") from None


def _value(parsed, name: str):
    return next(getattr(d, name) for d in parsed if hasattr(d, name))


def implied_flags(argv: list[str]) -> list[str]:
    """Defaults that depend on the machine (GPU), on the start (a checkpoint ``--model``) and on the sampling
    flags given, as flags to put before the user's, which win; worked out again on a resume, never saved in ``run_args.json``."""
    return [*device_defaults(argv), *finetune_defaults(argv, PRESETS), *sampling_defaults(argv)]


def parse_args(argv=None):
    """The four argument dataclasses of ``argv`` (see :func:`parse_command_line`)."""
    return parse_command_line(argv)[1]


def parse_command_line(argv=None):
    """Parse the command line, or a single ``.yaml``/``.json`` config file path (later flags override it).

    With ``--resume_from_checkpoint`` and a run folder that holds ``run_args.json``, the run's own
    arguments come first: flags given again may change only :data:`SAFE_ON_RESUME`, any other flag
    must repeat the run's value.

    Returns:
        (the effective flags, the four argument dataclasses).
    """
    argv = expand_config(list(sys.argv[1:] if argv is None else argv))
    parsed = _parse([*implied_flags(argv), *argv])
    args = parsed[-1]
    saved_file = Path(args.output_dir) / RUN_ARGS
    if not args.resume_from_checkpoint or not saved_file.is_file():
        return argv, parsed
    try:
        saved_argv = _with_recipe_of_its_time(json.loads(saved_file.read_text())["argv"])
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise RunError(f"{saved_file}: not a run-arguments file ({err}); resume needs every original flag") from None
    saved = _parse([*implied_flags(saved_argv), *saved_argv])
    merged = _parse([*implied_flags([*saved_argv, *argv]), *saved_argv, *argv])
    for name in sorted(given_flags(argv) - SAFE_ON_RESUME):
        if _value(merged, name) != _value(saved, name):
            raise RunError(f"--{name} {_value(merged, name)!r} conflicts with the run's own --{name} "
                           f"{_value(saved, name)!r} ({saved_file}); a resume keeps the run's model, data and recipe")
    return [*saved_argv, *argv], merged


def recipe_flags(*parsed) -> list[str]:
    """The run's values of :data:`RECIPE_FLAGS` in its argument dataclasses, as flags (saved before the
    user's in ``run_args.json``)."""
    return [a for name in RECIPE_FLAGS for a in (f"--{name}", str(_value(parsed, name)))]


def _with_recipe_of_its_time(saved_argv: list[str]) -> list[str]:
    """A saved command line with the recipe defaults of the release that wrote it: one written before the
    recipe flags were saved lacks some of them, and its run trained with :data:`RECIPE_BEFORE_ISSUE19`'s."""
    given = given_flags(saved_argv)
    old = [a for name in RECIPE_FLAGS if name not in given for a in (f"--{name}", RECIPE_BEFORE_ISSUE19[name])]
    return [*old, *saved_argv]


def save_run_args(out: Path, argv: list[str], recipe: list[str] = ()) -> None:
    """Write the run's arguments (secrets left out) to ``out/run_args.json``, atomically.

    Args:
        recipe: :func:`recipe_flags`, saved first (the user's own flags follow and win), so that a resume
            trains with the recipe the run started with even after a release changes its defaults.
    """
    keep, skip = list(recipe), False
    for a in argv:
        if skip:
            skip = False
            if not a.startswith("--"):
                continue
        name = a[2:].split("=", 1)[0] if a.startswith("--") else None
        if name in NOT_SAVED:
            skip = "=" not in a  # drop its value too (the next token, unless it is the next flag)
            continue
        keep.append(a)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / RUN_ARGS, {"argv": keep})


def _check_output_dir(args: MarsTrainingArguments) -> None:
    out = Path(args.output_dir)
    try:
        check_output_folder(out, "--output_dir")
    except OutputPathError as err:
        raise RunError(str(err)) from None
    if not out.exists() or args.overwrite or args.resume_from_checkpoint:
        return
    found = [m for m in RUN_MARKERS if (out / m).exists()] + [p.name for p in out.glob("checkpoint-*")][:3]
    if found:
        raise RunError(f"output_dir {out} already holds a run ({', '.join(found)}); pass --overwrite to reuse it "
                       "or --resume_from_checkpoint to continue it")


def _class_weights(spec: str, masks: np.ndarray, ignore_index, indices=None):
    if spec == "none":
        return None
    if spec == "auto" or spec.startswith("auto:"):
        try:
            power = float(spec.partition(":")[2] or 0.5)
        except ValueError as err:
            raise RunError(f"--class_weights 'auto:P' needs a number P (the frequency power), got {spec!r}") from err
        if not 0 < power <= 2:
            raise RunError(f"--class_weights power must be in (0, 2], got {power}")
        return class_weights_from_masks(masks, len(CLASS_NAMES), ignore_index, power=power, indices=indices)
    try:
        w = [float(x) for x in spec.split(",")]
    except ValueError as err:
        raise RunError(f"--class_weights must be 'auto', 'auto:P', 'none' or {len(CLASS_NAMES)} numbers, "
                       f"got {spec!r}") from err
    if len(w) != len(CLASS_NAMES):
        raise RunError(f"--class_weights needs {len(CLASS_NAMES)} numbers, got {len(w)}")
    return check_class_weights(w, spec)


def data_config(data_args: DataArguments, seed: int) -> DataConfig:
    """The ``DataConfig`` of the data flags (already checked by ``check_arguments``)."""
    return DataConfig(
        val_fraction=data_args.val_fraction, seed=seed, augmentations=parse_augmentations(data_args.augmentations),
        cutmix_p=data_args.cutmix_p, copy_paste_p=data_args.copy_paste_p, oversample_big_rock=data_args.oversample_big_rock,
        repeat_factor_threshold=data_args.repeat_factor_threshold, frame_read_p=data_args.frame_read_p,
        frame_zoom_until=data_args.frame_zoom_until,
        drop_outliers=data_args.drop_outliers,
        outlier_min_count=data_args.outlier_min_count, train_frames=parse_train_frames(data_args.train_frames),
        extra_share=DataConfig.extra_share if data_args.extra_share is None else data_args.extra_share,
    )


def loss_function(loss_args: LossArguments, train_masks: np.ndarray, indices=None):
    """(class weights, loss module) of the loss flags, the weights counted over ``train_masks`` (its tiles
    ``indices``); (None, None) for the model's own loss."""
    if loss_args.loss == "model":  # the architecture's own cross-entropy (background an ordinary class)
        return None, None
    ignore = 0 if loss_args.ignore_background else None
    weights = _class_weights(loss_args.class_weights, train_masks, ignore, indices)
    return weights, build_loss(loss_args.loss, loss_args.focal_gamma, weights, ignore, loss_args.ohem_keep)


def _run_lock(out: Path, args: MarsTrainingArguments):
    """The run folder's lock, taken by the main process (the other processes of a run share its folder)."""
    if args.process_index != 0:
        return contextlib.nullcontext()
    return _NotedLock(out)


class _NotedLock(RunLock):
    def __enter__(self):
        try:
            super().__enter__()
        except RunLocked as err:
            raise RunError(str(err)) from None
        if self.stale_pid:
            print(f"note: {self.folder / LOCK_FILE} was left by pid {self.stale_pid}, which is no longer running "
                  "(killed?); taking it over", flush=True)
        return self


def strip_optimizer_state(out: Path) -> None:
    """Drop optimizer and scheduler state from the checkpoints of a finished run (most of their size)."""
    for ck in out.glob("checkpoint-*"):
        for name in OPTIMIZER_STATE:
            (ck / name).unlink(missing_ok=True)


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _resume_target(args: MarsTrainingArguments):
    """``--resume_from_checkpoint`` as the Trainer takes it; a clear error when there is nothing to resume."""
    resume = args.resume_from_checkpoint
    if not resume or (isinstance(resume, str) and resume.lower() in ("false", "no", "0")):
        return None
    if isinstance(resume, str) and resume.lower() not in ("true", "last", "yes", "1"):
        if not is_complete_checkpoint(Path(resume)):
            raise RunError(f"--resume_from_checkpoint {resume}: not a complete checkpoint folder (no readable "
                           "trainer_state.json)")
        return resume
    last, skipped = _last_complete_checkpoint(Path(args.output_dir), resume)
    if skipped and args.process_index == 0:
        print(f"resume: {', '.join(skipped)} skipped (no readable trainer_state.json: the run was stopped "
              f"while saving it); resuming from {Path(last).name}", flush=True)
    return last


def _last_complete_checkpoint(out: Path, flag_value) -> tuple[str, list[str]]:
    """The newest ``checkpoint-N`` that was written to the end.

    The Trainer writes ``trainer_state.json`` last, so a run killed while saving leaves a newer folder
    without it, or with it cut short (:func:`~.faults.is_complete_checkpoint`); the Trainer's own choice
    (the highest N) would then fail or restore a half-written state.

    Returns:
        The checkpoint's path, and the names of the newer, incomplete ones.
    """
    found = numbered_checkpoints(out)
    if not found:
        raise RunError(f"--resume_from_checkpoint {flag_value}: {out} holds no checkpoint-* folder to "
                       "resume from (checkpoints are written by --save_strategy steps/epoch)")
    complete = [(n, p) for n, p in found if is_complete_checkpoint(p)]
    if not complete:
        raise RunError(f"--resume_from_checkpoint: no checkpoint in {out} was written to the end "
                       f"(none of {', '.join(p.name for _, p in found)} has a readable trainer_state.json)")
    newest, last = complete[-1]
    return str(last), [p.name for n, p in found if n > newest]


def _misfit(model_args: ModelArguments, err: Exception) -> str:
    """The one line for ``--model_overrides`` that the model of ``--model`` cannot take."""
    return (f"--model_overrides {model_args.model_overrides!r} do not fit --model {model_args.model}: "
            f"{str(err).splitlines()[0]}")


def _check_overrides_run(model, model_args: ModelArguments) -> None:
    """One forward pass of a blank tile through a model changed by ``--model_overrides`` (a preset or a checkpoint):
    a value its config accepts but its layers cannot run (a zero stride or width, ...) is then a one-line error
    before training, not a traceback in it."""
    model.eval()
    try:
        with torch.no_grad():
            model(pixel_values=torch.zeros(1, 3, *TILE_SHAPE))
    except (RuntimeError, ValueError) as err:
        raise RunError(_misfit(model_args, err)) from None
    model.train()


def _start_model(model_args: ModelArguments, kind: str, overrides: dict, token: str | None):
    """The model a run starts from (a preset or any checkpoint, see ``source_kind``), and what was loaded into it."""
    try:
        if kind == "preset":
            try:
                model = create_model(model_args.model, tiny=model_args.tiny, **overrides)
            except (TypeError, ValueError, KeyError) as err:
                raise RunError(_misfit(model_args, err)) from None
            start = StartReport(model_args.model, "preset", loaded=len(model.state_dict()))
        else:
            model, start = load_pretrained(model_args.model, model_args.model_revision, token, overrides=overrides,
                                           input_scale=model_args.input_scale)
        if overrides and not start.backbone:  # a backbone checkpoint's new UperNet ran a blank tile with them already
            _check_overrides_run(model, model_args)
        encoder_start = None
        if model_args.encoder_weights:
            encoder_start = load_encoder_weights(model, model_args.encoder_weights, token=token)
        if model_args.encoder_lr_scale != 1 or model_args.freeze_encoder_steps or model_args.layer_lr_decay != 1:
            encoder_parameters(model)  # a clear error for architectures without an encoder
    except StartError as err:
        raise RunError(str(err)) from None
    return model, start, encoder_start


@dataclass
class RunParts:
    """What the stages of :func:`run` hand on to each other."""

    model_args: ModelArguments
    data_args: DataArguments
    loss_args: LossArguments
    args: MarsTrainingArguments
    resume: str | None = None
    #: the global step this session started from (0, or the resumed checkpoint's)
    first_step: int = 0
    threads: int = 1
    threads_note: str = ""
    channels_last: bool = False
    dcfg: DataConfig | None = None
    data: object = None
    model: object = None
    start: StartReport | None = None
    encoder_start: StartReport | None = None
    overrides: dict = dc_field(default_factory=dict)
    hub_token: str | None = None
    processor: object = None
    weights: list | None = None
    metrics: StreamingMetrics | None = None
    preview: PredictionPlotCallback | None = None
    averaging: object = None
    averager: WeightAverager | None = None
    #: online self-distillation's soft labels (``--self_distill``), None without
    self_teacher: SelfTeacher | None = None
    trainer: MarsTrainer | None = None
    tau: float | str = 0.0
    tau_search: dict | None = None
    logit_shift: list | None = None
    before_adjustment: dict | None = None
    #: the logit shift a fine-tuned checkpoint had folded in, taken off for training, added at evaluation
    inherited_shift: torch.Tensor | None = None

    @property
    def out(self) -> Path:
        return Path(self.args.output_dir)


def _check_start(p: RunParts) -> str:
    """Every check that needs no data or model; returns the kind of ``--model`` source."""
    m = p.model_args
    try:
        kind = source_kind(m.model)
    except StartError as err:
        raise RunError(str(err)) from None
    if m.model_revision and kind != "hub":
        raise RunError(f"--model_revision {m.model_revision!r} picks a revision of a Hub repo; --model "
                       f"{m.model} is a {'preset' if kind == 'preset' else 'local folder'}")
    if kind != "preset" and m.tiny:
        raise RunError(f"--tiny shrinks a preset; --model {m.model} is a checkpoint")
    check_arguments(p.model_args, p.data_args, p.loss_args, p.args)
    _check_output_dir(p.args)
    return kind


def _soft_labels(p: RunParts):
    """The ``soft_labels`` callable of :func:`build_dataset_dict` for distillation (``--teachers``) or
    self-distillation (``--self_distill``, which also sets ``p.self_teacher``), with its start-up line; None
    without either."""
    loss, progress, first = p.loss_args, not p.args.disable_tqdm, p.args.process_index == 0
    teachers = teacher_list(loss.teachers)
    if teachers:
        if first:
            seen = " (complete frames seen whole)" if loss.teacher_view == "frame" else ""
            print(f"distillation: computing the mean class probabilities of {len(teachers)} teacher(s) on the "
                  f"training tiles{seen}", flush=True)
        return teacher_soft_labels(teachers, progress=progress, view=loss.teacher_view)
    if loss.self_distill is None:
        return None
    p.self_teacher = SelfTeacher(loss.teacher_view, progress=progress)
    if first:
        print(f"self-distillation: from {loss.self_distill:.0%} of the steps on, the run's own weights predict the "
              f"training tiles ({loss.teacher_view} view) at each epoch's start", flush=True)
    return p.self_teacher.soft_labels


def _build_data_and_model(p: RunParts, kind: str) -> None:
    """Arrays -> DatasetDict, the start model, its image processor (raises before anything is written)."""
    arrays = load_arrays(p.data_args.data, p.data_args.data_revision, p.args.hub_token)
    p.dcfg = data_config(p.data_args, p.args.seed)
    extra = load_arrays(p.data_args.extra_data) if p.data_args.extra_data else None
    p.overrides = parse_overrides(p.model_args.model_overrides)
    p.hub_token, p.args.hub_token = p.args.hub_token, None  # never pickled into training_args.bin
    p.model, p.start, p.encoder_start = _start_model(p.model_args, kind, p.overrides, p.hub_token)
    p.model.config.tile_scale = TILE_SCALE  # the frame scale of the tiles it learns from (whole-frame predict reads it)
    try:  # a training-only hook: the saved model stays the transformers class with the same tensors
        attach_head_dropout(p.model, p.model_args.head_dropout)
        attach_drop_path(p.model, p.model_args.drop_path)
    except ValueError as err:
        raise RunError(str(err)) from None
    scale = float(p.model_args.input_scale or config_scale(p.model.config))
    p.model.config.input_scale = p.dcfg.input_scale = scale  # predict, pipeline and training resize alike
    # a pretrained backbone's normalisation (set by models.backbones), kept by runs that start from such a run
    p.dcfg.image_mean = getattr(p.model.config, "image_mean", None)
    p.dcfg.image_std = getattr(p.model.config, "image_std", None)
    p.data = build_dataset_dict(arrays, p.dcfg, extra, soft_labels=_soft_labels(p))
    p.processor = processor_for(p.model.config, arrays.train_images.shape[1:])


def _frame_shift_line(info: dict) -> str:
    """The start-up line of ``--augmentations ...,frame_shift``: what it reads, or why it reads nothing."""
    n, seam = info["frames"], info["seam_median"]
    if n:
        zoom = zoom_text(info.get("scale", (1, 1)))
        zoom += " resized to it (frame_zoom)" if zoom else ""
        zoom += until_text(info.get("zoom_until", 1.0)) if zoom else ""
        return (f"frame_shift: the tiles of {n} complete training frames are read shifted (by up to {MAX_SHIFT:.0%} "
                f"of a tile) in {info['p']:.0%} of their reads{zoom}")
    if seam is None:
        return "frame_shift: off here: the data has no complete frames (frame ids with all their tiles)"
    return (f"frame_shift: off here: the tiles do not join into frames in the expected layout (median seam ratio "
            f"{seam:.2f} > {SEAM_MEDIAN_MAX})")


def _print_start(p: RunParts) -> None:
    """The start-up lines: data, tiles, model, device and threads; what the weights start from."""
    if p.args.process_index != 0:
        return
    data, model, scale = p.data, p.model, p.dcfg.input_scale
    if data.extra:
        print(f"extra data: {data.extra['source']}: {data.extra['tiles']} tiles as {data.extra['rows']} training rows "
              f"({data.extra['excluded_validation_frame_tiles']} tiles of validation frames left out)", flush=True)
    if data.frame_shift is not None:
        print(_frame_shift_line(data.frame_shift), flush=True)
    n_params = sum(t.numel() for t in model.parameters())
    mapped = data.arrays.meta.get("mapped")
    print(f"data: {p.data_args.data or 'embedded AI4Mars sample'}"
          f"{f' (memory-mapped from {mapped})' if mapped else ''} | tiles: train {len(data.train_indices)} "
          f"(rows {len(data.datasets['train'])}), validation {len(data.val_indices)} | model: {p.model_args.model} "
          f"({type(model).__name__}, {n_params / 1e6:.2f} M parameters"
          f"{'' if scale == 1 else f', tiles resized x{scale:g} before it'}) | device: {describe(p.args)}"
          f"{', channels-last weights' if p.channels_last else ''}, "
          f"{p.threads} torch thread(s) x {p.args.world_size} process(es){p.threads_note}", flush=True)
    if p.model_args.head_dropout:
        print(f"head dropout: {p.model_args.head_dropout:g} of the channels before the classifier, while training only "
              "(--head_dropout)", flush=True)
    if p.model_args.drop_path:
        print(f"drop path: each ResNet block's residual branch dropped per sample, 0 at the first block to "
              f"{p.model_args.drop_path:g} at the last, while training only (--drop_path)", flush=True)
    if p.resume:  # the weights come from the checkpoint, not from the start just built
        state = json.loads((Path(p.resume) / "trainer_state.json").read_text())
        print(f"resume: continuing from {p.resume} (step {state.get('global_step')} of {state.get('max_steps')})",
              flush=True)
        return
    print(p.start.line(), flush=True)
    if p.start.kind != "preset":
        m, warm = p.model_args, p.args.warmup_steps
        ema = not p.args.ema_warmup and parse_weight_averaging(p.args.weight_averaging).mode == "ema"
        print(f"fine-tuning: the loaded tensors at {m.loaded_lr_scale:g}x the learning rate of the new ones "
              f"(--loaded_lr_scale), warm-up {f'{warm:.0%} of the steps' if 0 < warm < 1 else f'{warm:g} steps'} "
              "(--warmup_steps)" + (", the weight average starting at the checkpoint (--ema_warmup false)" if ema
                                    else ""), flush=True)
    if p.encoder_start is not None:
        print(f"encoder: {p.encoder_start.line().split(': ', 1)[1]}", flush=True)


def _lr_scales(p: RunParts, encoder: list) -> dict[int, float]:
    """``{id(param): learning-rate factor}``: the encoder's ``--encoder_lr_scale`` times its
    ``--layer_lr_decay`` factors, and for a checkpoint start the loaded tensors' ``--loaded_lr_scale``."""
    m = p.model_args
    layers = layer_lr_scales(p.model, m.layer_lr_decay) if m.layer_lr_decay != 1 else {}
    scales = {id(t): m.encoder_lr_scale * layers.get(id(t), 1.0) for t in encoder}
    if m.loaded_lr_scale != 1 and p.start.kind != "preset":  # the checkpoint's tensors slower than the new ones
        new = set(p.start.new)
        for name, t in p.model.named_parameters():
            if name not in new:
                scales[id(t)] = scales.get(id(t), 1.0) * m.loaded_lr_scale
    return scales


def _build_trainer(p: RunParts) -> None:
    """Loss, metric, callbacks (plots, freezing, early stopping, weight averaging) and the Trainer."""
    m, args, data = p.model_args, p.args, p.data
    p.weights, loss_fn = loss_function(p.loss_args, data.arrays.train_masks, data.train_indices)
    p.metrics = StreamingMetrics(len(CLASS_NAMES), ignore_index=0, class_names=list(CLASS_NAMES))
    k = min(p.data_args.num_preview, len(data.val_indices))
    rng = np.random.default_rng(args.seed)
    pick = data.val_indices[np.sort(rng.choice(len(data.val_indices), k, replace=False))]
    p.preview = PredictionPlotCallback(data.arrays.train_images[pick], data.arrays.train_masks[pick], p.metrics,
                                       keep=args.keep_plots, every=args.plot_every)
    callbacks = [p.preview]
    tuned = m.encoder_lr_scale != 1 or m.freeze_encoder_steps or m.layer_lr_decay != 1
    encoder = encoder_parameters(p.model) if tuned else []
    lr_scales = _lr_scales(p, encoder)
    if m.freeze_encoder_steps:
        callbacks.append(FreezeEncoderCallback(encoder, m.freeze_encoder_steps))
    # early stopping counts evaluations: with --eval_strategy no there are none, so it is off, not an error
    if args.early_stopping_patience > 0 and args.load_best_model_at_end and args.eval_strategy != IntervalStrategy.NO:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    p.inherited_shift = inherited_shift(p.model, p.loss_args.logit_adjustment, p.weights)
    preprocess = argmax_at_label_size
    if p.inherited_shift is not None:
        preprocess = functools.partial(argmax_at_label_size, shift=p.inherited_shift)
        p.preview.logit_shift = p.inherited_shift
        if args.process_index == 0:
            print("logit adjustment: the checkpoint's folded shift ("
                  + ", ".join(f"{v:+.3f}" for v in p.inherited_shift.tolist()) + ") is taken off its classifier for "
                  "training and added to the logits at each evaluation, until this run picks its own", flush=True)
    p.averaging = parse_weight_averaging(args.weight_averaging)
    p.averager = None if p.averaging.mode == "none" else WeightAverager(p.model, p.averaging, from_start=not args.ema_warmup)
    if p.averager is not None:
        callbacks.append(WeightAveragingCallback(p.averager))
    if data.frame_reads is not None and data.frame_reads.zoom_until < 1:
        callbacks.append(ProgressCallback(data.frame_reads.set_progress))
    if p.self_teacher is not None:
        callbacks.append(SelfDistillationCallback(p.self_teacher, p.loss_args.self_distill, p.averager))
    p.trainer = MarsTrainer(
        model=p.model, args=args, train_dataset=data.datasets["train"], eval_dataset=data.datasets["validation"],
        compute_metrics=p.metrics, preprocess_logits_for_metrics=preprocess, callbacks=callbacks,
        loss_fn=loss_fn, processing_class=p.processor, lr_scales=lr_scales, averager=p.averager,
        distill_weight=p.loss_args.distill_weight,  # applied only to batches carrying teachers' soft labels
    )
    p.preview.tensorboard = next((cb for cb in p.trainer.callback_handler.callbacks
                                  if isinstance(cb, TensorBoardCallback)), None)


def _train(p: RunParts, argv: list[str] | None):
    """Train under the folder's lock, with the run's arguments and split recorded first; a stop signal
    ends in a checkpoint and :class:`RunStopped`."""
    out, args, trainer = p.out, p.args, p.trainer
    if not p.resume and args.process_index == 0:
        _check_output_dir(args)  # again, by the lock's holder: another run may have started meanwhile
    if argv is not None and args.process_index == 0 and not (p.resume and (out / RUN_ARGS).is_file()):
        save_run_args(out, argv, recipe_flags(p.data_args, p.loss_args, args))  # a resume keeps the file as the run started
    if args.process_index == 0 and not (out / SPLIT_FILE).is_file():
        # predict --split validation, self-train and the bench scripts read the split from here
        atomic_write_json(out / SPLIT_FILE, split_record(p.dcfg, p.data.arrays, p.data.val_indices))
    stop = GracefulStop()
    trainer.add_callback(stop)
    stop.install()
    p.first_step = 0 if not p.resume else json.loads((Path(p.resume) / "trainer_state.json").read_text()).get(
        "global_step", 0)
    try:
        result = trainer.train(resume_from_checkpoint=p.resume)
    finally:
        stop.restore()
    if stop.signum:
        step = trainer.state.global_step
        raise RunStopped(f"stopped by {stop.name} at step {step}: {out / f'checkpoint-{step}'} written; continue "
                         f"with: python train_hf.py --output_dir {out} --resume_from_checkpoint true")
    return result


def trained_samples_per_s(steps: int, args, runtime_s: float | None) -> float | None:
    """Training samples per second of this session's steps. The Trainer's own ``train_samples_per_second``
    divides the *planned* samples (every epoch of the schedule) by the runtime, which overstates the rate of a
    run that early stopping ended (a GPU run stopped at epoch 11 of 60 read 1,196/s for 220/s)."""
    if not runtime_s or steps <= 0:
        return None
    per_step = args.per_device_train_batch_size * max(1, args.world_size) * args.gradient_accumulation_steps
    return round(steps * per_step / runtime_s, 3)


def _distillation_info(p: RunParts) -> dict | None:
    """``metrics.json``'s ``distillation`` entry: the teachers (or the run itself), the view and the weight."""
    loss = p.loss_args
    if p.self_teacher is not None:
        return {"teachers": [], "self_from": loss.self_distill, "refreshes": p.self_teacher.refreshes,
                "weight": loss.distill_weight, "view": loss.teacher_view}
    if teacher_list(loss.teachers):
        return {"teachers": teacher_list(loss.teachers), "weight": loss.distill_weight, "view": loss.teacher_view}
    return None


def _summary(p: RunParts, train_result, final: dict) -> dict:
    """``metrics.json``: the recipe as run and the final validation scores."""
    m, d, loss, args, data, dcfg, state = p.model_args, p.data_args, p.loss_args, p.args, p.data, p.dcfg, p.trainer.state
    return {
        "model": m.model, "tiny": m.tiny, "model_overrides": p.overrides, "input_scale": dcfg.input_scale,
        "base_model": None if p.start.kind == "preset" else p.start.to_dict(),
        "encoder_weights": None if p.encoder_start is None else p.encoder_start.to_dict(),
        "encoder_lr_scale": m.encoder_lr_scale, "freeze_encoder_steps": m.freeze_encoder_steps,
        "layer_lr_decay": m.layer_lr_decay, "loaded_lr_scale": m.loaded_lr_scale, "head_dropout": m.head_dropout,
        "drop_path": m.drop_path,
        "warmup_steps": p.args.warmup_steps, "data": d.data or "embedded AI4Mars sample", "train_tiles": int(len(data.train_indices)),
        "train_rows_after_oversampling": len(data.datasets["train"]), "validation_tiles": int(len(data.val_indices)),
        "outliers_dropped": 0 if data.outliers is None else int(len(data.outliers.outlier_indices)),
        "train_frames": d.train_frames, "extra_data": data.extra, "extra_share": dcfg.extra_share if data.extra else None,
        "augmentations": dcfg.augmentations, "cutmix_p": dcfg.cutmix_p, "copy_paste_p": dcfg.copy_paste_p,
        "oversample_big_rock": dcfg.oversample_big_rock,
        "repeat_factor_threshold": dcfg.repeat_factor_threshold, "frame_shift": data.frame_shift,
        "loss": loss.loss, "focal_gamma": loss.focal_gamma, "ohem_keep": loss.ohem_keep, "class_weights": p.weights,
        "ignore_background": loss.ignore_background, "logit_adjustment": loss.logit_adjustment,
        "distillation": _distillation_info(p),
        "logit_adjustment_tau": p.tau, "logit_adjustment_search": p.tau_search, "logit_shift": p.logit_shift, "weight_averaging": str(p.averaging),
        "ema_warmup": None if p.averaging.mode != "ema" else args.ema_warmup,
        "weight_averaging_updates": None if p.averager is None else p.averager.count,
        "learning_rate": args.learning_rate, "weight_decay": args.weight_decay, "max_grad_norm": args.max_grad_norm,
        "batch_size": args.per_device_train_batch_size * max(1, args.world_size), "epochs_run": state.epoch,
        "global_step": state.global_step,
        "lr_scheduler_type": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
        "seed": args.seed, "train_runtime_s": train_result.metrics.get("train_runtime"),
        "train_samples_per_s": trained_samples_per_s(state.global_step - p.first_step, args, train_result.metrics.get("train_runtime")),
        "torch_threads": p.threads, "channels_last": p.channels_last,
        "training_precision": training_precision(args),
        "best_checkpoint": state.best_model_checkpoint,
        "validation": {k.removeprefix("eval_"): v for k, v in final.items()},
        "validation_before_logit_adjustment": None if p.before_adjustment is None else
        {k.removeprefix("eval_"): v for k, v in p.before_adjustment.items()},
        "confusion_matrix": None if p.metrics.last_matrix is None else p.metrics.last_matrix.tolist(),
        "class_names": list(CLASS_NAMES),
    }


def _search_tau(p: RunParts, model) -> tuple[float, dict]:
    """``--logit_adjustment auto``: the tau that scores best on a seeded sample of the training tiles
    (un-augmented, as validation reads them); the validation split takes no part."""
    from ..inference.predictor import tile_logits

    model.eval()
    pick = np.asarray(p.data.train_indices)[training_sample(len(p.data.train_indices), p.args.seed)]
    images, masks = p.data.arrays.train_images[pick], p.data.arrays.train_masks[pick]
    with float32_forward(model):  # as evaluation and pipeline see the model
        tau, scores = search_tau(lambda x: tile_logits(model, x), images, masks, p.weights)
    return tau, {"tiles": int(len(pick)), "scores": scores}


def _adjust_logits(p: RunParts, final: dict) -> dict:
    """``--logit_adjustment``: fold the shift into the final model's classifier bias and evaluate again;
    returns the metrics of the model that will be saved (``p`` keeps the ones before)."""
    trainer = p.trainer
    p.tau = parse_logit_adjustment(p.loss_args.logit_adjustment)
    if p.weights is None:  # no class weights ('auto' with --class_weights none): no tilt to take back
        p.tau = 0.0
    if p.tau == 0:
        return final
    model = trainer.accelerator.unwrap_model(trainer.model)  # every process folds it: evaluation is collective
    if p.tau == "auto":
        p.tau, p.tau_search = _search_tau(p, model)
        print(f"logit adjustment: tau {p.tau} (task mIoU on {p.tau_search['tiles']} training tiles: "
              + ", ".join(f"{t} {v:.3f}" for t, v in p.tau_search["scores"].items()) + ")")
    p.logit_shift = fold_logit_adjustment(model, p.weights, p.tau)
    p.before_adjustment = final
    # a search that kept tau 0 changed no weight: the model to save was evaluated already
    return final if p.tau == 0 else trainer.evaluate()


def _frame_context(p: RunParts) -> dict | None:
    """``metrics.json``'s ``validation_frame_context`` (``training.context_report``), None without frames."""
    from .context_report import frame_context_scores

    arrays, rows = p.data.arrays, np.asarray(p.data.val_indices)
    ids = None if arrays.train_frame_ids is None else arrays.train_frame_ids[rows]
    model = p.trainer.accelerator.unwrap_model(p.trainer.model)
    return frame_context_scores(model, arrays.train_images[rows], arrays.train_masks[rows], ids,
                                p.args.per_device_eval_batch_size)


def _write_run_folder(p: RunParts, train_result) -> dict:
    """Final evaluation, the model, the figures and ``metrics.json``; returns the final metrics."""
    trainer, out = p.trainer, p.out
    p.preview.drawing = False  # the closing evaluations draw nothing into plots/: the figures below show the model
    # the closing evaluations score the model as it will be saved: an inherited shift is no longer added
    trainer.preprocess_logits_for_metrics, p.preview.logit_shift = argmax_at_label_size, None
    final = _adjust_logits(p, trainer.evaluate())
    if not trainer.is_world_process_zero():
        return final
    trainer.save_model(str(out))  # best model (load_best_model_at_end), config, image processor
    save_prediction_grid(p.preview.images, p.preview.masks, p.preview.predict(trainer.model), out / "predictions.png",
                         "final model, validation tiles")
    if p.metrics.last_matrix is not None:
        save_confusion_matrix(p.metrics.last_matrix, out / "confusion_matrix.png")
    save_curves(trainer.state.log_history, out / "training_curves.png")
    summary = _summary(p, train_result, final)
    summary["validation_frame_context"] = _frame_context(p)
    atomic_write_json(out / "metrics.json", summary, default=str)
    v, c = summary["validation"], summary["validation_frame_context"]
    print(f"validation task mean IoU (classes 1-4, background ignored): {v['task_mean_iou']:.4f}")
    print("per class IoU: " + ", ".join(f"{n} {v[f'iou_{n}']:.3f}" for n in CLASS_NAMES[1:]))
    if c is not None:
        print(f"with frame context (predict --context frame; {c['tiles_in_frames']} of {len(p.data.val_indices)} "
              f"tiles inside their frames): {c['task_mean_iou']:.4f}; big rock {c['iou_big_rock']:.3f}")
    if not p.args.keep_optimizer_state:
        strip_optimizer_state(out)
    print(f"run folder: {out} ({folder_size(out) / 1e6:.1f} MB)")
    return final


def _push(p: RunParts) -> None:
    """The run published once, at the end, by the same code as ``push_to_hub.py`` (so both give the same
    repo content); the Trainer's own push would upload checkpoints as they are written."""
    from ..hub import push_run

    args = p.args
    res = push_run(p.out, repo_id=args.hub_model_id, private=bool(args.hub_private_repo), token=p.hub_token)
    print(f"pushed to {res['repo_id']}: {res['commit_url']}" if res["changed"] else
          f"nothing changed: {res['repo_id']} already holds this run (commit {res['commit_oid']})")


def run(model_args: ModelArguments, data_args: DataArguments, loss_args: LossArguments,
        args: MarsTrainingArguments, argv: list[str] | None = None) -> dict:
    """Train, evaluate, save. Returns the final validation metrics.

    Args:
        argv: the effective command line; saved (without secrets) as ``run_args.json`` so that a resume
            needs only ``--output_dir`` and ``--resume_from_checkpoint``.
    """
    p = RunParts(model_args, data_args, loss_args, args)
    kind = _check_start(p)
    p.resume = _resume_target(args)
    if p.resume:
        check_room_to_resume(Path(args.output_dir), folder_size(Path(p.resume)))
    p.threads, p.threads_note = apply_threads(args.torch_threads, on_cpu=args.device.type == "cpu")
    set_seed(args.seed)
    _build_data_and_model(p, kind)
    p.channels_last = use_channels_last(str(args.channels_last), p.model, args.device, tiny=p.model_args.tiny)
    if p.channels_last:  # the weights only: the batch stays NCHW (as fast, bench/cpu_speed.py)
        p.model.to(memory_format=torch.channels_last)
    _print_start(p)
    push, args.push_to_hub = args.push_to_hub, False
    _build_trainer(p)
    with disk_faults(p.out), _run_lock(p.out, args):
        train_result = _train(p, argv)
        final = _write_run_folder(p, train_result)
    if push and p.trainer.is_world_process_zero():
        _push(p)
    return final


def main(argv=None) -> int:
    from ..data import MarsDataError
    from ..hub import HubPushError

    try:
        code = 0
        effective, parsed = parse_command_line(argv)
        run(*parsed, argv=effective)
    except (RunError, MarsDataError, HubPushError) as err:
        print(f"error: {err}", file=sys.stderr)
        code = 2
    except RunFault as err:
        print(f"error: {err}", file=sys.stderr)
        code = 1
    except RunStopped as err:
        print(str(err), file=sys.stderr)
        code = STOPPED_EXIT_CODE
    finally:
        # without this, torch aborts at exit after torchrun / multi-process runs
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return code

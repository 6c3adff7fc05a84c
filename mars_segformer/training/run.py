"""The training job behind ``train_hf.py``: arguments -> data -> model -> Trainer -> run folder."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import EarlyStoppingCallback, HfArgumentParser, set_seed

from ..data import CLASS_NAMES, DataConfig, build_dataset_dict, load_arrays
from ..losses import build_loss, class_weights_from_masks
from ..models import PRESETS, create_model, make_image_processor
from ..visualization import save_confusion_matrix, save_curves, save_prediction_grid
from .arguments import DataArguments, LossArguments, MarsTrainingArguments, ModelArguments
from .callbacks import PredictionPlotCallback
from .threads import apply_threads, parse_threads
from .trainer import MarsTrainer, StreamingMetrics, argmax_at_label_size

RUN_MARKERS = ("trainer_state.json", "config.json", "metrics.json", "model.safetensors")


class RunError(ValueError):
    """Arguments that cannot start a run; raised before anything is written."""


def parse_args(argv=None):
    """Parse the command line, or a single ``.yaml``/``.json`` config file path (later flags override it)."""
    parser = HfArgumentParser((ModelArguments, DataArguments, LossArguments, MarsTrainingArguments))
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith((".yaml", ".yml", ".json")) and Path(argv[0]).is_file():
        import yaml

        cfg = yaml.safe_load(Path(argv[0]).read_text()) or {}
        flat = []
        for k, v in cfg.items():
            flat += [f"--{k}", ",".join(map(str, v)) if isinstance(v, list) else str(v)]
        argv = flat + argv[1:]
    return parser.parse_args_into_dataclasses(args=argv)


def _check_output_dir(args: MarsTrainingArguments) -> None:
    out = Path(args.output_dir)
    if not out.exists() or args.overwrite or args.resume_from_checkpoint:
        return
    if not out.is_dir():
        raise RunError(f"output_dir {out} exists and is not a folder")
    found = [m for m in RUN_MARKERS if (out / m).exists()] + [p.name for p in out.glob("checkpoint-*")][:3]
    if found:
        raise RunError(f"output_dir {out} already holds a run ({', '.join(found)}); pass --overwrite to reuse it "
                       "or --resume_from_checkpoint to continue it")


def _class_weights(spec: str, masks: np.ndarray, ignore_index):
    if spec == "none":
        return None
    if spec == "auto" or spec.startswith("auto:"):
        try:
            power = float(spec.partition(":")[2] or 0.5)
        except ValueError as err:
            raise RunError(f"--class_weights 'auto:P' needs a number P (the frequency power), got {spec!r}") from err
        if not 0 < power <= 2:
            raise RunError(f"--class_weights power must be in (0, 2], got {power}")
        return class_weights_from_masks(masks, len(CLASS_NAMES), ignore_index, power=power)
    try:
        w = [float(x) for x in spec.split(",")]
    except ValueError as err:
        raise RunError(f"--class_weights must be 'auto', 'auto:P', 'none' or {len(CLASS_NAMES)} numbers, "
                       f"got {spec!r}") from err
    if len(w) != len(CLASS_NAMES):
        raise RunError(f"--class_weights needs {len(CLASS_NAMES)} numbers, got {len(w)}")
    return w


def run(model_args: ModelArguments, data_args: DataArguments, loss_args: LossArguments,
        args: MarsTrainingArguments) -> dict:
    """Train, evaluate, save. Returns the final validation metrics."""
    if model_args.model not in PRESETS:
        raise RunError(f"unknown --model {model_args.model!r}; choose from {', '.join(sorted(PRESETS))}")
    try:
        parse_threads(args.torch_threads)
    except ValueError as err:
        raise RunError(str(err)) from None
    _check_output_dir(args)
    threads = apply_threads(args.torch_threads, on_cpu=args.device.type == "cpu")
    set_seed(args.seed)
    arrays = load_arrays(data_args.data)  # raises MarsDataError naming the file before anything is written
    augs = [] if data_args.augmentations in ("", "none") else [a.strip() for a in data_args.augmentations.split(",")]
    dcfg = DataConfig(
        val_fraction=data_args.val_fraction, seed=args.seed, augmentations=augs, cutmix_p=data_args.cutmix_p,
        oversample_big_rock=data_args.oversample_big_rock, drop_outliers=data_args.drop_outliers,
        outlier_min_count=data_args.outlier_min_count,
    )
    data = build_dataset_dict(arrays, dcfg)
    overrides = json.loads(model_args.model_overrides) if model_args.model_overrides else {}
    model = create_model(model_args.model, tiny=model_args.tiny, **overrides)
    if args.process_index == 0:
        n_params = sum(p.numel() for p in model.parameters())
        print(f"data: {data_args.data or 'embedded AI4Mars sample'} | tiles: train {len(data.train_indices)} "
              f"(rows {len(data.datasets['train'])}), validation {len(data.val_indices)} | model: {model_args.model} "
              f"({type(model).__name__}, {n_params / 1e6:.2f} M parameters) | device: {args.device.type}, "
              f"{threads} torch thread(s) x {args.world_size} process(es)", flush=True)

    ignore = 0 if loss_args.ignore_background else None
    train_masks = data.arrays.train_masks[data.train_indices]
    if loss_args.loss == "model":  # the architecture's own cross-entropy (background an ordinary class)
        weights, loss_fn = None, None
    else:
        weights = _class_weights(loss_args.class_weights, train_masks, ignore)
        loss_fn = build_loss(loss_args.loss, loss_args.focal_gamma, weights, ignore)
    metrics = StreamingMetrics(len(CLASS_NAMES), ignore_index=0, class_names=list(CLASS_NAMES))

    k = min(data_args.num_preview, len(data.val_indices))
    rng = np.random.default_rng(args.seed)
    pick = data.val_indices[np.sort(rng.choice(len(data.val_indices), k, replace=False))]
    preview_images, preview_masks = data.arrays.train_images[pick], data.arrays.train_masks[pick]
    preview = PredictionPlotCallback(preview_images, preview_masks, metrics)
    callbacks = [preview]
    if args.early_stopping_patience > 0 and args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))

    # Trainer's own push would upload checkpoints as they are written; the run is published once, at
    # the end, by the same code as push_to_hub.py so both give the same repo content
    push = args.push_to_hub
    args.push_to_hub = False
    trainer = MarsTrainer(
        model=model, args=args, train_dataset=data.datasets["train"], eval_dataset=data.datasets["validation"],
        compute_metrics=metrics, preprocess_logits_for_metrics=argmax_at_label_size, callbacks=callbacks,
        loss_fn=loss_fn, processing_class=make_image_processor(),
    )
    resume = args.resume_from_checkpoint
    if isinstance(resume, str) and resume.lower() in ("true", "last"):
        resume = True
    train_result = trainer.train(resume_from_checkpoint=resume)
    final = trainer.evaluate()
    out = Path(args.output_dir)
    if trainer.is_world_process_zero():
        trainer.save_model(str(out))  # best model (load_best_model_at_end), config, image processor
        save_prediction_grid(preview_images, preview_masks, preview.predict(trainer.model), out / "predictions.png",
                             "final model, validation tiles")
        if metrics.last_matrix is not None:
            save_confusion_matrix(metrics.last_matrix, out / "confusion_matrix.png")
        save_curves(trainer.state.log_history, out / "training_curves.png")
        summary = {
            "model": model_args.model, "tiny": model_args.tiny, "model_overrides": overrides,
            "data": data_args.data or "embedded AI4Mars sample", "train_tiles": int(len(data.train_indices)),
            "train_rows_after_oversampling": len(data.datasets["train"]), "validation_tiles": int(len(data.val_indices)),
            "outliers_dropped": 0 if data.outliers is None else int(len(data.outliers.outlier_indices)),
            "augmentations": augs, "cutmix_p": dcfg.cutmix_p, "oversample_big_rock": dcfg.oversample_big_rock,
            "loss": loss_args.loss, "focal_gamma": loss_args.focal_gamma, "class_weights": weights,
            "ignore_background": loss_args.ignore_background,
            "learning_rate": args.learning_rate, "weight_decay": args.weight_decay, "max_grad_norm": args.max_grad_norm,
            "batch_size": args.per_device_train_batch_size * max(1, args.world_size), "epochs_run": trainer.state.epoch,
            "global_step": trainer.state.global_step, "lr_scheduler_type": str(args.lr_scheduler_type),
            "seed": args.seed, "train_runtime_s": train_result.metrics.get("train_runtime"),
            "train_samples_per_s": train_result.metrics.get("train_samples_per_second"), "torch_threads": threads,
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "validation": {k.removeprefix("eval_"): v for k, v in final.items()},
            "confusion_matrix": None if metrics.last_matrix is None else metrics.last_matrix.tolist(),
            "class_names": list(CLASS_NAMES),
        }
        tmp = out / "metrics.json.tmp"
        tmp.write_text(json.dumps(summary, indent=1, default=str))
        os.replace(tmp, out / "metrics.json")
        v = summary["validation"]
        print(f"validation task mean IoU (classes 1-4, background ignored): {v['task_mean_iou']:.4f}")
        print("per class IoU: " + ", ".join(f"{n} {v[f'iou_{n}']:.3f}" for n in CLASS_NAMES[1:]))
        print(f"run folder: {out}")
    if push and trainer.is_world_process_zero():
        from ..hub import push_run

        res = push_run(out, repo_id=args.hub_model_id, private=bool(args.hub_private_repo), token=args.hub_token)
        print(f"pushed to {res['repo_id']}: {res['commit_url']}")
    return final


def main(argv=None) -> int:
    from ..data import MarsDataError
    from ..hub import HubPushError

    try:
        code = 0
        run(*parse_args(argv))
    except (RunError, MarsDataError, HubPushError) as err:
        print(f"error: {err}", file=sys.stderr)
        code = 2
    finally:
        # without this, torch aborts at exit after torchrun / multi-process runs
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return code

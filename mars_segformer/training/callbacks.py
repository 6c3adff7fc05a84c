"""Trainer callbacks: the plots at every evaluation, encoder freezing, training progress, self-distillation."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from transformers import TrainerCallback

from ..inference.predictor import class_ids, tile_logits
from ..models.logit_adjustment import add_shift
from ..visualization import save_confusion_matrix, save_prediction_grid
from .devices import float32_forward


class PredictionPlotCallback(TrainerCallback):
    """After each evaluation, ``plots/predictions_step<N>.png`` (image / truth / prediction for fixed
    validation tiles) and ``plots/confusion_matrix_step<N>.png``.

    Args:
        images: (K, H, W) uint8 validation tiles.
        masks: (K, H, W) their labels.
        metrics: the ``StreamingMetrics`` whose last confusion matrix is drawn.
        num_channels: model input channels.
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, metrics=None, num_channels: int = 3, keep: int = 3,
                 every: int = 1):
        self.images, self.masks, self.metrics, self.num_channels = images, masks, metrics, num_channels
        #: plots of the last ``keep`` evaluations and of the best one stay (-1: all)
        self.keep = keep
        #: draw every ``every``-th evaluation, and any evaluation that is the best so far or the last
        self.every = max(1, every)
        self._scores: dict[int, float] = {}
        self._evaluations = 0
        self._best = float("-inf")
        #: the Trainer's TensorBoardCallback, when TensorBoard reporting is on: the grid goes there too
        self.tensorboard = None
        #: off for the run's closing evaluations: the run folder's own figures show the final model, and a
        #: closing evaluation of the best model would otherwise overwrite the last step's plots with it
        self.drawing = True
        #: (C,) added to the logits before the argmax (a fine-tuned model's inherited logit adjustment)
        self.logit_shift = None

    def predict(self, model) -> np.ndarray:
        """(K, H, W) predictions of ``model`` for the preview tiles (train/eval mode left as found)."""
        was_training = model.training
        model.eval()
        with float32_forward(model):  # the plots show what evaluation scores
            logits = tile_logits(model, self.images)
        if was_training:
            model.train()
        return class_ids(add_shift(logits, self.logit_shift)).cpu().numpy()

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        if not self.drawing or args.process_index != 0 or model is None or not len(self.images):
            return
        metric = f"eval_{args.metric_for_best_model or 'task_mean_iou'}".replace("eval_eval_", "eval_")
        score = float((kwargs.get("metrics") or {}).get(metric, float("-inf")))
        self._evaluations += 1
        best, self._best = score > self._best, max(score, self._best)
        last = state.max_steps > 0 and state.global_step >= state.max_steps
        if not (self._evaluations % self.every == 0 or best or last):
            return
        plots = Path(args.output_dir) / "plots"
        preds = self.predict(model)
        step = state.global_step
        grid = save_prediction_grid(self.images, self.masks, preds, plots / f"predictions_step{step:06d}.png",
                                    f"validation tiles, step {step}")
        writer = getattr(self.tensorboard, "tb_writer", None)
        if writer is not None:
            from PIL import Image

            with Image.open(grid) as im:
                writer.add_image("validation/predictions", np.asarray(im.convert("RGB")), step, dataformats="HWC")
            writer.flush()
        if self.metrics is not None and self.metrics.last_matrix is not None:
            save_confusion_matrix(self.metrics.last_matrix, plots / f"confusion_matrix_step{step:06d}.png",
                                  f"confusion matrix, step {step} (rows: truth)")
        self._scores[step] = score
        self._prune(plots)

    def _prune(self, plots: Path) -> None:
        """Drop the plots of evaluations that are neither among the last ``keep`` nor the best."""
        if self.keep < 0:
            return
        steps = sorted(self._scores)
        best = max(steps, key=lambda s: self._scores[s])
        keep = set(steps[-self.keep:] if self.keep else []) | {best}
        for s in steps:
            if s not in keep:
                for name in (f"predictions_step{s:06d}.png", f"confusion_matrix_step{s:06d}.png"):
                    (plots / name).unlink(missing_ok=True)


class FreezeEncoderCallback(TrainerCallback):
    """Keep the encoder's parameters frozen (no gradient, no update) for the first ``steps`` steps.

    Freezing starts after the optimizer is built, so the parameters are in it when they thaw.
    """

    def __init__(self, params, steps: int):
        self.params, self.steps = list(params), steps

    def _set(self, trainable: bool) -> None:
        for p in self.params:
            p.requires_grad_(trainable)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step < self.steps:
            self._set(False)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.steps and not self.params[0].requires_grad:
            self._set(True)


class ProgressCallback(TrainerCallback):
    """Tell ``report`` the share of the training's steps taken, at its start (a resume too) and before each step
    (``frame_zoom``'s schedule, :meth:`..data.frame_shift.FrameShift.set_progress`). A DataLoader reads a batch or
    two ahead, so a switch reaches the batches that late."""

    def __init__(self, report):
        self.report = report

    def _tell(self, state) -> None:
        if state.max_steps > 0:
            self.report(state.global_step / state.max_steps)

    def on_train_begin(self, args, state, control, **kwargs):
        self._tell(state)

    def on_step_begin(self, args, state, control, **kwargs):
        self._tell(state)


class SelfDistillationCallback(TrainerCallback):
    """Online self-distillation (``--self_distill START``): at the start of each epoch once the share START of the
    training steps is taken, the model's averaged weights (the raw ones without weight averaging), in eval mode,
    predict every training tile (:meth:`..distillation.SelfTeacher.refresh`); the reads of that epoch carry those
    probabilities. A resume refreshes at the start of its first epoch past START.

    Args:
        teacher: the run's :class:`..distillation.SelfTeacher`.
        start: share of the training steps before the first refresh.
        averager: the run's :class:`..averaging.WeightAverager` (None: no averaging).
    """

    def __init__(self, teacher, start: float, averager=None):
        self.teacher, self.start, self.averager = teacher, start, averager

    def on_epoch_begin(self, args, state, control, model=None, **kwargs):
        if model is None or state.max_steps <= 0 or state.global_step < self.start * state.max_steps:
            return
        if args.process_index == 0:
            print(f"self-distillation: step {state.global_step}: the {'averaged' if self.averager else 'current'} "
                  f"weights predict the training tiles ({self.teacher.view} view)", flush=True)
        was_training = model.training
        model.eval()
        swap = self.averager.swapped_in(model) if self.averager is not None else contextlib.nullcontext()
        with swap:
            self.teacher.refresh(model)
        if was_training:
            model.train()

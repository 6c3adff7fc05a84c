"""The Trainer subclass: a configurable loss in ``compute_loss`` and a streaming mean-IoU."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import EarlyStoppingCallback, Trainer, get_polynomial_decay_schedule_with_warmup
from transformers.trainer import OPTIMIZER_NAME, SCHEDULER_NAME
from transformers.trainer_utils import has_length

from ..inference.predictor import class_ids
from ..losses.soft_ce import soft_cross_entropy
from ..metrics import StreamingMeanIoU
from ..models.logit_adjustment import add_shift
from .averaging import WeightAverager
from .devices import float32_forward

#: a checkpoint's optimizer and scheduler state, the files a finished run's checkpoints lose
OPTIMIZER_STATE = (OPTIMIZER_NAME, SCHEDULER_NAME)


class MarsTrainer(Trainer):
    """``Trainer`` whose loss is ``loss_fn(logits, labels)`` instead of the model's own cross-entropy.

    Args:
        loss_fn: module mapping (B, C, h, w) logits and (B, H, W) labels to a scalar.
        **kwargs: as for ``Trainer``.
    """

    def __init__(self, *args, loss_fn: torch.nn.Module | None = None, encoder_params=None,
                 encoder_lr_scale: float = 1.0, averager: WeightAverager | None = None, lr_scales=None,
                 distill_weight: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        #: weight of the soft cross-entropy against the teachers' probabilities a batch carries (``soft_labels``)
        self.distill_weight = distill_weight
        # the loss's buffers (class weights) on the device the model trains on: the Trainer moves the model only
        self.loss_fn = None if loss_fn is None else loss_fn.to(self.args.device)
        #: with weight averaging: evaluation, best-model selection and checkpoints use the averaged weights
        self.averager = averager
        #: {id(param): learning-rate factor}; the encoder at encoder_lr_scale unless given per parameter
        #: (``--layer_lr_decay`` times ``--encoder_lr_scale``); absent parameters run at the full rate
        self.lr_scales = dict(lr_scales) if lr_scales else {id(p): encoder_lr_scale for p in (encoder_params or [])}

    def get_train_dataloader(self):
        """The Trainer's training loader, dropping an epoch's last batch when it would hold one tile per
        process: BatchNorm cannot train on one value per channel (UperNet's pooled 1x1 maps raise), and a
        training split of 32k + 1 rows is a matter of the seed's split. Any other tail is kept."""
        world = max(1, self.args.world_size)
        tail = len(self.train_dataset) % (self._train_batch_size * world) if has_length(self.train_dataset) else 0
        if self.args.dataloader_drop_last or not 0 < tail <= world:
            return super().get_train_dataloader()
        self.args.dataloader_drop_last = True
        try:
            return super().get_train_dataloader()
        finally:
            self.args.dataloader_drop_last = False

    def create_optimizer(self, model=None):
        """The Trainer's optimizer, with each parameter group split by learning-rate factor (the encoder's
        ``encoder_lr_scale``, per-layer factors of ``--layer_lr_decay``); the scheduler then scales every
        group alike."""
        optimizer = super().create_optimizer(model)
        if all(s == 1 for s in self.lr_scales.values()) or getattr(optimizer, "_mars_split", False):
            return optimizer
        groups = []
        for g in optimizer.param_groups:
            rest = {k: v for k, v in g.items() if k != "params"}
            by_scale: dict[float, list] = {}
            for p in g["params"]:
                by_scale.setdefault(self.lr_scales.get(id(p), 1.0), []).append(p)
            for scale, part in sorted(by_scale.items(), reverse=True):
                groups.append({**rest, "params": part, "lr": g["lr"] * scale})
        optimizer.param_groups.clear()
        for g in groups:
            optimizer.add_param_group(g)
        optimizer._mars_split = True
        return optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """The Trainer's schedule, except under ``--weight_averaging swa:START:LR``: transformers' polynomial
        (linear) decay from the peak to LR x the peak over the first START share of the steps, then held there
        while SWA averages (the polynomial schedule returns ``lr_end`` past its length)."""
        spec = None if self.averager is None else self.averager.spec
        if self.lr_scheduler is not None or spec is None or spec.mode != "swa" or not spec.lr:
            return super().create_scheduler(num_training_steps, optimizer)
        optimizer = optimizer if optimizer is not None else self.optimizer
        start = max(1, int(spec.value * num_training_steps))
        peak = optimizer.defaults["lr"]
        self.lr_scheduler = get_polynomial_decay_schedule_with_warmup(
            optimizer, num_warmup_steps=min(self.args.get_warmup_steps(num_training_steps), start - 1),
            num_training_steps=start, lr_end=spec.lr * peak, power=(self.args.lr_scheduler_kwargs or {}).get("power", 1.0))
        self._created_lr_scheduler = True
        return self.lr_scheduler

    def _restore_weights(self, folder: str) -> None:
        # transformers 5 saves some models (SegFormer among them) under legacy parameter names and
        # renames them on from_pretrained; Trainer's own restore calls load_state_dict(strict=False)
        # on the raw file, which then loads nothing and only logs missing keys. from_pretrained applies
        # the renaming, and strict loading makes any remaining mismatch an error.
        self.accelerator.wait_for_everyone()  # the main process may still be writing the checkpoint
        model = self.accelerator.unwrap_model(self.model)
        loaded = type(model).from_pretrained(folder)
        model.load_state_dict(loaded.state_dict(), strict=True)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        self._restore_weights(resume_from_checkpoint)
        if self.averager is not None:
            self.averager.load(self.accelerator.unwrap_model(self.model), Path(resume_from_checkpoint))

    def _load_callback_state(self):
        """Early stopping's count of evaluations without gain carried over a resume; its patience stays this
        session's flag. The Trainer restores callbacks only under ``restore_callback_states_from_checkpoint``,
        which would also take the checkpoint's patience and control flags (an early-stopped run's extension
        would stop at once); without either, the count started again at 0, so a run resumed N evaluations after
        its best could train up to N evaluations longer than an uninterrupted one."""
        super()._load_callback_state()
        carry_early_stopping_count(self.callback_handler.callbacks, self.state)

    def _load_optimizer_and_scheduler(self, checkpoint):
        """The Trainer's restore, then the learning-rate schedule set to the checkpoint's step.

        A finished run's checkpoints have no optimizer or scheduler state (removed unless
        ``--keep_optimizer_state``), and the Trainer then starts the schedule again at its first step: a finished
        run extended with more epochs trained on at the peak rate (found when a 60-epoch run stopped early at
        epoch 50 was extended). A restored schedule gave its first step the old length's last rate (0 for a
        decay to 0). Here the step's rate on the schedule of this session's length is set either way; AdamW's
        moments, where not restored, start again from zero, and the resume line says so."""
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        step = self.state.global_step
        follows_step = isinstance(self.lr_scheduler, torch.optim.lr_scheduler.LambdaLR)  # every step-based schedule
        if follows_step:
            catch_up_schedule(self.lr_scheduler, step)
        if self.is_world_process_zero() and not all((Path(checkpoint) / n).is_file() for n in OPTIMIZER_STATE):
            schedule = (f"continues at step {step} (lr {self.lr_scheduler.get_last_lr()[0]:.3g})" if follows_step
                        else "starts again")
            print(f"resume: {Path(checkpoint).name} holds no optimizer state (removed when the run ended; "
                  f"--keep_optimizer_state true keeps it): the learning-rate schedule {schedule}, AdamW's moments "
                  "start again from zero", flush=True)

    def evaluate(self, *args, **kwargs):
        if self.averager is None:
            return super().evaluate(*args, **kwargs)
        with self.averager.swapped_in(self.accelerator.unwrap_model(self.model)):
            return super().evaluate(*args, **kwargs)

    def _save_checkpoint(self, model, trial):
        if self.averager is None or not self.averager.count:
            return super()._save_checkpoint(model, trial)
        unwrapped = self.accelerator.unwrap_model(self.model)
        with self.averager.swapped_in(unwrapped):
            super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            self.averager.save_raw(unwrapped, folder)

    def _load_best_model(self):
        self._restore_weights(self.state.best_model_checkpoint)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """The Trainer's step, in float32 under a mixed-precision run: scores, best-model choice and the logit
        adjustment then see what ``pipeline`` (float32) gives."""
        with float32_forward(self.accelerator.unwrap_model(model)):
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.loss_fn is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, outputs = supervised_loss(model, self.loss_fn, inputs["pixel_values"], inputs["labels"],
                                        unwrapped=self.accelerator.unwrap_model(model))
        if "soft_labels" in inputs and self.distill_weight:
            loss = loss + self.distill_weight * soft_cross_entropy(outputs.logits, inputs["soft_labels"])
        return (loss, outputs) if return_outputs else loss


def supervised_loss(model, loss_fn, pixel_values, labels, unwrapped=None):
    """``loss_fn`` on the model's logits, plus ``auxiliary_loss_weight`` times ``loss_fn`` on its auxiliary head's
    logits when it has one (deep supervision: UperNet's FCN head on stage 3, at 1/16 of the tile).

    Args:
        model: the model as called (possibly wrapped for data parallelism).
        unwrapped: the bare model, where its auxiliary head lives (default: ``model``).

    Returns:
        (loss, the model's outputs).
    """
    with auxiliary_outputs(unwrapped if unwrapped is not None else model) as (auxiliary, weight):
        outputs = model(pixel_values=pixel_values)  # no labels: the model skips its own loss
    loss = loss_fn(outputs.logits, labels)
    if auxiliary:
        loss = loss + weight * loss_fn(auxiliary[0], labels)
    return loss, outputs


@contextmanager
def auxiliary_outputs(model):
    """Collect the logits of ``model``'s auxiliary head (UperNet with ``use_auxiliary_head``) during a forward.

    transformers' UperNet computes them on every forward but returns them only inside its own cross-entropy
    loss, so a forward hook takes them for the Trainer's loss. Yields (list filled by the forward, the config's
    ``auxiliary_loss_weight``); the list stays empty for a model without an auxiliary head.
    """
    head = getattr(model, "auxiliary_head", None)
    caught: list[torch.Tensor] = []
    if head is None:
        yield caught, 0.0
        return
    handle = head.register_forward_hook(lambda _module, _inputs, output: caught.append(output))
    try:
        yield caught, float(model.config.auxiliary_loss_weight)
    finally:
        handle.remove()


def carry_early_stopping_count(callbacks, state) -> None:
    """Set every ``EarlyStoppingCallback`` of ``callbacks`` to the count of evaluations without gain that a
    resumed ``TrainerState`` recorded (none recorded: left as is)."""
    stored = (state.stateful_callbacks or {}).get(EarlyStoppingCallback.__name__)
    stored = stored[0] if isinstance(stored, list) and stored else stored
    if not isinstance(stored, dict):
        return
    count = stored.get("attributes", {}).get("early_stopping_patience_counter", 0)
    for callback in callbacks:
        if isinstance(callback, EarlyStoppingCallback):
            callback.early_stopping_patience_counter = count


def catch_up_schedule(scheduler: torch.optim.lr_scheduler.LRScheduler, step: int) -> None:
    """Put a freshly built learning-rate scheduler (and its optimizer's rates) where it stands after ``step``
    steps, as a restored ``scheduler.pt`` would."""
    scheduler.last_epoch = step - 1
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": no optimizer step is skipped
        warnings.simplefilter("ignore", UserWarning)
        scheduler.step()


def argmax_at_label_size(logits, labels, shift=None):
    """``preprocess_logits_for_metrics``: (B, C, h, w) logits -> (B, H, W) predictions, so the Trainer
    never holds full logits. ``shift``: (C,) added to the logits first (a fine-tuned model's inherited
    logit adjustment, see ``training.adjustment``)."""
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    logits = add_shift(logits, shift)
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return class_ids(logits)


class StreamingMetrics:
    """``compute_metrics`` for ``batch_eval_metrics=True``: accumulate per batch, report at the end.

    The Trainer gathers predictions and labels across processes before every call (dropping the
    samples padded to even out the last batch), so every process sees the whole evaluation set.
    """

    def __init__(self, num_labels: int = 5, ignore_index: int | None = 0, class_names=None):
        self.stream = StreamingMeanIoU(num_labels, ignore_index)
        self.class_names = class_names or [str(i) for i in range(num_labels)]
        self.last_matrix = None

    def __call__(self, eval_pred, compute_result: bool = False):
        preds, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(preds, (tuple, list)):
            preds = preds[0]
        self.stream.update(preds, labels)
        if not compute_result:
            return {}
        res = self.stream.compute()
        self.last_matrix = res["confusion_matrix"]
        self.stream.reset()
        out = {k: res[k] for k in ("mean_iou", "mean_accuracy", "overall_accuracy", "task_mean_iou")}
        for name, v in zip(self.class_names, res["per_category_iou"], strict=True):
            out[f"iou_{name}"] = float(v)
        return out

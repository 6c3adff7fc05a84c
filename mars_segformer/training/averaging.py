"""Weight averaging during training: an exponential moving average (EMA) or SWA over the last steps.

The averaged weights are kept by ``torch.optim.swa_utils.AveragedModel`` (buffers included, so
BatchNorm statistics are averaged too). While averaging is on, the Trainer evaluates, selects and
saves the *averaged* weights (``MarsTrainer`` swaps them in around ``evaluate`` and checkpoint
saves), so the best checkpoint and the run's ``model.safetensors`` are averaged models; each
checkpoint also keeps the raw training weights (:data:`RAW_WEIGHTS`) so a resume continues exactly.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.optim.swa_utils import AveragedModel
from transformers import TrainerCallback

#: raw (not averaged) training weights inside a checkpoint folder of a run with averaging
RAW_WEIGHTS = "raw_weights.safetensors"
#: how many updates the average holds, beside RAW_WEIGHTS
AVERAGE_STATE = "weight_averaging.pt"
MODES = ("none", "ema", "swa")


@dataclass(frozen=True)
class AveragingSpec:
    """``--weight_averaging``: ``none``, ``ema[:DECAY]`` (default 0.999) or ``swa[:START[:LR]]`` (uniform
    average of every step's weights from the share START of the training steps, default 0.75; with LR, the
    learning rate decays linearly to LR times its peak by START and is held there while the average gathers,
    the schedule of SWA's paper, instead of decaying on to zero: ``MarsTrainer.create_scheduler``)."""

    mode: str = "none"
    value: float = 0.0
    #: SWA's held learning rate as a share of the peak (0: the run's own schedule goes on)
    lr: float = 0.0

    @classmethod
    def parse(cls, text: str) -> AveragingSpec:
        mode, _, value = text.strip().partition(":")
        value, _, lr = value.partition(":")
        if mode not in MODES:
            raise ValueError(f"expected 'none', 'ema[:DECAY]' or 'swa[:START[:LR]]', got {text!r}")
        if mode == "none":
            if value or lr:
                raise ValueError(f"'none' takes no value, got {text!r}")
            return cls()
        if lr and mode != "swa":
            raise ValueError(f"only 'swa' takes a learning rate after its start ('swa:START:LR'), got {text!r}")
        v = _number(value, f"'{mode}:'", 0.999 if mode == "ema" else 0.75)
        if not 0 < v < 1:
            what = "EMA decay" if mode == "ema" else "SWA start (a share of the training steps)"
            raise ValueError(f"the {what} must lie in (0, 1), got {v}")
        held = _number(lr, "'swa:START:'", 0.0) if lr else 0.0
        if lr and not 0 < held < 1:
            raise ValueError(f"SWA's held learning rate (a share of the peak rate) must lie in (0, 1), got {held}")
        return cls(mode, v, held)

    def __str__(self) -> str:
        if self.mode == "none":
            return self.mode
        return f"{self.mode}:{self.value:g}" + (f":{self.lr:g}" if self.lr else "")


def _number(text: str, after: str, default: float) -> float:
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"the value after {after} must be a number, got {text!r}") from None


@torch.no_grad()
def ema_update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: int, decay: float,
               warmup: bool = True) -> None:
    """One EMA step, by default with the usual warm-up ``min(decay, (1 + n) / (10 + n))``, so a short run is not
    dominated by its random initial weights (0.999^200 = 0.82 of them after 200 steps without it); without
    ``warmup`` the decay is ``decay`` from the first step (an average that starts at a trained checkpoint).
    ``n`` is a Python number: reading a device counter would make the host wait for the GPU every step."""
    n = float(num_averaged)
    d = min(decay, (1 + n) / (10 + n)) if warmup else decay
    floats = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
    if floats:
        torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1 - d)
    for a, c in zip(averaged, current, strict=True):
        if not a.is_floating_point():  # BatchNorm's num_batches_tracked
            a.copy_(c)


class WeightAverager:
    """The averaged copy of a model and how to swap it in.

    Args:
        model: the model being trained.
        spec: what to average.
        from_start: for an EMA, the model's weights as they are now count as the average so far and the decay
            applies in full from the first step, with no warm-up (:func:`ema_update`): the average of a run that
            fine-tunes a whole trained checkpoint starts at that checkpoint instead of following the first,
            noisiest steps away from it. Ignored for SWA.
    """

    def __init__(self, model: torch.nn.Module, spec: AveragingSpec, from_start: bool = False):
        self.spec = spec
        # AveragedModel's own rule is the uniform SWA average; its first update (a copy) starts an EMA too, and
        # every later EMA step goes through ema_update (``update``)
        self.averaged = AveragedModel(model, use_buffers=True)
        #: the EMA's warm-up ramp is on (off: the average began at the start's weights, see ``from_start``)
        self.warmup = not (from_start and spec.mode == "ema")
        if not self.warmup:  # AveragedModel's copy of the model is the first term of the average
            self.averaged.n_averaged.fill_(1)
        #: False once training has ended and the model holds its final weights
        self.active = True
        #: ``averaged.n_averaged`` mirrored on the host (None: not read yet), so an EMA step reads no device value
        self._count: int | None = None

    @property
    def count(self) -> int:
        return int(self.averaged.n_averaged)

    def update(self, model: torch.nn.Module, step: int, max_steps: int) -> None:
        if self.spec.mode == "swa" and step < self.spec.value * max_steps:
            return
        device = next(model.parameters()).device
        if next(self.averaged.parameters()).device != device:  # the Trainer moved the model after we copied it
            self.averaged.to(device)
        if self._count is None:
            self._count = self.count
        if self.spec.mode == "ema" and self._count > 0:
            # AveragedModel.update_parameters tests its device counter twice per call (a host wait on a GPU each)
            ema_update(self._tensors(self.averaged.module), [t.detach() for t in self._tensors(model)],
                       self._count, self.spec.value, warmup=self.warmup)
            self.averaged.n_averaged += 1
        else:
            self.averaged.update_parameters(model)
        self._count += 1

    def _tensors(self, module: torch.nn.Module) -> list[torch.Tensor]:
        return [*module.parameters(), *module.buffers()]

    @contextlib.contextmanager
    def swapped_in(self, model: torch.nn.Module):
        """Inside the block ``model`` holds the averaged weights (when there are any)."""
        if not self.active or self.count == 0:
            yield
            return
        raw = [t.detach().clone() for t in self._tensors(model)]
        self.copy_into(model)
        try:
            yield
        finally:
            with torch.no_grad():
                for t, r in zip(self._tensors(model), raw, strict=True):
                    t.copy_(r)

    @torch.no_grad()
    def copy_into(self, model: torch.nn.Module) -> None:
        for t, a in zip(self._tensors(model), self._tensors(self.averaged.module), strict=True):
            t.copy_(a.to(t.device))

    def save_raw(self, model: torch.nn.Module, folder: Path) -> None:
        """The raw weights and the update count, for a resume (``model.safetensors`` holds the average)."""
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(folder / RAW_WEIGHTS))
        torch.save({"n_averaged": self.count, "spec": str(self.spec)}, folder / AVERAGE_STATE)

    def load(self, model: torch.nn.Module, folder: Path) -> None:
        """Resume: the checkpoint's (averaged) weights into the average, its raw weights into ``model``."""
        raw_file = folder / RAW_WEIGHTS
        if not raw_file.is_file():  # checkpoint written before averaging had updated: weights are raw
            return
        self.averaged.module.load_state_dict(model.state_dict())
        self.averaged.n_averaged.fill_(int(torch.load(folder / AVERAGE_STATE)["n_averaged"]))
        self._count = None
        model.load_state_dict(load_file(str(raw_file)))


class WeightAveragingCallback(TrainerCallback):
    """Updates the average after every optimizer step; at the end of training the model keeps the
    best checkpoint's (averaged) weights when the Trainer restored one, else the final average."""

    def __init__(self, averager: WeightAverager):
        self.averager = averager

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.averager.update(model, state.global_step, state.max_steps)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        restored = args.load_best_model_at_end and state.best_model_checkpoint is not None
        if not restored and self.averager.count:
            self.averager.copy_into(model)
        self.averager.active = False

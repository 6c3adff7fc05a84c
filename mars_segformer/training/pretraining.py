"""Self-supervised pretraining of the default model's backbone on Mars images (DenseCL), resumable.

The loop is plain PyTorch: the Trainer's machinery (labels, evaluation, metrics) has nothing to do
here, and a DenseCL step needs the momentum update between two optimiser steps. Every random choice
is a function of (seed, step), so a resumed run takes the same steps as an uninterrupted one. What
it writes, in the output folder:

- ``checkpoint/state.pt`` every ``save_steps`` and on a stop signal (model with its momentum copies and queues, optimiser,
  schedule, loss log), written atomically; removed once the run has finished;
- at the end: the backbone as a transformers ``ResNetBackbone`` (``config.json``, ``model.safetensors``),
  the image processor its inputs were normalised with (``preprocessor_config.json``), ``pretrain.json``
  (settings, images used and kept out, loss curve, cost) and ``pretrain_loss.png``. ``--model FOLDER``
  (or the folder pushed to the Hub) starts a native UperNet from it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..data.split import VAL_FRACTION
from .errors import RunError
from .pretrain_outputs import STATE, write_outputs

#: the presets whose backbone can be pretrained (a transformers ResNet inside UperNet)
PRETRAINABLE = ("upernet-r18", "upernet-r34")


@dataclass
class PretrainConfig:
    """The settings of a run (``python -m mars_segformer.pretrain --help`` explains each)."""

    model: str = "upernet-r18"
    tiny: bool = False
    max_steps: int = 500
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_ratio: float = 0.05
    momentum: float = 0.99
    queue_size: int = 4096
    temperature: float = 0.2
    local_weight: float = 0.5
    seed: int = 42
    val_fraction: float = VAL_FRACTION
    save_steps: int = 100
    logging_steps: int = 20

    def check(self) -> None:
        """Raise :class:`RunError` naming the first flag whose value cannot work."""
        if self.model not in PRETRAINABLE:
            raise RunError(f"--model {self.model!r}: pretraining takes the backbone of {', '.join(PRETRAINABLE)}")
        rules = [("max_steps", self.max_steps >= 1, "at least 1"), ("batch_size", self.batch_size >= 2, "at least 2"),
                 ("learning_rate", self.learning_rate > 0, "above 0"), ("weight_decay", self.weight_decay >= 0, "0 or more"),
                 ("warmup_ratio", 0 <= self.warmup_ratio < 1, "in [0, 1)"),
                 ("momentum", 0 <= self.momentum <= 1, "in [0, 1]"),
                 ("queue_size", self.queue_size >= self.batch_size, f"at least --batch_size ({self.batch_size})"),
                 ("temperature", self.temperature > 0, "above 0"), ("local_weight", 0 <= self.local_weight <= 1, "in [0, 1]"),
                 ("val_fraction", 0 < self.val_fraction < 1, "strictly between 0 and 1"),
                 ("save_steps", self.save_steps >= 1, "at least 1"), ("logging_steps", self.logging_steps >= 1, "at least 1")]
        for name, ok, expected in rules:
            if not ok:
                raise RunError(f"--{name} {getattr(self, name)}: expected {expected}")


def backbone_config(config: PretrainConfig):
    """The ResNet config inside the preset's UperNet (tiny widths with ``tiny``)."""
    from ..models.registry import PRESETS, TINY_OVERRIDES

    make_config, _ = PRESETS[config.model]
    return make_config(**(TINY_OVERRIDES[config.model] if config.tiny else {})).backbone_config


def build(config: PretrainConfig):
    """(model, optimiser, schedule) for ``config``, seeded."""
    import torch

    from ..models.densecl import MarsDenseCL

    torch.manual_seed(config.seed)
    model = MarsDenseCL(backbone_config(config), queue_size=config.queue_size, temperature=config.temperature,
                        local_weight=config.local_weight)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    warmup = max(1, round(config.warmup_ratio * config.max_steps)) if config.warmup_ratio > 0 else 0

    def factor(step: int) -> float:  # linear warm-up, then cosine to 0
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, config.max_steps - warmup)))

    return model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """The tiles of ``step``: epochs are seeded permutations, cut into batches (the last short batch of an
    epoch is dropped), so any step's batch is known without replaying the ones before it."""
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[k * batch_size:(k + 1) * batch_size]


def momentum_at(config: PretrainConfig, step: int) -> float:
    """The key encoder's momentum: cosine from ``momentum`` to 1 over the run (lightly's schedule)."""
    from lightly.utils.scheduler import cosine_schedule

    return float(cosine_schedule(step, config.max_steps, config.momentum, 1.0))


def train_step(model, optimizer, scheduler, images: np.ndarray, config: PretrainConfig, step: int) -> dict:
    """One DenseCL step on ``images`` (the step's tiles); returns its losses."""
    import torch

    from ..data.dataset import normalize
    from ..data.views import two_views, view_augmentation

    h, w = images.shape[1:]
    first, second = two_views(images, view_augmentation(h, w, seed=config.seed * 1_000_003 + step))
    model.update_momentum(momentum_at(config, step))
    out = model(normalize(first), normalize(second))
    optimizer.zero_grad(set_to_none=True)
    out["loss"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    return {k: float(v.detach()) for k, v in out.items()}


def save_state(out: Path, model, optimizer, scheduler, step: int, log: list, config: PretrainConfig,
               seconds: float) -> None:
    import torch

    from ..outputs import atomic_path

    (out / STATE).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / STATE) as tmp:
        torch.save({"step": step, "model": model.state_dict(), "queues": model.queue_state(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "log": log, "config": asdict(config), "seconds": seconds},
                   tmp)


def load_state(out: Path, model, optimizer, scheduler, config: PretrainConfig) -> tuple[int, list, float]:
    """(step, loss log, seconds so far) of the checkpoint in ``out``, loaded into the objects; a checkpoint
    of other settings is refused."""
    import torch

    state = torch.load(out / STATE, map_location="cpu", weights_only=False)
    if state["config"] != asdict(config):
        changed = sorted(k for k, v in asdict(config).items() if state["config"].get(k) != v)
        raise RunError(f"{out}: its checkpoint was made with other settings ({', '.join('--' + k for k in changed)}); "
                       "give the same flags, or --overwrite to start again")
    model.load_state_dict(state["model"])
    model.load_queue_state(state["queues"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["step"]), list(state["log"]), float(state["seconds"])


def pretrain(images: np.ndarray, out: Path, config: PretrainConfig, data_record: dict, progress=print,
             stop=None) -> dict | None:
    """Pretrain (or continue pretraining) on ``images`` into ``out``.

    Args:
        stop: an object whose ``signum`` turns true on a stop signal (:class:`~.faults.GracefulStop`):
            the step in progress finishes, its state is saved, and None is returned.

    Returns:
        The record written to ``pretrain.json``, or None when stopped.
    """
    model, optimizer, scheduler = build(config)
    step, log, seconds = 0, [], 0.0
    if (out / STATE).is_file():
        step, log, seconds = load_state(out, model, optimizer, scheduler, config)
        progress(f"[pretrain] resuming from step {step} of {config.max_steps}")
    model.train()
    t0, start = time.perf_counter(), step
    while step < config.max_steps:
        losses = train_step(model, optimizer, scheduler, images[batch_indices(len(images), config.batch_size,
                                                                              config.seed, step)], config, step)
        step += 1
        if step % config.logging_steps == 0 or step == config.max_steps:
            rate = (step - start) * config.batch_size / (time.perf_counter() - t0)
            log.append({"step": step, **losses, "lr": scheduler.get_last_lr()[0]})
            left = (config.max_steps - step) * config.batch_size / rate
            progress(f"[pretrain] step {step}/{config.max_steps}  loss {losses['loss']:.4f} (global "
                     f"{losses['loss_global']:.3f}, dense {losses['loss_local']:.3f})  {rate:.1f} img/s, "
                     f"~{left / 60:.1f} min left")
        stopping = stop is not None and stop.signum is not None and step < config.max_steps
        if stopping or (step % config.save_steps == 0 and step < config.max_steps):
            save_state(out, model, optimizer, scheduler, step, log, config, seconds + time.perf_counter() - t0)
        if stopping:
            progress(f"[pretrain] stopped at step {step} of {config.max_steps}; its state is in {out / STATE}")
            return None
    seconds += time.perf_counter() - t0
    return write_outputs(out, model, config, data_record, log, seconds)

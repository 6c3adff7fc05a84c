"""Fine-tuning defaults: what changes when ``--model`` is a checkpoint instead of a preset.

A warm start with the from-scratch recipe (every tensor at 6e-4 from the first step, no warm-up)
first knocks the checkpoint down (about 0.51 -> 0.25 task mIoU after 25 steps,
``bench/warm_start.py``). For a checkpoint, unless the flags say otherwise:

- ``--warmup_steps`` :data:`WARMUP` (a share of the steps, as ``TrainingArguments`` reads values < 1);
- the tensors loaded from the checkpoint train at :data:`LOADED_LR_SCALE` x the learning rate, the
  newly initialised ones (a new decode head, a resized classifier) at the full rate
  (``--loaded_lr_scale``).

Like the GPU defaults, these are flags put before the user's, so an explicit flag always wins, and
they are worked out again from the run's own flags on a resume.
"""

from __future__ import annotations

from .flags import flag_value, given_flags

#: warm-up of a fine-tuning run, as a share of its steps (0.2: the first evaluation nearer the checkpoint than
#: with 0.1 in both seeds of bench/warm_start.py, the same score after 150 steps; docs/results.md)
WARMUP = "0.2"
#: learning-rate factor of the tensors a checkpoint supplies
LOADED_LR_SCALE = "0.1"


def finetune_defaults(argv: list[str], presets) -> list[str]:
    """Flags to put before the user's when ``--model`` names a checkpoint (not one of ``presets``)."""
    model = flag_value(argv, "model") or flag_value(argv, "model_name_or_path")
    if model is None or model in presets:
        return []
    given = given_flags(argv)
    out = []
    if "warmup_steps" not in given and "warmup_ratio" not in given:
        out += ["--warmup_steps", WARMUP]
    if "loaded_lr_scale" not in given:
        out += ["--loaded_lr_scale", LOADED_LR_SCALE]
    return out

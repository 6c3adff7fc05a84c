"""CPU cost per training sample of each ablation config, side by side in one process.

    python bench/recipe_cost.py --configs 7_upernet_r18 8_input_x2 8_copy_paste --steps 8

One training step is what the Trainer does per batch: read 32 rows of the config's train split
(decode, copy-paste / CutMix / augmentation, resize by ``--input_scale``, normalise), forward (in bf16
autocast where the config trains in bf16: a ``_bf16`` config, and on a CPU with bf16 kernels every config, as
``train_hf.py``'s machine defaults choose), the config's loss (with the auxiliary head's term where the
model has one), backward, gradient clipping, AdamW step, and the weight-averaging update when the config
averages. Each config is built from its own
``train_hf.py`` flags with the package's own stage functions, on the real shared file. Steps of the
configs are interleaved round-robin, so a change of machine load hits every config alike; the
result is the median step time. Saves ``bench/results/recipe_cost.json``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.ablation import CONFIGS, DEFAULT_CONFIG  # noqa: E402
from bench.common import SHARED_DATA, load_data, machine, result_name, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data import build_dataset_dict  # noqa: E402
from mars_segformer.models import create_model  # noqa: E402
from mars_segformer.training.averaging import AveragingSpec, WeightAverager  # noqa: E402
from mars_segformer.training.checks import parse_overrides  # noqa: E402
from mars_segformer.training.run import data_config, loss_function, parse_args  # noqa: E402
from mars_segformer.training.trainer import supervised_loss  # noqa: E402


class Stepper:
    """One config's training step, built as train_hf.py builds it."""

    def __init__(self, name: str, arrays, batch: int, out: str):
        model_args, data_args, loss_args, args = parse_args([*CONFIGS[name][1], "--output_dir", out])
        torch.manual_seed(0)
        self.model = create_model(model_args.model, **parse_overrides(model_args.model_overrides)).train()
        cfg = data_config(data_args, seed=0)
        cfg.input_scale = model_args.input_scale or 1.0
        data = build_dataset_dict(arrays, cfg)
        self.train = data.datasets["train"]
        _, self.loss_fn = loss_function(loss_args, data.arrays.train_masks[data.train_indices])
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
        self.rng = np.random.default_rng(0)
        self.batch, self.clip = batch, args.max_grad_norm
        self.bf16 = bool(args.bf16)  # the Trainer's CPU autocast where the config trains in bf16
        self.params = sum(p.numel() for p in self.model.parameters())
        spec = AveragingSpec.parse(args.weight_averaging)
        self.averager = None if spec.mode == "none" else WeightAverager(self.model, spec)

    def step(self) -> float:
        t0 = time.perf_counter()
        rows = self.train[self.rng.choice(len(self.train), self.batch, replace=False).tolist()]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            if self.loss_fn is not None:  # with the auxiliary head's term where the model has one
                loss, _ = supervised_loss(self.model, self.loss_fn, rows["pixel_values"], rows["labels"])
            else:  # the model's own loss
                loss = self.model(pixel_values=rows["pixel_values"], labels=rows["labels"]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        self.opt.zero_grad()
        if self.averager is not None:  # what WeightAveragingCallback does after every optimizer step
            self.averager.update(self.model, step=1, max_steps=1)
        return time.perf_counter() - t0


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--configs", nargs="+", default=[DEFAULT_CONFIG])
    p.add_argument("--steps", type=int, default=8, help="timed steps per config (after one warm-up step)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--name", type=result_name, default="recipe_cost", help="results file name under bench/results/")
    p.add_argument("--baseline", default="7_upernet_r18",
                   help="the config costs are relative to (issue 19's bar: UperNet-R18's plain recipe); the first "
                        "config when it is not among --configs")
    args = p.parse_args()
    unknown = sorted(set(args.configs) - set(CONFIGS))
    if unknown:
        raise SystemExit(f"unknown configs {unknown}; choose from {list(CONFIGS)}")
    arrays = load_data(p, args.data)
    with tempfile.TemporaryDirectory() as out:
        steppers = {n: Stepper(n, arrays, args.batch, out) for n in args.configs}
    times = {n: [] for n in steppers}
    for s in steppers.values():
        s.step()  # warm-up
    for _ in range(args.steps):
        for n, s in steppers.items():
            times[n].append(s.step())
    base = args.baseline if args.baseline in times else args.configs[0]
    base_s = float(np.median(times[base]))
    rows = {}
    for n, t in times.items():
        med = float(np.median(t))
        rows[n] = {"params_M": round(steppers[n].params / 1e6, 3), "median_step_s": round(med, 4),
                   "samples_per_s": round(args.batch / med, 2), f"cost_vs_{base}": round(med / base_s, 3)}
        print(f"{n:<22} {args.batch / med:8.2f} samples/s  {med / base_s:5.2f}x {base}", flush=True)
    save(args.name, {"machine": machine(), "batch": args.batch, "steps": args.steps, "baseline": base, "rows": rows})


if __name__ == "__main__":
    main()

"""Full Trainer pipeline (data, augmentation, focal loss, logging) as a ratio to the bare model's
fwd + bwd + AdamW step on the same batches: SegFormer-b0, batch 32, CPU.

    python bench/trainer_throughput.py [--steps 20] [--data PATH]

The bare loop runs before and after the Trainer and the mean is used, so drift on a shared machine
hits both sides.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import load_data, machine, save  # noqa: E402
from mars_segformer import create_model  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data import DataConfig, build_dataset_dict  # noqa: E402
from mars_segformer.losses import build_loss, class_weights_from_masks  # noqa: E402
from mars_segformer.training import MarsTrainer, MarsTrainingArguments  # noqa: E402


def bare(batches, steps):
    torch.manual_seed(0)
    model = create_model("segformer-b0").train()
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, weight_decay=1e-3)
    model(pixel_values=batches[0]["pixel_values"], labels=batches[0]["labels"]).loss.backward()  # warm-up
    opt.zero_grad()
    t0 = time.perf_counter()
    for i in range(steps):
        b = batches[i % len(batches)]
        model(pixel_values=b["pixel_values"], labels=b["labels"]).loss.backward()
        opt.step()
        opt.zero_grad()
    return steps * 32 / (time.perf_counter() - t0)


def trainer_rate(data, steps, out):
    torch.manual_seed(0)
    masks = data.arrays.train_masks[data.train_indices]
    args = MarsTrainingArguments(output_dir=out, max_steps=steps + 1, per_device_train_batch_size=32,
                                 eval_strategy="no", save_strategy="no", load_best_model_at_end=False,
                                 logging_steps=5, disable_tqdm=True, report_to="none", warmup_steps=0)
    rates = []

    class Timer(__import__("transformers").TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            if state.global_step == 1:  # skip the first (warm-up) step
                self.t0 = time.perf_counter()

        def on_train_end(self, a, state, control, **kw):
            rates.append(steps * 32 / (time.perf_counter() - self.t0))

    tr = MarsTrainer(model=create_model("segformer-b0"), args=args, train_dataset=data.datasets["train"],
                     loss_fn=build_loss("focal", 2.0, class_weights_from_masks(masks), 0), callbacks=[Timer()])
    tr.train()
    return rates[0]


def main():
    p = ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--data", default=None)
    args = p.parse_args()
    data = build_dataset_dict(load_data(p, args.data), DataConfig.reference())
    loader = torch.utils.data.DataLoader(data.datasets["train"], batch_size=32, shuffle=True,
                                         collate_fn=lambda rows: {k: torch.stack([r[k] for r in rows]) for k in rows[0]})
    batches = [b for _, b in zip(range(8), loader, strict=False)]
    before = bare(batches, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        full = trainer_rate(data, args.steps, tmp)
    after = bare(batches, args.steps)
    ref = (before + after) / 2
    save("trainer_throughput", {
        "machine": machine(), "model": "segformer-b0", "batch": 32, "steps": args.steps,
        "bare_samples_per_s": [round(before, 2), round(after, 2)], "trainer_samples_per_s": round(full, 2),
        "ratio": round(full / ref, 3), "target_ratio": 0.85,
    })


if __name__ == "__main__":
    main()

"""Augmented samples/s through the train Dataset (the reference recipe's full augmentation set, CutMix
and oversampling: the heaviest setting), one
worker and one thread, against SegFormer-b0 training samples/s on one core (batch 32, 64x128).

    python bench/data_throughput.py [--data PATH] [--seconds 10]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import load_data, machine, save  # noqa: E402
from mars_segformer import create_model  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data import DataConfig, build_dataset_dict  # noqa: E402


def data_rate(ds, batch: int, seconds: float) -> float:
    n, done, i = len(ds), 0, 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        rows = [(i + k) % n for k in range(batch)]
        ds.__getitems__(rows)  # what the DataLoader calls
        done += batch
        i += batch
    return done / (time.perf_counter() - t0)


def train_rate(batch: int, steps: int) -> float:
    model = create_model("segformer-b0").train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, y = torch.randn(batch, 3, 64, 128), torch.randint(0, 5, (batch, 64, 128))
    for _ in range(2):  # warm-up
        model(x, labels=y).loss.backward()
        opt.step()
        opt.zero_grad()
    t0 = time.perf_counter()
    for _ in range(steps):
        model(x, labels=y).loss.backward()
        opt.step()
        opt.zero_grad()
    return steps * batch / (time.perf_counter() - t0)


def main():
    p = ArgumentParser()
    p.add_argument("--data", default=None, help="npz or AI4Mars folder (default: embedded sample)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--train-steps", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    data = build_dataset_dict(load_data(p, args.data), DataConfig.reference())
    rate = data_rate(data.datasets["train"], 32, args.seconds)
    plain = data_rate(data.datasets["validation"], 32, args.seconds / 2)
    model_rate = train_rate(32, args.train_steps)
    save("data_throughput", {
        "machine": machine(), "data": args.data or "embedded sample",
        "augmentations": list(data.config.augmentations), "cutmix_p": data.config.cutmix_p,
        "augmented_samples_per_s": round(rate, 1), "unaugmented_samples_per_s": round(plain, 1),
        "segformer_b0_train_samples_per_s_1_core": round(model_rate, 2),
        "ratio_data_to_training": round(rate / model_rate, 1),
        "targets": {"augmented_samples_per_s": 2000, "ratio_data_to_training": 5},
    })


if __name__ == "__main__":
    main()

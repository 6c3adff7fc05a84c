"""Parameter count and CPU training throughput (fwd + bwd + AdamW step, batch 32, 64x128) per
architecture preset at full size. Saves ``bench/results/model_zoo.json`` and ``docs/model_zoo.md``.

    python bench/model_zoo.py [--steps 3] [--batch 32] [--models unet segformer-b0 ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, save  # noqa: E402
from mars_segformer import PRESETS, create_model  # noqa: E402


def measure(name, steps, batch):
    torch.manual_seed(0)
    model = create_model(name).train()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, y = torch.randn(batch, 3, 64, 128), torch.randint(0, 5, (batch, 64, 128))

    def step():
        model(pixel_values=x, labels=y).loss.backward()
        opt.step()
        opt.zero_grad()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return params, steps * batch / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--models", nargs="+", default=list(PRESETS))
    args = p.parse_args()
    rows = {}
    for name in args.models:
        params, rate = measure(name, args.steps, args.batch)
        rows[name] = {"params_M": round(params / 1e6, 3), "train_images_per_s": round(rate, 2)}
        print(f"{name:<16} {params / 1e6:8.2f} M params {rate:8.2f} img/s", flush=True)
    m = machine()
    save("model_zoo", {"machine": m, "batch": args.batch, "tile": [64, 128], "steps": args.steps, "rows": rows})
    lines = [
        f"Measured by `python bench/model_zoo.py --steps {args.steps}` on {m['cpu']} "
        f"({m.get('cpu_capability', 'vector capability not recorded')}, {m['cores']} cores, {m['torch_threads']} torch "
        f"threads, no GPU): fwd + bwd + AdamW step in float32, batch {args.batch}, 64×128 tiles, mean of {args.steps} "
        "steps after one warm-up step. Absolute numbers vary with machine load; compare rows of one run.",
        "", "| preset | parameters (M) | training images/s |", "|---|---|---|",
    ]
    lines += [f"| `{n}` | {r['params_M']:.2f} | {r['train_images_per_s']:.1f} |" for n, r in rows.items()]
    (ROOT / "docs" / "model_zoo.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Parameter count and CPU training throughput (fwd + bwd + AdamW step, batch 32, 64x128) per
architecture preset at full size. Saves ``bench/results/NAME.json`` and, when every preset was measured under the
default name, ``docs/model_zoo.md`` (a subset, e.g. ``--models upernet-r18 segformer-b0`` on another machine, leaves
the page and the stored all-preset file as they are: rows of different runs are not comparable).

    python bench/model_zoo.py [--steps 3] [--batch 32] [--models unet segformer-b0 ... --name model_zoo_mine]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, result_name, save  # noqa: E402
from mars_segformer import PRESETS, create_model  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.outputs import atomic_write_text  # noqa: E402


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


def main(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--models", nargs="+", default=list(PRESETS))
    p.add_argument("--name", type=result_name, default=None,
                   help="bench/results/NAME.json (default: model_zoo for every preset, model_zoo_subset otherwise)")
    args = p.parse_args(argv)
    unknown = [n for n in args.models if n not in PRESETS]
    if unknown:
        p.error(f"--models {unknown[0]}: not a preset; expected one of {', '.join(PRESETS)}")
    if args.steps < 1 or args.batch < 1:
        p.error(f"--steps {args.steps} --batch {args.batch}: expected positive integers")
    every = sorted(args.models) == sorted(PRESETS)
    name = args.name or ("model_zoo" if every else "model_zoo_subset")
    if name == "model_zoo" and not every:
        p.error("--name model_zoo: that file holds every preset measured in one run; name a subset's file otherwise")
    rows = {}
    for preset in args.models:
        params, rate = measure(preset, args.steps, args.batch)
        rows[preset] = {"params_M": round(params / 1e6, 3), "train_images_per_s": round(rate, 2)}
        print(f"{preset:<16} {params / 1e6:8.2f} M params {rate:8.2f} img/s", flush=True)
    m = machine()
    save(name, {"machine": m, "batch": args.batch, "tile": [64, 128], "steps": args.steps, "rows": rows})
    if name != "model_zoo":
        print("docs/model_zoo.md left as it is (it shows every preset of one run)")
        return
    lines = [
        f"Measured by `python bench/model_zoo.py --steps {args.steps}` on {m['cpu']} "
        f"({m.get('cpu_capability', 'vector capability not recorded')}, {m['cores']} cores, {m['torch_threads']} torch "
        f"threads, no GPU): fwd + bwd + AdamW step in float32, batch {args.batch}, 64×128 tiles, mean of {args.steps} "
        "steps after one warm-up step. Absolute numbers vary with machine load; compare rows of one run.",
        "", "| preset | parameters (M) | training images/s |", "|---|---|---|",
    ]
    lines += [f"| `{n}` | {r['params_M']:.2f} | {r['train_images_per_s']:.1f} |" for n, r in rows.items()]
    atomic_write_text(ROOT / "docs" / "model_zoo.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

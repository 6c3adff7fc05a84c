"""Training-step throughput of one model alone on the device: fwd + bwd + AdamW, 64x128 tiles, in the
precision ``train_hf.py`` picks there (bf16 autocast on a GPU that supports it), eager against
channels-last and, with ``--compile``, ``torch.compile``. No data loading: what the device itself allows.

    python bench/gpu_speed.py --out bench/results/gpu_speed.json          # on the GPU machine
    python bench/gpu_speed.py --device cpu --steps 2 --warmup 1 --batches 4 --out /tmp/s.json   # rehearsal

Each setting: ``--warmup`` steps, then ``--steps`` timed steps (synchronised). Prints one line per setting.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine  # noqa: E402
from mars_segformer import create_model  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data.dataset import config_scale, scaled_shape  # noqa: E402
from mars_segformer.data.io import TILE_SHAPE  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, batch: int, device: torch.device, channels_last: bool, compile_: bool,
            steps: int, warmup: int) -> dict:
    """Samples/s of ``steps`` training steps of preset ``name`` after ``warmup`` untimed ones."""
    torch.manual_seed(0)
    model = create_model(name).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    x = torch.randn(batch, 3, *scaled_shape(TILE_SHAPE, config_scale(model.config)), device=device)  # as the model sees it
    y = torch.randint(1, 5, (batch, *x.shape[-2:]), device=device)  # labels at the logits' size (a speed probe only)
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()
    forward = torch.compile(model) if compile_ else model

    def step():
        with autocast:
            loss = forward(pixel_values=x, labels=y).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    t = time.perf_counter()
    for _ in range(warmup):
        step()
    _sync(device)
    warm_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    dt = time.perf_counter() - t
    mem = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return {"model": name, "batch": batch, "channels_last": channels_last, "compile": compile_,
            "precision": "bf16 autocast" if bf16 else "fp32", "samples_per_s": round(steps * batch / dt, 1),
            "step_ms": round(1000 * dt / steps, 2), "warmup_s": round(warm_s, 1),
            "peak_memory_mib": None if mem is None else round(mem)}


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["upernet-r18-x1.5-h96", "upernet-r18", "segformer-b0"])
    p.add_argument("--batches", type=int, nargs="+", default=[32, 256])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--compile", action="store_true", help="also time torch.compile (its compile time is warmup_s)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu_speed.json"))
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    rows = []
    for name in args.models:
        for batch in args.batches:
            for cl, comp in [(False, False), (True, False), *([(False, True)] if args.compile else [])]:
                try:
                    r = measure(name, batch, device, cl, comp, args.steps, args.warmup)
                except Exception as e:  # noqa: BLE001 - one failing setting must not lose the others
                    r = {"model": name, "batch": batch, "channels_last": cl, "compile": comp, "error": repr(e)[:300]}
                rows.append(r)
                print(f"[gpu-speed] {json.dumps(r)}", flush=True)
    report = {"machine": machine(), "steps": args.steps, "warmup": args.warmup, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

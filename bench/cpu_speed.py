"""The default model's CPU training speed under each setting, side by side in one process, and how far
it is from the machine's peak.

    python bench/cpu_speed.py --steps 6

Variants (each a fresh model, UperNet-R18 unless ``--model``, batch 32, 64x128, fwd + focal loss + bwd + AdamW step; steps
interleaved round-robin so load changes hit every variant alike; median step time): the default
(all cores, oneDNN on), ``channels_last`` (weights and batch, or the weights only), one thread, oneDNN off, and ``torch.compile``. The FLOPs of
one training step come from ``torch.utils.flop_counter``; the peak is cores x clock x FLOPs per cycle
of the vector units torch reports (AVX-512: 2 FMA x 16 fp32 x 2; AVX2: 2 FMA x 8 x 2); the bf16 rows (autocast as
``--bf16`` runs it, on AMX tiles where the CPU has them) have no fraction, that peak being fp32's. Saves
``bench/results/cpu_speed.json``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, result_name, save  # noqa: E402
from mars_segformer import PRESETS, create_model  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.losses import build_loss  # noqa: E402
from mars_segformer.models.pretrained import input_channels  # noqa: E402

FLOPS_PER_CYCLE = {"AVX512": 64, "AVX2": 32, "DEFAULT": 8}


def clock_ghz() -> float | None:
    try:
        mhz = [float(line.split(":")[1]) for line in Path("/proc/cpuinfo").read_text().splitlines()
               if line.startswith("cpu MHz")]
        return max(mhz) / 1000 if mhz else None
    except OSError:
        return None


class Variant:
    def __init__(self, name: str, batch: int, threads: int, channels_last=False, mkldnn=True, compile_=False,
                 bf16=False, model="upernet-r18"):
        torch.manual_seed(0)
        self.name, self.threads, self.mkldnn, self.bf16 = name, threads, mkldnn, bf16
        self.model = create_model(model).train()
        self.channels_last = channels_last
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.fn = torch.compile(self.model) if compile_ else self.model
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.loss = build_loss("focal", class_weights=[0, 1, 1, 2, 8])
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch, input_channels(self.model.config), 64, 128, generator=g)
        if channels_last is True:  # "model": the weights only, the batch as the data path gives it (NCHW)
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 5, (batch, 64, 128), generator=g)

    def step(self) -> float:
        torch.set_num_threads(self.threads)
        ctx = contextlib.nullcontext() if self.mkldnn else torch.backends.mkldnn.flags(enabled=False)
        t0 = time.perf_counter()
        with ctx:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):  # as Trainer's --bf16 does
                logits = self.fn(pixel_values=self.x).logits
            self.loss(logits, self.y).backward()  # the loss casts the logits to float32
            self.opt.step()
            self.opt.zero_grad()
        return time.perf_counter() - t0


def step_flops(batch: int, model: str) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    v = Variant("count", batch, torch.get_num_threads(), model=model)
    with FlopCounterMode(display=False) as counter:
        v.loss(v.model(pixel_values=v.x).logits, v.y).backward()
    return float(counter.get_total_flops())


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--model", default="upernet-r18", choices=sorted(PRESETS), help="a registry model")
    p.add_argument("--no-compile", action="store_true", help="leave torch.compile out (slow first step)")
    p.add_argument("--out", type=result_name, default="cpu_speed", help="results name (bench/results/NAME.json), e.g. for a run "
                   "under ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 (an AVX2-only machine's kernels)")
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))

    def variant(name, threads=cores, **kw):
        return Variant(name, args.batch, threads, model=args.model, **kw)

    variants = [variant("default (all cores, oneDNN)"),
                variant("channels_last", channels_last=True),
                variant("channels_last, model only", channels_last="model"),
                variant("1 thread", 1),
                variant("oneDNN off", mkldnn=False),
                variant("bf16 autocast", bf16=True),
                variant("bf16 autocast, channels_last", channels_last="model", bf16=True)]
    if not args.no_compile:
        variants.append(variant("torch.compile", compile_=True))
    for v in variants:
        v.step()  # warm-up (and compilation)
    times = {v.name: [] for v in variants}
    for _ in range(args.steps):
        for v in variants:
            times[v.name].append(v.step())
    flops = step_flops(args.batch, args.model)
    cap = torch.backends.cpu.get_cpu_capability()
    ghz = clock_ghz()
    peak = cores * ghz * 1e9 * FLOPS_PER_CYCLE.get(cap, 8) if ghz else None
    base = float(np.median(times[variants[0].name]))
    rows = {}
    for v in variants:
        med = float(np.median(times[v.name]))
        fraction = flops / med / peak if peak and not v.bf16 else None  # the peak is fp32's
        rows[v.name] = {"median_step_s": round(med, 4), "images_per_s": round(args.batch / med, 2),
                        "speed_vs_default": round(base / med, 3),
                        "fraction_of_peak": round(fraction, 4) if fraction is not None else None}
        print(f"{v.name:<30} {args.batch / med:7.1f} img/s  {base / med:5.2f}x default"
              + (f"  {flops / med / 1e9:6.1f} GFLOP/s = {fraction:.1%} of peak" if fraction is not None else ""),
              flush=True)
    save(args.out, {"machine": machine(), "env": {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")},
                    "model": args.model, "batch": args.batch, "steps": args.steps, "cores": cores,
                    "amx_bf16": bool(torch.cpu._is_amx_tile_supported()),
                    "avx512_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
                       "flops_per_training_step": flops, "flops_per_sample": flops / args.batch,
                       "clock_ghz": ghz, "flops_per_cycle_per_core": FLOPS_PER_CYCLE.get(cap, 8),
                       "peak_flops": peak, "rows": rows})


if __name__ == "__main__":
    main()

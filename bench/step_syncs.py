"""Host waits per training step, counted on the CPU: the operations that, on a GPU, make the host wait for
the device (a tensor read back as a Python number, a boolean selection whose size the host must learn).

While the host waits it queues no kernels, so a step of a launch-bound model (UperNet-R18 at batch 32 on an
H200: 11.4 ms alone, ~53 ms inside ``train_hf.py``, docs/gpu.md) pays the device's whole queue each time. The
torch profiler records the same operator calls on the CPU, so the count needs no GPU.

    python bench/step_syncs.py        # -> bench/results/step_syncs.json

Counted per call of the parts of the default recipe's step that this package adds to the Trainer's, at batch
32 of 64x128: the loss (focal + Lovász, class weights, background ignored), forward and backward, and the weight
average's update (EMA 0.999). (The optimizer step is left out: on the CPU, AdamW reads each parameter's step
count, a CPU tensor also on a GPU run, so its CPU count says nothing of the GPU.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, result_name, save  # noqa: E402
from mars_segformer import create_model  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.losses.build import build_loss  # noqa: E402
from mars_segformer.training.averaging import AveragingSpec, WeightAverager  # noqa: E402

#: operators that return a value the host reads (``_local_scalar_dense``: ``.item()``, ``bool(t)``, ``int(t)``)
#: or whose output size depends on the data (``nonzero``: boolean indexing, ``masked_select``)
WAITS = ("aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select")


def count(fn) -> dict[str, int]:
    """Calls of :data:`WAITS` operators (and of all operators) in one call of ``fn``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = prof.key_averages()
    waits = {e.key: e.count for e in events if e.key in WAITS}
    return {"host_waits": sum(waits.values()), **waits, "operators": sum(e.count for e in events)}


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=result_name, default="step_syncs")
    args = p.parse_args()
    torch.manual_seed(0)
    model = create_model("upernet-r18", tiny=True)
    x, y = torch.randn(32, 3, 64, 128), torch.randint(0, 5, (32, 64, 128))
    logits = model(pixel_values=x).logits.detach().requires_grad_(True)
    loss_fn = build_loss("focal:1,lovasz:1", class_weights=[0.0, 0.6, 0.5, 0.9, 2.0], ignore_index=0)
    averager = WeightAverager(model, AveragingSpec.parse("ema:0.999"))
    averager.update(model, 0, 10)  # the first update copies; the rest average
    parts = {
        "loss (focal:1,lovasz:1)": lambda: loss_fn(logits, y),
        "loss backward": lambda: loss_fn(logits, y).backward(),
        "weight average update (ema:0.999)": lambda: averager.update(model, 1, 10),
    }
    rows = {name: count(fn) for name, fn in parts.items()}
    for name, r in rows.items():
        print(f"{name}: {r['host_waits']} host wait(s) {({k: v for k, v in r.items() if k.startswith('aten')})}, "
              f"{r['operators']} operators")
    save(args.out, {"machine": machine(), "batch": 32, "tile": [64, 128], "parts": rows})


if __name__ == "__main__":
    main()

"""Training speed of the default beside one other busy process: what ``--torch_threads auto`` should pick.

    python bench/busy_threads.py --steps 6

UperNet-R18 training steps (batch 32, as ``bench/cpu_speed.py``) at 2 threads and at 1 thread, first on
an idle machine, then with a 1-thread busy loop (another process, pinned to no core) running beside them;
median step time each. Pause every other job first: the point is what one busy process does. Saves
``bench/results/busy_threads.json``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, save  # noqa: E402
from bench.cpu_speed import Variant  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.training.threads import busy_cores  # noqa: E402

BUSY_LOOP = "import torch\ntorch.set_num_threads(1)\na = torch.randn(512, 512)\nwhile True: a @ a"


def timed(variants, steps: int) -> dict[str, float]:
    for v in variants:
        v.step()  # warm-up
    times = {v.name: [] for v in variants}
    for _ in range(steps):
        for v in variants:
            times[v.name].append(v.step())
    return {k: float(np.median(t)) for k, t in times.items()}


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=32)
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    variants = [Variant(f"{cores} threads", args.batch, cores), Variant("1 thread", args.batch, 1)]
    rows = {"idle": {"busy_cores_seen": busy_cores(), **timed(variants, args.steps)}}
    loop = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    try:
        time.sleep(2)
        rows["one busy process"] = {"busy_cores_seen": busy_cores(), **timed(variants, args.steps)}
    finally:
        loop.kill()
        loop.wait()
    for state, r in rows.items():
        print(f"{state:<18} busy cores seen {r['busy_cores_seen']}: "
              + ", ".join(f"{v.name} {args.batch / r[v.name]:.1f} img/s" for v in variants), flush=True)
    busy = rows["one busy process"]
    save("busy_threads", {"machine": machine(), "batch": args.batch, "steps": args.steps, "cores": cores,
                          "rows": rows, "one_thread_vs_all_when_busy": round(busy[variants[0].name] / busy["1 thread"], 3)})


if __name__ == "__main__":
    main()

"""Class ids from logits on the CPU: ``inference.class_ids`` (argmax over a channels-last copy) against the
plain ``argmax(dim=1)``, at the shapes training and the tau search use.

    python bench/class_ids.py [--threads 1] [--repeats 7]

Eager ``argmax`` over dim 1 of an NCHW-contiguous CPU tensor takes a slow reduction path
(pytorch/pytorch#140000). Saves ``bench/results/class_ids.json``: median milliseconds per call of each,
and their ratio, per shape; the two must agree element for element.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, result_name, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.inference import class_ids  # noqa: E402

#: (batch, classes, H, W): the tau search's and prediction's batch at tile size, an eval batch, tiles x2
SHAPES = ((64, 5, 64, 128), (16, 5, 64, 128), (32, 5, 128, 256))


def _median_ms(fn, x, repeats: int) -> float:
    fn(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", type=result_name, default="class_ids")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for shape in SHAPES:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        if not torch.equal(class_ids(x), x.argmax(dim=1)):
            raise SystemExit(f"class_ids and argmax disagree at {shape}")
        plain = _median_ms(lambda t: t.argmax(dim=1), x, args.repeats)
        fast = _median_ms(class_ids, x, args.repeats)
        rows.append({"shape": list(shape), "argmax_dim1_ms": round(plain, 2), "class_ids_ms": round(fast, 2),
                     "speedup": round(plain / fast, 2)})
        print(rows[-1], flush=True)
    save(args.out, {"machine": machine(), "threads": args.threads, "repeats": args.repeats, "rows": rows})


if __name__ == "__main__":
    main()

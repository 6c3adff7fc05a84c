"""The test suite's forked runs with and without the worker's heap frozen before the fork (``tests/forked.py``).

    python bench/fork_gc.py --repeats 6

A test worker holds torch, transformers' Trainer and the package (~0.5 M objects tracked by the garbage
collector); a forked ``train_hf.py`` run inherits them, and every full collection in the child walks them all
(transformers' Trainer calls ``gc.collect()`` as training starts) and writes to each page it touches. The
runner freezes the heap before it forks (``gc.freeze()``, undone in the worker at once), so the child's
collections skip it. This times one tiny forked training run (the suite's ``TINY`` settings, 4 steps)
alternately frozen and not, in one process that has imported what a worker has, so both share the machine's
noise; the median of each is kept. Pause other work while it runs. Saves ``bench/results/NAME.json``.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # a test worker's setting: a forked child needs one torch thread
from bench.common import machine, result_name, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from tests import forked  # noqa: E402
from tests.training.test_train import TINY  # noqa: E402

STEPS = ["--max_steps", "4"]


def one_run(frozen: bool, folder: Path) -> float:
    """Wall seconds of one forked tiny training run, the heap frozen before the fork or not."""
    os.environ[forked.GC_FREEZE_ENV] = "1" if frozen else "0"
    shutil.rmtree(folder, ignore_errors=True)
    t = time.perf_counter()
    proc = forked.run([sys.executable, str(ROOT / "train_hf.py"), "--output_dir", str(folder), *TINY, *STEPS],
                      capture_output=True, text=True, cwd=ROOT, env=dict(os.environ), timeout=600)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"the forked run failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return seconds


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=6, help="runs of each kind, interleaved")
    p.add_argument("--name", type=result_name, default="fork_gc")
    args = p.parse_args()
    if args.repeats < 1:
        p.error(f"--repeats must be at least 1, got {args.repeats}")
    import torch

    torch.set_num_threads(1)
    import transformers.trainer  # noqa: F401  (what a worker has imported before its first forked run)

    import mars_segformer.training.run  # noqa: F401

    t = time.perf_counter()
    gc.collect()
    collect_s = time.perf_counter() - t
    times = {"frozen": [], "not_frozen": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for kind in (("not_frozen", "frozen") if i % 2 == 0 else ("frozen", "not_frozen")):
                times[kind].append(round(one_run(kind == "frozen", Path(tmp) / "run"), 2))
            print(f"[fork-gc] repeat {i + 1}/{args.repeats}: frozen {times['frozen'][-1]:.2f} s, "
                  f"not frozen {times['not_frozen'][-1]:.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"median of {args.repeats}: frozen {med['frozen']:.2f} s, not frozen {med['not_frozen']:.2f} s "
          f"({med['not_frozen'] - med['frozen']:+.2f} s a run); one full collection of this heap: {collect_s:.2f} s "
          f"over {len(gc.get_objects()):,} objects")
    save(args.name, {"machine": machine(), "run": [*TINY, *STEPS], "repeats": args.repeats, "seconds": times,
                     "median_s": med, "saved_per_run_s": round(med["not_frozen"] - med["frozen"], 2),
                     "full_collection_s": round(collect_s, 3), "objects_tracked": len(gc.get_objects())})


if __name__ == "__main__":
    main()

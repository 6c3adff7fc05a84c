"""Start-up cost of a training process: the time to import the training module in a fresh interpreter.

    python bench/import_time.py --repeats 7                              # this checkout
    python bench/import_time.py --trees . /tmp/older_checkout --repeats 7  # side by side, interleaved

Every fresh ``train_hf.py`` (``accelerate launch``, ``torchrun``, the GPU sweep's runs, the tests that need a
new interpreter) pays this before it reads a flag that needs torch. Each repeat starts one interpreter per
source tree (``PYTHONPATH`` pointing at it), round-robin, so the trees share the machine's noise; the median is
kept, with which of the optional heavy packages the import pulled in. Pause other work while it runs.
Saves ``bench/results/NAME.json`` (``--name``, default ``import_time``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, result_name, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402

MODULE = "mars_segformer.training.run"
#: packages a training run of the default model does not need; the report says which the import loaded
OPTIONAL = ("evaluate", "timm", "matplotlib", "scipy.stats", "sklearn")
PROBE = ("import json, sys, time; t = time.perf_counter(); import {module}; "
         "print(json.dumps([time.perf_counter() - t, [m for m in {optional!r} if m in sys.modules]]))")


def git_commit(tree: Path) -> str | None:
    out = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or None


def probe(tree: Path) -> tuple[float, list[str]]:
    """Seconds to import MODULE from ``tree`` in a fresh interpreter, and the optional packages it loaded."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=MODULE, optional=OPTIONAL)], cwd=tree, env=env,
                         capture_output=True, text=True, check=True)
    seconds, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    return seconds, loaded


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trees", nargs="+", default=[str(ROOT)], help="source trees to compare (each a checkout)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--name", type=result_name, default="import_time")
    args = p.parse_args()
    trees = [Path(t).resolve() for t in args.trees]
    for t in trees:
        if not (t / "mars_segformer").is_dir():
            raise SystemExit(f"{t}: no mars_segformer package there")
    for t in trees:  # one untimed start each: the file cache warm for every tree alike
        probe(t)
    times = {str(t): [] for t in trees}
    loaded = {}
    for i in range(args.repeats):
        for t in trees:
            s, loaded[str(t)] = probe(t)
            times[str(t)].append(round(s, 3))
        print(f"[import-time] repeat {i + 1}/{args.repeats}: "
              + ", ".join(f"{Path(t).name or t} {v[-1]:.2f} s" for t, v in times.items()), flush=True)
    rows = [{"tree": str(t), "commit": git_commit(t), "median_s": statistics.median(times[str(t)]),
             "seconds": times[str(t)], "optional_packages_loaded": loaded[str(t)]} for t in trees]
    for r in rows:
        print(f"{r['commit'] or r['tree']}: median {r['median_s']:.2f} s to import {MODULE}; "
              f"loaded {', '.join(r['optional_packages_loaded']) or 'none of ' + ', '.join(OPTIONAL)}")
    save(args.name, {"machine": machine(), "module": MODULE, "repeats": args.repeats, "rows": rows})


if __name__ == "__main__":
    main()

"""How long a wrong flag takes to be answered, per command (issue: under 2 s, before the heavy imports).

    python bench/cli_latency.py --repeats 3

Each case is the installed ``mars-segformer`` command in a fresh process from an empty folder;
the median wall time of ``--repeats`` runs is kept with the exit code and the error line.
Saves ``bench/results/cli_latency.json``. Pause other work while it runs: it times processes.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402

CASES = [
    ["train", "--num_train_epochs", "abc"],
    ["train", "--learnig_rate", "1e-3"],
    ["train", "--lr_scheduler_type", "cosin"],
    ["train", "nope.yaml"],
    ["train", "--data", "missing.npz"],
    ["train", "--val_fraction", "1.5"],  # a value rule (training/ranges.py), on the given values and defaults
    ["train", "--repeat_factor_threshold", "0.3", "--oversample_big_rock", "4"],
    ["train", "--loss", "hinge"],
    ["train", "--augmentations", "hflip,zoom"],
    ["train", "--model", "unet-xl"],
    ["train", "--model_overrides", '{"nope_field": 3}'],  # a config field name: needs the model's config class
    ["predict", "--model", "run", "--out", "o", "--tta", "bogus"],
    ["predict", "--model", "run", "--data", "missing.npz", "--out", "o"],
    ["push", "missing_run", "--repo_id", "user/name", "--dry_run"],
    ["push-dataset", "missing.npz", "--repo_id", "user/name"],
    ["eda", "missing.npz", "--out", "o"],
    ["self-train", "--teacher", "run", "--out", "o", "--", "--max_steps", "abc"],
    ["bogus-command"],
]


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    exe = shutil.which("mars-segformer")
    if exe is None:
        raise SystemExit("error: the mars-segformer command is not installed (pip install -e .)")
    rows = []
    with tempfile.TemporaryDirectory() as empty:
        for case in CASES:
            times, proc = [], None
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                proc = subprocess.run([exe, *case], cwd=empty, capture_output=True, text=True, timeout=300)
                times.append(time.perf_counter() - t0)
            line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("error:")), proc.stderr[-200:])
            rows.append({"command": "mars-segformer " + " ".join(case), "exit_code": proc.returncode,
                         "median_s": round(statistics.median(times), 3), "error": line})
            print(f"{rows[-1]['median_s']:6.2f} s  exit {proc.returncode}  {rows[-1]['command']}", flush=True)
    save("cli_latency", {"machine": machine(), "repeats": args.repeats, "rows": rows})


if __name__ == "__main__":
    main()

"""The main job (``accelerate launch train_hf.py``, embedded sample) with and without one change, over seeds.

    python bench/main_job_variants.py --variants "" "--augmentations hflip" --seeds 0 1 --name main_job_frame_shift

Each variant's flags are added to the main job's command; runs go one after another (pause other jobs first:
this times them). Writes ``bench/results/NAME.json``: per variant and seed the validation scores as the run
reports them (after any logit adjustment) and the wall time, and per variant the mean.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, result_name, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402

SCORES = ("task_mean_iou", "iou_soil", "iou_bedrock", "iou_sand", "iou_big_rock")


def run(flags: list[str], seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = ["accelerate", "launch", str(ROOT / "train_hf.py"), "--output_dir", str(out), "--seed", str(seed),
               "--disable_tqdm", "true", *flags]
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.time() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        m = json.loads((out / "metrics.json").read_text())
    return {"seed": seed, "wall_s": round(wall, 1), "logit_adjustment_tau": m["logit_adjustment_tau"],
            **{k: round(float(m["validation"][k]), 4) for k in SCORES}}


def main() -> None:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", required=True, help="flags added to the main job, '' for none")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--name", type=result_name, required=True, help="bench/results/NAME.json")
    args = p.parse_args()
    rows = {}
    for variant in args.variants:
        runs = []
        for seed in args.seeds:
            r = run(shlex.split(variant), seed)
            print(f"[main job] {variant or '(default)'} seed {seed}: task mIoU {r['task_mean_iou']:.4f}, big rock "
                  f"{r['iou_big_rock']:.3f}, {r['wall_s']:.0f} s", flush=True)
            runs.append(r)
        rows[variant or "(default)"] = {"runs": runs, "mean": {k: round(sum(r[k] for r in runs) / len(runs), 4)
                                                              for k in (*SCORES, "wall_s")}}
    save(args.name, {"what": __doc__.splitlines()[0], "command": "accelerate launch train_hf.py --output_dir DIR "
                     "--seed S [variant flags]", "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()

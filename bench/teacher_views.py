"""What a teacher's view changes in the soft labels: a finished run's probabilities of its own training tiles, seen
tile by tile and with each complete frame whole (``--teacher_view``), scored against the labels, and timed.

    python bench/teacher_views.py --runs bench/results/full_length/upernet-r18__combo_logit_adj_frame_shift_p1_bf16_s1 \
        --name teacher_views --threads 1

Distillation (``--teachers``) and online self-distillation (``--self_distill``) train on these probabilities. On the
validation frames a tile-trained model is far better with the whole frame (docs/results.md, "Context beyond the
tile"); on the training tiles, which it has fitted, this says how far the two views differ, and what one pass over
the training tiles (one ``--self_distill`` refresh) costs. Writes ``bench/results/NAME.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, result_name, run_folders, save  # noqa: E402
from bench.tta import score  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data import DataConfig, build_dataset_dict, load_arrays  # noqa: E402
from mars_segformer.training.distillation import teacher_soft_labels  # noqa: E402
from mars_segformer.training.ranges import TEACHER_VIEWS  # noqa: E402


def measure(run: Path) -> dict:
    split = json.loads((run / "split.json").read_text())
    arrays = load_arrays(split["data"])
    out = {}
    for view in TEACHER_VIEWS:
        start = time.perf_counter()
        data = build_dataset_dict(arrays, DataConfig(seed=split["seed"], val_fraction=split["val_fraction"]),
                                  soft_labels=teacher_soft_labels([str(run)], view=view))
        seconds = time.perf_counter() - start
        rows = data.train_indices
        soft = data.datasets["train"].format["format_kwargs"]["transform"].soft[rows]
        out[view] = {"pred": soft.argmax(1).astype(np.uint8), "seconds_with_build": seconds}
        del soft
    truths = data.arrays.train_masks[rows]
    unlabelled = truths == 0
    res = {"training_tiles": int(len(rows)),
           "argmax_differs_unlabelled": float((out["tile"]["pred"] != out["frame"]["pred"])[unlabelled].mean()),
           "argmax_differs_labelled": float((out["tile"]["pred"] != out["frame"]["pred"])[~unlabelled].mean())}
    for view, r in out.items():
        res[view] = {**score(r["pred"], truths), "seconds_with_build": r["seconds_with_build"]}
    return res


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="finished run folders with split.json")
    p.add_argument("--name", type=result_name, default="teacher_views", help="bench/results/NAME.json")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args()
    runs = run_folders(p, args.runs, need=("config.json", "split.json"), what="a finished run folder")
    import torch

    torch.set_num_threads(args.threads)
    results = {r.name: measure(r) for r in runs}
    save(args.name, {"machine": machine(), "threads": args.threads, "runs": results})
    print("| run | view | task mIoU on its training tiles | soil | bedrock | sand | big rock | s (build + pass) |\n"
          "|---|---|---|---|---|---|---|---|")
    for name, res in results.items():
        for view in TEACHER_VIEWS:
            s = res[view]
            print(f"| {name} | {view} | {s['task_mean_iou']:.4f} | {s['soil']:.4f} | {s['bedrock']:.4f} | "
                  f"{s['sand']:.4f} | {s['big_rock']:.4f} | {s['seconds_with_build']:.0f} |")


if __name__ == "__main__":
    main()

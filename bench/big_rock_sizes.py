"""Which big rocks a run finds, by size, and what the missed ones were taken for.

    python bench/big_rock_sizes.py --runs bench/results/full_length/upernet-r18__combo_logit_adj_s0 ... --name big_rock_sizes

Each run's own validation split (its ``split.json``) is predicted (plain, no TTA); every connected big-rock
component of the truth is an instance, found when half its pixels are predicted big rock
(``mars_segformer.metrics.instances``). Writes ``bench/results/NAME.json``, ``docs/NAME.png`` (per size
bin: where the instances' pixels went) and prints a markdown table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, result_name, run_folders, save  # noqa: E402
from bench.logit_adjustment import unfold_recorded  # noqa: E402
from bench.tta import validation_tiles  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.data.io import CLASS_NAMES  # noqa: E402
from mars_segformer.inference import load_model, predict_masks  # noqa: E402
from mars_segformer.metrics.instances import instance_scores  # noqa: E402


def label(run: Path) -> str:
    """A run's name in the table: the folder, or ``RUN/checkpoint-N`` for a checkpoint."""
    return f"{run.parent.name}/{run.name}" if run.name.startswith("checkpoint-") else run.name


def measure(run: Path, unadjusted: bool = False, by_edge: bool = False) -> list[dict]:
    images, truths, _ = validation_tiles(run, None, None)
    print(f"[big-rock sizes] {run.name}: predicting {len(images)} validation tiles", flush=True)
    model = load_model(str(run), "cpu")
    if unadjusted:  # the model as trained: a logit adjustment folded into its classifier taken back off
        metrics = run / "metrics.json"
        unfold_recorded(model, json.loads(metrics.read_text()) if metrics.is_file() else {})
    preds = predict_masks(model, images, batch_size=128)
    return instance_scores(truths, preds, cls=4, class_names=CLASS_NAMES, by_edge=by_edge)


def size_label(r: dict) -> str:
    """A row's size bin, and with ``--by_edge`` whether its rocks touch the tile's border ("cut") or not."""
    return r["size"] if "edge" not in r else f"{r['size']} {'cut' if r['edge'] else 'inside'}"


def table(results: dict) -> str:
    lines = ["| run | size (px) | instances | found (≥ half its pixels) | pixel recall | its pixels predicted as |",
             "|---|---|---|---|---|---|"]
    for run, rows in results.items():
        for r in rows:
            if not r["instances"]:
                continue
            px = r["pixels"]
            went = ", ".join(f"{k.replace('_', ' ')} {v / px:.0%}" for k, v in
                             sorted(r["predicted_as"].items(), key=lambda kv: -kv[1]))
            lines.append(f"| {run} | {size_label(r)} | {r['instances']} | {r['found']} ({r['found_share']:.0%}) "
                         f"| {r['pixel_recall']:.2f} | {went} |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"background": "#444444", "soil": "#c2a46b", "bedrock": "#7a7a9a", "sand": "#e6d35c",
              "big_rock": "#d9534f"}
    by_edge = any("edge" in r for rows in results.values() for r in rows)  # two bars per size bin
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * (1.6 if by_edge else 1.0) * len(results), 3.6),
                             squeeze=False, sharey=True)
    for ax, (run, rows) in zip(axes[0], results.items(), strict=True):
        rows = [r for r in rows if r["instances"]]
        bottom = np.zeros(len(rows))
        for name, color in colors.items():
            share = np.array([r["predicted_as"].get(name, 0) / r["pixels"] for r in rows])
            ax.bar(range(len(rows)), share, bottom=bottom, color=color, label=name.replace("_", " "))
            bottom += share
        ax.set_xticks(range(len(rows)), [f"{size_label(r)}\n({r['instances']})".replace(" ", "\n", 1) for r in rows],
                      fontsize=7 if by_edge else 8)
        ax.set_title(run, fontsize=8)
        ax.set_xlabel("big-rock instance size, px (instances)", fontsize=8)
    axes[0][0].set_ylabel("share of the instances' pixels predicted as")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="run folders (with split.json) or their checkpoints")
    p.add_argument("--name", type=result_name, default="big_rock_sizes", help="bench/results/NAME.json and docs/NAME.png")
    p.add_argument("--unadjusted", action="store_true", help="take a folded logit adjustment off first")
    p.add_argument("--by_edge", action="store_true", help="split each size bin into rocks that touch the tile's border "
                   "(cut by the tile) and rocks inside it")
    args = p.parse_args()
    runs = run_folders(p, args.runs, what="a run folder or one of its checkpoints")
    results = {label(r): measure(r, args.unadjusted, args.by_edge) for r in runs}
    save(args.name, {"machine": machine(), "found_share": 0.5, "unadjusted": args.unadjusted, "by_edge": args.by_edge,
                     "runs": results})
    plot(results, ROOT / "docs" / f"{args.name}.png")
    print(table(results))
    print(f"saved docs/{args.name}.png")


if __name__ == "__main__":
    main()

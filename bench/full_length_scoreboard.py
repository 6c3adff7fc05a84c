"""Every full-length run family against the default, split by split, in one table and one PNG: issue 19's scoreboard.

    python bench/full_length_scoreboard.py      # docs/full_length_scoreboard.md + .png, bench/results/.json

Each family of ``bench/results/full_length.json`` (a run name without its seed, reruns in other data orders
included: :func:`bench.run_noise.family_runs`) with a finished run on a split the baseline also ran is compared
with the baseline there, paired by split as ``bench/run_noise.py`` does (each family's mean on each shared split;
then the mean of the differences, and a paired t-test where there are two splits or more). Beside it: the family's
own scores on those splits, big-rock precision / recall and the training-tile fit of its saved models where the
rows keep them, and how many of its splits clear issue 19's bar (split mean task mIoU >= 0.68 with big rock >= 0.30).
The baseline's pooled within-split standard deviation (what one rerun on one split moves by) is the yardstick.
Families that are not one change of the baseline (earlier recipes, other models, distilled students) are listed
too: the table says where each stands against today's default, not what one change did.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import RESULTS, command_line, result_name, save  # noqa: E402
from bench.run_noise import METRICS, compare, family_runs, pooled_sd  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.outputs import atomic_write_text  # noqa: E402

#: the default's family (train_hf.py with no flags, in bf16 as every run of it here)
DEFAULT_FAMILY = "upernet-r18__combo_logit_adj_frame_shift_p1_x1.5_head96_bf16"
#: issue 19's full-length bar, per split: task mean IoU and big-rock IoU
BAR = {"task_mean_iou": 0.68, "big_rock": 0.30}
#: a run name: FAMILY, an optional rerun's ``_dsN``, then ``_sSEED``
RUN_NAME = re.compile(r"(.+?)(?:_ds\d+)?_s(\d+)")


def finished_runs(rows: dict):
    """(family, split, row) of each finished run in ``rows``."""
    for name, row in rows.items():
        if row.get("finished") and (m := RUN_NAME.fullmatch(name)):
            yield m.group(1), int(m.group(2)), row


def families(rows: dict) -> list[str]:
    """The families of ``rows``' finished runs, sorted."""
    return sorted({family for family, _, _ in finished_runs(rows)})


def family_extras(rows: dict, family: str, splits: list[int]) -> dict:
    """What the rows keep of ``family``'s finished runs on ``splits`` beyond the best-epoch scores: the epochs
    trained, the big-rock precision / recall and the training-tile fit (task mIoU at tau 0) of their saved models,
    each averaged over the runs that have it (None where none has)."""
    runs = [row for f, split, row in finished_runs(rows) if f == family and split in splits]
    pr = [row["big_rock_precision_recall"] for row in runs if row.get("big_rock_precision_recall")]
    fit = [row["logit_adjustment"]["search_scores"]["0.0"] for row in runs
           if "0.0" in (row.get("logit_adjustment") or {}).get("search_scores", {})]
    return {"epochs": max(float(row["epochs_reached"]) for row in runs),
            "big_rock_precision_recall": [float(np.mean(c)) for c in zip(*pr, strict=True)] if pr else None,
            "training_tile_fit": float(np.mean(fit)) if fit else None}


def bar_splits(runs: dict[int, list[dict]]) -> list[int]:
    """The splits where the family's mean clears :data:`BAR` on both metrics."""
    return [s for s, v in runs.items() if all(np.mean([r[m] for r in v]) >= BAR[m] for m in BAR)]


def score(rows: dict, baseline: str, family: str) -> dict:
    """One family against the baseline: run_noise's paired comparison, the family's own means on the shared
    splits, its extras and the splits where it clears the bar (on all its splits, shared or not)."""
    base, runs = family_runs(rows, baseline), family_runs(rows, family)
    c = compare(rows, baseline, family)
    splits = c["task_mean_iou"]["paired"]["splits"]
    own = {m: float(np.mean([np.mean([r[m] for r in runs[s]]) for s in splits])) for m in METRICS}
    return {"family": family, "splits": splits, "runs": sum(len(runs[s]) for s in splits),
            "baseline_runs": sum(len(base[s]) for s in splits), "mean": own,
            **{m: c[m]["paired"] for m in METRICS}, **family_extras(rows, family, splits),
            "ahead_on": [s for s, d in zip(splits, c["task_mean_iou"]["paired"]["differences"], strict=True) if d > 0],
            "bar_splits": bar_splits(runs)}


def scoreboard(rows: dict, baseline: str) -> dict:
    """Every other family with a split in common with ``baseline``, best mean difference in task mIoU first."""
    base = family_runs(rows, baseline)
    others = [f for f in families(rows) if f != baseline and set(family_runs(rows, f)) & set(base)]
    scored = sorted((score(rows, baseline, f) for f in others), key=lambda s: -s["task_mean_iou"]["mean_difference"])
    return {"baseline": baseline, "bar": BAR,
            "baseline_runs": {str(s): v for s, v in base.items()},
            "baseline_split_means": {str(s): {m: float(np.mean([r[m] for r in v])) for m in METRICS}
                                     for s, v in base.items()},
            "baseline_bar_splits": bar_splits(base),
            "baseline_pooled_within_split_sd": {m: pooled_sd(base, m) for m in METRICS},
            "families": scored}


def _fmt(x: float | None, spec: str = ".4f", signed: bool = False) -> str:
    return "-" if x is None else format(x, ("+" if signed else "") + spec)


def _row(f: dict) -> str:
    model, _, recipe = f["family"].partition("__")
    t, b = f["task_mean_iou"], f["big_rock"]
    pr = f["big_rock_precision_recall"]
    splits = ", ".join(map(str, f["splits"]))
    return (f"| {model} | {recipe} | {f['epochs']:.0f} | {splits} ({f['runs']} / {f['baseline_runs']}) | "
            f"{f['mean']['task_mean_iou']:.4f} | **{_fmt(t['mean_difference'], signed=True)}** | "
            f"{_fmt(t.get('p_two_sided'), '.2f')} | {len(f['ahead_on'])} of {len(f['splits'])} | "
            f"{f['mean']['big_rock']:.3f} | {_fmt(b['mean_difference'], '.3f', True)} | "
            f"{'-' if pr is None else f'{pr[0]:.2f} / {pr[1]:.2f}'} | {_fmt(f['training_tile_fit'], '.3f')} | "
            f"{', '.join(map(str, f['bar_splits'])) or 'none'} |")


def markdown(board: dict, command: str, name: str) -> str:
    """The scoreboard as docs/NAME.md (beside docs/NAME.png and bench/results/NAME.json): the baseline's splits
    against the bar, then one row per family."""
    sd = board["baseline_pooled_within_split_sd"]
    base = "; ".join(f"split {s}: {v['task_mean_iou']:.4f} (big rock {v['big_rock']:.3f}, "
                     f"{len(board['baseline_runs'][s])} run{'s' if len(board['baseline_runs'][s]) > 1 else ''})"
                     for s, v in board["baseline_split_means"].items())
    lines = [
        f"# Full-length runs against the default (`{command}`)", "",
        f"Generated from `bench/results/full_length.json` (each run's machine: its `measured_on` there, and "
        f"`docs/full_length.md`); saved as `bench/results/{name}.json`. "
        f"Baseline: **`{board['baseline']}`** (the default), mean of its runs per split: {base}. It clears "
        f"issue 19's bar (task mIoU >= {board['bar']['task_mean_iou']} with big rock >= {board['bar']['big_rock']}, "
        f"split mean) on {', '.join(map(str, board['baseline_bar_splits'])) or 'no split'}. One rerun on one split "
        f"moves it by {_fmt(sd['task_mean_iou'])} in task mIoU and {_fmt(sd['big_rock'], '.3f')} in big rock "
        "(pooled within-split sd).", "",
        "Δ: the family's mean minus the default's mean on each split both ran, averaged over those splits; p: paired "
        "t-test over the splits (two or more); runs: the family's / the default's on those splits. Big-rock P / R and "
        "the training-tile fit (task mIoU of the saved model's search sample at τ 0) are the means over its runs "
        "that keep them. Rows that are not one change of the default (other recipes, models, distilled students "
        "`_kdN`, longer schedules `_eN`) say where that run stands against today's default, not what one change did.",
        "", f"![differences by split]({name}.png)", "",
        "| model | recipe | epochs | splits (runs / default's) | task mIoU | Δ task mIoU | p | ahead on | big rock | "
        "Δ big rock | big-rock P / R | training-tile fit | splits over the bar |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(_row(f) for f in board["families"]), ""]
    return "\n".join(lines)


def plot(board: dict, path: Path) -> None:
    """Each family's difference from the default per split (dots) and their mean (bar), task mIoU and big rock,
    with the default's within-split sd shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = board["families"][::-1]  # best at the top
    fig, axes = plt.subplots(1, 2, figsize=(13, 1.2 + 0.22 * len(rows)), sharey=True)
    for ax, metric in zip(axes, METRICS, strict=True):
        sd = board["baseline_pooled_within_split_sd"][metric]
        if sd:
            ax.axvspan(-sd, sd, color="0.9", label="± one rerun's sd (the default's, within a split)")
        ax.axvline(0, color="0.4", lw=0.8)
        for y, f in enumerate(rows):
            d = f[metric]
            ax.scatter(d["differences"], [y] * len(d["differences"]), s=10, color="C0", alpha=0.6,
                       label="one split" if y == 0 else None)
            ax.scatter([d["mean_difference"]], [y], marker="|", s=140, color="C3", label="mean" if y == 0 else None)
        ax.set_xlabel(f"{metric.replace('_', ' ')}: family − default (best epoch, split means)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(rows)), [f["family"].replace(board["baseline"].split("__")[0] + "__", "")
                                          for f in rows], fontsize=6)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"full-length runs against the default ({board['baseline']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default=DEFAULT_FAMILY, help="a run family of full_length.json (a run name without _sS)")
    p.add_argument("--rows", default=str(RESULTS / "full_length.json"), help="the full-length results file")
    p.add_argument("--name", type=result_name, default="full_length_scoreboard",
                   help="bench/results/NAME.json, docs/NAME.md and docs/NAME.png")
    args = p.parse_args()
    try:
        rows = json.loads(Path(args.rows).read_text())["rows"]
    except (OSError, ValueError, KeyError, TypeError):
        p.error(f"--rows {args.rows}: expected bench/full_length.py's results file (JSON with 'rows')")
    if not family_runs(rows, args.baseline):
        p.error(f"--baseline {args.baseline}: no finished run FAMILY_sS or FAMILY_dsN_sS of it in {args.rows}")
    board = scoreboard(rows, args.baseline)
    png = f"docs/{args.name}.png"
    plot(board, ROOT / png)
    atomic_write_text(ROOT / "docs" / f"{args.name}.md", markdown(board, command_line(), args.name))
    save(args.name, {**board, "png": png, "command": command_line()})


if __name__ == "__main__":
    main()

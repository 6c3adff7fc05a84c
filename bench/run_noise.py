"""Full-length runs of candidate recipes against a baseline, split by split with their reruns: above the noise?

    python bench/run_noise.py --baseline upernet-r18__combo_logit_adj_frame_shift_p1_bf16 \
        --candidates upernet-r18__combo_logit_adj_frame_shift_p1_x1.5_head96_bf16 ... --name run_noise_larger_tiles

A family is a run name of ``bench/full_length.py`` without its seed: its finished runs are ``FAMILY_sS`` (seed S,
which also picks the split) and its reruns in another data order ``FAMILY_dsN_sS`` (``--data_seed N``); distilled
or otherwise suffixed runs (``FAMILY_kd3_sS``) are other families. For each split both families ran, the mean of
each family's runs there; then each candidate's difference of those means, paired by split, with a paired t-test over
the splits (scipy, two or more splits), and each family's pooled within-split standard deviation (what one rerun on
one split moves by). The split moves the score more than anything else (docs/results.md, "Run-to-run noise at full
length"), so splits are the pairs. Reads ``bench/results/full_length.json``; saves ``bench/results/NAME.json`` and ``docs/NAME.png``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import RESULTS, result_name, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402

METRICS = ("task_mean_iou", "big_rock")


def family_runs(rows: dict, family: str) -> dict[int, list[dict]]:
    """Split seed -> the best-epoch scores of ``family``'s finished runs on it (first run, then reruns by name)."""
    pattern = re.compile(re.escape(family) + r"(?:_ds(\d+))?_s(\d+)")
    runs: dict[int, list[tuple[int, dict]]] = {}
    for name, row in rows.items():
        m = pattern.fullmatch(name)
        if m and row.get("finished"):
            order = int(m.group(1)) if m.group(1) else -1
            runs.setdefault(int(m.group(2)), []).append((order, {k: row["best"][k] for k in METRICS}))
    return {s: [r for _, r in sorted(v, key=lambda t: t[0])] for s, v in sorted(runs.items())}


def pooled_sd(runs: dict[int, list[dict]], metric: str) -> float | None:
    """Pooled within-split standard deviation over the splits with two runs or more (None: no such split)."""
    groups = [np.array([r[metric] for r in v]) for v in runs.values() if len(v) > 1]
    dof = sum(len(g) - 1 for g in groups)
    if not dof:
        return None
    return float(np.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / dof))


def paired(base: dict[int, list[dict]], cand: dict[int, list[dict]], metric: str) -> dict:
    """Candidate minus baseline, split by split (means of each family's runs there), and a paired t-test."""
    from scipy import stats

    splits = sorted(set(base) & set(cand))
    means = {name: [float(np.mean([r[metric] for r in runs[s]])) for s in splits]
             for name, runs in (("candidate", cand), ("baseline", base))}
    diffs = [c - b for c, b in zip(means["candidate"], means["baseline"], strict=True)]
    out = {"splits": splits, "differences": diffs, "mean_difference": float(np.mean(diffs)) if diffs else None}
    if len(diffs) > 1:
        test = stats.ttest_rel(means["candidate"], means["baseline"])
        out |= {"sd_of_differences": float(np.std(diffs, ddof=1)), "t": float(test.statistic),
                "p_two_sided": float(test.pvalue)}
    return out


def compare(rows: dict, baseline: str, candidate: str) -> dict:
    """One candidate family against the baseline family, both from ``rows`` (``full_length.json``'s ``rows``)."""
    base, cand = family_runs(rows, baseline), family_runs(rows, candidate)
    return {"candidate": candidate,
            "per_split": {str(s): {"baseline": base.get(s, []), "candidate": cand.get(s, [])}
                          for s in sorted(set(base) | set(cand))},
            **{m: {"paired": paired(base, cand, m), "pooled_within_split_sd": pooled_sd(cand, m)} for m in METRICS}}


def plot(baseline: dict[int, list[dict]], result: dict, path: Path) -> None:
    """Each run's task mIoU and big-rock IoU per split, the baseline and every candidate side by side; bars: means."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [result["baseline"]] + [c["candidate"] for c in result["candidates"]]
    common = os.path.commonprefix(names)  # candidates by what differs; the baseline's label has the rest
    families = [(f"baseline: {result['baseline']}", baseline)]
    families += [("\u2026" + c["candidate"][len(common):], {int(s): v["candidate"] for s, v in c["per_split"].items()})
                 for c in result["candidates"]]
    splits = sorted({s for _, runs in families for s in runs})
    width = 0.8 / len(families)
    fig, axes = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    for ax, metric in zip(axes, METRICS, strict=True):
        for k, (label, runs) in enumerate(families):
            colour = "tab:gray" if k == 0 else f"C{k - 1}"
            for i, s in enumerate(splits):
                values = [r[metric] for r in runs.get(s, [])]
                x = i - 0.4 + (k + 0.5) * width
                ax.scatter([x] * len(values), values, color=colour, s=16, label=label if i == 0 else None)
                if values:
                    ax.hlines(np.mean(values), x - width / 2, x + width / 2, color=colour)
        ax.set_ylabel(metric.replace("_", " ") + " (best epoch)")
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(range(len(splits)), [f"seed (split) {s}" for s in splits])
    axes[0].set_title("full-length runs by split: dots are runs (reruns in other data orders), bars their means",
                      fontsize=9)
    axes[0].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _summary(c: dict) -> str:
    lines = [c["candidate"]]
    for metric in METRICS:
        d, sd = c[metric]["paired"], c[metric]["pooled_within_split_sd"]
        by_split = ", ".join(f"seed {s} {x:+.4f}" for s, x in zip(d["splits"], d["differences"], strict=True))
        lines.append(f"  {metric}: by split ({by_split}), mean {d['mean_difference']:+.4f}, "
                     f"t {d.get('t', float('nan')):.2f}, p {d.get('p_two_sided', float('nan')):.2f}; "
                     f"pooled within-split sd {'-' if sd is None else f'{sd:.4f}'}")
    return "\n".join(lines)


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", required=True, help="a run family of full_length.json (a run name without _sS)")
    p.add_argument("--candidates", nargs="+", required=True, help="the families compared with it")
    p.add_argument("--rows", default=str(RESULTS / "full_length.json"), help="the full-length results file")
    p.add_argument("--name", type=result_name, default="run_noise", help="bench/results/NAME.json and docs/NAME.png")
    args = p.parse_args()
    try:
        rows = json.loads(Path(args.rows).read_text())["rows"]
    except (OSError, ValueError, KeyError, TypeError):
        p.error(f"--rows {args.rows}: expected bench/full_length.py's results file (JSON with 'rows')")
    base = family_runs(rows, args.baseline)
    if not base:
        p.error(f"--baseline {args.baseline}: no finished run FAMILY_sS or FAMILY_dsN_sS of it in {args.rows}")
    for family in args.candidates:
        cand = family_runs(rows, family)
        if family == args.baseline or not set(cand) & set(base):
            p.error(f"--candidates {family}: expected another family with a finished run on a split (seed) "
                    f"that --baseline ran ({', '.join(map(str, base))})")
    result = {"baseline": args.baseline, "baseline_runs": {str(s): v for s, v in base.items()},
              "baseline_pooled_within_split_sd": {m: pooled_sd(base, m) for m in METRICS},
              "candidates": [compare(rows, args.baseline, c) for c in args.candidates]}
    for c in result["candidates"]:
        print(_summary(c))
    png = ROOT / "docs" / f"{args.name}.png"
    plot(base, result, png)
    save(args.name, {**result, "png": str(png.relative_to(ROOT)),
                     "command": f"python bench/run_noise.py --baseline {args.baseline} --candidates "
                                f"{' '.join(args.candidates)} --name {args.name}"})


if __name__ == "__main__":
    main()

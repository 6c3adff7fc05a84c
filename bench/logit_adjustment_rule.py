"""What ``--logit_adjustment auto``'s fit line (``AUTO_MAX_FIT``) would have done to every stored run that searched tau.

    python bench/logit_adjustment_rule.py --lines 0.8 0.75 0.7 0.6

Every run records its search table (training-tile task mIoU per tau), the tau it applied and its validation score
before and after the shift: the full-length runs in ``bench/results/full_length.json``, the 200-step runs in their
folders under ``bench/results/ablation/200_steps/`` (ignored by git, so their rows are copied into the output).
For each line the rule's pick is recomputed from the table (``training.adjustment.auto_tau``); where it is 0 the
run would have kept its before-score, where it is the tau the run applied it would have had its after-score, and
any other pick (a run from an older rule) is counted as unknown. Saves ``bench/results/NAME.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import RESULTS, command_line, result_name, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.training.adjustment import AUTO_MIN_GAIN, auto_tau  # noqa: E402


def full_length_rows(path: Path) -> list[dict]:
    """One row per run of ``full_length.json`` with a stored search table, tau and before / after scores."""
    rows = []
    for name, r in json.loads(path.read_text())["rows"].items():
        la = r.get("logit_adjustment") or {}
        if la.get("search_scores") and la.get("before") and la.get("after"):
            rows.append({"run": name, "budget": "full_length", "table": la["search_scores"], "tau": la["tau"],
                         "before": la["before"]["task_mean_iou"], "after": la["after"]["task_mean_iou"]})
    return rows


def run_folder_rows(folder: Path, budget: str) -> list[dict]:
    """The same from the ``metrics.json`` of every run folder in ``folder`` that searched tau (``auto``)."""
    rows = []
    for f in sorted(folder.glob("*/metrics.json")):
        m = json.loads(f.read_text())
        search, before = m.get("logit_adjustment_search") or {}, m.get("validation_before_logit_adjustment")
        if m.get("logit_adjustment") == "auto" and search.get("scores") and before:
            rows.append({"run": f.parent.name, "budget": budget, "table": search["scores"],
                         "tau": m["logit_adjustment_tau"], "before": before["task_mean_iou"],
                         "after": m["validation"]["task_mean_iou"]})
    return rows


def under_line(rows: list[dict], line: float, min_gain: float = AUTO_MIN_GAIN) -> dict:
    """Per budget: runs the rule with fit line ``line`` adjusts, their validation change in sum, gains, losses,
    and runs whose pick is not the tau they applied (unknown change)."""
    out = {}
    for r in rows:
        b = out.setdefault(r["budget"], {"runs": 0, "adjusted": 0, "change": 0.0, "gains": 0, "losses": 0,
                                         "unknown": []})
        b["runs"] += 1
        pick = auto_tau(r["table"], min_gain, line)
        if pick == 0:
            continue
        if abs(pick - r["tau"]) > 1e-9:
            b["unknown"].append(r["run"])
            continue
        delta = r["after"] - r["before"]
        b["adjusted"] += 1
        b["change"] += delta
        b["gains"] += delta > 0
        b["losses"] += delta < 0
    return out


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=float, nargs="+", default=[0.8, 0.75, 0.7, 0.6],
                   help="fit lines to try (training-tile task mIoU at tau 0 from which auto keeps tau 0)")
    p.add_argument("--name", type=result_name, default="logit_adjustment_rule", help="bench/results/NAME.json")
    args = p.parse_args()
    bad = [line for line in args.lines if not 0 < line <= 1]
    if bad:
        p.error(f"--lines {bad[0]}: expected a training-tile task mIoU in (0, 1]")
    rows = full_length_rows(RESULTS / "full_length.json") + run_folder_rows(RESULTS / "ablation" / "200_steps",
                                                                            "200_steps")
    for r in rows:
        r["fit"] = r["table"]["0.0"]
    lines = {str(line): under_line(rows, line) for line in args.lines}
    for line, budgets in lines.items():
        for budget, b in budgets.items():
            print(f"line {line} {budget}: {b['adjusted']} of {b['runs']} adjusted, change {b['change']:+.4f} "
                  f"({b['gains']} gains, {b['losses']} losses, {len(b['unknown'])} unknown)")
    save(args.name, {"min_gain": AUTO_MIN_GAIN, "lines": lines,
                     "runs": [{k: v for k, v in r.items() if k != "table"} | {"best_gain": max(r["table"].values())
                                                                             - r["fit"]} for r in rows],
                     "command": command_line()})


if __name__ == "__main__":
    main()

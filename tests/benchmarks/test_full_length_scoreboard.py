"""bench/full_length_scoreboard.py: every family against the default, paired by split, checked by hand."""

import json
import math
import sys

import pytest

from bench import full_length_scoreboard as sb
from tests import forked


def _row(task, rock, finished=True, pr=None, fit=None, epochs=20.0):
    row = {"finished": finished, "epochs_reached": epochs, "best": {"task_mean_iou": task, "big_rock": rock}}
    if pr is not None:
        row["big_rock_precision_recall"] = pr
    if fit is not None:
        row["logit_adjustment"] = {"tau": 0.0, "search_scores": {"0.0": fit, "0.1": fit + 0.01}}
    return row


ROWS = {
    # the default: two runs on split 0 (one a rerun), one on splits 1 and 2
    "m__d_s0": _row(0.66, 0.26), "m__d_ds2_s0": _row(0.68, 0.28), "m__d_s1": _row(0.65, 0.25),
    "m__d_s2": _row(0.70, 0.32),
    # a candidate on splits 0 and 1, and a split (5) the default never ran
    "m__d_x_s0": _row(0.69, 0.31, pr=[0.40, 0.50], fit=0.80), "m__d_x_s1": _row(0.64, 0.20, pr=[0.30, 0.60]),
    "m__d_x_s5": _row(0.71, 0.35),
    "m__d_y_s2": _row(0.60, 0.10, fit=0.70),  # one shared split only
    "m__d_y_ds1_s2": _row(0.64, 0.14, epochs=60.0),
    "m__d_z_s9": _row(0.99, 0.99),  # no split in common with the default: left out
    "m__d_w_s0": _row(0.99, 0.99, finished=False),  # still training: no family yet
}


def test_families_are_finished_runs_without_seed_or_rerun():
    assert sb.families(ROWS) == ["m__d", "m__d_x", "m__d_y", "m__d_z"]


def test_each_family_against_the_default_split_by_split():
    board = sb.scoreboard(ROWS, "m__d")
    assert [f["family"] for f in board["families"]] == ["m__d_x", "m__d_y"]  # best mean difference first
    x, y = board["families"]
    # x: split 0 0.69 - mean(0.66, 0.68) = +0.02; split 1 0.64 - 0.65 = -0.01
    assert x["splits"] == [0, 1] and x["runs"] == 2 and x["baseline_runs"] == 3
    assert x["task_mean_iou"]["differences"] == pytest.approx([0.02, -0.01])
    assert x["task_mean_iou"]["mean_difference"] == pytest.approx(0.005)
    assert x["big_rock"]["differences"] == pytest.approx([0.04, -0.05])
    assert x["ahead_on"] == [0]
    # its own means on the shared splits only (split 5 is not shared)
    assert x["mean"]["task_mean_iou"] == pytest.approx(0.665)
    assert x["big_rock_precision_recall"] == pytest.approx([0.35, 0.55])
    assert x["training_tile_fit"] == pytest.approx(0.80)  # only split 0's run keeps it
    # the bar on all its splits: split 0 (0.69, 0.31) and split 5 (0.71, 0.35) clear it, split 1 does not
    assert x["bar_splits"] == [0, 5]
    # y: its two runs on split 2 average 0.62 / 0.12, against 0.70 / 0.32
    assert y["task_mean_iou"]["differences"] == pytest.approx([-0.08])
    assert y["big_rock"]["mean_difference"] == pytest.approx(-0.20)
    assert y["epochs"] == 60 and y["bar_splits"] == []
    assert "p_two_sided" not in y["task_mean_iou"]  # one split: no test
    # the default clears the bar on split 2 only (split 0's mean 0.67 / 0.27)
    assert board["baseline_bar_splits"] == [2]
    # its within-split spread: split 0's two runs, 0.66 and 0.68
    assert board["baseline_pooled_within_split_sd"]["task_mean_iou"] == pytest.approx(0.02 / math.sqrt(2))


def test_the_markdown_row_shows_the_hand_computed_numbers():
    text = sb.markdown(sb.scoreboard(ROWS, "m__d"), "python bench/full_length_scoreboard.py", "s")
    row = next(line for line in text.splitlines() if line.startswith("| m | d_x |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "0, 1 (2 / 3)" and cells[4] == "0.6650" and cells[5] == "**+0.0050**"
    assert cells[7] == "1 of 2" and cells[9] == "-0.005" and cells[10] == "0.35 / 0.55" and cells[12] == "0, 5"
    assert "on 2." in text  # the default over the bar on split 2


def test_an_unknown_baseline_is_refused_in_one_line(tmp_path):
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps({"rows": ROWS}))
    name = "full_length_scoreboard_refused"
    proc = forked.run([sys.executable, str(sb.ROOT / "bench" / "full_length_scoreboard.py"), "--baseline", "m__q",
                       "--rows", str(rows), "--name", name], cwd=sb.ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: --baseline m__q: no finished run")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    for path in (sb.ROOT / "bench" / "results" / f"{name}.json", sb.ROOT / "docs" / f"{name}.md",
                 sb.ROOT / "docs" / f"{name}.png"):
        assert not path.exists()

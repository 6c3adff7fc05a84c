"""bench/logit_adjustment_rule.py: what a fit line would have done, recomputed from each run's search table."""

import json

import pytest

from bench.logit_adjustment_rule import run_folder_rows, under_line


def _row(run, table, tau, before, after, budget="full_length"):
    return {"run": run, "budget": budget, "table": table, "tau": tau, "before": before, "after": after}


ROWS = [
    _row("low_fit", {"0.0": 0.50, "0.2": 0.55, "0.4": 0.53}, 0.2, 0.50, 0.52),  # adjusted under both lines: +0.02
    _row("mid_fit", {"0.0": 0.78, "0.2": 0.80}, 0.2, 0.60, 0.59),  # fit 0.78: adjusted under 0.8 only: -0.01
    _row("memorised", {"0.0": 0.90, "0.2": 0.95}, 0.0, 0.66, 0.66),  # fit over both lines: kept at 0
    _row("small_gain", {"0.0": 0.60, "0.2": 0.605}, 0.0, 0.64, 0.64),  # gain 0.005 < 0.01: kept at 0
    _row("old_rule", {"0.0": 0.60, "0.2": 0.62, "0.4": 0.70}, 0.2, 0.63, 0.64),  # rule picks 0.4, the run applied 0.2
    _row("short", {"0.0": 0.50, "0.15": 0.53}, 0.15, 0.52, 0.54, budget="200_steps"),
]


def test_each_line_counts_the_change_of_the_runs_it_adjusts():
    at_08 = under_line(ROWS, 0.8, min_gain=0.01)
    assert at_08["full_length"]["runs"] == 5
    assert at_08["full_length"]["adjusted"] == 2
    assert at_08["full_length"]["change"] == pytest.approx(0.02 - 0.01)
    assert (at_08["full_length"]["gains"], at_08["full_length"]["losses"]) == (1, 1)
    assert at_08["full_length"]["unknown"] == ["old_rule"]
    assert at_08["200_steps"]["change"] == pytest.approx(0.02)
    at_07 = under_line(ROWS, 0.7, min_gain=0.01)
    assert at_07["full_length"]["adjusted"] == 1
    assert at_07["full_length"]["change"] == pytest.approx(0.02)
    assert at_07["full_length"]["unknown"] == ["old_rule"]  # fit 0.60 is under 0.7 too
    at_055 = under_line(ROWS, 0.55, min_gain=0.01)  # only low_fit (0.50) is under it; old_rule is kept at 0
    assert (at_055["full_length"]["adjusted"], at_055["full_length"]["unknown"]) == (1, [])


def test_run_folders_give_their_search_and_both_scores(tmp_path):
    run = tmp_path / "r_s0"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({
        "logit_adjustment": "auto", "logit_adjustment_tau": 0.2,
        "logit_adjustment_search": {"tiles": 8, "scores": {"0.0": 0.5, "0.2": 0.6}},
        "validation_before_logit_adjustment": {"task_mean_iou": 0.40}, "validation": {"task_mean_iou": 0.45}}))
    fixed = tmp_path / "f_s0"
    fixed.mkdir()  # a run with a fixed tau searched nothing: not a row
    (fixed / "metrics.json").write_text(json.dumps({"logit_adjustment": "0", "validation": {"task_mean_iou": 0.4}}))
    assert run_folder_rows(tmp_path, "200_steps") == [_row("r_s0", {"0.0": 0.5, "0.2": 0.6}, 0.2, 0.40, 0.45,
                                                           budget="200_steps")]

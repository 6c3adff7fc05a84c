"""bench/warm_start.py's per-seed comparison, on curves whose answers are worked out by hand."""

import pytest

from bench.warm_start import compare


def run(final, curve, big_rock=0.1):
    return {"task_mean_iou": final, "big_rock": big_rock, "curve": list(curve)}


CHECKPOINT = {"validation": {"task_mean_iou": 0.50, "iou_big_rock": 0.12}}


def test_a_warm_arm_is_compared_with_the_checkpoint_and_with_scratch():
    arms = {"scratch": run(0.51, [0.30, 0.40, 0.51]), "warm": run(0.55, [0.49, 0.52, 0.55]),
            "warm_old_settings": run(0.53, [0.30, 0.50, 0.53])}
    row = compare(3, CHECKPOINT, arms, eval_every=25)
    assert row["seed"] == 3 and row["checkpoint"] == {"task_mean_iou": 0.50, "big_rock": 0.12}
    warm = row["warm"]
    assert warm["first_eval_minus_checkpoint"] == pytest.approx(-0.01)
    assert warm["never_below_checkpoint"] is False  # 0.49 < 0.50 at the first evaluation
    assert warm["gain"] == pytest.approx(0.04)
    assert warm["steps_to_scratch_final"] == 50  # 0.52 >= 0.51 at the second evaluation, every 25 steps
    old = row["warm_old_settings"]
    assert old["never_below_checkpoint"] is False  # 0.30 at the first evaluation
    assert old["steps_to_scratch_final"] == 75


def test_without_scratch_only_the_checkpoint_comparison_is_made():
    row = compare(0, CHECKPOINT, {"warm": run(0.56, [0.50, 0.56])}, eval_every=25)
    assert row["warm"]["never_below_checkpoint"] is True  # 0.50 equals the checkpoint: not below it
    assert row["warm"]["first_eval_minus_checkpoint"] == pytest.approx(0.0)
    assert "gain" not in row["warm"] and "steps_to_scratch_final" not in row["warm"]
    assert "scratch" not in row and "warm_old_settings" not in row


def test_a_warm_arm_that_never_reaches_scratch_says_none():
    arms = {"scratch": run(0.60, [0.50, 0.60]), "warm": run(0.55, [0.52, 0.55])}
    assert compare(1, CHECKPOINT, arms, eval_every=10)["warm"]["steps_to_scratch_final"] is None

"""A stored ablation row plus new seeds must equal the row computed from all runs at once."""

from __future__ import annotations

import numpy as np
import pytest

from bench.ablation import merge_rows

CLASSES = ("soil", "bedrock", "sand", "big_rock")


def row(seeds, scores, per_class, pr, runtime):
    """An ablation row as summarize() writes it, from per-run values."""
    return {"description": "d", "seeds": list(seeds), "n": len(seeds), "task_mean_iou": float(np.mean(scores)),
            "task_mean_iou_std": float(np.std(scores, ddof=1)) if len(seeds) > 1 else None,
            "per_class": {c: float(np.mean(per_class[:, i])) for i, c in enumerate(CLASSES)},
            "big_rock_precision": float(np.mean(pr[:, 0])), "big_rock_recall": float(np.mean(pr[:, 1])),
            "train_runtime_s": float(np.mean(runtime)), "measured_on": "m"}


@pytest.mark.parametrize("split", [1, 2, 3])
def test_merging_new_seeds_equals_the_row_of_all_runs(split):
    rng = np.random.default_rng(split)
    scores, per_class, pr, runtime = rng.random(5), rng.random((5, 4)), rng.random((5, 2)), rng.random(5) * 100
    parts = [slice(0, split), slice(split, 5)]
    earlier, new = (row(range(5)[s], scores[s], per_class[s], pr[s], runtime[s]) for s in parts)
    merged = merge_rows(earlier, new)
    assert merged["seeds"] == [0, 1, 2, 3, 4] and merged["n"] == 5
    assert merged["task_mean_iou"] == pytest.approx(scores.mean(), abs=1e-12)
    assert merged["task_mean_iou_std"] == pytest.approx(scores.std(ddof=1), abs=1e-12)
    for i, c in enumerate(CLASSES):
        assert merged["per_class"][c] == pytest.approx(per_class[:, i].mean(), abs=1e-12)
    assert merged["big_rock_recall"] == pytest.approx(pr[:, 1].mean(), abs=1e-12)
    assert merged["train_runtime_s"] == pytest.approx(runtime.mean(), abs=1e-9)


def test_a_seed_run_again_replaces_the_stored_row_and_missing_sides_pass_through():
    a = row([0, 1], np.array([0.5, 0.6]), np.ones((2, 4)), np.ones((2, 2)), np.ones(2))
    a["seed_scores"] = {"0": 0.5, "1": 0.6}
    b = row([1], np.array([0.7]), np.zeros((1, 4)), np.zeros((1, 2)), np.ones(1))
    b["seed_scores"] = {"1": 0.7}
    assert merge_rows(a, b) is b
    assert merge_rows(None, b) is b and merge_rows(a, None) is a


def test_merging_again_the_runs_a_row_already_holds_changes_nothing():
    # render-only after a merge: the run folders of seeds 2-4 are read again beside the stored 5-seed row
    rng = np.random.default_rng(7)
    scores, per_class, pr, runtime = rng.random(5), rng.random((5, 4)), rng.random((5, 2)), rng.random(5) * 100
    earlier = row(range(2), scores[:2], per_class[:2], pr[:2], runtime[:2])  # stored before seeds were recorded
    new = row(range(2, 5), scores[2:], per_class[2:], pr[2:], runtime[2:])
    new["seed_scores"] = {str(s): float(scores[s]) for s in range(2, 5)}
    merged = merge_rows(earlier, new)
    assert merge_rows(merged, new) == merged
    assert merge_rows(merged, new)["task_mean_iou_std"] == pytest.approx(scores.std(ddof=1), abs=1e-12)
    # a seed of the merged row rerun with another score is a new measurement: it replaces the row
    rerun = {**new, "seed_scores": {**new["seed_scores"], "3": float(scores[3]) + 0.01}}
    assert merge_rows(merged, rerun) is rerun
